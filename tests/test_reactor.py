"""Reactor antineutrinos (sources/reactor.py) and Dresden-II (data/experiments/dresden2.yaml): the flux against
published yields, the CEvNS counts against an independent integration, the fit against what Colaresi et al. report,
and the grid-profiled nuisance (stats/gridprofile.py) against a direct minimisation."""

import copy
import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import ndtr

from cevnsfit.errors import InputError
from cevnsfit.experiments import load_experiment
from cevnsfit.experiments.base import PhysicsOptions
from cevnsfit.experiments.declaration import load_declaration, read_declaration
from cevnsfit.parameters import DEFAULT
from cevnsfit.sources import make_source
from cevnsfit.sources.reactor import fission_rate_per_s, isotope_spectrum, reactor_spectrum

DRESDEN2_FRACTIONS = {"U235": 0.58, "Pu239": 0.29, "U238": 0.08, "Pu241": 0.05}


def ibd_cross_section_cm2(e_mev):
    """Inverse beta decay at zeroth order in 1/M (Vogel and Beacom, PRD 60, 053003 (1999), eq. 9):
    sigma = 0.0952e-42 cm^2 E_e p_e / MeV^2, E_e = E - (m_n - m_p)."""
    m_e, delta = 0.51099895, 1.29333236
    ee = np.asarray(e_mev, float) - delta
    pe = np.sqrt(np.clip(ee**2 - m_e**2, 0.0, None))
    return np.where(ee > m_e, 0.0952e-42 * ee * pe, 0.0)


@pytest.mark.parametrize("isotope, published", [("U235", 6.69), ("U238", 10.10), ("Pu239", 4.40), ("Pu241", 6.03)])
def test_ibd_yield_per_fission_is_huber_mueller(isotope, published):
    """The IBD yield per fission of each isotope's spectrum against the Huber-Mueller prediction, 6.69 / 10.10 /
    4.40 / 6.03 x 1e-43 cm^2/fission for 235U / 238U / 239Pu / 241Pu (Mention et al., PRD 83, 073006 (2011), as
    quoted in iit-neutrino/AGRIYA InverseBetaDecay.hh @d636fb38, "Saclay+Huber").  Our cross section is the
    zeroth-order one, which the O(E/M) corrections of the published yields lower by ~1-2 %: within 3 %."""
    e, d = isotope_spectrum(DEFAULT, isotope)
    grid = np.linspace(1.8, 8.0, 20001)
    yield_ = np.trapezoid(np.interp(grid, e, d) * ibd_cross_section_cm2(grid), grid)
    assert yield_ / 1e-43 == pytest.approx(published, rel=0.03)


def test_core_spectrum_is_the_fraction_weighted_sum():
    spec = reactor_spectrum(DEFAULT, DRESDEN2_FRACTIONS)
    for energy in (1.05, 2.0, 3.3, 6.1, 7.9):
        direct = sum(f * np.interp(energy, *isotope_spectrum(DEFAULT, iso)) for iso, f in DRESDEN2_FRACTIONS.items())
        assert spec.pdf(energy) == pytest.approx(direct, rel=1e-12)
    assert spec.pdf(8.5) == 0.0  # nothing above the converted spectra's last node


def test_flux_from_power_and_distance():
    """phi = P / <E_f> x N_nu / (4 pi L^2), with <E_f> the fraction-weighted energy per fission (Ma et al.)."""
    e_f = {"U235": 202.36, "U238": 205.99, "Pu239": 211.12, "Pu241": 214.26}  # MeV, Ma et al., PRC 88, 014605 (2013)
    mean = sum(f * e_f[i] for i, f in DRESDEN2_FRACTIONS.items())
    fissions = 2.96e9 / (mean * 1.602176634e-13)
    assert fission_rate_per_s(DEFAULT, DRESDEN2_FRACTIONS, 2.96) == pytest.approx(fissions, rel=1e-12)
    src = make_source("reactor", DEFAULT, fractions=DRESDEN2_FRACTIONS, exposure=86400.0, power=2.96, distance=10.0)
    n_nu = reactor_spectrum(DEFAULT, DRESDEN2_FRACTIONS).norm
    assert src.flux_per_cm2_s == pytest.approx(fissions * n_nu / (4 * math.pi * 1000.0**2), rel=1e-12)
    assert src.fluence_per_cm2 == pytest.approx(src.flux_per_cm2_s * 86400.0, rel=1e-12)
    assert src.flavours == ("nuebar",)


@pytest.mark.parametrize("arguments, words", [
    ({"fractions": {"U235": 0.5}, "exposure": 1.0, "flux": 1e13}, "sum to 1"),
    ({"fractions": {"Th232": 1.0}, "exposure": 1.0, "flux": 1e13}, "unknown fissioning isotope"),
    ({"fractions": DRESDEN2_FRACTIONS, "exposure": 1.0}, "flux, or its power"),
    ({"fractions": DRESDEN2_FRACTIONS, "exposure": 1.0, "flux": 1e13, "power": 1.0}, "not both"),
    ({"fractions": DRESDEN2_FRACTIONS, "exposure": -1.0, "flux": 1e13}, "positive live time"),
])
def test_bad_reactor_arguments(arguments, words):
    with pytest.raises(InputError, match=words):
        make_source("reactor", DEFAULT, **arguments)


def _dresden2(**changes):
    doc, _ = read_declaration("dresden2")
    doc = copy.deepcopy(doc)
    for path, value in changes.items():
        node = doc
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return doc


def test_dresden2_counts_equal_an_independent_integration():
    """Dresden-II's SM CEvNS counts in 0.2-1.5 keVee with a narrow Gaussian resolution (20 eV: a step function would
    test the recoil grid's 10 eV steps at the threshold, not the physics), tree-level couplings and the Helm form
    factor, against a direct quadrature over energy and recoil written here: dsigma/dT = G_F^2 M / pi
    Q^2 (1 - M T / 2E^2) F^2(q), Q = Z (1/2 - 2 s^2) - N/2 (s^2 = 0.23857), the 'Fef' quenching (linear to 1.34
    keVnr, Lindhard k = 0.157 above: its table's form), natural germanium (CIAAW), Helm with the rms charge radius of
    natural Ge (4.06 fm, Angeli and Marinova 2013) for every isotope."""
    doc = _dresden2(**{"response.energy.resolution": {"model": "quadrature", "noise": {"value": 0.02, "unit": "keVee"}}})
    exp = load_declaration("dresden2", doc=doc, where="test", options=PhysicsOptions(couplings="tree"))
    ours = float(exp.kernel.sm_counts().sum())

    gf, hbarc2, amu, n_a = 1.1663787e-11, 3.893794e-22, 931.49410242, 6.02214076e23
    isotopes = {70: (0.2052, 69.9242), 72: (0.2745, 71.9221), 73: (0.0776, 72.9235), 74: (0.3652, 73.9212),
                76: (0.0775, 75.9214)}  # abundance, mass (u): CIAAW 2013, AME2020
    n_ge = 2.924e3 / 72.630 * n_a
    spec = reactor_spectrum(DEFAULT, DRESDEN2_FRACTIONS)
    energies = np.linspace(0.5, 8.0, 1501)
    weights = spec.pdf(energies) / spec.norm

    def quench(t_kev):
        eps = 11.5 * 32 ** (-7 / 3) * t_kev
        g = 3 * eps**0.15 + 0.7 * eps**0.6 + eps
        return np.where(t_kev <= 1.34, 0.43610 - 0.19207 * t_kev, 0.157 * g / (1 + 0.157 * g))

    def helm(q_mev):
        s, r = 0.9, 4.06
        r0 = math.sqrt(5.0 / 3.0 * (r**2 - 3 * s**2))
        x = q_mev / 197.3269804 * r0
        j1 = np.sin(x) / x**2 - np.cos(x) / x
        return 3 * j1 / x * np.exp(-((q_mev / 197.3269804 * s) ** 2) / 2)

    total = 0.0
    for a, (abundance, mass_u) in isotopes.items():
        m = mass_u * amu
        q_weak = 32 * (0.5 - 2 * 0.23857) - (a - 32) * 0.5
        t = np.linspace(1e-6, 2.2e-3, 4001)  # MeV
        e_ee = quench(t * 1e3) * t * 1e3
        inside = ndtr((e_ee - 0.2) / 0.02) - ndtr((e_ee - 1.5) / 0.02)  # the share reconstructed in 0.2-1.5 keVee
        ff2 = helm(np.sqrt(2 * m * t)) ** 2
        rate = 0.0
        for e, w in zip(energies, weights):
            ds = gf**2 * m / math.pi * q_weak**2 * np.clip(1 - m * t / (2 * e**2), 0, None) * ff2 * hbarc2
            rate += w * np.trapezoid(ds * inside, t)
        total += abundance * n_ge * rate * (energies[1] - energies[0])
    expected = total * 4.8e13 * 86400.0
    assert ours == pytest.approx(expected, rel=0.01)


@pytest.fixture(scope="module")
def dresden2():
    return load_experiment("dresden2")


def test_dresden2_prefers_cevns_as_colaresi_et_al(dresden2):
    """Colaresi et al., PRL 129, 211802 (2022), abstract: a "very strong preference (p < 1.2 x 10^-3) for the
    presence of a CEvNS component" over background only, with the 'Fef' quenching, and a best-fit signal "in good
    agreement with expectations": ours rejects mu = 0 beyond p = 1.2e-3 (z > 3.03) and holds mu = 1 at 1 sigma."""
    mu = dresden2.sm_summary()["cevns_signal_strength"]
    assert mu["significance_sigma"] > 3.03
    lo, hi = mu["interval_1sigma"]
    assert lo <= 1.0 <= hi


def _sideband_calibration(energy, rate, sigma, stochastic):
    """The Ga L1 line's centre and the detector's noise in one period, from a least-squares fit of its E > 0.5
    keVee sideband (no CEvNS there): a constant, an exponential and the L1/L2/M lines (ratios 1 / 0.008 / 0.16),
    each a Gaussian of width sqrt(noise^2 + stochastic^2 E), written here independently of the package."""
    from scipy.optimize import least_squares

    side = energy > 0.5
    e, y, s = energy[side], rate[side], sigma[side]

    def model(p):
        const, amp, decay, lines, centre, noise = p
        out = const + amp * np.exp(-e / decay)
        for at, ratio in ((centre, 1.0), (1.142, 0.008), (0.158, 0.16)):
            w = math.sqrt(noise**2 + stochastic**2 * at)
            out = out + lines * ratio * 0.01 * np.exp(-0.5 * ((e - at) / w) ** 2) / (math.sqrt(2 * math.pi) * w)
        return out

    fit = least_squares(lambda p: (model(p) - y) / s, [10, 300, 0.25, 1500, 1.293, 0.068],
                        bounds=([0, 0, 0.05, 0, 1.2, 0.03], [1e4, 1e7, 2, 1e6, 1.4, 0.12]))
    return fit.x[4], fit.x[5]


def test_dresden2_reactor_off_has_no_cevns(tmp_path):
    """The control the paper's reactor-off (refuelling outage) spectrum offers: the same declaration read on columns
    4-5 of the release, with the L1 centre and the noise of that period (fitted on its own E > 0.5 keVee sideband;
    the outage's line sits 8 eV higher and is narrower), must describe the spectrum with the backgrounds alone and
    find no reactor-on CEvNS in it.  (The reactor-on fit finds mu = 1.24, 3.7 sigma above zero.)"""
    on = load_experiment("dresden2")
    release = np.loadtxt(on.data_dir / on.files["release"])
    doc, where = read_declaration("dresden2")
    doc = copy.deepcopy(doc)
    stochastic = doc["response"]["energy"]["resolution"]["stochastic"]["value"]
    centre, noise = _sideband_calibration(release[:, 0], release[:, 3], release[:, 4], stochastic)
    assert centre == pytest.approx(1.3007, abs=0.002) and 0.060 < noise < 0.068  # the outage's own calibration
    doc["data"]["observed"]["column"], doc["likelihood"]["sigma"]["column"] = 3, 4
    lines = doc["data"]["backgrounds"]["ec_lines"]
    lines["energies"]["value"][0] = float(centre)
    for resolution in (doc["response"]["energy"]["resolution"], lines["resolution"]):
        resolution["noise"]["value"] = float(noise) * 1e3  # eVee
    off = load_declaration("dresden2_off", doc=doc, where=f"{where} (reactor off)")
    mu = off.sm_summary()["cevns_signal_strength"]
    assert mu["chi2_background_only"] < 130 + 2 * math.sqrt(2 * 130)  # the backgrounds alone describe the outage
    assert mu["significance_sigma"] < 1.0
    assert mu["interval_1sigma"][1] < 0.2  # in units of the reactor-on Standard-Model CEvNS
    assert mu["best_fit"] == mu["interval_1sigma"][0] == 0.0  # a deficit: the interval starts on the boundary


def test_grid_profile_equals_a_direct_minimisation(dresden2):
    """The grid-profiled chi^2 (21 values of the exponential's decay length, refined by a parabola) against Brent's
    method on the decay length, each point's cost built at that value: within 0.01 in chi^2 at several signals."""
    cost = dresden2.cost(free_signal=True)
    signal = dresden2.kernel.sm_counts()
    for mu in (0.0, 1.0, 2.0):
        direct = minimize_scalar(lambda d: cost.fix({"decay_exponential": d})(mu * signal), bounds=(0.1, 0.5),
                                 method="bounded", options={"xatol": 1e-6}).fun
        assert cost(mu * signal) == pytest.approx(direct, abs=0.01)
    fitted = cost.fit(signal)
    assert 0.1 < fitted.nuisances["decay_exponential"] < 0.5
    assert fitted.chi2 == pytest.approx(cost(signal), abs=0.01)


@pytest.mark.parametrize("change, words", [
    ({"likelihood.sigma": None}, "sigma"),
    ({"likelihood.profile": {"component": "nope", "parameter": "decay", "values": {"value": [0.1, 0.2, 0.3], "unit": "keVee"}}},
     "not a background"),
    ({"likelihood.profile": {"component": "exponential", "parameter": "rate", "values": {"value": [0.1, 0.2, 0.3], "unit": "keVee"}}},
     "not a {value, unit} argument"),
    ({"likelihood.profile": {"component": "exponential", "parameter": "decay", "values": {"value": [0.3, 0.2, 0.1], "unit": "keVee"}}},
     "increasing"),
    ({"likelihood.kind": "morphed_poisson"}, "kind"),
])
def test_bad_gaussian_declarations_name_the_key(change, words):
    doc = _dresden2(**change)
    if doc["likelihood"].get("sigma", 0) is None:
        del doc["likelihood"]["sigma"]
    with pytest.raises(InputError, match=words) as exc:
        load_declaration("dresden2", doc=doc, where="d2.yaml")
    assert str(exc.value).startswith("d2.yaml: likelihood")


def test_conus_plus_like_projection_predicts_what_conus_plus_did():
    """The shipped CONUSplus-like detector (1 kg, 20.7 m, 3.6 GW, 119 days, 160 eVee threshold, Lindhard k = 0.162)
    scaled to CONUS+'s exposure of 327 kg d (arXiv:2501.10355 abstract) against CONUS+'s SM prediction, (347 +- 59)
    CEvNS events (arXiv:2501.05206 abstract): within that uncertainty (our fission fractions and resolution are
    assumed, and CONUS+'s thresholds are 160-180 eV per detector)."""
    exp = load_declaration("CONUSplus-like")
    scaled = float(exp.kernel.sm_counts().sum()) * 327.0 / 119.0
    assert scaled == pytest.approx(347.0, abs=59.0)


def test_grid_profiled_replicas_equal_the_cost_on_the_data(dresden2):
    """A replica equal to the observed data with the nominal pull centres has the cost's own chi^2 (the replica path
    of the grid-profiled cost is the same minimisation), and toys are thrown about the fitted expectation."""
    cost = dresden2.cost()
    signal = dresden2.kernel.sm_counts()
    centres = np.zeros((1, cost.pull_sigmas.size))
    assert cost.replicas(signal[None], dresden2.observed.reshape(1, -1), centres)[0] == pytest.approx(cost(signal), rel=1e-12)
    expected, theta = cost.expected(signal)
    assert theta[-1] == pytest.approx(cost.fit(signal).nuisances["decay_exponential"], abs=1e-9)
    toys = cost.sample(expected, np.random.default_rng(7), 4000)
    assert np.allclose(toys.mean(axis=0), expected, atol=5 * cost.costs[0].sigma.max() / np.sqrt(4000))


def test_grid_profiled_lines_equal_the_profile_of_each_signal():
    """``profile_lines`` (the mediator planes: Gram rows and right-hand side from the basis, chi^2 from the normal
    equations, every decay length at once) against the cost of each signal formed in full (chi^2 from the
    residuals), B-L from g = 0 to far beyond the limit at two masses.  Dresden-II's c'Wc (5.6e3, the data less the
    nominal backgrounds) is ~46 x its chi^2 minimum: the normal equations cancel most of it; measured max
    |Delta chi^2| 3e-12."""
    from cevnsfit.mediators import MediatorAnalysis

    an = MediatorAnalysis(threads=1)
    cost = an.cost("dresden2")
    tpl = an.templates("B-L", [0.0, 10.0], "dresden2").mapped(cost.reduce)
    g = np.concatenate([[0.0], np.geomspace(1e-6, 1e-3, 12)])
    lines = cost.profile_lines(tpl.coefficients(g), tpl.bases(0, 2))[0]
    for i in (0, 1):
        direct = [cost(s) for s in tpl.counts(g, i)]
        np.testing.assert_allclose(lines[i], direct, rtol=0, atol=1e-8)
        assert cost.profile_linear(tpl.coefficients(g), tpl.basis(i))[0] == pytest.approx(lines[i], rel=1e-14)
