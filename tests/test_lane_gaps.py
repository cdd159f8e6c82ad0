"""The lines of the sampled core modules that no test of the default lane ran (coverage of `pytest -m "not slow"`
over `tools/mutation.py`'s modules, 2026-12-08: 27 of 2 838 statements; docs/validation/tests.md, "Mutation
testing").  A mutant there survives whatever it does, so each gets a test of what the line is for: the grid-profiled
cost's half of the cost contract, a sum of sums, a shared factor on a background, the (g-2) verdict's ranges."""

from types import SimpleNamespace

import numpy as np
import pytest

from cevnsfit.experiments import load_experiment
from cevnsfit.mediators import DATASETS, MediatorAnalysis, gm2_verdict
from cevnsfit.physics.models import get_model
from cevnsfit.stats.gridprofile import grid_minimum
from cevnsfit.stats.sum import SharedFactor, SumCost


@pytest.fixture(scope="module")
def dresden():
    return load_experiment("dresden2").cost()


@pytest.fixture(scope="module")
def lar():
    return load_experiment("lar").cost()


def _signals(cost, scales=(0.5, 2.0)):
    """Signals of the cost's shape: a falling spectrum at a few scales (counts per bin)."""
    shape = np.linspace(3.0, 0.5, cost.n_bins).reshape(cost.shape)
    return np.stack([s * shape for s in scales])


# ---- stats/gridprofile.py: the cost contract of a parameter profiled on a grid ------------------------------------
def test_grid_minimum_of_three_points_is_the_grid_minimum():
    """Fewer than 4 grid values: no cubic through 4 points exists, the grid minimum is returned as it is."""
    best, at = grid_minimum(np.array([0.0, 1.0, 2.0]), np.array([3.0, 1.0, 2.0]))
    assert (float(best), float(at)) == (1.0, 1.0)


def test_grid_profiled_profiles_agree_with_its_chi2(dresden):
    s = _signals(dresden)
    chi = dresden(s)
    np.testing.assert_allclose(dresden.profile_warm(s)[0], chi, rtol=1e-12)
    np.testing.assert_allclose(dresden.profile(s[0])[0], [chi[0]], rtol=1e-12)
    dresden._pack()  # the members hold the kernels' arrays: nothing to pack, and nothing changes
    np.testing.assert_allclose(dresden(s), chi, rtol=0)


def test_grid_profiled_priors_add_the_free_grid_parameter(dresden):
    """The members' priors, and the decay length with no prior: (first grid value, None)."""
    priors = dresden.priors
    assert priors["decay_exponential"] == (0.15, None)
    assert {k: v for k, v in priors.items() if k != "decay_exponential"} == dresden.costs[0].priors


def test_a_replica_equal_to_the_data_has_the_datas_chi2(dresden):
    """A replica whose counts are the observed ones and whose pull centres are the priors' is the data: its
    profiled chi^2 is the data's, signal by signal, through both replica paths."""
    s = _signals(dresden)
    observed = np.repeat(np.asarray(dresden.observed, float).reshape(1, -1), len(s), axis=0)
    centres = np.zeros((len(s), dresden.pull_sigmas.size))
    np.testing.assert_allclose(dresden.replicas(s, observed, centres), dresden(s), rtol=1e-9)
    basis = s[:1]
    coefficients = np.array([[0.5], [2.0]]) / 0.5
    np.testing.assert_allclose(dresden.replicas_linear(coefficients, basis, observed, centres),
                               dresden(np.einsum("nk,k...->n...", coefficients, basis)), rtol=1e-9)
    factors = dresden.linear_factors(basis)
    assert len(factors) == len(dresden.costs)
    np.testing.assert_allclose(dresden.replicas_linear(coefficients, basis, observed, centres, factors),
                               dresden.replicas_linear(coefficients, basis, observed, centres), rtol=1e-12)


def test_grid_profiled_nominal_and_counts_are_the_members_at_the_fitted_value(dresden):
    """``nominal`` and ``counts`` read the member built at the refined decay length: the same as that member's."""
    s = _signals(dresden)[1]
    counts, theta = dresden.expected(s)
    member = dresden.make(float(theta[-1]))
    np.testing.assert_allclose(dresden.nominal(s), member.nominal(s), rtol=1e-12)
    parts = dresden.counts(s, theta)
    want = member.counts(s, theta[:-1])
    assert parts.keys() == want.keys()
    for k in parts:
        np.testing.assert_allclose(parts[k], want[k], rtol=1e-12)
    np.testing.assert_allclose(sum(parts.values()).ravel(), np.asarray(counts).ravel(), rtol=1e-9)


# ---- stats/sum.py and stats/cost.py: sums of sums, a shared background, the base class's defaults --------------
def test_a_sum_of_sums_is_flat(lar):
    csi = load_experiment("csi").cost()
    nested = SumCost([SumCost([lar]), csi])
    assert [c.name for c in nested.costs] == ["lar", "csi"]
    signals = {"lar": np.zeros(lar.shape), "csi": np.zeros(csi.shape)}
    assert nested(signals) == pytest.approx(lar(signals["lar"]) + csi(signals["csi"]), rel=1e-12)


def test_a_shared_factor_on_a_background_scales_it_and_leaves_the_other_costs_alone(lar):
    """One factor (10 %) on LAr's steady-state background, CsI outside it: CsI's fit is its own; LAr's is the fit
    of its cost with that background scaled by 1 + theta, and theta is reported under the factor's name."""
    csi = load_experiment("csi").cost()
    total = SumCost([lar, csi], [SharedFactor("ss", 0.1, {"lar": "ss"})])
    signals = {"lar": np.zeros(lar.shape), "csi": np.zeros(csi.shape)}
    fits = total.fit(signals)
    assert fits["csi"].chi2 == pytest.approx(csi.fit(signals["csi"]).chi2, rel=1e-12)
    theta = fits["lar"].nuisances["ss"]
    assert -1.0 < theta < 1.0
    assert fits["lar"].chi2 == pytest.approx(lar.scaled("ss", 1.0 + theta).fit(signals["lar"]).chi2, rel=1e-12)


def test_a_cost_adds_to_zero_but_not_to_anything_else(lar):
    assert sum([lar]) is lar  # sum() starts from 0
    with pytest.raises(TypeError):
        1 + lar


def test_a_direct_profile_is_warm_started_from_nothing():
    """A cost whose profile is direct (no iteration) gives its chi^2 and no state for a warm start."""
    gauss = load_experiment("dresden2").cost().costs[0]
    s = _signals(gauss)
    chi, state = gauss.profile_warm(s)
    np.testing.assert_allclose(chi, gauss(s), rtol=0)
    assert state is None


def test_the_base_replicas_linear_is_the_replicas_of_the_signals():
    """``replicas_linear`` of a cost without a linear shortcut (CsI's Poisson cost): the replicas of the signals
    coefficients @ basis."""
    csi = load_experiment("csi").cost()
    basis = _signals(csi, (1.0,))
    coefficients = np.array([[0.5], [2.0]])
    observed = np.repeat(np.asarray(csi.observed, float).reshape(1, -1), 2, axis=0)
    want = csi.replicas(np.einsum("nk,k...->n...", coefficients, basis), observed)
    np.testing.assert_allclose(csi.replicas_linear(coefficients, basis, observed), want, rtol=1e-12)
    np.testing.assert_allclose(want, csi(np.einsum("nk,k...->n...", coefficients, basis)), rtol=1e-9)


# ---- mediators.py, experiments/base.py, sources/timing.py ---------------------------------------------------------
def test_the_data_set_table_counts_its_data_sets():
    assert len(DATASETS) == len(list(DATASETS)) >= 7
    assert DATASETS["csi+lar"] == ("csi", "lar")


def test_chi2_function_rebuilds_the_templates_of_a_restored_grid():
    """A grid restored from a cache carries no templates: the chi^2 along a line rebuilds them and gives the grid's
    value at a grid coupling."""
    an = MediatorAnalysis()
    grid = an.grid("B-L", [10.0], np.array([0.0, 1e-5, 1e-4]), ("lar",))
    grid.templates.clear()
    f = an.chi2_function(grid, "lar", 0)
    assert f(1e-4) == pytest.approx(grid.chi2["lar"][0, 2], rel=1e-9)
    assert "lar" in grid.templates


def test_gm2_verdict_closes_a_surviving_range_before_the_last_mass():
    """Masses 1..5 MeV where only the 2nd to 4th keep the band (all couplings allowed there, none elsewhere): one
    range, [2, 4] MeV."""
    masses = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    upper = np.array([0.0, np.inf, np.inf, np.inf, 0.0])
    contour = {"mass_mev": masses, "g_upper": upper, "islands": [[] for _ in masses]}
    res = SimpleNamespace(model=get_model("L_mu-L_tau"), contour=lambda dataset, cl: contour)
    verdict = gm2_verdict(res, "csi", "2021")
    assert verdict["verdict"] == "allowed"
    assert verdict["allowed_mass_ranges_mev"] == [[2.0, 4.0]]


def test_an_experiment_names_itself_and_its_nuisances():
    exp = load_experiment("lar")
    assert repr(exp) == f"<Experiment lar: {exp.label}>"
    nuisances = exp.nuisances
    assert nuisances and all(k.startswith("lar.") for k in nuisances)
    assert set(nuisances) == {f"lar.{k}" for k in exp.likelihood.nuisances(exp.params)}


def test_a_time_bin_outside_the_timing_grid_gets_nothing():
    """A time bin after the grid's last edge overlaps no grid bin: its fraction is 0, the others' are unchanged."""
    from cevnsfit.sources.timing import GridTiming

    timing = GridTiming(np.array([0.0, 1.0, 2.0]), {"numu": np.array([0.5, 0.5])})
    inside = timing.bin_fractions("numu", np.array([0.0, 1.0, 2.0]))
    both = timing.bin_fractions("numu", np.array([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_allclose(both[:2], inside, rtol=1e-12)
    assert both[2] == 0.0
