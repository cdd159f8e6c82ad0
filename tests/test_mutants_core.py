"""Tests written for surviving mutants of templates.py, response.py, sources/ and experiments/ (tools/mutation.py;
docs/validation/tests.md, "Mutation testing"): each kills a mutant that the module's fast test selection let through."""

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import quad

from cevnsfit.errors import DataError, InputError
from cevnsfit.experiments.base import PhysicsOptions, bin_events, relative_delta, sm_table
from cevnsfit.parameters import DEFAULT
from cevnsfit.physics.cross_section import max_recoil_mev
from cevnsfit.responses.energy import recoil_grid
from cevnsfit.physics.nuclei import get_nucleus
from cevnsfit.kernel import DetectorResponse, build_kernel
from cevnsfit.sources.pion_dar import FLAVOURS, pion_dar
from cevnsfit.targets import Target
from cevnsfit.sources.spectra import BinnedSpectrum, pion_dar_spectra
from cevnsfit.sources.timing import GRID_KEYS, AnalyticTiming, GridTiming
from cevnsfit.templates import check_masses


@pytest.mark.parametrize("bad", [-1.0, float("nan"), [[1.0, 2.0]]])
def test_bad_mediator_masses_are_named(bad):
    """The error for a negative/NaN mass or a 2-d mass array (mutant: its wording; the selection never ran it)."""
    with pytest.raises(InputError, match=r"^mediator masses must be non-negative numbers \(MeV\); inf means"):
        check_masses(bad)
    assert check_masses([0.0, 10.0, np.inf]).tolist() == [0.0, 10.0, np.inf]


def test_target_is_an_immutable_value():
    """A Target is shared by the cached response kernel and its experiment: it must not be changed in place
    (mutant: frozen=False)."""
    t = Target(get_nucleus("Ar40"), 1e28)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.count = 2e28  # type: ignore[misc]
    assert hash(t) == hash(Target(get_nucleus("Ar40"), 1e28))


def _tiny_detector() -> DetectorResponse:
    """Ar40, three recoil nodes (MeV), one energy bin, one time bin: enough for build_kernel's options."""
    t = np.array([0.005, 0.02, 0.04])  # E_min(0.04 MeV) = 27 MeV: below the 29.8 MeV nu_mu line
    return DetectorResponse({"Ar40": Target(get_nucleus("Ar40"), 1e28)}, {"Ar40": t}, {"Ar40": np.ones((1, 3))},
                            {f: np.ones(1) for f in FLAVOURS})


def test_build_kernel_defaults_and_kinematics_error():
    """build_kernel's defaults are physics.md's (Helm, radiative couplings, AC22 kinematics) and a bad kinematics
    names the valid ones (mutants: the default scheme name; the separator of the error's list)."""
    det, src = _tiny_detector(), pion_dar(DEFAULT, pot=1.38e23, baseline=27.5, nu_per_flavour_per_pot=0.09)
    default = build_kernel(det, src)
    explicit = build_kernel(det, src, "helm", "radiative", "ac22")
    for key in explicit.vector:
        assert np.array_equal(default.vector[key], explicit.vector[key]) and default.vector[key].sum() > 0
        assert np.array_equal(default.sm_charge[key], explicit.sm_charge[key])
    assert not np.array_equal(build_kernel(det, src, couplings="tree").sm_charge[("nue", "Ar40")],
                              default.sm_charge[("nue", "Ar40")])
    with pytest.raises(InputError, match=r"^unknown kinematics 'bad'; choose one of ac22, exact$"):
        build_kernel(det, src, kinematics="bad")


def test_exact_kinematics_against_quadrature_over_the_spectra():
    """kinematics="exact": dsigma/dT ~ 1 - T/E - (M T/2 - T^2/2)/E^2 (physics.md section 3) integrated over each
    pi-DAR spectrum by adaptive quadrature (the delta line: evaluated at its energy), against the kernel, which uses
    the spectral moments E^0, E^-1, E^-2; normalised to "ac22" (1 - M T/2E^2) computed the same way, so the common
    prefactor drops out (mutants: every term of the exact factor and the moment orders; the selection runs ac22)."""
    det, src = _tiny_detector(), pion_dar(DEFAULT, pot=1.38e23, baseline=27.5, nu_per_flavour_per_pot=0.09)
    exact, ac22 = build_kernel(det, src, kinematics="exact"), build_kernel(det, src, kinematics="ac22")
    m = get_nucleus("Ar40").mass_mev
    ratios = []
    for f, spec in src.spectra.items():
        for k, t in enumerate(det.recoil_mev["Ar40"]):
            e_min = 0.5 * (t + math.sqrt(t * t + 2.0 * m * t))
            full = lambda e: 1.0 - t / e - (0.5 * m * t - 0.5 * t * t) / e**2  # noqa: E731
            short = lambda e: 1.0 - 0.5 * m * t / e**2  # noqa: E731
            if hasattr(spec, "pdf"):
                ref = [quad(lambda e: spec.pdf(e) * g(e), e_min, spec.max_energy_mev, epsabs=0, epsrel=1e-12)[0]
                       for g in (full, short)]
            else:
                ref = [g(spec.energy_mev) for g in (full, short)]
            assert ref[0] < ref[1]  # the T/E term lowers the rate
            ratios.append((exact.vector[(f, "Ar40")][0, k] / ac22.vector[(f, "Ar40")][0, k]) / (ref[0] / ref[1]))
    assert np.allclose(ratios, 1.0, rtol=1e-10, atol=0)


def test_michel_spectra_end_at_half_the_muon_mass():
    """The delayed nu_e and nu_mu-bar spectra end at m_mu/2 = 52.83 MeV: the support's upper edge is where the pdf
    stops being positive (mutant: max_energy_mev = 1.5 m_mu, which the fast selection never read)."""
    m_mu = DEFAULT["constants.m_mu"]
    for f in ("nue", "numubar"):
        spec = pion_dar_spectra()[f]
        assert spec.max_energy_mev == 0.5 * m_mu == pytest.approx(52.83, abs=0.01)
        e = spec.max_energy_mev
        assert spec.pdf(e * (1 - 1e-6)) > 0 and spec.pdf(e * (1 + 1e-6)) == 0
        assert quad(spec.pdf, 0.0, e, epsabs=0, epsrel=1e-12)[0] == pytest.approx(1.0, rel=1e-10, abs=0)


def test_binned_spectrum_moments_by_hand():
    """A histogram flux (CsI's binned option) puts weight w_b at its bin centre: m_k(E_min) = sum over centres
    >= E_min of w_b E_b^k, here worked by hand for three bins (mutants of BinnedSpectrum.moment, which the fast
    selection never ran)."""
    spec = BinnedSpectrum(np.array([10.0, 20.0, 30.0]), np.array([0.2, 0.5, 0.3]))
    e_min = np.array([[0.0, 15.0], [25.0, 40.0]])  # any shape: the moments keep it
    assert np.allclose(spec.moment(0, e_min), [[1.0, 0.8], [0.3, 0.0]], rtol=1e-15, atol=0)
    assert np.allclose(spec.moment(-1, e_min), [[0.02 + 0.025 + 0.01, 0.035], [0.01, 0.0]], rtol=1e-14, atol=0)
    assert spec.moment(-2, np.array(0.0)) == pytest.approx(0.2 / 100 + 0.5 / 400 + 0.3 / 900, rel=1e-14, abs=0)
    assert spec.max_energy_mev == 30.0


def _flux_grid(path, edges_ns, rows):
    hist = {k: np.ones((rows, 2)) for k in GRID_KEYS.values()}
    np.savez(path, t_edges_ns=np.asarray(edges_ns, float), **hist)
    return path


def test_grid_timing_accepts_any_increasing_edges_and_names_the_expected_shape(tmp_path):
    """Sub-ns grid bins are valid (mutant: `diff > 0` -> `diff > 1`); a histogram with the wrong number of time
    rows is a DataError that states the expected (n_edges - 1, n_E) (mutant: its arithmetic)."""
    fine = GridTiming.from_npz(_flux_grid(tmp_path / "fine.npz", [0.0, 0.5, 1.0], 2))
    assert np.allclose(fine.probability["nue"], [0.5, 0.5], rtol=1e-15, atol=0)
    with pytest.raises(DataError, match=r"t_edges_ns must be increasing"):
        GridTiming.from_npz(_flux_grid(tmp_path / "flat.npz", [0.0, 1.0, 1.0], 2))
    with pytest.raises(DataError, match=r"has shape \(3, 2\), expected \(2, n_E\)$"):
        GridTiming.from_npz(_flux_grid(tmp_path / "rows.npz", [0.0, 1.0, 2.0], 3))


def test_analytic_timing_with_efficiency_against_integration_by_parts():
    """Efficiency-weighted arrival fractions, int_a^b eps dP, against eps(b)P(b) - eps(a)P(a) - int_a^b eps' P dt
    (adaptive quadrature of the CDF) for a linear eps (mutants of the weighted branch, which the fast selection,
    with eps = 1, never ran)."""
    timing = AnalyticTiming.from_parameters(450.0, 150.0)
    edges = np.array([0.0, 0.5, 1.0, 2.0, 6.0])  # us

    def eff(t):
        return 0.2 + 0.1 * t

    for f in ("numu", "nue"):
        cdf = lambda t: float(timing.cdf(f, np.array(t)))  # noqa: E731
        ref = [eff(b) * cdf(b) - eff(a) * cdf(a) - 0.1 * quad(cdf, a, b, epsabs=0, epsrel=1e-12)[0]
               for a, b in zip(edges[:-1], edges[1:])]
        # the code sums dP eps(midpoint) on a 10 ns grid: 2e-5 relative at the 450 ns peak
        assert np.allclose(timing.bin_fractions(f, edges, eff), ref, rtol=1e-4, atol=1e-12)


def test_recoil_step_range_and_line_end_point_at_the_grid_end():
    """recoil_step_kev is limited to (0, 0.1] keV (mutant: 1.1); a line end point equal to the grid's own end point
    adds no node beyond it (mutant: `s < t_max` -> `<=`)."""
    with pytest.raises(InputError, match=r"recoil_step_kev must be in \(0, 0\.1\] keV"):
        PhysicsOptions(recoil_step_kev=0.5)
    assert PhysicsOptions(recoil_step_kev=0.1).recoil_step_kev == 0.1
    m = get_nucleus("Ar40").mass_mev
    t_max = float(max_recoil_mev(30.0, m))
    t, w = recoil_grid(m, 30.0, 0.1, steps_mev=[t_max, 0.5 * t_max])
    assert t[-1] == t_max and w.sum() == pytest.approx(t_max, rel=1e-12, abs=0)
    assert np.sum(np.abs(t - 0.5 * t_max) < 1e-9 * t_max) == 2 + (0.5 * t_max in t)  # the inner step is bracketed


def test_bin_events_left_closed_by_hand_and_relative_delta():
    """Left-closed bins [e_k, e_k+1) on both axes, events on the upper edge or outside dropped, counted by hand
    (mutants: the bin index offsets, the upper bound on y); relative_delta by hand (mutant: its sign)."""
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, -0.1, 0.2])
    y = np.array([0.0, 1.0, 0.5, 1.9, 0.1, 0.3, 2.0])
    out = bin_events(x, y, [0.0, 1.0, 2.0], [0.0, 1.0, 2.0])
    # (0,0)->[0,0]; (0.5,1)->[0,1]; (1,0.5)->[1,0]; (1.5,1.9)->[1,1]; x=2 and x=-0.1 and y=2 dropped
    assert out.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    rel = relative_delta(np.array([1.1, 0.0, 3.0]), np.array([1.0, 0.0, 4.0]))
    assert np.allclose(rel, [0.1, 0.0, -0.25], rtol=1e-12, atol=0)


def test_sm_table_by_hand():
    """The human-readable `cevnsfit sm` table from a summary document, formatted by hand (mutants of sm_table,
    which only the CLI tests outside the fast selection read)."""
    summary = {"observed": 121, "chi2_min": 3.14159, "n_bins": 12, "predicted": {"cevns": 100.04, "brn": 20.0},
               "best_fit": {"cevns": 95.0, "brn": 21.26}, "nuisances": {"norm_cevns": -0.05, "norm_brn": 0.063}}
    title, columns, rows, foot = sm_table("lar", summary)
    assert title == "lar: observed 121 events, chi2_min = 3.14 for 12 bins"
    assert columns == ["component", "predicted [events]", "best fit [events]"]
    assert rows == [["cevns", "100.0", "95.0"], ["brn", "20.0", "21.3"], ["total", "120.0", "116.3"]]
    assert foot == "nuisances: norm_cevns = -0.050, norm_brn = +0.063"


# ---- survivors of the seeded sample (seed 20, 4 per module; docs/validation/published_numbers.md, "Mutation score") ----------
def test_grid_timing_with_one_time_bin_and_every_flavour(tmp_path):
    """A grid of a single time bin (two edges) is valid and puts all of each flavour in it (mutant: `size < 2` ->
    `size <= 2` refused it); the probabilities are keyed by the package's flavour names, nuebar included (mutant: the
    nuebar key renamed)."""
    one = GridTiming.from_npz(_flux_grid(tmp_path / "one.npz", [0.0, 1.0], 1))
    assert set(one.probability) == {"nue", "numu", "numubar", "nuebar"}
    for f in one.probability:
        assert np.array_equal(one.probability[f], [1.0]), f
    with pytest.raises(DataError, match=r"t_edges_ns must be increasing"):
        GridTiming.from_npz(_flux_grid(tmp_path / "none.npz", [0.0], 0))


@pytest.mark.parametrize("masses", [(105.66, 0.0), (0.0, 105.66), (-1.0, 105.66)])
def test_loop_mixing_refuses_a_massless_lepton(masses):
    """ln(m_b/m_a) needs both masses > 0: a zero mass is the InputError, not a ZeroDivisionError or -inf (mutant:
    `ma <= 0` -> `ma < 0`)."""
    from cevnsfit.physics.models import loop_mixing

    with pytest.raises(InputError, match="lepton masses must be > 0 MeV"):
        loop_mixing(*masses, 10.0)


@pytest.mark.parametrize("override", [{"oscillation.sin2_theta13": 1.5}, {"oscillation.sin2_theta13": -0.1},
                                      {"oscillation.sin2_theta12": 1.5}, {"oscillation.dm2_21": 0.0}])
def test_survival_probability_refuses_each_bad_oscillation_parameter(override):
    """Each parameter is checked on its own: a bad sin^2 theta13 with a good theta12 is refused (mutant: the first
    `and` -> `or` let it through)."""
    from cevnsfit.sources.sun import survival_probability

    with pytest.raises(InputError, match="oscillation parameters need"):
        survival_probability(10.0, DEFAULT.with_overrides(override))


def test_convention_descriptions_state_the_threshold_they_use():
    """The limits' convention as printed in limits.json and the report says which threshold is used (mutant: the
    1-dof description mangled)."""
    from cevnsfit.stats.intervals import CONVENTIONS, threshold

    for cl, words in (("1dof", "one parameter"), ("2dof", "two parameters")):
        c = CONVENTIONS[cl]
        assert c["description"].startswith(f"2 sigma, {words}: Delta chi^2 = {threshold(cl):g} ("), c


def test_allowed_intervals_interpolate_linearly_without_refine():
    """Without ``refine`` and with ``log=False`` a crossing is the linear interpolation between the grid points:
    Delta chi^2 = 0, 2, 6, 8 on x = 0, 1, 2, 3 crosses 4 at x = 1.5 (mutant: `a + (b - a) frac` -> `a - ...`)."""
    from cevnsfit.stats.intervals import allowed_intervals

    got = allowed_intervals(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 2.0, 6.0, 8.0]), 4.0, log=False)
    assert got.intervals == [(0.0, 1.5)]


def test_tabulated_spectrum_moments_by_hand_and_immutable():
    """A triangle density on [1, 3] MeV peaking at 2 (normalised by from_table): int_{E_min} f dE = 1 at E_min <= 1,
    1/2 at 2 and 1/8 at 2.5 -- the k = 0 antiderivative a E + b E^2/2 (mutant: a / E); from_table converts its
    inputs (mutant: dropped); the spectrum is a frozen value (mutant: frozen=False)."""
    from cevnsfit.sources.spectra import TabulatedSpectrum

    s = TabulatedSpectrum.from_table([1.0, 2.0, 3.0], [0.0, 3.0, 0.0])
    np.testing.assert_allclose(s.moment(0, np.array([0.5, 1.0, 2.0, 2.5, 3.0])), [1.0, 1.0, 0.5, 0.125, 0.0],
                               rtol=1e-12, atol=1e-15)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.norm = 2.0


def test_check_seed_bounds():
    """Seeds 0 .. 2^63 - 1, both ends included (mutants: `0 <= seed` -> `0 < seed`; MAX_SEED - 1); anything else
    is the one-line InputError."""
    from cevnsfit.stats.toys import check_seed

    assert check_seed(0) == 0 and check_seed(2**63 - 1) == 2**63 - 1 and check_seed(np.int64(7)) == 7
    for bad in (-1, 2**63, True, 1.5, "3"):
        with pytest.raises(InputError, match=r"--seed must be an integer from 0 to 2\*\*63 - 1"):
            check_seed(bad)


@pytest.mark.parametrize("width", [-0.1, float("nan"), float("inf")])
def test_pull_width_must_be_finite_and_not_negative(width):
    """A pull width is None (free), 0 (fixed) or a finite positive number (mutant: `isfinite and >= 0` -> `or`
    accepted -0.1 and inf)."""
    from cevnsfit.stats.chi2 import PoissonChi2

    obs, bkg = np.full((2, 2), 3.0), {"bkg": np.full((2, 2), 0.5)}
    assert PoissonChi2("toy", obs, bkg, {"cevns": 0.1, "bkg": 0.0}) is not None
    with pytest.raises(InputError, match="the pull width of norm_bkg must be None"):
        PoissonChi2("toy", obs, bkg, {"cevns": 0.1, "bkg": width})
