"""Tests written for surviving mutants of the physics core (tools/mutation.py; docs/validation/tests.md, "Mutation
testing"): each kills a mutant that the module's fast test selection let through.  Mutant ids refer to the run
recorded there; the reason each matters is in the test's docstring."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from cevnsfit.errors import InputError
from cevnsfit.parameters import DEFAULT
from cevnsfit.physics.cross_section import sm_couplings
from cevnsfit.physics.form_factors import _j1_over_x, form_factor, helm, klein_nystrand, symmetrized_fermi
from cevnsfit.physics.models import check_couplings, parse_charges


def test_radiative_couplings_carry_the_nutau_charge_radius_coupling():
    """XENONnT's solar nu_tau uses gVp_nutau from parameters.yaml (mutant: `not in` dropped nu_tau, KeyError)."""
    couplings = sm_couplings("radiative")
    assert couplings["nutau"] == (DEFAULT["couplings.gVp_nutau"], DEFAULT["couplings.gVn"])
    assert couplings["nutau"][0] != couplings["numu"][0]  # the charge radius makes it differ from nu_mu's


@pytest.mark.parametrize("bad", [-1e-3, float("nan"), [0.1, float("inf")]])
def test_negative_or_non_finite_coupling_is_named_in_the_error(bad):
    """The one error a user sees for g < 0 or NaN (mutant: the message wording; the fast selection never ran it)."""
    with pytest.raises(InputError, match=r"^g_Z' must be finite and non-negative, got "):
        check_couplings(bad, "g_Z'")
    assert check_couplings([0.0, 1e-5]).tolist() == [0.0, 1e-5]


@pytest.mark.parametrize("position, name", list(enumerate(("q_u", "q_d", "q_e", "q_mu", "q_tau"))))
def test_bad_charge_names_its_position(position, name):
    """`--charges 1,x,...` must say which charge is bad (mutants: the names tuple of parse_charges)."""
    parts = ["1/3"] * 5
    parts[position] = "x"
    with pytest.raises(InputError, match=rf"^--charges {name}: 'x' is not a number"):
        parse_charges(",".join(parts))


def test_j1_series_branch_equals_the_taylor_series():
    """Below x = 1e-2 3 j1(x)/x comes from its series; reference: 3 j1(x)/x = 3 sum_k (-1)^k (2k+2) x^2k / (2k+3)!
    to x^8 (mutant: 280 -> 281 in the x^4 term, a 1e-13 change the radius test cannot see)."""
    x = np.linspace(1e-3, 9.9e-3, 12)
    ref = sum(3.0 * (-1) ** k * (2 * k + 2) * x ** (2 * k) / math.factorial(2 * k + 3) for k in range(5))
    assert np.max(np.abs(_j1_over_x(x) - ref)) < 3e-15


def test_fermi_series_branch_equals_moments_of_the_density():
    """Below q c = 0.05 the symmetrized Fermi form factor is 1 - q^2 <r^2>/6 + q^4 <r^4>/120; reference: the
    moments of rho(r) ~ 1/(cosh(r/a) + cosh(c/a)) by adaptive quadrature (mutants: the <r^4> coefficients, changes
    of 1e-10 .. 1e-6 at these q)."""
    r_rms, a = 4.8, 0.52
    c = math.sqrt(5.0 / 3.0 * (r_rms**2 - 7.0 / 5.0 * (math.pi * a) ** 2))

    def moment(n):
        f = lambda r: r ** (n + 2) / (math.cosh(r / a) + math.cosh(c / a))  # noqa: E731
        return quad(f, 0.0, c, epsabs=0, epsrel=1e-13)[0] + quad(f, c, 80.0, epsabs=0, epsrel=1e-13, limit=200)[0]

    m0 = moment(0)
    r2, r4 = moment(2) / m0, moment(4) / m0
    assert math.sqrt(r2) == pytest.approx(r_rms, rel=1e-12, abs=0)  # the density is the one the code assumes
    q = np.array([0.2, 0.6, 0.99]) * 0.05 / c  # fm^-1, all in the series branch
    ref = 1.0 - q**2 * r2 / 6.0 + q**4 * r4 / 120.0  # the q^6 term (<= 2e-12 here) is left out by both
    assert np.max(np.abs(symmetrized_fermi(q, r_rms, a) - ref)) < 1e-14


@pytest.mark.parametrize("ff, shape, k", [(helm, 0.0, 3.0), (symmetrized_fermi, 0.1, 1.4 * math.pi**2),
                                         (klein_nystrand, 0.0, 6.0)])
def test_form_factor_radius_boundary(ff, shape, k):
    """The box radius^2 is 5/3 (R^2 - k shape^2): zero (R = 0, no smearing) is an error, a small positive value
    (0.5 fm^2) is a valid nucleus (mutants: `<= 0` -> `< 0` for Helm and Klein-Nystrand, `<= 1` for Fermi, whose
    closed form needs a > 0)."""
    q = np.array([0.0, 0.5, 1.0])
    with pytest.raises(InputError):
        ff(q, 0.0, 0.0)
    f = ff(q, math.sqrt(0.3 + k * shape**2), shape)
    assert f[0] == pytest.approx(1.0, rel=1e-12, abs=0) and np.all(np.isfinite(f)) and np.all(np.diff(f) < 0)


def test_form_factor_default_kind_is_helm():
    """physics.md section 5.1: Helm is the default (mutant: the default name)."""
    q = np.linspace(0.0, 150.0, 5)
    assert np.array_equal(form_factor(q, 4.8), form_factor(q, 4.8, "helm"))
