"""The compiled profiles (stats/kernels, numba) against the independent numpy references of tests/reference_*.py
(the former numpy profiles of PoissonChi2, GaussianChi2 and MorphedPoissonChi2), and the first-run compilation API.

Poisson: both run the projected Newton to |decrement| < 1e-9 -- the kernel takes the steps that self-concordance
certifies without a line search, and warm-starts a replica's fits along a line -- so their minima agree to about
that: measured max |Delta chi^2| 9e-12 on the B-L grid (322 couplings, 0 .. 10, CsI data) and on 2000 replicas
with randomised pull centres; stated tolerance 1e-8 (as tests/test_fc_speed.py for the toy path).  Gaussian (LAr):
the same normal equations solved in another order, the same branch, the chi^2 recomputed from the residuals:
measured max |Delta chi^2| 9e-14 (three models, 322 couplings; 2000 replicas); stated 1e-10.  Morphed Poisson
(XENONnT): the same Newton, the morph evaluated from each cell's polynomial coefficients instead of the nodes'
weights and the 6 x 6 steps solved in the kernel; measured 2.3e-13 (three models, cold and warm), stated 1e-10.
"""

import subprocess
import sys

import numpy as np
import pytest
from reference_costs import ReferenceGaussian, ReferenceMorphed, ReferencePoisson

from cevnsfit.mediators import MediatorAnalysis, default_couplings, default_masses
from cevnsfit.stats import compiled
from cevnsfit.stats.chi2 import PoissonChi2, ReplicaCost
from cevnsfit.stats.kernels import common as kernels_common
from cevnsfit.stats.kernels import morph as kernels_morph

TOL = 1e-8
GAUSS_TOL = 1e-10


@pytest.fixture(scope="module")
def an():
    return MediatorAnalysis()


@pytest.fixture(scope="module")
def csi(an):
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


def test_grid_equals_the_reference(csi):
    """Couplings from 0 to far excluded (g = 10: the signal is ~1e9 times the data, a -> 0 at the pull's price)."""
    cost, sig = csi
    ref = ReferencePoisson.of(cost)
    np.testing.assert_allclose(cost(sig), ref(sig), rtol=0, atol=TOL)
    # and the nuisances: the same minimum, not only the same chi^2 (factors to 1e-4: flat directions at large g)
    eta, eta_ref = cost.profile(sig)[1], ref.profile(sig)[1]
    near = slice(0, 200)  # g <= 3e-4: every factor well determined
    np.testing.assert_allclose(eta[near], eta_ref[near], rtol=0, atol=1e-4)


def test_replicas_with_random_centres_and_warm_starts(csi):
    cost, sig = csi
    ref = ReferencePoisson.of(cost)
    rng = np.random.default_rng(3)
    n = 300
    s, d, c = replicas(cost, sig, rng, n, (100, 250))  # g from 3e-5 (near the limit) to 0.2 (signal ~1e6 x data)
    np.testing.assert_allclose(cost.replicas(s, d, c), ref.replicas(s, d, c), rtol=0, atol=TOL)
    # warm starts as a scan makes them (a neighbour's nuisances; factors below 1e-3 start on the bound a = 0), and
    # starts outside the domain (rows 0-4: every factor negative, no expected counts) restarted from a = 1.
    # Couplings up to 10 (signals up to ~1e9 x the data): both reach the cold-start minimum.  (They used not
    # to: a factor counted as on its bound below a = 1e-9 whatever its template -- a signal 1e9 x the data is not
    # -- and a factor held by its Newton step while its gradient pointed up was never released.)
    s = sig[rng.integers(100, 322, n)]
    cold = ref.profile(s, None, d, c)[0]
    _, eta = cost.profile(s, None, d, c)
    start = eta + rng.normal(0.0, 0.05, eta.shape)
    start[:5] = -2.0
    chi, chi_ref = cost.profile(s, start, d, c)[0], ref.profile(s, start, d, c)[0]
    np.testing.assert_allclose(chi, chi_ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(chi, cold, rtol=0, atol=TOL)


def test_replica_lines_equal_cold_fits(csi):
    """``replicas_grid`` (each replica's fits warm-started along the whole line, from g = 0 to g = 10 where the
    signal is ~1e9 x the data) against cold reference fits of every (replica, coupling) pair."""
    cost, sig = csi
    rng = np.random.default_rng(11)
    _, d, c = replicas(cost, sig, rng, 12, (120, 121))
    line = sig[::4]
    k = line.shape[0]
    ref = ReferencePoisson.of(cost).replicas(np.tile(line, (12, 1, 1)), np.repeat(d, k, axis=0),
                                             np.repeat(c, k, axis=0)).reshape(12, k)
    out = cost.replicas_grid(line, d, c)
    assert line[-1].sum() > 1e6 * d.sum(axis=1).max()  # up to a signal far above the data (a -> 0, pull-limited)
    assert np.ptp(ref) > 50
    np.testing.assert_allclose(out, ref, rtol=0, atol=TOL)


def test_chained_rows_and_fractional_counts(csi):
    """Rows that repeat a replica's data (the refinement's samples along a line) start from the previous row's
    solution; data with counts below 1/2 (an Asimov projection; the blind Newton steps are not certified there)
    take line-searched steps.  Both against the reference."""
    cost, sig = csi
    ref = ReferencePoisson.of(cost)
    rng = np.random.default_rng(12)
    _, d, c = replicas(cost, sig, rng, 10, (110, 111))
    s = sig[100:160:4]
    m = s.shape[0]
    rows = np.tile(s, (10, 1, 1)), np.repeat(d, m, axis=0), np.repeat(c, m, axis=0)
    np.testing.assert_allclose(cost.replicas(*rows), ref.replicas(*rows), rtol=0, atol=TOL)
    frac = np.where(rng.random(d.shape) < 0.3, 0.3, d * 0.37)  # many bins at 0.3, none integer
    rows = np.tile(s, (10, 1, 1)), np.repeat(frac, m, axis=0), np.repeat(c, m, axis=0)
    np.testing.assert_allclose(cost.replicas(*rows), ref.replicas(*rows), rtol=0, atol=TOL)


def test_bound_and_free_normalisations():
    """A free normalisation (no pull) driven to its bound a = 0 by data without that component, and a zero-count
    data set: the projected-Newton branch of the kernel, against the reference and a bounded scipy minimisation."""
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
    chi, eta = cost.profile(batch)
    np.testing.assert_allclose(chi, ReferencePoisson.of(cost).profile(batch)[0], rtol=0, atol=TOL)
    assert np.all(eta[:, 2] + 1.0 < 1e-6)  # peak at its bound
    tpl = np.vstack([batch[40].ravel(), bkg["flat"], bkg["peak"]])

    def f(a):
        mu = a @ tpl
        return 2 * np.sum(mu - observed + np.where(observed > 0, observed * np.log(np.maximum(observed, 1) / mu), 0)) + ((a[1] - 1) / 0.1) ** 2

    best = minimize(f, [1.0, 1.0, 0.5], bounds=[(1e-12, None)] * 3, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-10})
    assert chi[40] <= best.fun + 1e-7 and chi[40] >= best.fun - 1e-6
    zero = PoissonChi2("empty", np.zeros(shape), {z: t.reshape(shape) for z, t in bkg.items()},
                       {"cevns": 0.2, "flat": 0.1, "peak": 0.5})
    np.testing.assert_allclose(zero(batch), ReferencePoisson.of(zero)(batch), rtol=0, atol=TOL)


@pytest.mark.parametrize("model", ["B-L", "L_mu-L_tau", "scalar"])
def test_gaussian_grid_equals_the_reference(an, model):
    """LAr: couplings 0 .. 10 (interference zero of L_mu-L_tau, a huge signal), the same chi^2, branch and nuisances."""
    cost = an.cost("lar")
    g = np.concatenate([[0.0], default_couplings()])
    sig = an.templates(model, [0.0], "lar").counts(g, 0)
    chi, th, br = cost.profile(sig)
    chi_ref, th_ref, br_ref = ReferenceGaussian.of(cost).profile(sig)
    np.testing.assert_allclose(chi, chi_ref, rtol=0, atol=GAUSS_TOL)
    assert np.array_equal(br, br_ref)
    np.testing.assert_allclose(th[:200], th_ref[:200], rtol=0, atol=1e-10)  # g <= 3e-4: every parameter determined


def test_gaussian_replicas_with_random_centres(an):
    cost = an.cost("lar")
    g = np.concatenate([[0.0], default_couplings()])
    sig = an.templates("B-L", [0.0], "lar").counts(g, 0)
    s, d, c = replicas(cost, sig, np.random.default_rng(8), 400, (80, 200))
    np.testing.assert_allclose(cost.replicas(s, d, c), ReferenceGaussian.of(cost).replicas(s, d, c), rtol=0,
                               atol=GAUSS_TOL)


def test_gaussian_replica_lines_equal_the_reference(an):
    """LAr ``replicas_grid`` (the template-side factors once, then replica by replica in the kernel) against the
    reference's matrix form and against ``replicas`` of every pair (the per-row profile), couplings 0 .. 10."""
    cost = an.cost("lar")
    g = np.concatenate([[0.0], default_couplings()])[::3]
    sig = an.templates("L_mu-L_tau", [0.0], "lar").counts(g, 0)
    _, d, c = replicas(cost, sig, np.random.default_rng(9), 30, (60, 61))
    out = cost.replicas_grid(sig, d, c, factors=cost.grid_factors(sig))
    np.testing.assert_allclose(out, ReferenceGaussian.of(cost).replicas_grid(sig, d, c), rtol=0, atol=GAUSS_TOL)
    k = sig.shape[0]
    pairs = cost.replicas(np.tile(sig, (30, 1, 1)), np.repeat(d, k, axis=0), np.repeat(c, k, axis=0)).reshape(30, k)
    np.testing.assert_allclose(out, pairs, rtol=0, atol=GAUSS_TOL)
    assert np.ptp(out) > 100


@pytest.mark.parametrize("model", ["B-L", "L_mu-L_tau", "scalar"])
def test_gaussian_signals_linear_in_a_basis(an, model):
    """LAr profiled from the basis products (``profile_linear``, ``profile_lines``, ``replicas_linear``: the signal
    rows of the Gram matrix and, on the observed data, the right-hand side from N0, N1, N2 once per line, chi^2 from
    the normal equations) against the reference profile of the signals themselves: couplings 0 .. 10 at M = 0 and
    10 MeV (measured max |Delta chi^2| 9e-14)."""
    cost = an.cost("lar")
    ref = ReferenceGaussian.of(cost)
    g = np.concatenate([[0.0], default_couplings()])
    tpl = an.templates(model, [0.0, 10.0], "lar")
    coef = tpl.coefficients(g)
    lines = cost.profile_lines(coef, tpl.bases(0, 2))[0]  # both masses in one pass, chi^2 from normal equations
    for i in (0, 1):
        np.testing.assert_allclose(cost.profile_linear(coef, tpl.basis(i))[0], ref(tpl.counts(g, i)), rtol=0,
                                   atol=GAUSS_TOL)
        np.testing.assert_allclose(lines[i], ref(tpl.counts(g, i)), rtol=0, atol=GAUSS_TOL)
    # a fixed signal normalisation: the residual depends on the signal, the rows take the residual path
    fixed = cost.fix({"norm_cevns": 0.1})
    np.testing.assert_allclose(fixed.profile_lines(coef, tpl.bases(0, 2))[0][1],
                               fixed(tpl.counts(g, 1)),
                               rtol=1e-13, atol=GAUSS_TOL)
    s, d, c = replicas(cost, tpl.counts(g, 0), np.random.default_rng(10), 200, (60, 200))
    rows = np.random.default_rng(1).integers(60, 200, 200)
    out = cost.replicas_linear(coef[rows], tpl.basis(0), d, c)
    np.testing.assert_allclose(out, ref.replicas(tpl.counts(g[rows], 0), d, c), rtol=0, atol=GAUSS_TOL)


def test_gaussian_lines_of_one_branch_equal_the_reference():
    """Without two-sided systematics ``profile_lines`` eliminates the background columns once per basis
    (``GaussianChi2.quadratic``): against the reference profile of the signals formed in full, for two
    signal columns (a one-sided signal shape systematic), a free background, one with a prior and a one-sided
    background shape systematic; then with pull centres moved (against the kernel's residual chi^2 of each signal,
    the reference knows centres at 0 only), with every background fixed, and with no background at all."""
    from cevnsfit.stats.chi2 import GaussianChi2

    rng = np.random.default_rng(31)
    nb = 40
    x = np.linspace(0.0, 1.0, nb)
    bkg = {"flat": np.full(nb, 30.0), "slope": 200.0 * np.exp(-3.0 * x)}
    deltas = {"sig_shape": ("cevns", 0.2 * (x - 0.5), None), "bkg_shape": ("slope", 0.1 * x, None)}
    basis = np.stack([50.0 * np.exp(-5.0 * x), 80.0 * np.exp(-2.0 * x) * (1 + x), 20.0 * x ** 2])
    obs = basis[0] + bkg["flat"] + bkg["slope"] + rng.normal(0.0, 6.0, nb)
    cost = GaussianChi2("toy", obs, bkg, {"cevns": 0.1, "flat": None, "slope": 0.25}, np.full(nb, 6.0), deltas)
    assert cost._n_sig == 2 and not cost._e.size  # two signal columns, one branch: the path under test
    coef = np.column_stack([np.ones(60), np.linspace(-1.0, 3.0, 60), np.geomspace(1e-3, 300.0, 60)])
    bases = np.stack([basis, basis * (1.0 + 0.3 * x)])
    lines = cost.profile_lines(coef, bases)[0]
    ref = ReferenceGaussian.of(cost)
    for r in (0, 1):
        np.testing.assert_allclose(lines[r], ref(coef @ bases[r]), rtol=1e-12, atol=GAUSS_TOL)
    assert np.ptp(lines) > 100  # signals from near the data to far beyond it
    moved = GaussianChi2("toy", obs, bkg, {"cevns": 0.1, "flat": None, "slope": 0.25}, np.full(nb, 6.0), deltas,
                         centres={"norm_cevns": 0.05, "norm_slope": -0.1, "shape_bkg_shape": 0.7})
    np.testing.assert_allclose(moved.profile_lines(coef, bases)[0][1], moved.profile(coef @ bases[1])[0], rtol=1e-12,
                               atol=GAUSS_TOL)
    only_signal = cost.fix({"norm_flat": 0.0, "norm_slope": 0.1, "shape_bkg_shape": -0.5})
    np.testing.assert_allclose(only_signal.profile_lines(coef, bases)[0][0], only_signal.profile(coef @ bases[0])[0],
                               rtol=1e-12, atol=GAUSS_TOL)
    bare = GaussianChi2("bare", obs - bkg["flat"], {}, {"cevns": None}, np.full(nb, 6.0), {})
    np.testing.assert_allclose(bare.profile_lines(coef, bases)[0][0], bare.profile(coef @ bases[0])[0], rtol=1e-12,
                               atol=GAUSS_TOL)


def test_morphed_grid_equals_the_reference(an):
    """XENONnT's morphed cost: B-L couplings 0 .. 10 (the signal from nothing to ~1e9 x the data), cold and warm
    started (the next mass from the previous row's parameters, as a scan does); measured max |Delta chi^2| 3e-13."""
    cost = an.cost("xenonnt")
    ref = ReferenceMorphed.of(cost)
    g = np.concatenate([[0.0], default_couplings()])[::2]
    tpl = an.templates("B-L", [0.0, 30.0], "xenonnt").mapped(cost.reduce)
    sig0, sig1 = tpl.counts(g, 0), tpl.counts(g, 1)
    (chi, p, _), (chi_ref, p_ref, _) = cost.profile(sig0), ref.profile(sig0)
    np.testing.assert_allclose(chi, chi_ref, rtol=0, atol=GAUSS_TOL)
    np.testing.assert_allclose(p[:100], p_ref[:100], rtol=0, atol=1e-8)
    np.testing.assert_allclose(cost.profile(sig1, p_ref)[0], ref.profile(sig1, p_ref)[0], rtol=0, atol=GAUSS_TOL)


def test_morphed_signals_linear_in_a_basis(an):
    """XENONnT profiled from the basis (``profile_linear``: each row's signal formed in the kernel from N0, N1, N2)
    against the reference profile of the signals themselves, cold and warm started; measured max |Delta chi^2|
    3e-13."""
    cost = an.cost("xenonnt")
    ref = ReferenceMorphed.of(cost)
    g = np.concatenate([[0.0], default_couplings()])[::2]
    tpl = an.templates("L_mu-L_tau", [0.0, 30.0], "xenonnt").mapped(cost.reduce)
    coef = tpl.coefficients(g)
    ref0, p_ref = ref.profile_warm(tpl.counts(g, 0))
    ref1, _ = ref.profile_warm(tpl.counts(g, 1), p_ref)
    chi0, p0 = cost.profile_linear(coef, tpl.basis(0))
    chi1, _ = cost.profile_linear(coef, tpl.basis(1), p0)
    np.testing.assert_allclose(chi0, ref0, rtol=0, atol=GAUSS_TOL)
    np.testing.assert_allclose(chi1, ref1, rtol=0, atol=GAUSS_TOL)


def test_morphed_lines_from_extrapolated_starts(an):
    """XENONnT's lines at neighbouring masses (``profile_lines``: each line started from the linear extrapolation of
    the two fits before it, Newton stopped after a whole step from a decrement < 1e3 tol without checking it) against
    the reference profile of each line's signals started cold and converged to chi^2's resolution: every chi^2 lies
    above the minimum by no more than the tolerance, 1e-9 (measured <= 8.7e-10, 8.0e-10 before either change)."""
    cost = an.cost("xenonnt")
    ref = ReferenceMorphed.of(cost)
    ref.tol = 1e-13
    g = np.concatenate([[0.0], default_couplings()])[::6]
    masses = default_masses()[40:46]  # interference dips move across these couplings as M grows
    tpl = an.templates("B-L", masses, "xenonnt").mapped(cost.reduce)
    lines, _ = cost.profile_lines(tpl.coefficients(g), tpl.bases(0, masses.size))
    for i in range(masses.size):
        best = ref.profile(tpl.counts(g, i))[0]
        above = lines[i] - best
        # below the reference only by its own stopping floor, 1e-13 chi^2 (the resolution of chi^2 itself), and
        # rounding (measured down to -0.97e-13 chi^2)
        assert np.all(above >= -2e-13 * best) and np.all(above <= cost.tol), (i, above.min(), above.max())


def test_a_morphed_start_is_extrapolated_within_its_bounds(an):
    """The warm start of a line: 2 last - before, except a factor the extrapolation would more than halve (it keeps
    its last value) and a shape nuisance beyond the grid (clamped to it); the first two lines start cold and from
    the last fit."""
    cost = an.cost("xenonnt")
    nc = len(cost.components)
    before = np.full((3, nc + 2), 1.0)
    last = np.full((3, nc + 2), 1.2)
    before[1, 0], last[1, 0] = 2.0, 1.0  # 2 last - before = 0 < last / 2: keeps 1.0
    before[2, 1], last[2, 1] = 1.4, 1.0  # 0.6 >= 0.5: extrapolated
    before[2, nc], last[2, nc] = -1.0, 2.5  # 6.0 beyond the grid's +3
    before[1, nc + 1], last[1, nc + 1] = 0.5, -2.0  # -4.5 below -3
    guess = cost._next_start(before, last)
    expected = np.full((3, nc + 2), 1.4)
    expected[1, 0], expected[2, 1], expected[2, nc], expected[1, nc + 1] = 1.0, 0.6, 3.0, -3.0
    np.testing.assert_allclose(guess, expected, rtol=0, atol=1e-15)
    assert cost._next_start(None, last) is last and cost._next_start(None, None) is None


@pytest.mark.parametrize("name, kernel, entry", [("csi", "poisson", "poisson_profile"),
                                                 ("lar", "gaussian", "gaussian_profile"),
                                                 ("xenonnt", "morph", "morphed_profile")])
def test_single_points_are_profiled_by_the_kernels(an, name, kernel, entry, monkeypatch):
    """One template goes through the same kernel as a batch (there is no other path), and equals the batch's row
    and the reference to the kernels' tolerance."""
    import importlib

    # the kernels as the cost classes call them (their ``Kernels`` keeps each entry point once it is asked for)
    kernels = importlib.import_module(f"cevnsfit.stats.{ {'morph': 'morphing'}.get(kernel, kernel) }").KERNELS
    calls = []
    real = getattr(kernels, entry)
    assert real is getattr(importlib.import_module(f"cevnsfit.stats.kernels.{kernel}"), entry)
    monkeypatch.setattr(kernels, entry, lambda *a: calls.append(1) or real(*a))
    cost = an.experiment(name).cost()
    counts = an.templates("B-L", [0.0], name).counts(np.array([3e-5, 1e-4]), 0)
    value = cost(counts[0])
    assert calls == [1]
    assert value == pytest.approx(cost(counts)[0], abs=TOL)
    ref = {"csi": ReferencePoisson, "lar": ReferenceGaussian, "xenonnt": ReferenceMorphed}[name].of(cost)
    assert value == pytest.approx(ref(counts[0]), abs=TOL)


def test_loaded_kernels_are_cached_and_load_reports_nothing():
    """After ``load`` every kernel is in numba's cache (``kernels_cached``), and a second ``load`` neither compiles
    nor tells its caller anything."""
    compiled.load()
    assert compiled.kernels_cached()
    told = []
    assert compiled.load(told.append) is False and told == []


@pytest.mark.slow  # compiles every kernel in a fresh numba cache (~30-60 s on 2 cores)
def test_first_run_compiles_once_with_one_progress_line(tmp_path):
    """With an empty numba cache (a fresh install): ``kernels_cached`` is False, ``load`` tells its progress
    callback one line and compiles; the next process finds the cache and tells nothing."""
    code = ("from cevnsfit.stats import compiled; told = []; before = compiled.kernels_cached(); "
            "did = compiled.load(told.append); print(before, did, compiled.kernels_cached(), told)")
    env = {"NUMBA_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == f"False True True ['{compiled.PROGRESS_MESSAGE}']"
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert second.stdout.strip() == "True False True []"


def test_vectorised_logarithm_against_libm():
    """The kernels' sum of D ln mu (``kernels.common._log_dot``: a logarithm that vectorises) against math.log, bin
    by bin over the whole double range the deviance meets (mu clamped at 1e-300 as there), and on a data-like sum."""
    import math

    rng = np.random.default_rng(3)
    x = np.concatenate([np.exp(rng.uniform(-700, 700, 5000)), rng.uniform(0.5, 2.0, 5000), 1.0 + rng.normal(0, 1e-9, 500),
                        [1e-320, 0.0, 1e-300, 2.0, np.sqrt(0.5), np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2), 1e300]])
    scratch, one = np.empty((2, 1)), np.ones(1)
    for v in x:
        ref = math.log(max(v, 1e-300))
        assert kernels_common._log_dot(one, np.array([v]), scratch) == pytest.approx(ref, rel=5e-16, abs=1e-300)
    mu = rng.uniform(0.05, 80.0, 99)
    d = rng.poisson(mu).astype(float)
    ref = sum(di * math.log(m) for di, m in zip(d, mu))
    assert kernels_common._log_dot(d, mu, np.empty((2, 99))) == pytest.approx(ref, rel=1e-14)


def test_small_solver_against_lapack():
    """The morphed profile's 6 x 6 solve (``kernels.common._solve_lu``: partial pivoting, no allocation) against
    ``np.linalg.solve`` on definite, indefinite and badly scaled matrices, and one that needs a row swap."""
    rng = np.random.default_rng(5)
    work, out = np.empty((6, 7)), np.empty(6)
    for kind in range(60):
        a = rng.normal(size=(6, 6))
        h = a @ a.T + 1e-3 * np.eye(6) if kind % 3 == 0 else a + a.T  # definite / indefinite
        if kind % 3 == 2:
            s = 10.0 ** rng.uniform(-6, 6, 6)
            h = h * s[:, None] * s[None, :]
        g = rng.normal(size=6)
        kernels_common._solve_lu(h, g, work, out)
        ref = -np.linalg.solve(h, g)
        cond = np.linalg.cond(h)
        assert np.allclose(out, ref, rtol=1e-14 * cond, atol=0), (kind, cond)
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])  # a zero first pivot: only partial pivoting solves it
    kernels_common._solve_lu(swap, np.array([2.0, 3.0]), np.empty((2, 3)), out2 := np.empty(2))
    assert out2.tolist() == [-3.0, -2.0]


def test_cell_polynomials_against_the_cardinal_spline_weights():
    """The morphed kernel's evaluation from each cell's power-basis coefficients (``_cell_poly``, ``_poly_morph``)
    against the cardinal-spline weights (GridMorph.weights) for T and its five derivatives, inside the cells, on
    the nodes (from either neighbouring cell) and clamped outside the grid."""
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
        kx, t = kernels_morph._cell(nodes, x)
        ky, u = kernels_morph._cell(nodes, y)
        kernels_morph._cell_poly(tg, 7, morph.x._c, morph.y._c, kx, ky, tmp, coef)
        kernels_morph._poly_morph(coef, t, u, 0, m)
        ref = morph.weights(np.clip(x, -3, 3), np.clip(y, -3, 3))[0] @ tg  # (6, bins)
        np.testing.assert_allclose(m[:, 0], ref, rtol=1e-12, atol=1e-12 * np.abs(tg).max())
    # a node reached from the cell on its left (t = 1) gives what the cell on its right (t = 0) gives: C2 splines
    kernels_morph._cell_poly(tg, 7, morph.x._c, morph.y._c, 1, 4, tmp, coef)
    kernels_morph._poly_morph(coef, 1.0, 0.25, 0, m)
    np.testing.assert_allclose(m[:, 0], morph.weights(-1.0, 1.25)[0] @ tg, rtol=1e-12, atol=1e-12 * np.abs(tg).max())


def test_a_compilation_is_announced_once(monkeypatch):
    """`cevnsfit` says on stderr that a first run compiles the kernels (compiled.announce_with): load() calls the
    announcer when the cache is cold, and only then."""
    from cevnsfit.stats import compiled

    said = []
    monkeypatch.setattr(compiled, "_READY", False)
    monkeypatch.setattr(compiled, "_ANNOUNCE", said.append)
    monkeypatch.setattr(compiled, "kernels_cached", lambda: False)
    assert compiled.load() is True
    assert said == [compiled.PROGRESS_MESSAGE]
    assert compiled.load() is False and len(said) == 1  # ready: nothing to say
    monkeypatch.setattr(compiled, "_READY", False)
    monkeypatch.setattr(compiled, "kernels_cached", lambda: True)
    assert compiled.load() is False and len(said) == 1


def test_lines_of_a_cost_without_a_signal_column(an):
    """Dresden-II with its signal normalisation fixed has no signal column left (no signal-shape systematic): its
    lines take the residual path and equal the cost of each signal formed in full."""
    cost = an.cost("dresden2").fix({"norm_cevns": 0.025})
    tpl = an.templates("B-L", [0.0, 10.0], "dresden2").mapped(cost.reduce)
    g = np.concatenate([[0.0], np.geomspace(1e-6, 1e-3, 6)])
    lines = cost.profile_lines(tpl.coefficients(g), tpl.bases(0, 2))[0]
    for i in (0, 1):
        np.testing.assert_allclose(lines[i], [cost(s) for s in tpl.counts(g, i)], rtol=1e-12)
    line = cost.line(tpl.basis(1))  # no closed form either: each member's own line, then the grid's minimum
    np.testing.assert_allclose([line(tpl.coefficients(x))[0] for x in g], lines[1], rtol=1e-12)


@pytest.mark.parametrize("name", ["csi", "lar", "xenonnt", "dresden2"])
def test_a_cost_on_one_basis_is_its_profile_of_each_signal(an, name):
    """``cost.line(basis)`` -- what a limit's refinement along a line calls, ~20 times per line and data set: the
    closed form of the Gaussian one-branch costs (Dresden-II's 31 members evaluated together), else the profile of
    the coefficients -- against the cost of each signal formed in full (the profile from the residuals), B-L at M = 0
    from g = 0 to beyond the limits."""
    cost = an.cost(name)
    tpl = an.templates("B-L", [0.0], name)
    g = np.concatenate([[0.0], np.geomspace(1e-6, 1e-3, 9)])
    line = cost.line(cost.reduce(tpl.basis(0)))
    got = np.array([line(tpl.coefficients(x))[0] for x in g])
    direct = np.array([cost(tpl.counts(x, 0)) for x in g])
    np.testing.assert_allclose(got, direct, rtol=1e-12, atol=TOL)
    assert np.ptp(direct) > 10


def test_stacked_closed_forms_equal_each_member(an):
    """``QuadraticProfile.stack`` (the members of a grid-profiled cost as one array) evaluates as each member on its
    own, and refuses to stack -- None, so each member is evaluated alone -- when one member has no closed form or the
    members' signal priors differ."""
    from cevnsfit.stats.quadratic import QuadraticProfile

    cost = an.cost("dresden2")
    tpl = an.templates("B-L", [0.0, 10.0], "dresden2")
    bases = tpl.bases(0, 2)
    coef = tpl.coefficients(np.geomspace(1e-6, 1e-3, 7))
    forms = [m.quadratic(bases) for m in cost.costs]
    stacked = QuadraticProfile.stack(forms)
    np.testing.assert_allclose(stacked(coef), np.stack([f(coef) for f in forms]), rtol=1e-13, atol=0)
    assert QuadraticProfile.stack(forms[:3] + [None]) is None and QuadraticProfile.stack([]) is None
    other = cost.costs[0].fix({"norm_constant": 0.0}).quadratic(bases)  # same signal prior: stacks
    assert QuadraticProfile.stack([forms[0], other]) is not None
    wider = cost.costs[0]
    moved = type(wider)("m", wider.observed, {z: wider.backgrounds[i] for i, z in enumerate(wider.components[1:])},
                        {"cevns": 0.2, **{z: None for z in wider.components[1:]}}, wider.sigma, {})
    assert QuadraticProfile.stack([forms[0], moved.quadratic(bases)]) is None  # another signal prior
    centred = type(wider)("c", wider.observed, {z: wider.backgrounds[i] for i, z in enumerate(wider.components[1:])},
                          {"cevns": 0.05, **{z: None for z in wider.components[1:]}}, wider.sigma, {},
                          centres={"norm_cevns": 0.1})
    assert np.array_equal(centred.quadratic(bases).prior, forms[0].prior)
    assert QuadraticProfile.stack([forms[0], centred.quadratic(bases)]) is None  # the same width, another centre
    one = QuadraticProfile.stack(forms[:1])
    np.testing.assert_array_equal(one(coef)[0], forms[0](coef))
    with pytest.raises(AttributeError):  # a form is a value: frozen
        one.const = forms[1].const
    assert an.cost("lar").quadratic(an.templates("B-L", [0.0], "lar").bases(0, 1)) is None  # two-sided: branches


def test_kernels_load_once_while_threads_wait(monkeypatch):
    """``compiled.load`` from several threads at once (the grid threads of `cevnsfit limits` ask for the kernels
    while one of them loads them): one load, and no thread goes on before it is done."""
    import threading
    import time

    from cevnsfit.stats import compiled

    loads, after = [], []
    monkeypatch.setattr(compiled, "_READY", False)
    monkeypatch.setattr(compiled, "kernels_cached", lambda: True)

    def slow_warm_up():
        loads.append(time.perf_counter())
        time.sleep(0.2)

    monkeypatch.setattr(compiled, "_warm_up", slow_warm_up)

    def ask():
        compiled.load()
        after.append(time.perf_counter())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(after) == 4
    assert min(after) >= loads[0] + 0.2
