"""Tests written for the survivors of the seeded mutation sample (seed 20, 4 per module; issue 20, item 5;
docs/validation/published_numbers.md, "Mutation score") that sat on lines the modules' fast selections never ran:
each checks a documented property of that branch against an independent computation written here."""

import numpy as np
import pytest
from scipy.stats import gamma

from cevnsfit.errors import InputError
from cevnsfit.experiments.base import sm_table
from cevnsfit.responses.efficiency import LogisticEfficiency
from cevnsfit.responses.energy import pe_response_matrix
from cevnsfit.stats.chi2 import PoissonChi2
from cevnsfit.stats.gridprofile import GridProfiledCost, grid_minimum
from cevnsfit.stats.morphing import MorphedPoissonChi2
from cevnsfit.templates import TemplateBasis

S = np.array([[30.0, 20.0, 10.0], [15.0, 8.0, 4.0]])
B = np.array([[50.0, 52.0, 49.0], [51.0, 48.0, 50.0]])
B2 = np.array([[5.0, 2.0, 1.0], [3.0, 2.0, 0.5]])
OBS = np.array([[82.0, 75.0, 60.0], [70.0, 55.0, 58.0]])
SIGMAS = {"cevns": 0.1, "b": 0.05, "c": 0.3}


# ---- templates.py: the common left factor of a factorised response (XENONnT's FoldedMatrix) -------------------
def test_left_factor_applied_to_the_flavour_sum_equals_per_flavour_folding():
    """With a left factor L shared by every response, the time-binned counts are L applied once per time bin to
    the flavours' time-weighted sum of node counts: by linearity equal to folding each flavour through L first
    (the path without a left factor), counts[m, e, t] = sum_f sum_n L[e, n] x_f[n, m] T_f[t].  (Mutant: the
    transpose's axes -- the selection never built a factorised kernel.)"""
    rng = np.random.default_rng(20)
    flavours = ("nue", "numu", "numubar")
    time = {f: rng.dirichlet(np.ones(4)) for f in flavours}  # 4 time bins, each flavour's fractions
    per_node = rng.uniform(0.0, 2.0, size=(3, 6, 5))  # (flavour, node, mass)
    left = rng.uniform(0.0, 1.0, size=(7, 6))  # (energy row, node)
    basis = TemplateBasis.__new__(TemplateBasis)  # only the attributes _with_time reads
    basis.kernel = type("K", (), {"flavours": flavours, "detector": type("D", (), {"time": time})()})()
    basis._left = left
    got = basis._with_time(per_node)
    want = np.zeros((5, 7, 4))
    for i, f in enumerate(flavours):
        for t in range(4):
            want[:, :, t] += (left @ per_node[i]).T * time[f][t]
    assert got.shape == (5, 7, 4)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    basis._left = None  # the unfactorised path, fed the already-folded rows, gives the same counts
    np.testing.assert_allclose(basis._with_time(np.einsum("en,fnm->fem", left, per_node)), want, rtol=1e-13, atol=0)


# ---- experiments/base.py ---------------------------------------------------------------------------------------
def test_experiment_shape_is_that_of_its_counts(csi, lar):
    """``shape`` = (energy bins, time bins) of the kernel's counts: edges - 1 each (mutant: `size - 1` ->
    `size + 1`; no fast test read the property)."""
    for e in (csi, lar):
        counts = e.kernel.sm_counts()
        assert e.shape == counts.shape
        assert e.shape[0] == e.energy_edges.size - 1


def test_sm_table_states_the_free_signal_strength():
    """With a ``cevns_signal_strength`` entry (``sm_summary`` always writes one) the foot adds the fitted mu, its
    1 sigma interval and the background-only rejection, formatted by hand here (mutant: the key of the best fit;
    test_mutants_core.py's table has no such entry)."""
    summary = {"observed": 121, "chi2_min": 3.14159, "n_bins": 12, "predicted": {"cevns": 100.04, "brn": 20.0},
               "best_fit": {"cevns": 95.0, "brn": 21.26}, "nuisances": {"norm_cevns": -0.05},
               "cevns_signal_strength": {"best_fit": 0.9512, "interval_1sigma": [0.7249, 1.18751],
                                         "significance_sigma": 6.0449, "chi2_background_only": 40.0}}
    foot = sm_table("lar", summary)[3]
    assert foot == ("nuisances: norm_cevns = -0.050\nCEvNS signal strength (free): 0.951 [0.725, 1.188] (1 sigma); "
                    "background only rejected at 6.04 sigma")


# ---- responses/energy.py: the Gamma PE resolution with a light yield other than 1/a ---------------------------
def test_gamma_pe_response_has_the_light_yield_as_mean():
    """pe_response_matrix's PE distribution is Gamma with shape k = 1 + b E and mean light_yield * E (docstring):
    where light_yield != 1/a the scale is rescaled to theta = light_yield E / k.  With an efficiency of 1 (a
    logistic far below the bins) each bin's probability is the Gamma CDF difference (scipy), exactly.  (Mutant:
    the rescaled theta -> None; every experiment's light yield is 1/a, so the selection never took the branch.)"""
    e = np.array([3.0, 8.0, 20.0])  # keVee
    a, b, light_yield = 0.0749, 0.05, 20.0  # a * light_yield = 1.5: the rescaled branch
    edges = np.arange(0.0, 6001.0, 10.0)  # to 15 means of the widest (k = 2): the tail beyond is < 1e-10
    eff = LogisticEfficiency(1.0, 50.0, -10.0)  # 1 to double precision on PE >= 0
    got = pe_response_matrix(e, edges, eff, light_yield, a, b, node_step=1.0)
    k = 1.0 + b * e
    cdf = gamma.cdf(edges[:, None], k[None, :], scale=(light_yield * e / k)[None, :])
    np.testing.assert_allclose(got, np.diff(cdf, axis=0), rtol=0, atol=1e-12)
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert np.allclose(centres @ got, light_yield * e, rtol=2e-3)  # the mean, not 1/a = 13.35 PE per keVee


# ---- stats/poisson.py and stats/cost.py: warm starts, replica centres ------------------------------------------
def test_poisson_warm_profile_returns_signal_totals_and_matches_cold_fits():
    """``profile_warm`` returns (chi^2, (eta, signal totals)); the next batch started from it reaches the cold
    fits' chi^2 (Newton tolerance 1e-9), including a signal 1e6 times larger (the a_prev S_prev / S restart).
    (Mutant: the totals -> None; the selection never called profile_warm.)"""
    cost = PoissonChi2("p", OBS, {"b": B, "c": B2}, SIGMAS)
    batch = np.stack([S * f for f in (0.5, 1.0, 2.0)])
    chi, state = cost.profile_warm(batch)
    np.testing.assert_allclose(chi, cost(batch), rtol=0, atol=1e-8)
    np.testing.assert_allclose(state[1], batch.reshape(3, -1).sum(axis=1), rtol=1e-14)
    big = np.stack([S * 1e6, S * 1.1, S * 2.2])
    chi2_, state2 = cost.profile_warm(big, state)
    np.testing.assert_allclose(chi2_, cost(big), rtol=0, atol=1e-7)
    np.testing.assert_allclose(state2[1], big.reshape(3, -1).sum(axis=1), rtol=1e-14)


def test_replica_pull_centres_of_the_wrong_shape_are_named():
    """One pull centre per replica and parameter: another shape is an InputError that states both (mutant: the
    wording)."""
    cost = PoissonChi2("p", OBS, {"b": B, "c": B2}, SIGMAS)
    batch = np.stack([S, S])
    with pytest.raises(InputError, match=r"^pull centres have shape \(2, 1\), expected \(2, 3\)$"):
        cost.replicas(batch, np.stack([OBS, OBS]).reshape(2, -1), np.zeros((2, 1)))


# ---- stats/gridprofile.py --------------------------------------------------------------------------------------
def _cubic_minimum(x, y, lo, hi):
    """Minimum over [lo, hi] of the cubic through the four points (x, y), on a fine grid (error ~1e-12 here)."""
    p = np.polyfit(x, y, 3)
    t = np.linspace(lo, hi, 200001)
    v = np.polyval(p, t)
    return v.min(), t[np.argmin(v)]


@pytest.mark.parametrize("m", [0.27, -0.27, -0.83, 0.83])
def test_grid_minimum_is_the_cubic_through_the_lower_side(m):
    """grid_minimum refines the grid minimum k by the cubic through k - 1, k, k + 1 and the next point beyond the
    lower neighbour (k + 2 if chi2[k+1] < chi2[k-1], else k - 2; at k = 1 or n - 2, where that point is off the
    grid, the one beyond the other neighbour), minimised between the neighbours (docstring).  Checked against
    numpy's polyfit through those four points for a non-polynomial chi^2 (the four choices give different cubics),
    and mirror-symmetric.  (Mutant: the k - 1 -> k + 2 swap of the fourth point at k = 1 became `!=`.)"""
    x = np.linspace(-1.0, 1.0, 11)
    f = lambda t: np.cosh(2.0 * (t - m)) + 0.3 * (t - m) ** 3  # noqa: E731
    y = f(x)
    k = int(np.argmin(y))
    lower_right = y[k + 1] < y[k - 1]
    fourth = k + 2 if lower_right else k - 2
    if fourth < 0 or fourth > 10:
        fourth = k - 2 if lower_right else k + 2
    pts = [k - 1, k, k + 1, fourth]
    want, at = _cubic_minimum(x[pts], y[pts], x[k - 1], x[k + 1])
    value, where = grid_minimum(x, y)
    assert value == pytest.approx(want, abs=1e-10)
    assert where == pytest.approx(at, abs=1e-4)
    assert value < y[k] - 1e-4  # refined, not the grid value
    g = lambda t: np.cosh(2.0 * (t + m)) - 0.3 * (t + m) ** 3  # noqa: E731  f mirrored: g(t) = f(-t)
    mirrored, where_m = grid_minimum(x, g(x))
    assert mirrored == pytest.approx(value, abs=1e-12) and where_m == pytest.approx(-where, abs=1e-9)


def test_grid_profiled_reduce_keeps_the_chi2():
    """``cost(reduce(s)) == cost(s)`` (the ReplicaCost contract) for morphed members that merge the empty bins:
    every member shares the data, hence the merge.  (Mutant: the member that reduces, costs[0] -> costs[1]:
    equivalent under that contract, kept as a test of the line the selection never ran.)"""
    grid = (np.array([-1.5, -0.5, 0.5, 1.5]), np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    signal = np.array([np.array([5.0, 3.0, 2.0, 4.0]) * (1.0 + 0.1 * x - 0.05 * y) for x in grid[0] for y in grid[1]])
    observed = np.array([9.0, 0.0, 2.0, 0.0])  # two empty bins: merged into one
    cost = GridProfiledCost("decay", [0.5, 1.0, 1.5, 2.0], lambda v: MorphedPoissonChi2(
        "toy", observed, {"bkg": np.exp(-np.arange(4.0) / v), "flat": np.full(4, 0.5)},
        {"cevns": None, "bkg": 0.2, "flat": 0.3}, grid))
    reduced = cost.reduce(signal)
    assert reduced.shape == (20, 3)
    assert cost(reduced) == pytest.approx(cost(signal), abs=1e-9)


def test_signal_strength_interval_is_where_the_profile_rises_by_one(csi):
    """The 1 sigma interval of the free CEvNS signal strength: the profile chi^2 (the signal normalisation held,
    the rest profiled) is 1 above its minimum at both ends (docstring: Delta chi^2 = 1), and below it inside; the
    significance is sqrt of the background-only rise.  (Seed-21 survivor: the 1.0 of `excess`.)"""
    from cevnsfit.experiments.base import signal_strength

    signal = csi.sm_prediction()["cevns"]
    mu = signal_strength(csi, signal)
    free = csi.cost(free_signal=True)
    chi_min = free.fit(signal).chi2
    profile = lambda m: free.fix({"norm_cevns": m - 1.0})(signal)  # noqa: E731
    lo, hi = mu["interval_1sigma"]
    assert 0.0 < lo < mu["best_fit"] < hi
    # brentq stops at xtol 1e-6 in mu: the rise there is 1 to ~1e-4 (slope ~ 2 / sigma_mu ~ 10)
    assert profile(lo) - chi_min == pytest.approx(1.0, abs=1e-3)
    assert profile(hi) - chi_min == pytest.approx(1.0, abs=1e-3)
    assert profile(0.5 * (lo + hi)) - chi_min < 1.0
    assert mu["significance_sigma"] == pytest.approx(np.sqrt(free(np.zeros_like(signal)) - chi_min), rel=1e-9)
