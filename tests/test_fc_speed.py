"""The toy path against the reference path of tests/reference_toys.py and tests/reference_*.py (issue 10, speed),
and the bound of the Poisson profile.

Stated tolerances: |Delta chi^2| <= 1e-8 for the profiled fits on the grid (same normal equations / the same
minimum to the Newton tolerance), |Delta t| <= 1e-6 for the FC statistic (the refinement of the minimum is a
parabola through bracket samples, the reference's a golden-section search; both are upper bounds of the minimum) on the
production grids (POINTS_PER_DECADE = 20).  The parabola is less accurate where the profiled chi^2 has a kink
inside the bracket (LAr: its sign branches switch), and its error grows with the bracket: on a 6-per-decade grid
we measured up to 2.5e-6 (reported in docs/validation/speed.md), still 4 orders of magnitude below the toy-statistics
error of a critical value.
"""

import numpy as np
import pytest
from reference_costs import ReferenceLine, reference
from scipy.optimize import minimize

from cevnsfit.fc import POINTS_PER_DECADE, LineSpec, _lattice, build_line
from cevnsfit.stats.chi2 import PoissonChi2, ReplicaCost
from cevnsfit.stats.toys import block_rng

GRID_TOL = 1e-8
T_TOL = 1e-6


@pytest.fixture(scope="module")
def lines():
    """B-L lines in g (M -> 0) on the production spacing (20 per decade), 4e-7 .. 3e-4: around the limits
    (4-5e-5) and far beyond (templates only; the observed line is not needed)."""
    tested = np.concatenate([[0.0], _lattice(4e-6, 3e-4, POINTS_PER_DECADE)])
    grid = np.concatenate([[0.0], _lattice(4e-7, 4e-6, 4)[:-1], tested[1:]])
    return {d: (build_line(LineSpec("B-L", d, "low_mass", tuple(tested), tuple(grid), 0, 100)), tested)
            for d in ("csi", "lar")}


@pytest.mark.parametrize("dataset", ["csi", "lar"])
def test_grid_of_replicas_equals_the_pairwise_reference(lines, dataset):
    """Every (replica, template) pair: the fast ``replicas_grid`` (LAr: Gram matrix once per template; CsI: Newton
    warm-started along the grid) equals profiling each pair from scratch, at couplings from 0 to far excluded."""
    line, tested = lines[dataset]
    cost, sig = line.members[0].cost, line._grid_signals[0]
    for point in (1, len(tested) - 1):
        rep = line.throw(tested[point], block_rng(5, (point,)), 12)[0]
        ref = ReplicaCost.replicas_grid(cost, sig, rep.observed, rep.centres)
        fast = cost.replicas_grid(sig, rep.observed, rep.centres)
        assert ref.shape == fast.shape == (12, sig.shape[0])
        np.testing.assert_allclose(fast, ref, rtol=0, atol=GRID_TOL)


def test_gaussian_grid_shortcut_equals_the_residuals(lines):
    """The kernel's grid chi^2 from the normal equations (c'Wc + theta_0'P theta_0 - rhs'theta) against the
    reference's chi^2 recomputed from each chosen branch's residuals (``exact``)."""
    line, tested = lines["lar"]
    cost, sig = line.members[0].cost, line._grid_signals[0]
    rep = line.throw(tested[2], block_rng(6, (2,)), 5)[0]
    a = cost.replicas_grid(sig, rep.observed, rep.centres)
    b = reference(cost).replicas_grid(sig, rep.observed, rep.centres, exact=True)
    np.testing.assert_allclose(a, b, rtol=0, atol=GRID_TOL)


@pytest.mark.parametrize("dataset", ["csi", "lar"])
def test_grid_of_replicas_equals_the_reference_grid(lines, dataset):
    """The kernels' ``replicas_grid`` against the reference's (CsI: numpy Newton, one template in four cold and
    the others from it; LAr: the matrix form) at couplings from 0 to far excluded."""
    line, tested = lines[dataset]
    cost, sig = line.members[0].cost, line._grid_signals[0]
    rep = line.throw(tested[3], block_rng(7, (3,)), 8)[0]
    np.testing.assert_allclose(cost.replicas_grid(sig, rep.observed, rep.centres),
                               reference(cost).replicas_grid(sig, rep.observed, rep.centres), rtol=0, atol=GRID_TOL)


@pytest.mark.parametrize("dataset", ["csi", "lar"])
def test_fast_line_statistic_equals_the_reference(lines, dataset):
    line, tested = lines[dataset]
    ref = ReferenceLine(line.members, line.grid)
    for point in (2, len(tested) * 3 // 4):
        g = tested[point]
        a = ref.statistic(g, block_rng(1, (point,)), 20)
        b = line.statistic(g, block_rng(1, (point,)), 20)
        np.testing.assert_allclose(b, a, rtol=0, atol=T_TOL)
        assert np.any(a > 0.1)  # not a comparison of zeros


def test_poisson_profile_reaches_a_free_normalisation_on_its_bound():
    """A free background that the data push below zero ends at a = 0 with the other factors at their constrained
    optimum (projected Newton), as a bounded scipy minimisation finds; it used to stall short of it."""
    s = np.array([[30.0, 20.0, 10.0], [15.0, 8.0, 4.0]])
    b = np.array([[50.0, 52.0, 49.0], [51.0, 48.0, 50.0]])
    c = np.array([[20.0, 2.0, 1.0], [3.0, 2.0, 10.5]])
    obs = np.array([[60.0, 66.0, 52.0], [60.0, 50.0, 48.0]])  # below s + b + c: c is not wanted
    cost = PoissonChi2("p", obs, {"b": b, "c": c}, {"cevns": 0.1, "b": 0.05, "c": None})

    def chi(a):
        mu = a[0] * s + a[1] * b + a[2] * c
        if np.any(mu <= 0):
            return 1e30
        dev = 2 * np.sum(mu - obs + obs * np.log(obs / mu))
        return dev + ((a[0] - 1) / 0.1) ** 2 + ((a[1] - 1) / 0.05) ** 2

    res = minimize(chi, [1.0, 1.0, 0.5], method="L-BFGS-B", bounds=[(0, None), (0, None), (0, None)],
                   options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 20000})
    assert res.x[2] < 1e-6  # the optimum is on the bound
    fit = cost.fit(s)
    assert fit.nuisances["norm_c"] == pytest.approx(-1.0, abs=1e-8)
    assert fit.chi2 == pytest.approx(res.fun, abs=1e-7)
    # the warm-started grid path reaches it too, from any nearby start
    sig = np.stack([s * f for f in np.linspace(0.5, 1.5, 9)])
    grid = cost.replicas_grid(sig, obs.reshape(1, -1))
    np.testing.assert_allclose(grid, ReplicaCost.replicas_grid(cost, sig, obs.reshape(1, -1)), rtol=0, atol=GRID_TOL)
