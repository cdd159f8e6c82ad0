"""Statistics: profiled costs against an independent iminuit minimisation; batching; adding costs."""

import itertools

import numpy as np
import pytest
from iminuit import Minuit

from cevnsfit.errors import InputError
from cevnsfit.stats.chi2 import PoissonChi2, SumCost


def _poisson_direct(cost, signal, eta):
    mu = (1 + eta[0]) * signal + sum((1 + eta[i + 1]) * b.reshape(signal.shape) for i, b in enumerate(cost.backgrounds))
    d = cost.observed
    dev = 2 * np.sum(mu - d + np.where(d > 0, d * np.log(np.where(d > 0, d, 1) / mu), 0))
    inv_var = np.array([0.0 if s is None else 1.0 / s**2 for _, s in cost.priors.values()])
    return dev + np.sum(np.asarray(eta) ** 2 * inv_var)


def test_poisson_profile_matches_minuit(csi):
    cost = csi.cost()
    signal = csi.kernel.sm_counts() * 1.3
    m = Minuit(lambda a, b, c, d: _poisson_direct(cost, signal, np.array([a, b, c, d])), 0, 0, 0, 0)
    m.errordef = 1
    m.strategy = 2
    m.tol = 1e-7
    m.migrad()
    m.migrad()
    # Newton converges tighter than MIGRAD: never worse, and within MIGRAD's own precision
    assert m.fval - 1e-5 <= cost(signal) <= m.fval + 1e-9
    fit = cost.fit(signal)
    assert fit.nuisances["norm_cevns"] == pytest.approx(m.values["a"], abs=1e-4)


def test_poisson_empty_bins_and_positivity():
    obs = np.array([[0.0, 3.0], [5.0, 1.0]])
    cost = PoissonChi2("toy", obs, {"bkg": np.full((2, 2), 0.5)}, {"cevns": 0.1, "bkg": 0.2})
    # hand computation at a tiny signal: empty bin contributes 2 N
    chi = cost(np.full((2, 2), 1e-9))
    assert np.isfinite(chi) and chi > 0
    m = Minuit(lambda a, b: _poisson_direct(cost, np.full((2, 2), 1e-9), np.array([a, b])), 0, 0)
    m.limits = [(-0.99, None), (-0.99, None)]
    m.tol = 1e-7
    m.migrad()
    m.migrad()
    assert m.fval - 1e-5 <= chi <= m.fval + 1e-9


def _gauss_direct(cost, signal, theta):
    nz = len(cost.components)
    eta, eps = theta[:nz], theta[nz:]
    tpl = [signal.ravel()] + list(cost.backgrounds)
    pred = sum((1 + eta[i]) * tpl[i] for i in range(nz))
    for l, comp in enumerate(cost.sys_component):
        if cost.two_sided[l]:
            d = eps[l] * cost.delta_plus[l] if eps[l] >= 0 else abs(eps[l]) * cost.delta_minus[l]
        else:
            d = eps[l] * cost.delta_plus[l]
        pred = pred + d * tpl[comp]
    return np.sum((cost.observed.ravel() - pred) ** 2 * cost.w) + np.sum(theta**2 * cost.prior)


def test_gaussian_profile_is_exact(lar):
    cost = lar.cost()
    signal = lar.kernel.sm_counts()
    chi, theta, _ = cost.profile(signal[None])
    assert _gauss_direct(cost, signal, theta[0]) == pytest.approx(chi[0], rel=1e-10, abs=0)
    # no better point nearby (the piecewise-quadratic minimum is global): random restarts of Minuit
    rng = np.random.default_rng(3)
    best = np.inf
    for _ in range(6):
        start = rng.normal(0, 0.5, theta.shape[1])
        m = Minuit(lambda *t: _gauss_direct(cost, signal, np.array(t)), *start, name=[f"p{i}" for i in range(theta.shape[1])])
        m.errordef = 1
        m.migrad(ncall=20000)
        best = min(best, m.fval)
    assert chi[0] <= best + 1e-6


def test_batch_equals_loop_and_sum(csi, lar):
    c, g = csi.cost(), lar.cost()
    scales = np.array([0.0, 0.5, 1.0, 2.0])
    s_c = csi.kernel.sm_counts()
    s_l = lar.kernel.sm_counts()
    batch = c(scales[:, None, None] * s_c)
    loop = [c(k * s_c) for k in scales]
    np.testing.assert_allclose(batch, loop, rtol=1e-10)
    gb = g(scales[:, None, None] * s_l)
    np.testing.assert_allclose(gb, [g(k * s_l) for k in scales], rtol=1e-10)
    total = c + g
    assert isinstance(total, SumCost) and total.n_bins == 219
    assert total({"csi": s_c, "lar": s_l}) == pytest.approx(c(s_c) + g(s_l))
    with pytest.raises(InputError):
        c + c
    with pytest.raises(InputError):
        c(np.ones((3, 3)))


def test_free_signal_normalisation_is_scale_invariant(csi):
    cost = csi.cost(free_signal=True)
    s = csi.kernel.sm_counts()
    assert cost(2.0 * s) == pytest.approx(cost(s), abs=1e-6)


def _gauss_brute_force(cost, signal):
    """Independent profile: every sign branch as its own weighted least-squares problem (lstsq), best admissible."""
    nz, ns = len(cost.components), len(cost.systematics)
    tpl = [signal.ravel()] + list(cost.backgrounds)
    sw = np.sqrt(cost.w)
    resid0 = cost.observed.ravel() - sum(tpl)  # prediction is sum (1 + eta_z) N_z + shape terms
    best = np.inf
    for signs in itertools.product(*[(1, -1, 0) if ts else (2,) for ts in cost.two_sided]):
        cols = [t for t in tpl]
        for l, b in enumerate(signs):
            slope = {1: cost.delta_plus[l], -1: -cost.delta_minus[l], 0: 0.0 * cost.delta_plus[l], 2: cost.delta_plus[l]}[b]
            cols.append(slope * tpl[cost.sys_component[l]])
        x = np.stack(cols, axis=1) * sw[:, None]
        prior = np.sqrt(cost.prior + 1e-300)
        a = np.vstack([x, np.diag(prior)])
        rhs = np.concatenate([resid0 * sw, np.zeros(nz + ns)])
        theta = np.linalg.lstsq(a, rhs, rcond=None)[0]
        eps = theta[nz:]
        if all((b != 1 or e >= -1e-9) and (b != -1 or e <= 1e-9) for b, e in zip(signs, eps)):
            chi = float(np.sum((a @ theta - rhs) ** 2))
            best = min(best, chi)
    return best


@pytest.mark.parametrize("distortion", ["sm", "tilted", "suppressed", "enhanced"])
def test_gaussian_schur_profile_matches_branch_enumeration(lar, distortion):
    """The Schur-complement profile (one elimination, tiny per-branch systems) equals brute-force enumeration."""
    cost = lar.cost()
    s = lar.kernel.sm_counts()
    shape = {
        "sm": 1.0,
        "tilted": np.linspace(0.3, 2.0, s.shape[0])[:, None] * np.linspace(1.5, 0.5, s.shape[1])[None, :],
        "suppressed": 0.05,
        "enhanced": 40.0,
    }[distortion]
    signal = s * shape
    chi, theta, _ = cost.profile(signal[None])
    assert chi[0] == pytest.approx(_gauss_brute_force(cost, signal), rel=1e-9, abs=1e-9)
    assert _gauss_direct(cost, signal, theta[0]) == pytest.approx(chi[0], rel=1e-9, abs=0)


def test_cost_contract_is_enforced_and_sum_of_costs_works(csi, lar):
    import pytest as _pt

    from cevnsfit.stats.chi2 import BinnedCost, Cost

    class Incomplete(Cost):
        pass

    with _pt.raises(TypeError):
        Incomplete()

    class NoProfile(BinnedCost):
        def fit(self, signal):
            return None

    with _pt.raises(TypeError):
        NoProfile()
    signals = {"csi": csi.kernel.sm_counts(), "lar": lar.signal(lar.kernel.sm_counts())}
    c_csi, c_lar = csi.cost(), lar.cost()
    total = sum([c_csi, c_lar])
    assert isinstance(total, SumCost) and total.name == "csi+lar"
    assert total(signals) == c_csi(signals["csi"]) + c_lar(signals["lar"])
    assert sum([c_csi]) is c_csi
    with _pt.raises(TypeError):
        c_csi + 1
