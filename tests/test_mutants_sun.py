"""Tests written for surviving mutants of sources/sun.py (tools/mutation.py; docs/validation.md, "Mutation
testing")."""

import numpy as np
import pytest
from scipy.integrate import quad

from cevnsfit.errors import InputError
from cevnsfit.parameters import DEFAULT
from cevnsfit.sources.sun import TabulatedSpectrum, b8_flux, with_parameter_file


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


def test_parameter_file_added_once():
    """Adding a parameter file to parameters that already hold all its keys returns them unchanged (the early
    return; mutant: `kk in` -> `kk not in`, which copies the tree every time)."""
    once = with_parameter_file(DEFAULT, "solar.yaml")
    assert once is not DEFAULT and with_parameter_file(once, "solar.yaml") is once
