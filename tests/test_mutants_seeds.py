"""Tests written for the survivors of the fresh seeded mutation samples (seeds 21 and 22, 4 per module; issue 20,
item 5; docs/validation/published_numbers.md, "Mutation score"): each checks a documented property of the line a
mutant changed, against a number or a computation written here, not read back from the package."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from cevnsfit.errors import DataError, InputError
from cevnsfit.experiments import load_experiment
from cevnsfit.mediators import MediatorAnalysis, gm2_verdict
from cevnsfit.parameters import DEFAULT
from cevnsfit.physics.models import custom_vector_model, get_model, loop_charge_sum
from cevnsfit.sources.spectra import BinnedSpectrum
from cevnsfit.sources.sun import read_winter_table, solar_8b
from cevnsfit.sources.timing import AnalyticTiming

# PDG 2024 masses [MeV], written here (not read from parameters.yaml)
M_E, M_MU, M_TAU, M_PI = 0.51099895, 105.6583755, 1776.93, 139.57039
G_F = 1.1663788e-11  # MeV^-2, PDG 2024


@pytest.fixture(scope="module")
def csi():
    return load_experiment("csi")


# ---- kernel.py: the scalar column and a batch of models -----------------------------------------------------------
def test_scalar_over_vector_per_node_is_the_prompt_line_formula(csi):
    """For the monochromatic prompt nu_mu (E = (m_pi^2 - m_mu^2) / 2 m_pi = 29.79 MeV) the kernel's scalar and
    vector columns, per detector bin and recoil node, are (M^2/4pi) T/E^2 and (G_F^2 M/pi)(1 - M T/2E^2) times the
    same fluence and response: their ratio is M T / (4 G_F^2 E^2 (1 - M T / 2E^2)), with nothing of the detector
    left (the Cs-133 nucleus mass from its atomic mass here, 1e-4 from the package's; the mutant t / m2 is off by
    orders of magnitude)."""
    k = csi.kernel
    e_nu = (M_PI**2 - M_MU**2) / (2.0 * M_PI)
    mass = 132.905451961 * 931.49410242 - 55 * M_E  # AME2020 atomic mass less the electrons
    t = k.detector.recoil_mev["Cs133"]
    kin = 1.0 - mass * t / (2.0 * e_nu**2)
    ok = kin > 0.05  # away from the line's kinematic end point, where both columns vanish
    ratio_want = mass * t[ok] / (4.0 * G_F**2 * e_nu**2 * kin[ok])
    v, s = k.vector[("numu", "Cs133")][:, ok], k.scalar[("numu", "Cs133")][:, ok]
    rows = v.sum(axis=1) > 0
    got = s[rows] / np.where(v[rows] > 0, v[rows], np.nan)
    filled = np.isfinite(got)
    assert filled.sum() > 10
    np.testing.assert_allclose(got[filled], np.broadcast_to(ratio_want, got.shape)[filled], rtol=2e-4)


def test_a_batch_of_models_counts_as_each_model_alone(csi):
    """``counts`` of a batch of charges (n_recoil, n_models) is (n_models, n_energy, n_time), each slice the counts
    of that model's charges alone (the einsum branch against the outer product of one model)."""
    k = csi.kernel
    sm = k.sm_charge_sq()
    scales = (0.5, 1.0, 2.5)
    batch = {key: np.stack([c * v for c in scales], axis=1) for key, v in sm.items()}
    got = k.counts(batch)
    assert got.shape == (3, *k.sm_counts().shape)
    for i, c in enumerate(scales):
        np.testing.assert_allclose(got[i], k.counts({key: c * v for key, v in sm.items()}), rtol=1e-13)


# ---- physics/models.py: the loop-induced mixing of a leptophilic model ---------------------------------------------
@pytest.mark.parametrize("name, charges", [("L_e-L_tau", {M_E: 1.0, M_TAU: -1.0}),
                                           ("L_mu-L_tau", {M_MU: 1.0, M_TAU: -1.0}),
                                           ("L_e-L_mu", {M_E: 1.0, M_MU: -1.0})])
def test_loop_charge_sum_is_the_vacuum_polarisation_integral(name, charges):
    """E(|q|) = -sum_f Q'_f int_0^1 x(1-x) ln(m_f^2 + x(1-x)|q|^2) dx, integrated here by quad with the PDG masses
    (docs/physics.md 10.3); at q = 0 it is -(1/3) sum_f Q'_f ln m_f, e.g. ln(m_tau/m_mu)/3 = 0.941 for L_mu - L_tau."""
    def want(q):
        return -sum(c * quad(lambda x: x * (1 - x) * math.log(m * m + x * (1 - x) * q * q), 0, 1, epsabs=1e-13)[0]
                    for m, c in charges.items())

    q = np.array([0.0, 5.0, 50.0, 300.0])
    np.testing.assert_allclose(loop_charge_sum(get_model(name), q), [want(x) for x in q], rtol=2e-5)
    assert float(loop_charge_sum(get_model("L_mu-L_tau"), 0.0)) == pytest.approx(math.log(M_TAU / M_MU) / 3, rel=2e-5)


def test_custom_model_states_its_charges_are_the_users():
    """A model from ``--charges`` is described as user-defined (the label the tables and HEPData headers carry)."""
    m = custom_vector_model("mine", 1, 1, 0, 1, -1)
    assert (m.description, m.source) == ("user-defined charges", "user")


# ---- sources: spectra, timing, the Sun ------------------------------------------------------------------------------
def test_binned_spectrum_is_immutable():
    """Spectra are shared between kernels and cached folds: a binned spectrum cannot be changed in place."""
    spec = BinnedSpectrum(np.array([1.0, 2.0, 3.0]), np.array([0.2, 0.5, 0.3]))
    with pytest.raises(AttributeError):
        spec.weights = np.ones(3)


def test_time_fractions_weighted_by_a_step_efficiency():
    """bin_fractions with an efficiency integrates eps(t) dP per bin: a step eps = 1 before 1 us and 0 after gives
    P(bin before 1 us) and 0 beyond it, from the timing's own CDF (its mean 0.3 us, width 0.1 us)."""
    timing = AnalyticTiming(300.0, 100.0, 26.033, 2196.98)
    edges = np.array([0.0, 0.5, 1.5, 6.0])
    got = timing.bin_fractions("numu", edges, efficiency=lambda t: (np.asarray(t) < 1.0).astype(float))
    cdf = timing.cdf("numu", np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(got, [cdf[1] - cdf[0], cdf[2] - cdf[1], 0.0], rtol=1e-12, atol=1e-15)


def _winter_csv(path, rows):
    e = np.linspace(0.5, 15.0, rows)
    path.write_text("# E [MeV], density, sigma\n" + "".join(f"{x},{np.exp(-x / 5)},0.01\n" for x in e))
    return path


def test_winter_table_needs_ten_rows(tmp_path):
    """The documented minimum of the 8B table is 10 rows: 10 are read, 9 are refused with the file named."""
    e, f, d = read_winter_table(_winter_csv(tmp_path / "ten.csv", 10))
    assert e.size == 10 and f[0] == pytest.approx(math.exp(-0.1))
    with pytest.raises(DataError, match="nine.csv.*at least 10 rows"):
        read_winter_table(_winter_csv(tmp_path / "nine.csv", 9))


def test_unknown_8b_spectrum_names_the_choices():
    """The message, whole (a user reads it): the spectrum asked for and the two there are."""
    with pytest.raises(InputError) as exc:
        solar_8b(DEFAULT, spectrum="bogus")
    assert str(exc.value) in ("8B spectrum 'bogus' is not one of winter, analytic",
                              "8B spectrum 'bogus' is not one of analytic, winter")


# ---- stats: a normalisation fixed below -1, replica pull centres ------------------------------------------------
def test_poisson_normalisation_cannot_be_fixed_below_minus_one():
    """eta = a - 1 with a >= 0: fixing a normalisation at eta < -1 (a negative background) is refused by name."""
    cost = MediatorAnalysis().cost("csi")
    with pytest.raises(InputError, match="norm_brn.*-1.5"):
        cost.fix({"norm_brn": -1.5})
    assert cost.fix({"norm_brn": -1.0}).fixed == {"norm_brn": -1.0}  # a = 0: no background, allowed


@pytest.mark.parametrize("name", ["lar", "csi"])  # the Gaussian cost and the Poisson one
def test_replica_pull_centres_move_the_prior(name):
    """A replica's pull centre shifted by one pull width (the shifts are in the parameter's units, eta = a - 1, as
    the toys draw them: standard normal x pull_sigmas) centres the signal normalisation's prior at 1 + sigma: on
    Asimov data of the SM signal, a signal scaled by 0.7 wants a = 1/0.7 and is helped by the higher centre (its
    chi^2 falls), one scaled by 1.3 wants a = 1/1.3 and is hurt.  The nominal centres on the observed data give the
    cost's own chi^2."""
    an = MediatorAnalysis()
    cost = an.cost(name)
    signal = an.experiment(name).signal(an.experiment(name).kernel.sm_counts())
    centres = np.zeros((2, cost.pull_sigmas.size))
    centres[1, 0] = cost.pull_sigmas[0]  # norm_cevns centre +1 sigma
    assert cost.replicas(signal[None], cost.observed.reshape(1, -1))[0] == pytest.approx(cost(signal), rel=1e-12)
    asimov = np.stack([cost.nominal(signal).ravel()] * 2)
    for scale in (0.7, 1.3):
        nominal, moved = cost.replicas(np.stack([scale * signal] * 2), asimov, centres)
        assert (moved < nominal) == (scale < 1.0), (scale, nominal, moved)


# ---- mediators.py: the data folder given, the (g-2) verdict's mass range ----------------------------------------
def test_analysis_reads_the_data_folder_it_is_given(tmp_path):
    """MediatorAnalysis(data_dir) loads its experiments from that folder: an empty one has no CsI release."""
    with pytest.raises(DataError):
        MediatorAnalysis(data_dir=tmp_path).experiment("csi").kernel


def test_gm2_verdict_checks_the_grid_from_its_first_mass():
    an = MediatorAnalysis()
    res = an.analyse("B-L", np.geomspace(1.0, 100.0, 4), np.geomspace(1e-5, 1e-2, 9), experiments=("csi",))
    verdict = gm2_verdict(res, dataset="csi")
    assert verdict["mass_range_checked_mev"] == [1.0, 100.0]


# ---- experiments/xenonnt.py: the per-run livetimes it scales the templates by -----------------------------------
def test_xenonnt_livetimes_are_the_releases():
    """XENONnT light_wimp_data_release @2421e036, data/test_statistical_model.yaml: SR0 1.174398, SR1 2.342593
    t yr (and SR2 3.249665 t yr with the SR0-SR2 runs)."""
    exp = load_experiment("xenonnt")
    want = {"sr0": 1.174398, "sr1": 2.342593, "sr2": 3.249665}
    assert exp.livetimes == pytest.approx({r: want[r] for r in exp.runs}, rel=1e-12)


def test_xenonnt_flux_interval_without_a_spectral_band_profiles_the_efficiency():
    """With the analytic 8B spectrum (no shape band) the flux interval profiles the signal efficiency alone: at
    each edge a = flux / reference, min over eff in [0.5, 1.5] of chi^2(a eff s0) + ((eff - 1)/sigma_eff)^2 lies
    1 above its minimum over a.  Found here by brute force: chi^2(x s0) on 3001 signal scales x (one batch),
    interpolated by a cubic spline, minimised over 4001 efficiencies and 201 flux scales."""
    from scipy.interpolate import CubicSpline

    from cevnsfit.experiments.xenonnt import sm_signal

    exp = load_experiment("xenonnt", spectrum="analytic")
    doc = exp.sm_summary()
    s0, fixed = sm_signal(exp), exp.cost(fixed_signal=True)
    sigma = exp.params["xenonnt.sigma_signal_efficiency"]
    x = np.linspace(0.0, 3.0, 3001)
    chi = CubicSpline(x, fixed(x[:, None, None] * s0[None]))
    eff = np.linspace(0.5, 1.5, 4001)

    def g(a):
        return float(np.min(chi(a * eff) + ((eff - 1.0) / sigma) ** 2))

    ref = doc["b8_flux_reference"]
    best = doc["b8_flux_best_fit"] / ref
    assert 0.2 < best < 1.5  # inside the scales tabulated here, whatever the edges
    chi_min = min(g(a) for a in np.linspace(0.5 * best, 1.5 * best, 201))
    for edge in doc["b8_flux_interval_1sigma"]:
        assert 0.0 < edge / ref < 2.0
        assert g(edge / ref) - chi_min == pytest.approx(1.0, abs=0.01)


# ---- seed 22 (a later fresh sample): the first pass's survivors on real gaps --------------------------------------
def test_helm_series_below_the_cutoff_is_the_bessel_function():
    """3 j1(x)/x below x = 1e-2 (the Taylor branch) against scipy's spherical Bessel function, to 1e-14."""
    from scipy.special import spherical_jn

    from cevnsfit.physics.form_factors import helm

    r, s = 4.8, 0.9
    r0 = math.sqrt(5.0 / 3.0 * (r * r - 3.0 * s * s))
    q = np.array([1e-6, 1e-4, 5e-4, 1.5e-3]) / r0 * np.array([1, 10, 10, 6])  # x = q r0 from 1e-6 to 9e-3
    x = q * r0
    want = 3.0 * spherical_jn(1, x) / x * np.exp(-0.5 * (q * s) ** 2)
    np.testing.assert_allclose(helm(q, r, s), want, rtol=1e-14)


def test_binned_spectrum_end_point_is_its_last_filled_bin():
    """The end point of a binned spectrum is the centre of its highest bin with weight: empty top bins do not count
    (the recoil grid stops at that neutrino energy's kinematic end point)."""
    assert BinnedSpectrum(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 0.5, 0.0, 0.0])).max_energy_mev == 2.0


@pytest.mark.parametrize("name", ["csi", "lar", "dresden2"])
def test_response_bytes_are_what_the_kernel_allocates(name):
    """The size bound a declaration is checked against before anything large exists (kernel.response_bytes) is the
    bytes the energy matrices and the vector and scalar kernels then take, exactly."""
    from cevnsfit.kernel import response_bytes

    exp = load_experiment(name)
    k = exp.kernel
    actual = sum(a.nbytes for d in (k.detector.energy, k.vector, k.scalar) for a in d.values())
    assert response_bytes(exp.targets(), exp.source(), exp.energy, exp.options.recoil_step_kev) == actual


def test_xenonnt_flux_interval_profiles_the_efficiency_and_the_spectral_band():
    """With Winter et al.'s spectrum the flux interval profiles the efficiency and the band's shape theta (unit
    Gaussian): at each edge a, min over (eff, theta) of chi^2(a eff (s0 + theta ds)) + ((eff - 1)/sigma)^2 +
    theta^2 lies 1 above its minimum over a.  Brute force: chi^2 on 401 signal scales x 61 values of theta (one
    batch each; theta's step 0.1 is worth < 0.01 in chi^2), splines in the scale, 2001 efficiencies."""
    from scipy.interpolate import CubicSpline

    from cevnsfit.experiments.xenonnt import shape_shift_signal, sm_signal

    exp = load_experiment("xenonnt")
    doc = exp.sm_summary()
    s0, ds, fixed = sm_signal(exp), shape_shift_signal(exp), exp.cost(fixed_signal=True)
    sigma = exp.params["xenonnt.sigma_signal_efficiency"]
    x = np.linspace(0.0, 2.5, 401)
    thetas = np.linspace(-3.0, 3.0, 61)
    splines = [CubicSpline(x, fixed(x[:, None, None] * (s0 + t * ds)[None])) for t in thetas]
    eff = np.linspace(0.5, 1.5, 2001)

    def g(a):
        return min(float(np.min(sp(a * eff) + ((eff - 1.0) / sigma) ** 2)) + t * t for sp, t in zip(splines, thetas))

    ref = doc["b8_flux_reference"]
    best = doc["b8_flux_best_fit"] / ref
    chi_min = min(g(a) for a in np.linspace(0.8 * best, 1.2 * best, 41))
    for edge in doc["b8_flux_interval_1sigma"]:
        assert 0.0 < edge / ref < 2.0
        assert g(edge / ref) - chi_min == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("cl, dof", [("1dof", 1), ("2dof", 2)])
def test_conventions_are_two_sigma_for_their_degrees_of_freedom(cl, dof):
    """Each limit convention states its degrees of freedom, and its Delta chi^2 is the 2 sigma quantile (95.45 %)
    of the chi^2 distribution with that many (scipy's chi2.ppf, by definition; 4.00 and 6.18)."""
    from scipy.stats import chi2, norm

    from cevnsfit.mediators import convention

    c = convention(cl)
    assert c["dof"] == dof
    assert c["delta_chi2"] == pytest.approx(chi2.ppf(1.0 - 2.0 * norm.sf(2.0), dof), abs=0.005)


def test_poisson_saturated_term_of_fractional_counts():
    """sum[D ln D - D] (the chi^2's constant, that makes it 0 for mu = D) for Asimov data, which are fractional:
    0.5 ln 0.5 + 2 ln 2 - 2.5, written out here."""
    from cevnsfit.stats.cost import dlnd

    assert dlnd(np.array([0.5, 0.0, 2.0])) == pytest.approx(0.5 * math.log(0.5) + 2.0 * math.log(2.0) - 2.5, rel=1e-15)


def test_grid_profiled_cost_reports_what_is_fixed():
    """Dresden-II with the signal normalisation fixed reports it as fixed (the fit tables print it), like any cost."""
    cost = MediatorAnalysis().cost("dresden2")
    assert cost.fixed == {}
    assert cost.fix({"norm_cevns": 0.1}).fixed == {"norm_cevns": 0.1}


def test_log_grid_needs_a_positive_low_end():
    from cevnsfit.mediators import log_grid

    with pytest.raises(InputError, match="0 < low < high"):
        log_grid(0.0, 1.0)
    assert log_grid(1e-3, 1.0, 2) == pytest.approx(np.geomspace(1e-3, 1.0, 7))  # 3 decades, 2 per decade, both ends


def test_unknown_physics_option_lists_the_choices():
    with pytest.raises(InputError) as exc:
        load_experiment("csi", kinematics="bogus")
    assert str(exc.value) == "option kinematics='bogus' is not one of ac22, exact"


@pytest.mark.parametrize("name", ["csi", "lar", "xenonnt", "dresden2"])
def test_energy_axis_label_and_unit_are_text(name):
    """The labels the tables and figures print for the energy axis are strings, not methods."""
    exp = load_experiment(name)
    assert isinstance(exp.energy_label, str) and exp.energy_label
    assert isinstance(exp.energy_unit, str) and exp.energy_unit


# ---- seed 23 (the third fresh sample): its first pass's survivors on real gaps -----------------------------------
def test_fermi_small_q_series_is_the_closed_form():
    """Below qc = 0.05 the symmetrized Fermi form factor is its moment series (<r^2>, <r^4>); the closed form
    F = 3/(qc((qc)^2 + (pi q a)^2)) (pi q a / sinh(pi q a)) [pi q a coth(pi q a) sin(qc) - qc cos(qc)], written
    here, evaluated in extended precision (cancellation ~1e-19 / (qc)^3), agrees to 1e-11 (the series' truncation,
    (qc)^6 / 5040, is below 2e-12 there; the <r^4> term itself is ~1e-6 at qc = 0.045)."""
    from cevnsfit.physics.form_factors import symmetrized_fermi

    r, a = 4.8, 0.52  # fm
    c = math.sqrt(5.0 / 3.0 * r * r - 7.0 / 3.0 * (math.pi * a) ** 2)
    qc = np.array([0.01, 0.03, 0.045], dtype=np.longdouble)
    q = qc / np.longdouble(c)
    pqa = np.longdouble(math.pi) * q * np.longdouble(a)
    want = 3.0 / (qc * (qc**2 + pqa**2)) * pqa / np.sinh(pqa) * (pqa / np.tanh(pqa) * np.sin(qc) - qc * np.cos(qc))
    np.testing.assert_allclose(symmetrized_fermi(q.astype(float), r, a), want.astype(float), rtol=1e-11)


def test_morphed_cost_scales_one_background():
    """A shared normalisation scales one background of XENONnT's morphed cost (a fixed template, ER, and a morphed
    one, the radiogenic neutrons): its expected counts double, the others' do not move."""
    an = MediatorAnalysis()
    cost = an.cost("xenonnt")
    exp = an.experiment("xenonnt")
    signal = exp.signal(exp.kernel.sm_counts())
    theta = np.zeros(len(cost.parameters))  # every normalisation and shape at its nominal value
    base = cost.counts(signal, theta)
    for z in ("er", "rg"):
        new = cost.scaled(z, 2.0)
        scaled = new.counts(signal, theta)
        for k in base:
            np.testing.assert_allclose(scaled[k], (2.0 if k == z else 1.0) * base[k], rtol=1e-14)
        # the templates as given, from which a cost is rebuilt (tests/reference_morph.py), are scaled alike
        np.testing.assert_allclose(new.background_templates[z], 2.0 * cost.background_templates[z], rtol=1e-15)


def test_solar_8b_default_is_the_nominal_spectrum():
    """Without shape_shift the 8B source is Winter et al.'s central spectrum (0 sigma along its band)."""
    default, nominal = solar_8b(DEFAULT), solar_8b(DEFAULT, shape_shift=0.0)
    e = np.linspace(1.0, 15.0, 8)
    for f in default.spectra:
        assert default.spectra[f].moment(0, e) == pytest.approx(nominal.spectra[f].moment(0, e), rel=1e-15)


def test_survival_probability_at_the_edges_of_theta13():
    """sin^2 theta13 = 1 puts nu_e wholly in the third mass state, which the Sun's matter does not mix: P_ee = 1;
    both edges of [0, 1] are accepted."""
    from cevnsfit.sources.sun import survival_probability

    assert survival_probability(10.0, DEFAULT.with_overrides({"oscillation.sin2_theta13": 1.0})) == pytest.approx(1.0)
    assert 0.2 < survival_probability(10.0, DEFAULT.with_overrides({"oscillation.sin2_theta13": 0.0})) < 0.5


@pytest.mark.parametrize("model, kind", [("B-L", "vector"), ("scalar", "scalar")])
def test_limits_row_has_the_documented_keys(model, kind):
    """A row of `limits --json` has exactly the keys docs/guides/limits.md lists, and its model kind."""
    an = MediatorAnalysis()
    res = an.analyse(model, np.geomspace(1.0, 100.0, 4), np.geomspace(1e-5, 1e-2, 9), experiments=("csi",))
    row = res.row("csi")
    assert set(row) == {"model", "kind", "dataset", "g_low_mass", "g_over_M_high_mass", "low_mass_islands",
                        "high_mass_islands", "chi2_sm", "chi2_min", "contour"}
    assert (row["model"], row["kind"], row["dataset"]) == (model, kind, "csi")
    assert set(row["contour"]) == {"mass_mev", "g_upper", "islands", "cl"}
    assert row["low_mass_islands"] == [list(i) for i in res.limit("csi", "low_mass").allowed.islands]


def test_a_zero_coupling_given_is_not_doubled():
    """The plane's couplings always start at g = 0 (the SM); a user's grid that already holds 0 keeps one."""
    from cevnsfit.mediators import analysis_axes

    (_, g), _, _ = analysis_axes(np.array([1.0, 10.0]), np.array([0.0, 1e-3, 1e-2]))
    assert g.tolist() == [0.0, 1e-3, 1e-2]


def test_grid_minimum_of_an_exact_parabola_is_its_vertex():
    """chi^2 = (x - 1.5)^2 on the integers 0..4 (every value and divided difference exact in binary, so the cubic
    term is exactly 0 and the parabola's vertex -C/B is taken): minimum 0 at 1.5."""
    from cevnsfit.stats.gridprofile import grid_minimum

    x = np.arange(5.0)
    best, at = grid_minimum(x, (x - 1.5) ** 2)
    assert (float(best), float(at)) == (0.0, 1.5)


@pytest.mark.parametrize("values", [[0.1, 0.2], [[0.1, 0.2, 0.3]], [0.1, 0.3, 0.2]])
def test_grid_profile_needs_three_increasing_values(values):
    from cevnsfit.stats.gridprofile import GridProfiledCost

    with pytest.raises(InputError, match="at least 3 increasing finite values"):
        GridProfiledCost("decay", values, lambda v: None)


def test_xenonnt_spectra_are_drawn_per_observable():
    """XENONnT's release is binned in several observables at once (cS1, cS2 per run): its spectra figure draws them
    as such (plotting/spectra.py reads this attribute), not as energy and time."""
    assert load_experiment("xenonnt").spectra_kind == "observables"
    assert getattr(load_experiment("csi"), "spectra_kind", "energy_time") == "energy_time"


# ---- seed 24: the survivors of the default lane (tools/mutation.py --lane) -----------------------------------------
def test_an_unknown_model_kind_is_named():
    from cevnsfit.physics.models import model_names

    with pytest.raises(InputError, match=r"^unknown model kind 'axial'; choose vector or scalar$"):
        model_names("axial")


def test_a_spectrum_without_any_flux_ends_at_zero():
    """A tabulated density that is zero everywhere (a switched-off source) has no end point: 0 MeV, not an index
    error; one with flux ends at its last positive node."""
    from cevnsfit.sources.spectra import TabulatedSpectrum

    e = np.array([1.0, 2.0, 3.0, 4.0])
    assert TabulatedSpectrum(e, np.zeros(4)).max_energy_mev == 0.0
    assert TabulatedSpectrum(e, np.array([0.0, 1.0, 0.5, 0.0])).max_energy_mev == 3.0


def test_an_unreadable_8b_table_is_named(tmp_path):
    """A path that exists but cannot be read as text (here a folder) is a DataError that names it."""
    (tmp_path / "winter").mkdir()
    with pytest.raises(DataError, match=r"^cannot read .*winter"):
        read_winter_table(tmp_path / "winter")


class _ParabolaCost:
    """A cost whose chi^2 in the signal strength mu = 1 + norm_cevns is ((mu - best) / width)^2 + floor, as
    ``signal_strength`` reads a free-signal cost (fit, fix, a call on a signal; the zero signal is mu = 0)."""

    def __init__(self, best, width, floor=3.0, mu=None):
        self.best, self.width, self.floor, self.mu = best, width, floor, mu

    def chi2(self, mu):
        return ((mu - self.best) / self.width) ** 2 + self.floor

    def cost(self, free_signal):
        assert free_signal
        return self

    def fit(self, signal):
        from types import SimpleNamespace

        return SimpleNamespace(chi2=self.chi2(self.best), nuisances={"norm_cevns": self.best - 1.0})

    def fix(self, values):
        return _ParabolaCost(self.best, self.width, self.floor, 1.0 + values["norm_cevns"])

    def __call__(self, signal):
        return self.chi2(0.0 if not np.any(signal) else (self.mu if self.mu is not None else 1.0))


def test_a_wide_signal_strength_interval_is_bracketed_beyond_its_first_guess():
    """mu = 0.5 +- 3 (a weak experiment): the upper 1 sigma edge, 3.5, lies beyond the first bracket max(2 mu, 1) = 1,
    which is doubled until it holds it; the lower edge is the boundary mu = 0 (Delta chi^2(0) = 1/36 < 1); the
    rejection of mu = 0 is sqrt(1/36) sigma."""
    from cevnsfit.experiments.base import signal_strength

    out = signal_strength(_ParabolaCost(0.5, 3.0), np.ones(3))
    assert out["best_fit"] == 0.5
    assert out["interval_1sigma"][0] == 0.0
    assert out["interval_1sigma"][1] == pytest.approx(3.5, abs=1e-5)
    assert out["significance_sigma"] == pytest.approx(1.0 / 6.0, rel=1e-12)


def test_the_critical_value_at_a_level_above_the_last_but_one_replica_is_the_largest():
    """Ten replicas 0..9: a fraction >= 0.95 lies at or below 9 only (0.9 at or below 8)."""
    from cevnsfit.stats.toys import critical_value

    t = np.arange(10.0)[::-1]
    assert critical_value(t, 0.95) == 9.0
    assert critical_value(t, 0.9) == 8.0
    assert critical_value(t, 1.0) == 9.0


def test_a_grid_whose_chi2_is_not_finite_is_refused_with_its_model_and_experiment(monkeypatch):
    an = MediatorAnalysis()
    cost = an.cost("csi")
    monkeypatch.setattr(cost, "profile_lines",
                        lambda coefficients, bases, start=None: (np.full((len(bases), len(coefficients)), np.nan), None))
    with pytest.raises(InputError, match=r"^chi\^2 of B-L on csi is not finite on this grid \(couplings too large\?\)"):
        an.grid("B-L", [1.0, 10.0], np.array([0.0, 1e-4]), ["csi"])


def test_the_1dof_convention_states_its_reference_minimum():
    from cevnsfit.mediators import convention

    assert convention("1dof")["reference_minimum"] == "minimum over the coupling at fixed mass (g = 0 included)"
    assert convention("2dof")["reference_minimum"].startswith("global minimum over the (M, g) plane")


def test_gm2_verdict_without_a_lower_edge_gives_its_reason():
    """2025's Delta a_mu is below 2 sigma: no anomaly to exclude, and the verdict says why (before any contour is
    read, so the analysis needs only its model)."""
    from types import SimpleNamespace

    out = gm2_verdict(SimpleNamespace(model=get_model("L_mu-L_tau")), "csi", epoch="2025")
    assert out["verdict"] == "no anomaly"
    assert out["reason"] == "the favoured band reaches g = 0 (upper bound only)"


# ---- seed 25: the survivors of the default lane ----------------------------------------------------------------
N_A = 6.02214076e23  # mol^-1, SI exact
HBAR_C_EV_CM = 1.973269804e-5  # eV cm, CODATA 2018


def test_matter_potential_is_the_textbook_value():
    """sqrt(2) G_F n_e = 7.63e-14 eV for n_e = 1 N_A cm^-3 (Giunti & Kim, Fundamentals of Neutrino Physics and
    Astrophysics, 2007, eq. 9.59: V_CC = 7.63e-14 eV x Y_e rho / (g cm^-3))."""
    from cevnsfit.sources.sun import matter_potential_ev

    assert float(matter_potential_ev(1.0)) == pytest.approx(7.63e-14, abs=0.005e-14)  # the quoted digits


@pytest.mark.parametrize("energy_mev, density", [(2.0, 100.0), (10.0, 100.0), (10.0, 30.0), (15.0, 150.0)])
def test_adiabatic_msw_survival_probability_by_hand(energy_mev, density):
    """P_ee at one electron density against the adiabatic MSW-LMA formula written here with the matter term
    A = 2 sqrt(2) G_F n_e E (Giunti & Kim eq. 9.57, three flavours: A c13^2 against dm2_21): cos 2theta_m =
    (cos 2theta12 - beta) / sqrt((cos 2theta12 - beta)^2 + sin^2 2theta12), beta = A c13^2 / dm2_21,
    P_ee = c13^4 (1 + cos 2theta12 cos 2theta_m) / 2 + s13^4; constants written above (the oscillation parameters,
    inputs of both sides, are the package's)."""
    from cevnsfit.sources.sun import survival_probability

    s12, s13, dm2 = (DEFAULT[f"oscillation.{k}"] for k in ("sin2_theta12", "sin2_theta13", "dm2_21"))
    a_cc = 2.0 * math.sqrt(2.0) * G_F * 1e-12 * density * N_A * HBAR_C_EV_CM**3 * energy_mev * 1e6  # eV^2
    cos2 = 1.0 - 2.0 * s12
    beta = a_cc * (1.0 - s13) / dm2
    cos2m = (cos2 - beta) / math.sqrt((cos2 - beta) ** 2 + 1.0 - cos2**2)
    expected = (1.0 - s13) ** 2 * (1.0 + cos2 * cos2m) / 2.0 + s13**2
    assert float(survival_probability(energy_mev, ne_na_per_cm3=density)) == pytest.approx(expected, rel=1e-6)


def test_winter_table_refuses_a_repeated_energy(tmp_path):
    path = _winter_csv(tmp_path / "winter.csv", 12)
    lines = path.read_text().splitlines()
    lines[5] = lines[4]  # the same energy twice
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="needs increasing energies"):
        read_winter_table(path)


def test_a_cost_must_name_its_parameters_and_priors():
    """The contract of every cost (named parameters, cited priors): a class that leaves out any of these cannot be
    instantiated."""
    from cevnsfit.stats.cost import Cost

    assert Cost.__abstractmethods__ == {"__call__", "fit", "fix", "parameters", "priors"}


def test_a_binned_cost_and_a_replica_cost_must_implement_their_halves():
    """The binned half (a profile, the kernels' arrays, the fit) and the replica half (per-component counts at given
    parameters, replicated data): a class that leaves one out cannot be instantiated (seed 29: ``counts`` without
    ``@abstractmethod`` survived)."""
    from cevnsfit.stats.cost import BinnedCost, ReplicaCost

    assert BinnedCost.__abstractmethods__ == {"profile", "_pack", "fit"}
    assert ReplicaCost.__abstractmethods__ == {"profile", "_pack", "counts", "sample"}


def test_grid_minimum_at_the_upper_edge_is_not_refined():
    """chi^2 falling to the grid's last value: the minimum is that value at the edge (the grid bounds the
    parameter), not the minimum of a cubic through the last points (0.39 at 3.54 here)."""
    from cevnsfit.stats.gridprofile import grid_minimum

    best, at = grid_minimum(np.arange(5.0), np.array([9.0, 4.0, 1.5, 0.5, 0.45]))
    assert (float(best), float(at)) == (0.45, 4.0)


def test_grid_profiled_replicas_grid_makes_its_own_factors():
    """``replicas_grid`` without precomputed factors equals it with the members' ``grid_factors``."""
    cost = load_experiment("dresden2").cost()
    rng = np.random.default_rng(5)
    signals = np.stack([np.full(cost.n_bins, 1.0), np.full(cost.n_bins, 3.0)])
    observed = cost.sample(np.asarray(cost.observed, float).ravel(), rng, 2)
    with_factors = cost.replicas_grid(signals, observed, factors=cost.grid_factors(signals))
    np.testing.assert_array_equal(cost.replicas_grid(signals, observed), with_factors)


def test_line_minimum_next_to_the_last_coupling_is_refined():
    """A line whose grid minimum sits at the last-but-one coupling is refined between its neighbours like any
    inner one: chi^2 = (g - 2.6)^2 on g = 0..4 has its grid minimum at g = 3, its minimum 0 at 2.6."""
    from types import SimpleNamespace

    from cevnsfit.mediators import line_minimum

    g = np.arange(5.0)
    f = lambda x: (x - 2.6) ** 2  # noqa: E731
    grid = SimpleNamespace(couplings=g, line_minima={}, dataset_chi2=lambda d: (np.array([f(g)]),))
    analysis = SimpleNamespace(chi2_function=lambda grid, d, i: f)
    best_g, best = line_minimum(analysis, grid, "csi")
    assert best_g == pytest.approx(2.6, abs=1e-6) and best == pytest.approx(0.0, abs=1e-10)


# ---- seed 26 (after the seed-25 tests): the lane's survivors on real gaps -----------------------------------------
def test_a_shift_whose_sign_depends_on_the_nucleus_is_refused_by_name():
    """Q'_u = 1, Q'_d = -1 (and Q'_e = -1): the proton's charge 2 Q'_u + Q'_d = +1 and the neutron's Q'_u + 2 Q'_d = -1
    have opposite signs, so without Z and N the interference of nu_e is not defined; with Cs (Z = 55, N = 78) the
    nucleus's charge 55 - 78 < 0 gives one sign."""
    model = custom_vector_model("iso", 1, -1, -1, 0, 0)
    with pytest.raises(InputError) as err:
        model.interference("nue")
    assert str(err.value) == "model 'iso', nue: the sign of the shift depends on the nucleus: pass Z and N"
    assert model.interference("nue", 55, 78) in ("destructive", "constructive")


def test_a_mediator_mass_that_is_not_a_number_is_named():
    from cevnsfit.physics.models import vector_shift

    with pytest.raises(InputError) as err:
        vector_shift("B-L", "nue", 10.0, "heavy", 1e-3, 55, 78, 1.0, 1.0)
    assert str(err.value) == "mass_mev: 'heavy' is not a number or fraction like 1/3"


def test_a_tabulated_spectrum_refuses_negative_energies():
    """A neutrino energy is >= 0: a table starting below 0 MeV is refused (whatever its normalisation), one starting
    at 0 is accepted and its moments from E_min <= 0 are the whole spectrum."""
    from cevnsfit.sources.spectra import TabulatedSpectrum

    with pytest.raises(InputError) as err:
        TabulatedSpectrum.from_table([-1.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    assert str(err.value) == ("a tabulated spectrum needs increasing energies >= 0 MeV and non-negative finite "
                              "densities")
    spec = TabulatedSpectrum.from_table([0.0, 1.0, 2.0], [0.0, 1.0, 0.0])  # a triangle of area 1
    assert spec.moment(0, 0.0) == pytest.approx(1.0, rel=1e-15)
    assert spec.moment(0, -5.0) == spec.moment(0, 0.0)


def test_a_bad_line_of_the_8b_table_is_named_with_its_number(tmp_path):
    """A line of three numbers of which one is not finite: the file and the line number are named."""
    path = tmp_path / "winter.txt"
    path.write_text("# E, f, df\n" + "".join(f"{e}, 0.1, 0.01\n" for e in range(1, 5)) + "5, nan, 0.01\n")
    with pytest.raises(DataError) as err:
        read_winter_table(path)
    assert str(err.value) == f"{path}: line 6 is not three finite comma-separated numbers"


def test_an_unknown_xenonnt_flux_option_names_the_choices():
    with pytest.raises(InputError) as err:
        load_experiment("xenonnt", flux="borexino")
    assert str(err.value) == "XENONnT option flux='borexino' is not one of sno, ssm"


def test_xenonnt_flux_interval_bounds_the_efficiency_as_the_collaboration_does():
    """With a prior on the signal efficiency so wide that it is free, chi^2 depends on flux x efficiency alone: the
    collaboration's statistical model bounds the efficiency to [0.5, 1.5] (light_wimp_data_release, the signal
    efficiency's range), so the flux interval's edges are those of the product divided by 1.5 and by 0.5.  The
    product's interval is found here by brute force (chi^2(x s0) on a fine grid of scales x, cubic spline)."""
    from scipy.interpolate import CubicSpline
    from scipy.optimize import brentq

    from cevnsfit.experiments.xenonnt import sm_signal

    exp = load_experiment("xenonnt", spectrum="analytic",
                          params=DEFAULT.with_overrides({"xenonnt.sigma_signal_efficiency": 1e6}))
    doc = exp.sm_summary()
    s0, fixed = sm_signal(exp), exp.cost(fixed_signal=True)
    x = np.linspace(0.0, 4.0, 4001)
    chi = CubicSpline(x, fixed(x[:, None, None] * s0[None]))
    fine = np.linspace(0.0, 4.0, 400001)
    k = int(np.argmin(chi(fine)))
    x_hat, chi_min = fine[k], float(chi(fine[k]))
    x_lo = brentq(lambda t: chi(t) - chi_min - 1.0, 0.0, x_hat) if chi(0.0) - chi_min > 1.0 else 0.0
    x_hi = brentq(lambda t: chi(t) - chi_min - 1.0, x_hat, 4.0)
    ref = doc["b8_flux_reference"]
    lo, hi = (edge / ref for edge in doc["b8_flux_interval_1sigma"])
    assert lo == pytest.approx(x_lo / 1.5, rel=2e-3, abs=1e-6)
    assert hi == pytest.approx(x_hi / 0.5, rel=2e-3)


def test_shared_factor_messages_name_the_factor_and_the_costs():
    from cevnsfit.stats.sum import SharedFactor, SumCost

    with pytest.raises(InputError) as err:
        SharedFactor("flux", float("nan"), {"csi": "cevns"})
    assert str(err.value) == "shared factor flux: sigma must be finite and > 0, got nan"
    csi = load_experiment("csi").cost()
    with pytest.raises(InputError) as err:
        SumCost([csi], [SharedFactor("flux", 0.1, {"csi": "cevns"}), SharedFactor("beam", 0.1, {"csi": "cevns"})])
    assert str(err.value) == "cost csi is in two shared factors (flux, beam)"


def test_a_grid_profiled_cost_gives_a_number_for_one_signal_and_an_array_for_several():
    """Like every cost: chi^2 of one signal is a float, of a batch (n, bins) an array (n,) of the same values."""
    cost = load_experiment("dresden2").cost()
    one, two = np.full(cost.shape, 1.0), np.full(cost.shape, 3.0)
    single = cost(one)
    assert type(single) is float
    batch = cost(np.stack([one, two]))
    assert batch.shape == (2,)
    assert batch[0] == pytest.approx(single, rel=1e-12) and batch[1] == pytest.approx(cost(two), rel=1e-12)


def test_the_critical_band_is_the_quantile_level_plus_minus_its_binomial_error():
    """1000 replicas t = 1..1000, level 0.9: the binomial error sqrt(0.9 x 0.1 / 1000) = 0.00949 puts the band's
    levels at 0.89051 and 0.90949, whose empirical quantiles are the 891st and 910th values."""
    from cevnsfit.stats.toys import critical_band

    t = np.random.default_rng(1).permutation(np.arange(1.0, 1001.0))
    assert critical_band(t, 0.9) == (891.0, 910.0)


# ---- seed 28 (after the seed-27 tests, test_messages.py and test_lane_gaps.py): the real gaps ----------------------
def test_the_moment_from_zero_of_a_table_starting_at_zero_follows_its_convention():
    """For k < 0 the segment from E = 0 is taken as a trapezoid with E^k read as 1 at E = 0 (spectra.py,
    ``_segments``).  The triangle d(0) = 0, d(2) = 1/2, d(4) = 0 (area 1): from E_min = 0, k = -1 gives
    0.5 (0 + (1/2)/2) x 2 = 1/4 for the first segment plus int_2^4 (4 - E)/(4 E) dE = ln 2 - 1/2; k = -2 gives
    0.5 (0 + (1/2)/4) x 2 = 1/8 plus int_2^4 (4 - E)/(4 E^2) dE = 1/4 - ln(2)/4."""
    from cevnsfit.sources.spectra import TabulatedSpectrum

    spec = TabulatedSpectrum.from_table([0.0, 2.0, 4.0], [0.0, 1.0, 0.0])
    assert spec.moment(-1, 0.0) == pytest.approx(0.25 + math.log(2.0) - 0.5, rel=1e-14)
    assert spec.moment(-2, 0.0) == pytest.approx(0.125 + 0.25 - math.log(2.0) / 4.0, rel=1e-14)


def test_a_morphed_cost_may_fix_a_normalisation_at_zero_counts():
    """eta = -1 is a = 0 (no signal), the edge of the allowed range, not beyond it: with the signal fixed at a = 0
    the chi^2 no longer depends on the signal (its prior term, (-1 / sigma)^2, is the same for every signal); eta =
    -1.5 is refused."""
    cost = load_experiment("xenonnt").cost()
    off = cost.fix({"norm_cevns": -1.0})
    assert off(np.full(cost.shape, 0.01)) == pytest.approx(off(np.zeros(cost.shape)), rel=1e-12)
    assert off(np.zeros(cost.shape)) > cost(np.zeros(cost.shape))
    with pytest.raises(InputError):
        cost.fix({"norm_cevns": -1.5})


def test_xenonnt_keeps_the_release_it_read():
    """The observed counts are the release's, run by run, in the release's order; each run has its bin edges."""
    exp = load_experiment("xenonnt")
    np.testing.assert_array_equal(np.concatenate([np.ravel(exp.release[r]["observed"]) for r in exp.runs]),
                                  np.ravel(exp.observed))
    assert all("edges" in exp.release[r] for r in exp.runs)


def test_gm2_band_touching_the_allowed_edge_survives():
    """Allowed intervals are closed: where the upper limit on g equals the band's lower edge exactly, the band
    touches the allowed region and that mass is kept."""
    from types import SimpleNamespace

    from cevnsfit.physics.gm2 import favoured_band

    masses = np.array([1.0, 10.0])
    lo, _ = favoured_band(masses, "2021", "vector", 1.0)
    contour = {"mass_mev": masses, "g_upper": np.array([lo[0], 0.5 * lo[1]]), "islands": [[], []]}
    res = SimpleNamespace(model=get_model("L_mu-L_tau"), contour=lambda dataset, cl: contour)
    verdict = gm2_verdict(res, "csi", "2021")
    assert verdict["allowed_mass_ranges_mev"] == [[1.0, 1.0]]
