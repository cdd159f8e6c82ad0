"""The compiled profiles (stats/compiled.py, numba) against the numpy reference paths of PoissonChi2, GaussianChi2
and MorphedPoissonChi2.

Poisson: both run the projected Newton to |decrement| < 1e-9 -- the compiled one takes the steps that
self-concordance certifies without a line search, and warm-starts a replica's fits along a line -- so their minima
agree to about that: measured max |Delta chi^2| 9e-12 on the B-L grid (322 couplings, 0 .. 10, CsI data) and on 2000
replicas with randomised pull centres; stated tolerance 1e-8 (as tests/test_fc_speed.py for the fast toy path).  Gaussian (LAr):
the same normal equations solved in another order, the same branch, the chi^2 recomputed from the residuals:
measured max |Delta chi^2| 9e-14 (three models, 322 couplings; 2000 replicas); stated 1e-10.  Morphed Poisson
(XENONnT): the same Newton, the morph evaluated from each cell's polynomial coefficients instead of the nodes'
weights and the 6 x 6 steps solved in the kernel; measured 2.3e-13 (three models, cold and warm), stated 1e-10.  Skipped where numba is not installed (an optional
dependency, ``cevnsfit[fast]``; the test extra installs it, so CI runs these).
"""

import numpy as np
import pytest

pytest.importorskip("numba")

from cevnsfit.mediators import MediatorAnalysis, default_couplings  # noqa: E402
from cevnsfit.stats import compiled  # noqa: E402
from cevnsfit.stats.chi2 import PoissonChi2, ReplicaCost  # noqa: E402

TOL = 1e-8
GAUSS_TOL = 1e-10


@pytest.fixture(scope="module")
def csi():
    an = MediatorAnalysis()
    cost = an.cost("csi")
    g = np.concatenate([[0.0], default_couplings()])
    return cost, an.templates("B-L", [0.0], "csi").counts(g, 0)


def replicas(cost, sig, rng, n, rows):
    """``n`` replicas thrown at the nuisances profiled for template ``sig[rows[0]]`` (pull centres randomised with
    their widths), each paired with a template drawn from ``sig[rows[0]:rows[1]]``: (templates, data, centres)."""
    expected, _ = cost.expected(sig[rows[0]])
    d = cost.sample(expected, rng, n)
    widths = np.where(np.isfinite(cost.pull_sigmas), cost.pull_sigmas, 0.0)
    return sig[rng.integers(*rows, n)], d, rng.standard_normal((n, widths.size)) * widths


def both(cost, fn):
    cost.compiled = False
    try:
        ref = fn()
    finally:
        cost.compiled = True
    return ref, fn()


def test_grid_equals_numpy_path(csi):
    """Couplings from 0 to far excluded (g = 10: the signal is ~1e9 times the data, a -> 0 at the pull's price)."""
    cost, sig = csi
    assert compiled.worth_it(sig.shape[0])
    ref, out = both(cost, lambda: cost(sig))
    np.testing.assert_allclose(out, ref, rtol=0, atol=TOL)
    # and the nuisances: the same minimum, not only the same chi^2 (factors to 1e-4: flat directions at large g)
    (_, eta_ref, _), (_, eta, _) = both(cost, lambda: cost.profile(sig))
    near = slice(0, 200)  # g <= 3e-4: every factor well determined
    np.testing.assert_allclose(eta[near], eta_ref[near], rtol=0, atol=1e-4)


def test_replicas_with_random_centres_and_warm_starts(csi):
    cost, sig = csi
    rng = np.random.default_rng(3)
    n = 300
    s, d, c = replicas(cost, sig, rng, n, (100, 250))  # g from 3e-5 (near the limit) to 0.2 (signal ~1e6 x data)
    ref, out = both(cost, lambda: cost.replicas(s, d, c))
    np.testing.assert_allclose(out, ref, rtol=0, atol=TOL)
    # warm starts as a scan makes them (a neighbour's nuisances; factors below 1e-3 start on the bound a = 0), and
    # starts outside the domain (rows 0-4: every factor negative, no expected counts) restarted from a = 1.
    # Couplings up to 10 (signals up to ~1e9 x the data): both paths reach the cold-start minimum.  (They used not
    # to: a factor counted as on its bound below a = 1e-9 whatever its template -- a signal 1e9 x the data is not
    # -- and a factor held by its Newton step while its gradient pointed up was never released.)
    s = sig[rng.integers(100, 322, n)]
    (cold, _, _), _ = both(cost, lambda: cost.profile(s, None, d, c))
    _, eta, _ = cost.profile(s, None, d, c)
    start = eta + rng.normal(0.0, 0.05, eta.shape)
    start[:5] = -2.0
    (chi_ref, _, _), (chi, _, _) = both(cost, lambda: cost.profile(s, start, d, c))
    np.testing.assert_allclose(chi, chi_ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(chi, cold, rtol=0, atol=TOL)


def test_replica_lines_equal_cold_fits(csi):
    """``replicas_grid`` compiled (each replica's fits warm-started along the whole line, from g = 0 to g = 10 where
    the signal is ~1e9 x the data) against cold numpy fits of every (replica, coupling) pair."""
    cost, sig = csi
    rng = np.random.default_rng(11)
    _, d, c = replicas(cost, sig, rng, 12, (120, 121))
    line = sig[::4]
    cost.compiled = False
    try:
        ref = ReplicaCost.replicas_grid(cost, line, d, c)
    finally:
        cost.compiled = True
    out = cost.replicas_grid(line, d, c)
    assert line[-1].sum() > 1e6 * d.sum(axis=1).max()  # up to a signal far above the data (a -> 0, pull-limited)
    assert np.ptp(ref) > 50
    np.testing.assert_allclose(out, ref, rtol=0, atol=TOL)


def test_chained_rows_and_fractional_counts(csi):
    """Rows that repeat a replica's data (the refinement's samples along a line) start from the previous row's
    solution; data with counts below 1/2 (an Asimov projection; the blind Newton steps are not certified there)
    take line-searched steps.  Both against the numpy path."""
    cost, sig = csi
    rng = np.random.default_rng(12)
    _, d, c = replicas(cost, sig, rng, 10, (110, 111))
    s = sig[100:160:4]
    m = s.shape[0]
    rows = np.tile(s, (10, 1, 1)), np.repeat(d, m, axis=0), np.repeat(c, m, axis=0)
    ref, out = both(cost, lambda: cost.replicas(*rows))
    np.testing.assert_allclose(out, ref, rtol=0, atol=TOL)
    frac = np.where(rng.random(d.shape) < 0.3, 0.3, d * 0.37)  # many bins at 0.3, none integer
    rows = np.tile(s, (10, 1, 1)), np.repeat(frac, m, axis=0), np.repeat(c, m, axis=0)
    ref, out = both(cost, lambda: cost.replicas(*rows))
    np.testing.assert_allclose(out, ref, rtol=0, atol=TOL)


def test_bound_and_free_normalisations():
    """A free normalisation (no pull) driven to its bound a = 0 by data without that component, and a zero-count
    data set: the projected-Newton branch of the kernel, against the numpy path and a bounded scipy minimisation."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(5)
    nb = 40
    bkg = {"flat": np.full(nb, 2.0), "peak": 5.0 * np.exp(-0.5 * ((np.arange(nb) - 30) / 2.0) ** 2)}
    sig = np.exp(-np.arange(nb) / 8.0) * 10.0
    observed = rng.poisson(sig + bkg["flat"]).astype(float)  # no "peak" in the data: its factor goes to 0
    shape = (8, 5)  # a cost's bins are (energy, time)
    cost = PoissonChi2("toy", observed.reshape(shape), {z: t.reshape(shape) for z, t in bkg.items()},
                       {"cevns": None, "flat": 0.1, "peak": None})
    batch = (np.repeat(sig[None], 80, axis=0) * np.linspace(0.5, 1.5, 80)[:, None]).reshape(80, *shape)
    (chi_ref, eta_ref, _), (chi, eta, _) = both(cost, lambda: cost.profile(batch))
    np.testing.assert_allclose(chi, chi_ref, rtol=0, atol=TOL)
    assert np.all(eta[:, 2] + 1.0 < 1e-6)  # peak at its bound
    tpl = np.vstack([batch[40].ravel(), bkg["flat"], bkg["peak"]])

    def f(a):
        mu = a @ tpl
        return 2 * np.sum(mu - observed + np.where(observed > 0, observed * np.log(np.maximum(observed, 1) / mu), 0)) + ((a[1] - 1) / 0.1) ** 2

    best = minimize(f, [1.0, 1.0, 0.5], bounds=[(1e-12, None)] * 3, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-10})
    assert chi[40] <= best.fun + 1e-7 and chi[40] >= best.fun - 1e-6
    zero = PoissonChi2("empty", np.zeros(shape), {z: t.reshape(shape) for z, t in bkg.items()},
                       {"cevns": 0.2, "flat": 0.1, "peak": 0.5})
    ref0, out0 = both(zero, lambda: zero(batch))
    np.testing.assert_allclose(out0, ref0, rtol=0, atol=TOL)


def test_switch_off_by_environment(monkeypatch):
    monkeypatch.setenv("CEVNSFIT_COMPILED", "0")
    assert not compiled.available()
    monkeypatch.setenv("CEVNSFIT_COMPILED", "1")
    assert compiled.available()


@pytest.mark.parametrize("model", ["B-L", "L_mu-L_tau", "scalar"])
def test_gaussian_grid_equals_numpy_path(model):
    """LAr: couplings 0 .. 10 (interference zero of L_mu-L_tau, a huge signal), the same chi^2, branch and nuisances."""
    an = MediatorAnalysis()
    cost = an.cost("lar")
    g = np.concatenate([[0.0], default_couplings()])
    sig = an.templates(model, [0.0], "lar").counts(g, 0)
    (chi_ref, th_ref, br_ref), (chi, th, br) = both(cost, lambda: cost.profile(sig))
    np.testing.assert_allclose(chi, chi_ref, rtol=0, atol=GAUSS_TOL)
    assert np.array_equal(br, br_ref)
    np.testing.assert_allclose(th[:200], th_ref[:200], rtol=0, atol=1e-10)  # g <= 3e-4: every parameter determined


def test_gaussian_replicas_with_random_centres():
    an = MediatorAnalysis()
    cost = an.cost("lar")
    g = np.concatenate([[0.0], default_couplings()])
    sig = an.templates("B-L", [0.0], "lar").counts(g, 0)
    s, d, c = replicas(cost, sig, np.random.default_rng(8), 400, (80, 200))
    ref, out = both(cost, lambda: cost.replicas(s, d, c))
    np.testing.assert_allclose(out, ref, rtol=0, atol=GAUSS_TOL)


def test_gaussian_replica_lines_equal_numpy_paths():
    """LAr ``replicas_grid`` compiled (the template-side factors once, then replica by replica) against its numpy
    matrix form and against ``replicas`` of every pair (the per-row profile), couplings 0 .. 10."""
    an = MediatorAnalysis()
    cost = an.cost("lar")
    g = np.concatenate([[0.0], default_couplings()])[::3]
    sig = an.templates("L_mu-L_tau", [0.0], "lar").counts(g, 0)
    _, d, c = replicas(cost, sig, np.random.default_rng(9), 30, (60, 61))
    factors = cost.grid_factors(sig)
    ref, out = both(cost, lambda: cost.replicas_grid(sig, d, c, factors=factors))
    np.testing.assert_allclose(out, ref, rtol=0, atol=GAUSS_TOL)
    k = sig.shape[0]
    pairs = cost.replicas(np.tile(sig, (30, 1, 1)), np.repeat(d, k, axis=0), np.repeat(c, k, axis=0)).reshape(30, k)
    np.testing.assert_allclose(out, pairs, rtol=0, atol=GAUSS_TOL)
    assert np.ptp(out) > 100


@pytest.mark.parametrize("model", ["B-L", "L_mu-L_tau", "scalar"])
def test_gaussian_signals_linear_in_a_basis(model):
    """LAr profiled from the basis products (``profile_linear``, ``replicas_linear``: the signal rows of the Gram
    matrix from N0, N1, N2 once per line) against the numpy profile of the signals themselves: couplings 0 .. 10 at
    M = 0 and 10 MeV (measured max |Delta chi^2| 9e-14)."""
    an = MediatorAnalysis()
    cost = an.cost("lar")
    g = np.concatenate([[0.0], default_couplings()])
    tpl = an.templates(model, [0.0, 10.0], "lar")
    coef = tpl.coefficients(g)
    for i in (0, 1):
        cost.compiled = False
        try:
            ref = cost(tpl.counts(g, i))
        finally:
            cost.compiled = True
        np.testing.assert_allclose(cost.profile_linear(coef, tpl.basis(i))[0], ref, rtol=0, atol=GAUSS_TOL)
    s, d, c = replicas(cost, tpl.counts(g, 0), np.random.default_rng(10), 200, (60, 200))
    rows = np.random.default_rng(1).integers(60, 200, 200)
    ref, _ = both(cost, lambda: cost.replicas(tpl.counts(g[rows], 0), d, c))
    out = cost.replicas_linear(coef[rows], tpl.basis(0), d, c)
    np.testing.assert_allclose(out, ref, rtol=0, atol=GAUSS_TOL)


def test_morphed_grid_equals_numpy_path():
    """XENONnT's morphed cost: B-L couplings 0 .. 10 (the signal from nothing to ~1e9 x the data), cold and warm
    started (the next mass from the previous row's parameters, as a scan does); measured max |Delta chi^2| 3e-13."""
    an = MediatorAnalysis()
    cost = an.cost("xenonnt")
    g = np.concatenate([[0.0], default_couplings()])[::2]
    tpl = an.templates("B-L", [0.0, 30.0], "xenonnt").mapped(cost.reduce)
    sig0, sig1 = tpl.counts(g, 0), tpl.counts(g, 1)
    assert compiled.worth_it(sig0.shape[0])
    (chi_ref, p_ref, _), (chi, p, _) = both(cost, lambda: cost.profile(sig0))
    np.testing.assert_allclose(chi, chi_ref, rtol=0, atol=GAUSS_TOL)
    np.testing.assert_allclose(p[:100], p_ref[:100], rtol=0, atol=1e-8)
    (warm_ref, _, _), (warm, _, _) = both(cost, lambda: cost.profile(sig1, p_ref))
    np.testing.assert_allclose(warm, warm_ref, rtol=0, atol=GAUSS_TOL)


def test_morphed_signals_linear_in_a_basis():
    """XENONnT profiled from the basis (``profile_linear``: each row's signal formed in the kernel from N0, N1, N2)
    against the numpy profile of the signals themselves, cold and warm started; measured max |Delta chi^2| 3e-13."""
    an = MediatorAnalysis()
    cost = an.cost("xenonnt")
    g = np.concatenate([[0.0], default_couplings()])[::2]
    tpl = an.templates("L_mu-L_tau", [0.0, 30.0], "xenonnt").mapped(cost.reduce)
    coef = tpl.coefficients(g)
    cost.compiled = False
    try:
        ref0, p_ref = cost.profile_warm(tpl.counts(g, 0))
        ref1, _ = cost.profile_warm(tpl.counts(g, 1), p_ref)
    finally:
        cost.compiled = True
    chi0, p0 = cost.profile_linear(coef, tpl.basis(0))
    chi1, _ = cost.profile_linear(coef, tpl.basis(1), p0)
    np.testing.assert_allclose(chi0, ref0, rtol=0, atol=GAUSS_TOL)
    np.testing.assert_allclose(chi1, ref1, rtol=0, atol=GAUSS_TOL)


@pytest.mark.parametrize("name", ["csi", "lar", "xenonnt"])
def test_analysis_profiles_single_points_compiled(name, monkeypatch):
    """An analysis's costs profile even one template compiled (its refinements: ~20 us instead of ~0.6 ms), a cost
    of its own only batches of MIN_ROWS or more; both give the numpy value to the kernels' tolerance."""
    if not compiled.available():
        pytest.skip("CEVNSFIT_COMPILED=0")
    an = MediatorAnalysis()
    cost = an.cost(name)
    assert cost.min_compiled_rows == 1 and type(cost).min_compiled_rows == compiled.MIN_ROWS
    calls = []
    for kernel in ("poisson_profile", "gaussian_profile", "morphed_profile"):
        real = getattr(compiled, kernel)
        monkeypatch.setattr(compiled, kernel, lambda *a, real=real, **k: calls.append(1) or real(*a, **k))
    counts = an.templates("B-L", [0.0], name).counts(np.array([3e-5]), 0)[0]
    value = cost(counts)
    assert calls  # the compiled path
    plain = an.experiment(name).cost()  # a cost outside an analysis: numpy for one template
    calls.clear()
    assert plain(counts) == pytest.approx(value, abs=TOL) and not calls


def test_vectorised_logarithm_against_libm():
    """The kernels' sum of D ln mu (``_kernels._log_dot``: a logarithm that vectorises) against math.log, bin by bin
    over the whole double range the deviance meets (mu clamped at 1e-300 as there), and on a data-like sum."""
    import math

    from cevnsfit.stats import _kernels

    rng = np.random.default_rng(3)
    x = np.concatenate([np.exp(rng.uniform(-700, 700, 5000)), rng.uniform(0.5, 2.0, 5000), 1.0 + rng.normal(0, 1e-9, 500),
                        [1e-320, 0.0, 1e-300, 2.0, np.sqrt(0.5), np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2), 1e300]])
    scratch, one = np.empty((2, 1)), np.ones(1)
    for v in x:
        ref = math.log(max(v, 1e-300))
        assert _kernels._log_dot(one, np.array([v]), scratch) == pytest.approx(ref, rel=5e-16, abs=1e-300)
    mu = rng.uniform(0.05, 80.0, 99)
    d = rng.poisson(mu).astype(float)
    ref = sum(di * math.log(m) for di, m in zip(d, mu))
    assert _kernels._log_dot(d, mu, np.empty((2, 99))) == pytest.approx(ref, rel=1e-14)


def test_small_solver_against_lapack():
    """The morphed profile's 6 x 6 solve (``_kernels._solve_lu``: partial pivoting, no allocation) against
    ``np.linalg.solve`` on definite, indefinite and badly scaled matrices, and one that needs a row swap."""
    from cevnsfit.stats import _kernels

    rng = np.random.default_rng(5)
    work, out = np.empty((6, 7)), np.empty(6)
    for kind in range(60):
        a = rng.normal(size=(6, 6))
        h = a @ a.T + 1e-3 * np.eye(6) if kind % 3 == 0 else a + a.T  # definite / indefinite
        if kind % 3 == 2:
            s = 10.0 ** rng.uniform(-6, 6, 6)
            h = h * s[:, None] * s[None, :]
        g = rng.normal(size=6)
        _kernels._solve_lu(h, g, work, out)
        ref = -np.linalg.solve(h, g)
        cond = np.linalg.cond(h)
        assert np.allclose(out, ref, rtol=1e-14 * cond, atol=0), (kind, cond)
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])  # a zero first pivot: only partial pivoting solves it
    _kernels._solve_lu(swap, np.array([2.0, 3.0]), np.empty((2, 3)), out2 := np.empty(2))
    assert out2.tolist() == [-3.0, -2.0]


def test_cell_polynomials_against_the_cardinal_spline_weights():
    """The morphed kernel's evaluation from each cell's power-basis coefficients (``_cell_poly``, ``_poly_morph``)
    against the numpy path's cardinal-spline weights (GridMorph.weights) for T and its five derivatives, inside the
    cells, on the nodes (from either neighbouring cell) and clamped outside the grid."""
    from cevnsfit.stats import _kernels
    from cevnsfit.stats.morphing import GridMorph

    nodes = np.linspace(-3.0, 3.0, 7)
    morph = GridMorph(nodes, nodes)
    rng = np.random.default_rng(11)
    tg = rng.uniform(0.5, 2.0, (49, 5)) * np.exp(rng.normal(size=(49, 1)))  # grid templates, 5 bins
    coef = np.empty((4, 4, 5))
    tmp = np.empty((7, 4, 5))
    m = np.empty((6, 1, 5))
    points = [(x, y) for x, y in rng.uniform(-3.0, 3.0, (40, 2))] + [(-1.0, 2.0), (3.0, -3.0), (-3.0, 0.5), (4.2, -5.0)]
    for x, y in points:
        kx, t = _kernels._cell(nodes, x)
        ky, u = _kernels._cell(nodes, y)
        _kernels._cell_poly(tg, 7, morph.x._c, morph.y._c, kx, ky, tmp, coef)
        _kernels._poly_morph(coef, t, u, 0, m)
        ref = morph.weights(np.clip(x, -3, 3), np.clip(y, -3, 3))[0] @ tg  # (6, bins)
        np.testing.assert_allclose(m[:, 0], ref, rtol=1e-12, atol=1e-12 * np.abs(tg).max())
    # a node reached from the cell on its left (t = 1) gives what the cell on its right (t = 0) gives: C2 splines
    _kernels._cell_poly(tg, 7, morph.x._c, morph.y._c, 1, 4, tmp, coef)
    _kernels._poly_morph(coef, 1.0, 0.25, 0, m)
    np.testing.assert_allclose(m[:, 0], morph.weights(-1.0, 1.25)[0] @ tg, rtol=1e-12, atol=1e-12 * np.abs(tg).max())
