"""The solar 8B source: spectrum normalisation and moments, flux options, MSW-LMA survival probability limits."""

import numpy as np
import pytest

from pathlib import Path

from cevnsfit.errors import InputError
from cevnsfit.parameters import DEFAULT
from cevnsfit.sources.sun import (
    SOLAR_FLAVOURS,
    TabulatedSpectrum,
    b8_flux,
    b8_spectrum,
    flavour_probabilities,
    survival_probability,
    solar_8b,
    winter_spectrum,
)

P = DEFAULT


def test_spectrum_integrates_to_one_and_ends_at_the_q_value():
    s = b8_spectrum(P)
    assert np.trapezoid(s.density, s.energy_mev) == pytest.approx(1.0, rel=1e-12)
    assert np.all(s.density >= 0)
    # end point: Q_EC - 2 m_e + 91.8 keV (2-alpha threshold below the 8Be ground state)
    # (to within the final-state grid step, 14 keV, and the energy step, 5 keV)
    assert s.max_energy_mev == pytest.approx(17.9798 - 2 * 0.51099895 + 0.0918, abs=0.02)
    assert s.moment(0, 0.0) == pytest.approx(1.0, rel=1e-9)


def test_moments_match_direct_quadrature_between_nodes():
    s = b8_spectrum(P)
    e = np.linspace(0.0, s.energy_mev[-1], 200001)
    f = s.pdf(e)
    for k in (0, -1, -2):
        for e_min in (3.3333, 7.77, 12.345):
            sel = e >= e_min
            ref = np.trapezoid(np.where(sel, f * np.where(e > 0, e, 1.0) ** k, 0.0), e)
            assert s.moment(k, e_min) == pytest.approx(ref, rel=2e-4)
    assert s.moment(0, 30.0) == 0.0


# Mean 8B neutrino energy of the standard spectrum, W.T. Winter et al., PRC 73 (2006) 025503 (the table of
# shared/data/solar, whose PROVENANCE.md gives 6.770 MeV; Ortiz et al. 2000: 6.78 MeV; Bahcall et al. PRC 54 (1996) 411:
# 6.735 MeV is an older spectrum, not this one)
WINTER_MEAN_MEV = 6.770
WINTER_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "solar" / "8B_shape_Winter_et_al.csv"


def test_winter_spectrum_is_the_table_with_its_published_mean():
    """The default 8B spectrum is Winter et al.'s table: normalised to 1, equal to the file's column read here with
    numpy (independent of the package's reader), mean 6.770 MeV; its +-1 sigma band keeps the normalisation and
    moves the mean by less than 0.01 MeV (a shape uncertainty, not a flux one)."""
    table = np.loadtxt(WINTER_CSV, delimiter=",", comments="#")
    e, f, d = table.T
    s = winter_spectrum(WINTER_CSV)
    assert np.trapezoid(s.density, s.energy_mev) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(s.density, f / np.trapezoid(f, e), rtol=1e-12)
    mean = np.trapezoid(s.energy_mev * s.density, s.energy_mev)
    assert mean == pytest.approx(WINTER_MEAN_MEV, abs=5e-4)
    assert np.trapezoid(e * f, e) / np.trapezoid(f, e) == pytest.approx(mean, rel=1e-12)
    for shift in (1.0, -1.0):
        shifted = winter_spectrum(WINTER_CSV, shift)
        np.testing.assert_allclose(shifted.density, (f + shift * d) / np.trapezoid(f + shift * d, e), rtol=1e-12)
        assert abs(np.trapezoid(shifted.energy_mev * shifted.density, e) - mean) < 0.01
    assert solar_8b(P).spectra["nue"].energy_mev is not None and b8_spectrum(P).max_energy_mev > 16  # both exist


@pytest.mark.xfail(strict=True, reason="analytic approximation (the documented alternative): mean 7.12 MeV vs 6.770 "
                   "MeV of Winter et al.'s table, which is the default (docs/xenonnt.md)")
def test_analytic_spectrum_mean_matches_winter():
    s = b8_spectrum(P)
    mean = np.trapezoid(s.energy_mev * s.density, s.energy_mev)
    assert mean == pytest.approx(WINTER_MEAN_MEV, rel=0.01)


def test_flux_options():
    assert b8_flux("sno", P) == P["solar.flux_sno"] == 5.25e6
    assert b8_flux("ssm", P) == 5.46e6
    assert b8_flux(4.0e6, P) == 4.0e6
    for bad in ("bogus", -1.0, float("nan")):
        with pytest.raises(InputError):
            b8_flux(bad, P)
    src = solar_8b(P, flux="sno")
    assert src.fluence_per_cm2 == pytest.approx(5.25e6 * 3.15576e7)
    total = sum(sp.norm for sp in src.spectra.values())
    assert total == pytest.approx(1.0, rel=1e-9)  # oscillations conserve the number of active neutrinos
    assert src.flavours == SOLAR_FLAVOURS


def test_survival_probability_limits():
    # theta13 = 0 to compare with the two-flavour limits of the brief
    p0 = P.with_overrides({"oscillation.sin2_theta13": 0.0})
    s12 = p0["oscillation.sin2_theta12"]
    sin2_2 = 4 * s12 * (1 - s12)
    assert survival_probability(1e-3, p0) == pytest.approx(1 - 0.5 * sin2_2, rel=1e-4)  # vacuum-averaged
    assert survival_probability(1e5, p0) == pytest.approx(s12, rel=1e-3)  # full adiabatic conversion
    # with theta13: cos^4 th13 (1 - 1/2 sin^2 2th12) + sin^4 th13 at low energy
    s13 = P["oscillation.sin2_theta13"]
    assert survival_probability(1e-3, P) == pytest.approx((1 - s13) ** 2 * (1 - 0.5 * sin2_2) + s13**2, rel=1e-4)
    e = np.linspace(0.1, 17.0, 300)
    pee = survival_probability(e, P)
    assert np.all(np.diff(pee) < 0)  # monotonic MSW transition
    assert 0.30 < survival_probability(10.0, P) < 0.36  # the measured 8B plateau (SNO, Borexino: ~0.32)


def test_density_average_and_single_density():
    e = np.array([2.0, 5.0, 10.0])
    lo = survival_probability(e, P, ne_na_per_cm3=60.0)
    hi = survival_probability(e, P, ne_na_per_cm3=120.0)
    avg = survival_probability(e, P)
    assert np.all(hi < avg) and np.all(avg < lo)  # more density, more conversion


def test_flavour_split_by_theta23():
    e = np.array([1.0, 8.0, 14.0])
    pr = flavour_probabilities(e, P)
    assert np.allclose(pr["nue"] + pr["numu"] + pr["nutau"], 1.0)
    s23 = P["oscillation.sin2_theta23"]
    assert np.allclose(pr["nutau"] / pr["numu"], s23 / (1 - s23))
    q = flavour_probabilities(e, P.with_overrides({"oscillation.sin2_theta23": 0.5}))
    assert np.allclose(q["numu"], q["nutau"])


def test_bad_table_rejected():
    with pytest.raises(InputError):
        TabulatedSpectrum.from_table([1.0, 0.5], [1.0, 1.0])
    t = TabulatedSpectrum.from_table([0.0, 1.0, 2.0], [0.0, 2.0, 0.0])
    assert t.norm == pytest.approx(1.0)
