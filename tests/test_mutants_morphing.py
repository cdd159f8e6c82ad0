"""Tests written for surviving mutants of stats/morphing.py (tools/mutation.py; docs/validation/tests.md, "Mutation
testing"): the fit's reported components and nuisances must reproduce the chi^2 of the module docstring, and the
pull priors must be the documented ones."""

import numpy as np
import pytest
from reference_costs import ReferenceMorphed
from scipy.optimize import minimize

from cevnsfit.errors import InputError
from cevnsfit.stats.morphing import MorphedPoissonChi2

GRID = (np.array([-1.5, -0.5, 0.5, 1.5]), np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))  # >= 4 nodes per axis
BASE = np.array([5.0, 3.0, 2.0])
# signal on the 4 x 5 grid (index i * n_y + j), linear in both shape nuisances
SIGNAL = np.array([BASE * (1.0 + 0.1 * x + 0.05 * y) for x in GRID[0] for y in GRID[1]])
OBS = np.array([9.0, 5.0, 2.0])
BKG = {"bkg": np.array([2.0, 1.0, 1.0])}


def test_fit_components_and_nuisances_reproduce_the_chi2():
    """chi^2 = 2 sum[mu - D + D ln(D/mu)] + ((a_bkg - 1)/0.2)^2 + x^2 + y^2 with mu the sum of the fitted
    components (module docstring); the signal component is a_cevns times the morphed template (mutants of fit(),
    which the fast selection never called)."""
    cost = MorphedPoissonChi2("toy", OBS, BKG, {"cevns": None, "bkg": 0.2}, GRID, shape_names=("sx", "sy"))
    fit = cost.fit(SIGNAL)
    nu = fit.nuisances
    assert set(nu) == {"norm_cevns", "norm_bkg", "sx", "sy"} and 0 < abs(nu["sx"]) < 1 and 0 < abs(nu["sy"]) < 1
    morphed = BASE * (1.0 + 0.1 * nu["sx"] + 0.05 * nu["sy"])  # the cubic cardinal splines are exact on linear data
    assert np.allclose(fit.fitted["cevns"], (1.0 + nu["norm_cevns"]) * morphed, rtol=1e-12, atol=0)
    assert np.allclose(fit.fitted["bkg"], (1.0 + nu["norm_bkg"]) * BKG["bkg"], rtol=1e-14, atol=0)
    mu = fit.fitted["cevns"] + fit.fitted["bkg"]
    direct = (2.0 * np.sum(mu - OBS + OBS * np.log(OBS / mu)) + (nu["norm_bkg"] / 0.2) ** 2 + nu["sx"] ** 2
              + nu["sy"] ** 2)
    assert fit.chi2 == pytest.approx(direct, rel=1e-10, abs=0)
    assert fit.chi2 == pytest.approx(cost(SIGNAL), rel=1e-12, abs=0)


def test_pull_priors_and_missing_width():
    """sigma = 1 is a unit-width pull (not "fixed", which is 0), the shape nuisances have unit Gaussian priors, and a
    component without a width is an InputError naming it (mutants: `(None, 0)` -> `(None, 1)`, the shape prior
    2.0, `missing = None`)."""
    cost = MorphedPoissonChi2("toy", OBS, BKG, {"cevns": 1.0, "bkg": 0}, GRID)
    assert cost.priors == {"norm_cevns": (0.0, 1.0), "norm_bkg": (0.0, 0.0), "x": (0.0, 1.0), "y": (0.0, 1.0)}
    assert cost.fixed == {"norm_bkg": 0.0} and cost.pull_sigmas.tolist() == [1.0, np.inf, 1.0, 1.0]
    with pytest.raises(InputError, match=r"^toy: no pull width for bkg$"):
        MorphedPoissonChi2("toy", OBS, BKG, {"cevns": None}, GRID)


# ---- the Newton iterations of MorphedPoissonChi2.profile: Hessian, Levenberg shift, fixed pulls, grid edges -------
# A toy with two morphed components and a fixed one, templates curved in both nuisances (exp of a quadratic form), so
# that the splines' second derivatives enter the Hessian; four bins.
CURVED_SIGNAL = np.array([np.array([5.0, 3.0, 2.0, 4.0]) * np.exp(np.array([0.3, -0.2, 0.1, 0.25]) * x
                                                                  + np.array([-0.1, 0.2, 0.15, -0.3]) * y + 0.05 * x * y)
                          for x in GRID[0] for y in GRID[1]])
CURVED_BKG = {"bkg": np.array([np.array([2.0, 1.0, 1.0, 0.5]) * (1.0 + 0.1 * x**2 - 0.05 * y)
                               for x in GRID[0] for y in GRID[1]]),
              "flat": np.full(4, 0.5)}
CURVED_OBS = np.array([9.0, 5.0, 2.0, 7.0])
BOX = [(0.0, None), (None, None), (None, None), (GRID[0][0], GRID[0][-1]), (GRID[1][0], GRID[1][-1])]


def _curved_cost(observed=CURVED_OBS, sigmas=None):
    return MorphedPoissonChi2("toy", observed, CURVED_BKG, sigmas or {"cevns": None, "bkg": 0.2, "flat": 0.3}, GRID)


def _brute_force_minimum(cost, starts, fixed=()):
    """min of the same chi^2 (the reference's explicit chi^2 at every parameter) by scipy's L-BFGS-B in the grid
    box, from several starts; ``fixed``: parameter indices held at their start value."""
    free = [i for i in range(len(BOX)) if i not in fixed]
    ref = ReferenceMorphed.of(cost)

    def chi2(q, start):
        p = np.array(start, dtype=float)
        p[free] = q
        return float(ref.chi2_at(CURVED_SIGNAL, p)[0])

    runs = [minimize(chi2, np.asarray(s, float)[free], args=(s,), method="L-BFGS-B", bounds=[BOX[i] for i in free],
                     options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10000}) for s in starts]
    return min(r.fun for r in runs)


def _derivatives_at(cost, p):
    """The kernel's gradient and Hessian (``MorphedPoissonChi2.derivatives``), as (1, ...) arrays."""
    _, grad, hess = cost.derivatives(CURVED_SIGNAL, np.asarray(p, dtype=float))
    return grad[None], hess[None]


def test_analytic_hessian_against_finite_differences():
    """Gradient and Hessian of chi^2 (every term: Poisson, pulls, the morph's first and second derivatives, the
    a_z-x cross terms) from the kernel against central finite differences of the reference chi^2, at a point off the
    grid nodes (mutants of the Hessian's cross and second-derivative terms: they change Newton's path, not its end
    point).  Achieved with
    h = 1e-4: 4e-9 (gradient) and 1.7e-8 (Hessian) relative to the largest entry -- the O(h^2) truncation."""
    cost = _curved_cost()
    p0 = np.array([1.3, 0.8, 1.1, 0.37, -0.63])
    grad, hess = _derivatives_at(cost, p0)
    ref = ReferenceMorphed.of(cost)

    def chi2(p):
        return float(ref.chi2_at(CURVED_SIGNAL, p)[0])

    h, eye = 1e-4, np.eye(p0.size) * 1e-4
    fd_grad = np.array([(chi2(p0 + e) - chi2(p0 - e)) / (2 * h) for e in eye])
    fd_hess = np.array([[(chi2(p0 + a + b) - chi2(p0 + a - b) - chi2(p0 - a + b) + chi2(p0 - a - b)) / (4 * h * h)
                         for b in eye] for a in eye])
    assert np.max(np.abs(grad[0] - fd_grad)) <= 3e-8 * np.max(np.abs(fd_grad))
    assert np.max(np.abs(hess[0] - fd_hess)) <= 1e-7 * np.max(np.abs(fd_hess))
    assert np.max(np.abs(hess[0] - hess[0].T)) <= 1e-14 * np.max(np.abs(hess[0]))  # symmetric but for rounding


def test_newton_from_an_indefinite_hessian_reaches_the_minimum():
    """Started where chi^2's Hessian is indefinite (a large signal, both nuisances near the grid corner), Newton
    needs the Levenberg shift to go downhill; it must reach the minimum that L-BFGS-B finds for the same chi^2
    (mutants of the shift: no shift, a shift of None).  Achieved: 5e-14 in chi^2; tolerance 1e-9, Newton's stopping
    rule (Newton decrement < 1e-9)."""
    cost = _curved_cost()
    start = np.array([2.25, 0.69, 0.98, 1.44, 1.85])
    assert np.linalg.eigvalsh(_derivatives_at(cost, start)[1][0])[0] < 0  # the branch under test is reached
    ref = _brute_force_minimum(cost, [start, [1.0, 1.0, 1.0, 0.0, 0.0]])
    chi2, p, _ = cost.profile(CURVED_SIGNAL, start[None])
    assert chi2[0] == pytest.approx(ref, abs=1e-9, rel=0)


def test_fixed_pull_stays_fixed_and_the_rest_is_profiled():
    """sigma = 0 fixes a component at a = 1; the others are profiled to the minimum L-BFGS-B finds with it fixed
    (mutants of the fixed rows of the gradient and Hessian).  Achieved: 4e-14 in chi^2; tolerance: Newton's 1e-9."""
    cost = _curved_cost(sigmas={"cevns": None, "bkg": 0, "flat": 0.3})
    chi2, p, _ = cost.profile(CURVED_SIGNAL)
    assert p[0, 1] == 1.0
    ref = _brute_force_minimum(cost, [[1.0, 1.0, 1.0, 0.0, 0.0], [1.5, 1.0, 0.8, 1.0, -1.0]], fixed=(1,))
    assert chi2[0] == pytest.approx(ref, abs=1e-9, rel=0)


def _data_beyond_the_corner(scale):
    """Counts made at (x, y) = (2.5, -3), beyond the grid's (1.5, -2) corner: signal times ``scale`` plus bkg."""
    return np.round(scale * np.array([5.0, 3.0, 2.0, 4.0]) * np.exp(np.array([0.3, -0.2, 0.1, 0.25]) * 2.5
                                                                    + np.array([-0.1, 0.2, 0.15, -0.3]) * -3.0
                                                                    - 0.05 * 7.5) + np.array([2.0, 1.0, 1.0, 0.5]))


def test_minimum_on_the_grid_edges():
    """Data made at (x, y) = (2.5, -3), outside the grid: the minimum lies on the upper x edge and the lower y edge,
    where profile pins the nuisances (projected Newton).  Cold and warm (started on the y edge with the gradient
    pointing out) starts must reach the minimum L-BFGS-B finds in the grid box (mutants of the edges: nodes[-2] as
    the upper end, `<` for `<=` at the lower one).  Achieved: 1.2e-11 in chi^2; tolerance: Newton's 1e-9.  (Ten
    times more data, 3565 against L-BFGS-B's 39.36 from the cold start: Newton stalls there -- docs/validation/tests.md.)"""
    cost = _curved_cost(observed=_data_beyond_the_corner(10.0))
    ref = _brute_force_minimum(cost, [[1.0, 1.0, 1.0, 0.0, 0.0], [3.0, 1.0, 1.0, 1.5, -2.0]])
    for start in (None, np.array([[2.0, 1.0, 1.0, 1.0, -2.0]])):
        chi2, p, _ = cost.profile(CURVED_SIGNAL, start)
        assert p[0, 3] == GRID[0][-1] and p[0, 4] == GRID[1][0]
        assert chi2[0] == pytest.approx(ref, abs=1e-9, rel=0)


def test_minimum_just_inside_the_grid_edge():
    """Less signal than above (scale 4): the minimum lies at x = 1.46, just inside the upper edge 1.5, y on the
    lower edge.  Started on the x edge, where the gradient points inwards (+0.52), x must leave the edge (a
    mutant pinned it for gradients below 1: chi^2 10.5514 instead of 10.5476).  Achieved: 5e-12; tolerance:
    Newton's 1e-9."""
    cost = _curved_cost(observed=_data_beyond_the_corner(4.0))
    ref = _brute_force_minimum(cost, [[1.0, 1.0, 1.0, 0.0, 0.0], [4.8, 1.0, 1.0, 1.5, -2.0]])
    chi2, p, _ = cost.profile(CURVED_SIGNAL, np.array([[4.8, 1.0, 1.0, 1.5, -2.0]]))
    assert 1.4 < p[0, 3] < GRID[0][-1] and p[0, 4] == GRID[1][0]
    assert chi2[0] == pytest.approx(ref, abs=1e-9, rel=0)


def test_reduced_templates_give_the_full_chi2_with_merged_bins():
    """``cost(reduce(s)) == cost(s)`` for one template and for a batch when empty data bins are merged (the
    reduced templates then have fewer bins than the full ones: 2 kept + 1 merged of 4), and the reduced batch
    is read as it is.  (Mutant: the test for already-reduced input `shape[-2:]` -> `shape[+2:]`; with no
    empty bin the two shapes coincide, so the selection's data never told them apart.)"""
    cost = _curved_cost(observed=np.array([9.0, 0.0, 2.0, 0.0]))
    reduced = cost.reduce(CURVED_SIGNAL)
    assert reduced.shape == (GRID[0].size * GRID[1].size, 3)
    # the merge is a sum: the kept bins, then the empty bins' total
    merged = np.column_stack([CURVED_SIGNAL[:, [0, 2]], CURVED_SIGNAL[:, [1, 3]].sum(axis=1)])
    np.testing.assert_array_equal(reduced, merged)
    assert cost(reduced) == pytest.approx(cost(CURVED_SIGNAL), abs=1e-9)
    batch = np.stack([CURVED_SIGNAL, 1.7 * CURVED_SIGNAL])
    np.testing.assert_allclose(cost(cost.reduce(batch)), cost(batch), rtol=0, atol=1e-9)
