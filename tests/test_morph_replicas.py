"""The replica (toy) path of MorphedPoissonChi2: a replica's chi^2 is the chi^2 of a fresh cost built with that
replica's data and pull centres -- whatever bins the replicas leave empty (the observed data's empty-bin merge does
not apply to them: a batch is compressed on the bins empty in all its rows) -- and a seeded toy line runs.

Tolerance 1e-9: the same Newton from the same start, on bins merged differently (sums reordered), ends within the
rounding of chi^2 (measured ~1e-12) unless the stopping rule falls on the other side of its 1e-9 decrement."""

import numpy as np
import pytest

from cevnsfit.experiments.xenonnt import GRID
from cevnsfit.stats.morphing import MorphedPoissonChi2
from cevnsfit.stats.toys import Line, LineMember, block_rng

TOL = 1e-9


def _toy():
    """20 bins on the 7 x 7 grid: a signal and a background whose shapes move with (x, y), a fixed background, and
    observed counts with empty bins."""
    rng = np.random.default_rng(11)
    x, y = np.repeat(GRID, 7), np.tile(GRID, 7)
    shape = np.exp(-0.5 * ((np.arange(20)[None, :] - 8 - 1.5 * x[:, None]) / (3 + 0.3 * y[:, None])) ** 2)
    sig = 3.0 * shape
    bkg = {"b": 0.4 + 0.2 * np.abs(shape[::-1]) * (1 + 0.1 * x[:, None]), "f": np.full(20, 0.2)}
    observed = rng.poisson(sig[24] + bkg["b"][24] + bkg["f"]).astype(float)
    observed[[0, 1, 17, 18, 19]] = 0.0
    sigmas = {"cevns": 0.1, "b": 0.3, "f": None}
    return MorphedPoissonChi2("toy", observed, bkg, sigmas, (GRID, GRID), ("tly", "tqy")), sig, bkg, sigmas


def _fresh(cost, bkg, sigmas, data, centres):
    """A new cost of that replica: its data, its pull centres (shifts of the cost's, in the units of pull_sigmas)."""
    return MorphedPoissonChi2("fresh", data, bkg, sigmas, (GRID, GRID), ("tly", "tqy"),
                              centres={k: float(c) for k, c, w in zip(cost.parameters, centres, cost.pull_sigmas)
                                       if np.isfinite(w)})


def test_replica_contract_of_the_morphed_cost():
    cost, sig, _, _ = _toy()
    assert cost.pull_sigmas.tolist() == [0.1, 0.3, np.inf, 1.0, 1.0]  # free: no centre; tly, tqy: unit Gaussians
    expected, theta = cost.expected(sig)
    fit = cost.fit(sig)
    assert theta.tolist() == list(fit.nuisances.values()) and expected.shape == (20,)
    np.testing.assert_allclose(expected, sum(fit.fitted.values()), rtol=1e-15)
    # nominal: every parameter at its centre, (tly, tqy) = (0, 0) is grid node 24
    np.testing.assert_allclose(cost.nominal(sig), sig[24] + cost.background_templates["b"][24] + 0.2, rtol=1e-12)
    d = cost.sample(expected, np.random.default_rng(1), 5000)
    assert d.shape == (5000, 20) and np.all(d == np.round(d))
    assert np.all(np.abs(d.mean(axis=0) - expected) < 5 * np.sqrt(expected / 5000) + 1e-12)


def test_a_replica_is_a_fresh_cost_with_its_data_and_centres():
    cost, sig, bkg, sigmas = _toy()
    rng = np.random.default_rng(5)
    n = 12
    expected, _ = cost.expected(sig)
    data = cost.sample(expected, rng, n)
    data[:4, :6] = 0.0  # bins empty in some rows only
    widths = np.where(np.isfinite(cost.pull_sigmas), cost.pull_sigmas, 0.0)
    centres = rng.standard_normal((n, widths.size)) * widths
    scales = np.geomspace(0.05, 20.0, n)
    signals = scales[:, None, None] * sig[None]
    got = cost.replicas(signals, data, centres)
    want = [_fresh(cost, bkg, sigmas, data[i], centres[i])(signals[i]) for i in range(n)]
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    # the grid of every replica at every template, and signals formed from a basis, give the same numbers
    line = scales[::3, None, None] * sig[None]
    grid = cost.replicas_grid(line, data, centres)
    want_grid = [[_fresh(cost, bkg, sigmas, data[i], centres[i])(line[j]) for j in range(line.shape[0])] for i in range(n)]
    np.testing.assert_allclose(grid, want_grid, rtol=0, atol=TOL)
    basis = np.stack([sig, 0.3 * sig[::-1]])
    coef = np.column_stack([scales, np.sqrt(scales)])
    linear = cost.replicas_linear(coef, basis, data, centres, cost.linear_factors(basis))
    want_linear = [_fresh(cost, bkg, sigmas, data[i], centres[i])(np.tensordot(coef[i], basis, 1)) for i in range(n)]
    np.testing.assert_allclose(linear, want_linear, rtol=0, atol=TOL)


def test_replicas_of_the_observed_data_are_the_chi2():
    cost, sig, _, _ = _toy()
    signals = np.geomspace(0.1, 10.0, 6)[:, None, None] * sig[None]
    obs = np.broadcast_to(cost.observed, (6, cost.n_bins))
    np.testing.assert_allclose(cost.replicas(signals, obs), cost(signals), rtol=0, atol=TOL)


def test_a_seeded_toy_line_runs():
    cost, sig, _, _ = _toy()
    member = LineMember.linear(cost, lambda g: np.column_stack([np.ones_like(g), g**2]), np.stack([sig, sig]))
    line = Line([member], np.concatenate([[0.0], np.geomspace(0.05, 3.0, 12)]))
    t1 = line.statistic(line.grid[6], block_rng(3, ("toy", 6)), 20)
    t2 = line.statistic(line.grid[6], block_rng(3, ("toy", 6)), 20)
    assert np.array_equal(t1, t2) and np.all(t1 >= 0) and np.any(t1 > 0.05)
    reps = line.throw(line.grid[6], block_rng(3, ("toy", 6)), 20)
    assert np.std(reps[0].centres[:, 3]) == pytest.approx(1.0, rel=0.5) and np.all(reps[0].centres[:, 2] == 0)


@pytest.mark.slow  # the XENONnT release, its kernel and templates
def test_xenonnt_replicas_are_fresh_costs(xenonnt_cache, monkeypatch):
    """The same on XENONnT's data set (243 bins, 53 of them with events): replicas thrown at a B-L coupling near its
    limit, pull centres randomised, against fresh costs of their data."""
    monkeypatch.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))
    from cevnsfit.mediators import MediatorAnalysis

    an = MediatorAnalysis()
    xe = an.experiment("xenonnt")
    cost = an.cost("xenonnt")
    tpl = an.templates("B-L", [0.0], "xenonnt")
    g = np.geomspace(1e-5, 1e-4, 8)
    signals = tpl.counts(g, 0)
    rng = np.random.default_rng(2)
    expected, theta = cost.expected(signals[3])
    data = cost.sample(expected, rng, 8)
    widths = np.where(np.isfinite(cost.pull_sigmas), cost.pull_sigmas, 0.0)
    centres = theta * (widths > 0) + rng.standard_normal((8, widths.size)) * widths
    got = cost.replicas(signals, data, centres)
    sigmas = xe.sigmas
    for i in range(8):
        fresh = MorphedPoissonChi2("fresh", data[i], xe.backgrounds, sigmas, (GRID, GRID), ("tly", "tqy"),
                                   centres=dict(zip(cost.parameters, centres[i])))
        assert got[i] == pytest.approx(fresh(signals[i]), abs=TOL)
