"""Fixed parameters (sigma 0 in the constructors, ``cost.fix``): the parameter is held exactly at its value, the others
are profiled, and the chi^2 keeps the fixed parameters' prior terms -- each against an independent minimisation of
the explicit chi^2 with that parameter held (scipy, least squares per sign branch, the references' chi^2).

Tolerances: the profiles stop at a Newton decrement < 1e-9 (Poisson, morphed) or are exact (Gaussian); the
independent minimisers converge to ~1e-10 here; stated 1e-7 (Poisson, morphed, against L-BFGS-B) and 1e-9
(Gaussian, against exact least squares)."""

import itertools

import numpy as np
import pytest
from reference_costs import ReferenceMorphed
from scipy.optimize import minimize

from cevnsfit.errors import InputError
from cevnsfit.stats.chi2 import GaussianChi2, PoissonChi2
from cevnsfit.stats.morphing import MorphedPoissonChi2

S = np.array([[30.0, 20.0, 10.0], [15.0, 8.0, 4.0]])
B = np.array([[50.0, 52.0, 49.0], [51.0, 48.0, 50.0]])
B2 = np.array([[5.0, 2.0, 1.0], [3.0, 2.0, 0.5]])
OBS = np.array([[82.0, 75.0, 60.0], [70.0, 55.0, 58.0]])
SIGMAS = {"cevns": 0.1, "b": 0.05, "c": 0.3}


def _poisson_minimum(signal, held: dict, sigmas=SIGMAS):
    """min over the other factors of the explicit Poisson chi^2 with factors ``held`` (index -> a) fixed."""
    tpl = [signal, B, B2]
    sig = [sigmas[z] for z in ("cevns", "b", "c")]
    free = [i for i in range(3) if i not in held]

    def chi(q):
        a = np.empty(3)
        a[free] = q
        for i, v in held.items():
            a[i] = v
        mu = sum(a[i] * tpl[i] for i in range(3))
        dev = 2 * np.sum(mu - OBS + OBS * np.log(OBS / mu))
        return dev + sum(((a[i] - 1) / s) ** 2 for i, s in enumerate(sig) if s)

    res = minimize(chi, np.ones(len(free)), method="L-BFGS-B", bounds=[(0, None)] * len(free),
                   options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 20000})
    return res.fun


def test_poisson_sigma_zero_holds_the_factor_at_one():
    cost = PoissonChi2("p", OBS, {"b": B, "c": B2}, {**SIGMAS, "b": 0})
    fit = cost.fit(S * 1.4)
    assert fit.nuisances["norm_b"] == 0.0  # exactly: held, not a huge weight
    assert cost.fixed == {"norm_b": 0.0} and cost.priors["norm_b"] == (0.0, 0.0)
    assert fit.chi2 == pytest.approx(_poisson_minimum(S * 1.4, {1: 1.0}, {**SIGMAS, "b": 0}), abs=1e-7)


@pytest.mark.parametrize("held", [{"norm_cevns": 0.3}, {"norm_c": -0.4, "norm_b": 0.02}, {"norm_cevns": -1.0}])
def test_poisson_fix_keeps_the_prior_terms(held):
    cost = PoissonChi2("p", OBS, {"b": B, "c": B2}, SIGMAS)
    fixed = cost.fix(held)
    assert cost.fixed == {} and fixed.fixed == held  # a new cost; the old one unchanged
    index = {"norm_cevns": 0, "norm_b": 1, "norm_c": 2}
    fit = fixed.fit(S)
    assert all(fit.nuisances[k] == v for k, v in held.items())
    want = _poisson_minimum(S, {index[k]: 1.0 + v for k, v in held.items()})
    assert fit.chi2 == pytest.approx(want, abs=1e-7)
    # the batch, the replica and the grid paths hold it too
    batch = np.stack([S, 2.0 * S])
    np.testing.assert_allclose(fixed(batch), [fit.chi2, fixed(2.0 * S)], rtol=0, atol=1e-9)
    d = OBS.reshape(1, -1)
    np.testing.assert_allclose(fixed.replicas_grid(batch, d), fixed(batch)[None], rtol=0, atol=1e-8)


def test_fixing_every_parameter_gives_the_chi2_at_those_values():
    cost = PoissonChi2("p", OBS, {"b": B, "c": B2}, SIGMAS)
    eta = {"norm_cevns": 0.2, "norm_b": -0.03, "norm_c": 0.5}
    a = np.array([1.2, 0.97, 1.5])
    mu = a[0] * S + a[1] * B + a[2] * B2
    direct = 2 * np.sum(mu - OBS + OBS * np.log(OBS / mu)) + (0.2 / 0.1) ** 2 + (0.03 / 0.05) ** 2 + (0.5 / 0.3) ** 2
    assert cost.fix(eta)(S) == pytest.approx(direct, rel=1e-13)


def test_a_scan_of_a_fixed_parameter_is_its_profile_likelihood(csi):
    """Fixed at its profiled value, the chi^2 is the profiled minimum; elsewhere it is above it."""
    cost = csi.cost()
    signal = csi.kernel.sm_counts()
    fit = cost.fit(signal)
    best = fit.nuisances["norm_brn"]
    assert cost.fix({"norm_brn": best})(signal) == pytest.approx(fit.chi2, abs=1e-8)
    scan = np.array([cost.fix({"norm_brn": best + d})(signal) for d in (-0.2, -0.05, 0.05, 0.2)])
    assert np.all(scan > fit.chi2 + 1e-4)


def test_unknown_names_and_values_out_of_range_are_refused():
    cost = PoissonChi2("p", OBS, {"b": B, "c": B2}, SIGMAS)
    with pytest.raises(InputError, match=r"p: unknown parameter\(s\) eta_b; the parameters are norm_cevns, norm_b, norm_c"):
        cost.fix({"eta_b": 0.1})
    with pytest.raises(InputError, match="a >= 0"):
        cost.fix({"norm_b": -1.5})
    with pytest.raises(InputError, match="finite"):
        cost.fix({"norm_b": np.nan})


# ---- Gaussian ------------------------------------------------------------------------------------------------
def _gaussian_minimum(cost, signal, held: dict) -> float:
    """Exact minimum of the explicit Gaussian chi^2 with the parameters ``held`` (name -> value) fixed: per sign
    branch of the free two-sided systematics a weighted least-squares problem (lstsq) in the free parameters, the
    fixed ones' terms moved to the residual; the best admissible branch."""
    names = cost.parameters
    nz = len(cost.components)
    tpl = [np.asarray(signal, float).ravel(), *cost.backgrounds]
    prior = {k: (0.0 if s in (None, 0) else 1.0 / s**2) for k, (_, s) in cost.priors.items()}
    sw = np.sqrt(cost.w)

    def column(j, sign):
        """d(prediction)/d(theta_j) on the branch ``sign`` (+1, -1, 2: one-sided)."""
        if j < nz:
            return tpl[j]
        l = j - nz
        slope = cost.delta_plus[l] if sign in (1, 2) else -cost.delta_minus[l]
        return slope * tpl[cost.sys_component[l]]

    def shift(j, v):
        """The prediction's change for theta_j = v (fixed)."""
        if j < nz:
            return v * tpl[j]
        l = j - nz
        d = v * cost.delta_plus[l] if v >= 0 or not cost.two_sided[l] else -v * cost.delta_minus[l]
        return d * tpl[cost.sys_component[l]]

    free = [j for j, k in enumerate(names) if k not in held]
    resid0 = cost.observed.ravel() - sum(tpl) - sum(shift(names.index(k), v) for k, v in held.items())
    const = sum(prior[k] * v**2 for k, v in held.items())
    best = np.inf
    two = [j for j in free if j >= nz and cost.two_sided[j - nz]]
    for signs in itertools.product((1, -1, 0), repeat=len(two)):
        sign = dict(zip(two, signs))
        cols = [j for j in free if sign.get(j, 2) != 0]
        x = np.stack([column(j, sign.get(j, 2)) for j in cols], axis=1) * sw[:, None]
        a = np.vstack([x, np.diag(np.sqrt([prior[names[j]] + 1e-300 for j in cols]))])
        rhs = np.concatenate([resid0 * sw, np.zeros(len(cols))])
        theta = np.linalg.lstsq(a, rhs, rcond=None)[0]
        if all(sign.get(j, 2) == 2 or sign[j] * t >= -1e-9 for j, t in zip(cols, theta)):
            best = min(best, float(np.sum((a @ theta - rhs) ** 2)) + const)
    return best


@pytest.mark.parametrize("held", [{"norm_cevns": 0.1}, {"shape_cevns_f90": -0.7}, {"shape_pbrn_energy": 0.4},
                                  {"norm_ss": 0.01, "shape_pbrn_timing_width": -1.2, "norm_cevns": -0.2},
                                  {"shape_cevns_timing_mean": 0.0, "shape_pbrn_timing_mean": -0.3},
                                  # two fixed background normalisations: both shifts must add up on the residual
                                  # (an assignment would keep only the later one)
                                  {"norm_ss": 0.3, "norm_pbrn": -0.2, "norm_dbrn": 0.4}])
def test_gaussian_fix_drops_the_column(lar, held):
    cost = lar.cost()
    signal = lar.kernel.sm_counts() * 1.3
    fixed = cost.fix(held)
    fit = fixed.fit(signal)
    assert all(fit.nuisances[k] == v for k, v in held.items())
    assert fit.chi2 == pytest.approx(_gaussian_minimum(cost, signal, held), rel=1e-9, abs=1e-9)
    # the fitted components reproduce the chi^2 (the fixed terms included)
    mu = sum(fit.fitted[z] for z in cost.components).ravel()
    prior = np.array([0.0 if s in (None, 0) else 1.0 / s**2 for _, s in cost.priors.values()])
    theta = np.array([fit.nuisances[k] for k in cost.parameters])
    assert fit.chi2 == pytest.approx(np.sum(cost.w * (cost.observed.ravel() - mu) ** 2) + prior @ theta**2, rel=1e-9)


def test_gaussian_sigma_zero_and_replica_paths_with_fixed_parameters(lar):
    """sigma 0 on the signal holds it at 1; the grid of replicas (kernel, or every pair when a fixed parameter is
    on the signal) equals the replicas' own profiles."""
    sig = dict(lar.sigmas, cevns=0)
    cost = GaussianChi2("lar", lar.observed, {z: lar.backgrounds[z] for z in lar.components[1:]}, sig,
                        lar.likelihood.stat_sigma(lar), lar.shape_deltas)
    signal = lar.kernel.sm_counts()
    assert cost.fit(signal).nuisances["norm_cevns"] == 0.0
    assert cost(signal) == pytest.approx(_gaussian_minimum(lar.cost(), signal, {"norm_cevns": 0.0}), rel=1e-9)
    rng = np.random.default_rng(4)
    batch = np.stack([signal * f for f in (0.5, 1.0, 1.5)])
    for c in (cost, lar.cost().fix({"norm_pbrn": 0.1, "shape_pbrn_energy": -0.5})):
        d = c.sample(c.nominal(signal), rng, 4)
        centres = rng.normal(size=(4, len(c.parameters))) * np.where(np.isfinite(c.pull_sigmas), c.pull_sigmas, 0)
        pairs = c.replicas(np.tile(batch, (4, 1, 1)), np.repeat(d, 3, axis=0), np.repeat(centres, 3, axis=0))
        np.testing.assert_allclose(c.replicas_grid(batch, d, centres), pairs.reshape(4, 3), rtol=0, atol=1e-9)


# ---- morphed -------------------------------------------------------------------------------------------------
GRID = (np.array([-1.5, -0.5, 0.5, 1.5]), np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
CURVED = np.array([np.array([5.0, 3.0, 2.0, 4.0]) * np.exp(np.array([0.3, -0.2, 0.1, 0.25]) * x
                                                           + np.array([-0.1, 0.2, 0.15, -0.3]) * y)
                   for x in GRID[0] for y in GRID[1]])
BKG = {"bkg": np.array([np.array([2.0, 1.0, 1.0, 0.5]) * (1.0 + 0.1 * x**2 - 0.05 * y) for x in GRID[0] for y in GRID[1]]),
       "flat": np.full(4, 0.5)}


@pytest.mark.parametrize("held", [{"x": 1.2}, {"y": -2.0, "norm_flat": 0.4}, {"norm_cevns": 0.5, "x": -0.3}])
def test_morphed_fix_holds_shape_and_normalisation(held):
    cost = MorphedPoissonChi2("m", np.array([9.0, 5.0, 2.0, 7.0]), BKG, {"cevns": None, "bkg": 0.2, "flat": 0.3}, GRID)
    fixed = cost.fix(held)
    fit = fixed.fit(CURVED)
    assert all(fit.nuisances[k] == v for k, v in held.items())
    ref = ReferenceMorphed.of(cost)
    names = list(cost.parameters)
    start = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    for k, v in held.items():
        start[names.index(k)] = v + (1.0 if k.startswith("norm_") else 0.0)
    free = [i for i, k in enumerate(names) if k not in held]
    box = [(0.0, None)] * 3 + [(-1.5, 1.5), (-2.0, 2.0)]

    def chi2(q):
        p = start.copy()
        p[free] = q
        return float(ref.chi2_at(CURVED, p)[0])

    best = min(minimize(chi2, s[free], method="L-BFGS-B", bounds=[box[i] for i in free],
                        options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10000}).fun
               for s in (start, np.where(np.arange(5) < 3, 1.5, 0.5)))
    assert fit.chi2 == pytest.approx(best, abs=1e-7)
    with pytest.raises(InputError, match=r"x can be fixed within its grid \[-1.5, 1.5\]"):
        cost.fix({"x": 2.0})
