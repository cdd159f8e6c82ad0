"""Tests written for surviving mutants of sources/sun.py (tools/mutation.py; docs/validation/tests.md, "Mutation
testing")."""

import functools
import math

import numpy as np
import pytest
from scipy.integrate import quad

from cevnsfit.errors import InputError
from cevnsfit.parameters import DEFAULT
from cevnsfit.sources.spectra import TabulatedSpectrum
from cevnsfit.sources.sun import _fermi_positron, b8_flux, b8_spectrum, survival_probability


def test_tabulated_moments_below_one_mev_against_quadrature():
    """m_k(E_min) = int_{E_min} E^k f(E) dE of a piecewise-linear density, by adaptive quadrature, for E_min
    between grid nodes below 1 MeV (mutant: `e_min > 0` -> `> 1` in the partial first segment)."""
    e = np.linspace(0.0, 4.0, 41)
    spec = TabulatedSpectrum.from_table(e, e * (4.0 - e))
    for k in (0, -1, -2):
        for e_min in (0.33, 0.77, 1.23):
            ref = quad(lambda e: spec.pdf(e) * e**k, e_min, 4.0, points=list(spec.energy_mev[1:-1]),
                       epsabs=0, epsrel=1e-12)[0]
            # trapezoid sums of E^k f on the 0.1 MeV grid: <= 0.5 % here (the mutant: 5 % at 0.33 MeV, k = -2)
            assert spec.moment(k, e_min) == pytest.approx(ref, rel=1e-2, abs=0), (k, e_min)


def test_b8_flux_must_be_positive():
    """A user flux of 0 is rejected like a negative one (mutant: `<= 0` -> `< 0`)."""
    with pytest.raises(InputError, match=r"^8B flux must be a positive number of cm\^-2 s\^-1, got 0\.0$"):
        b8_flux(0.0)
    assert b8_flux(5.0e6) == 5.0e6


# ---- the analytic 8B spectrum against an independent quadrature ------------------------------------------------
# Written here from the formula of sun.py's module docstring, not from its code: scalar functions, adaptive quadrature
# over the 8Be excitation energy E_x, no shared grid or helper (only numbers from data/solar.yaml and parameters.yaml).
SOLAR = DEFAULT
Q_EC, E_2PLUS, GAMMA_2PLUS, E_THRESHOLD = (SOLAR[f"solar.{k}"] for k in
                                           ("q_ec_8b", "be8_2plus_energy", "be8_2plus_width", "be8_alpha_threshold"))
M_E, ALPHA = SOLAR["constants.m_e"], SOLAR["constants.alpha"]
M_ALPHA = 3727.379  # MeV, CODATA 2018


def _fermi_by_hand(w, p):
    """F = 2 pi eta / (1 - exp(-2 pi eta)), eta = -Z alpha W / p with Z = 4 (8Be) for a positron."""
    two_pi_eta = -2.0 * math.pi * 4 * ALPHA * w / p
    return two_pi_eta / (1.0 - math.exp(-two_pi_eta))


def _width(e_x):
    """Gamma(E_x) = Gamma_R P(E)/P(E_R): Gamow factor exp(-2 pi eta(E)) of two alphas (eta = 2 * 2 alpha
    sqrt(mu / 2E), mu = m_alpha / 2) times the l = 2 barrier (kR)^4 ~ E^2, E measured from the 2-alpha threshold."""
    e, e_r = e_x - E_THRESHOLD, E_2PLUS - E_THRESHOLD
    eta_sqrt_e = 2 * 2 * ALPHA * math.sqrt(M_ALPHA / 2 / 2)
    return GAMMA_2PLUS * math.exp(-2 * math.pi * eta_sqrt_e * (e**-0.5 - e_r**-0.5)) * (e / e_r) ** 2


def _b8_unnormalised(e_nu):
    """int dE_x BW(E_x) E^2 p W F(W) over the 8Be states that can still emit a positron (W > m_e)."""
    def integrand(e_x):
        w = Q_EC - e_x - M_E - e_nu
        if w <= M_E:
            return 0.0
        p = math.sqrt(w * w - M_E * M_E)
        g = _width(e_x)
        return g / ((e_x - E_2PLUS) ** 2 + g * g / 4) * e_nu**2 * p * w * _fermi_by_hand(w, p)

    top = Q_EC - 2 * M_E - e_nu  # W = m_e: the positron's threshold
    if top <= E_THRESHOLD:
        return 0.0
    return quad(integrand, E_THRESHOLD, top, points=[E_2PLUS] if top > E_2PLUS else None, epsabs=0, epsrel=1e-11,
                limit=200)[0]


@functools.lru_cache(maxsize=1)
def _b8_norm():
    return quad(_b8_unnormalised, 0.0, Q_EC - 2 * M_E - E_THRESHOLD, epsabs=0, epsrel=1e-10, limit=200)[0]


def test_positron_fermi_function_by_hand():
    """2 pi eta / (1 - exp(-2 pi eta)) with eta = -4 alpha W / p, at a few (W, p) by hand (mutants: 2 pi -> 2 / pi,
    1 - exp -> 2 - exp); no momentum (p = 0) gives 0."""
    for kinetic in (0.05, 1.0, 10.0):
        w = kinetic + M_E
        p = math.sqrt(w * w - M_E * M_E)
        assert _fermi_positron(np.array([w]), np.array([p]), 4, ALPHA)[0] == pytest.approx(
            _fermi_by_hand(w, p), rel=1e-13, abs=0)
    # W = 11 MeV, p = 10.99 MeV: 2 pi eta = -0.18357, F = 0.91102... (positron repelled: F < 1)
    assert _fermi_positron(np.array([11.0]), np.array([10.99]), 4, ALPHA)[0] == pytest.approx(
        0.18357 / (math.exp(0.18357) - 1.0), rel=1e-4, abs=0)
    assert _fermi_positron(np.array([M_E]), np.array([0.0]), 4, ALPHA)[0] == 0.0


def test_b8_spectrum_against_quadrature_over_the_final_states():
    """The normalised density f(E) of b8_spectrum against the docstring's formula integrated by quad over E_x at
    eleven neutrino energies (mutants of the Fermi function, the final-state range, the width's Gamow and barrier
    terms, the Breit-Wigner and the sum over 8Be states).  Achieved: <= 7e-7 from 1.5 to 13 MeV (the 1200-state
    and 3401-energy grids), 1.8e-5 at 0.5 MeV (linear interpolation of f ~ E^2), 9e-5 at 15 MeV and 1.4e-3 at
    16.5 MeV (the end-point region, where f falls to 1e-9)."""
    spec = b8_spectrum(SOLAR)
    for e_nu, rel in ((0.5, 1e-4), (1.5, 3e-6), (3.0, 3e-6), (4.5, 3e-6), (6.0, 3e-6), (7.5, 3e-6), (9.0, 3e-6),
                      (11.0, 3e-6), (13.0, 3e-6), (15.0, 5e-4), (16.5, 5e-3)):
        assert spec.pdf(e_nu) == pytest.approx(_b8_unnormalised(e_nu) / _b8_norm(), rel=rel, abs=0), e_nu


def test_b8_end_point_from_the_q_value():
    """The grid ends at the largest neutrino energy Q_EC - 2 m_e - E_threshold (8Be at the 2-alpha threshold, the
    positron at rest; 17.0496 MeV), where the density vanishes; it is positive up to a few 5-keV steps below (there
    it is ~1e-31: the final-state grid's first state lies 14 keV above the threshold) (mutant: + 2 m_e)."""
    spec = b8_spectrum(SOLAR)
    end = Q_EC - 2 * M_E - E_THRESHOLD
    assert spec.energy_mev[-1] == pytest.approx(end, rel=1e-14, abs=0) and end == pytest.approx(17.0496, abs=1e-4)
    assert spec.density[-1] == 0.0 and end - 0.03 < spec.max_energy_mev < end


def test_density_averaged_survival_probability_against_quadrature():
    """P_ee averaged over electron densities uniform in n0 (1 +- spread) (solar.yaml) equals the average by adaptive
    quadrature of the single-density P_ee (mutants of the Gauss-Legendre weights).  Achieved: <= 1.6e-15 relative.
    8 -> 9 Gauss nodes (a mutant) also agrees to 1.6e-15: P_ee is smooth in n_e, that mutant is equivalent."""
    n0, spread = SOLAR["solar.ne_production"], SOLAR["solar.ne_production_spread"]
    for e_nu in (1.0, 5.0, 10.0, 16.0):
        ref = quad(lambda n: float(survival_probability(e_nu, SOLAR, n)), n0 * (1 - spread), n0 * (1 + spread),
                   epsabs=0, epsrel=1e-13)[0] / (2 * spread * n0)
        assert float(survival_probability(e_nu, SOLAR)) == pytest.approx(ref, rel=1e-14, abs=0), e_nu
