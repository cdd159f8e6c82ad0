"""The response models shared by the experiments and projections (responses/) against independent numerical
integration and the formulas they replace in the data-set modules."""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from cevnsfit.responses import make_response
from cevnsfit.responses.efficiency import logistic_efficiency
from cevnsfit.responses.energy import gaussian_response_matrix
from cevnsfit.responses.quenching import linear_quenching_kevee, polynomial_quenching_kevee

EDGES = np.array([0.0, 5.0, 12.0, 20.0, 35.0])
KINKS = np.array([-1e3, 0.0, 3.0, 7.5, 9.0, 16.0, 27.0, 1e4])  # a piecewise-linear acceptance with kinks inside bins
VALUES = np.array([0.0, 0.0, 0.1, 0.55, 0.6, 0.9, 0.95, 0.95])


def acceptance(e):
    return np.interp(e, KINKS, VALUES)


def quadrature(lo, hi, mu, s, eff):
    """int_lo^hi eff(E) N(E; mu, s) dE by adaptive quadrature, split at the acceptance's kinks."""
    points = [k for k in KINKS if lo < k < hi]
    return quad(lambda e: float(eff(e)) * norm.pdf(e, mu, s), lo, hi, points=points or None, epsabs=1e-13,
                epsrel=1e-11, limit=200)[0]


def kinked_nodes(edges):
    return [np.concatenate([[lo], KINKS[(KINKS > lo) & (KINKS < hi)], [hi]]) for lo, hi in zip(edges[:-1], edges[1:])]


def test_linear_mode_is_exact_for_a_piecewise_linear_acceptance():
    mu = np.array([0.5, 4.0, 9.5, 15.0, 30.0])
    sigma = np.array([0.3, 1.2, 2.0, 0.05, 4.0])
    got = gaussian_response_matrix(mu, sigma, kinked_nodes(EDGES), acceptance)
    want = np.array([[quadrature(lo, hi, m, s, acceptance) for m, s in zip(mu, sigma)]
                     for lo, hi in zip(EDGES[:-1], EDGES[1:])])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13)


def test_midpoint_mode_converges_to_the_quadrature_of_a_smooth_acceptance():
    eff = make_response("efficiency", "logistic", plateau=0.9, x0=6.0, k=0.8, offset=0.0, upper=1.0)
    mu, sigma = np.array([3.0, 8.0, 20.0]), np.array([1.0, 2.5, 3.0])
    want = np.array([[quadrature(lo, hi, m, s, eff) for m, s in zip(mu, sigma)] for lo, hi in zip(EDGES[:-1], EDGES[1:])])
    errors = []
    for n in (8, 64):
        nodes = [np.linspace(lo, hi, n + 1) for lo, hi in zip(EDGES[:-1], EDGES[1:])]
        errors.append(np.max(np.abs(gaussian_response_matrix(mu, sigma, nodes, eff, linear=False) - want)))
    assert errors[1] < 1e-4 and errors[1] < errors[0] / 30  # second order: 8x finer, ~64x smaller


def test_zero_sigma_is_a_step_and_missing_bins_accept_nothing():
    mu = np.array([2.0, 6.0, 13.0])
    nodes = kinked_nodes(EDGES)
    nodes[3] = None
    got = gaussian_response_matrix(mu, np.zeros(3), nodes, acceptance)
    want = np.zeros((4, 3))
    want[0, 0], want[1, 1], want[2, 2] = acceptance(2.0), acceptance(6.0), acceptance(13.0)
    np.testing.assert_allclose(got, want, atol=1e-15)


def test_quenching_and_efficiency_formulas():
    t_kev = np.array([0.0, 1.0, 10.0, 50.0])
    np.testing.assert_allclose(linear_quenching_kevee(t_kev, 0.246, 7.8e-4), 0.246 * t_kev + 7.8e-4 * t_kev**2)
    np.testing.assert_array_equal(make_response("quenching", "linear", a=0.246, b=7.8e-4).electron_equivalent_kev(
        t_kev * 1e-3), linear_quenching_kevee(t_kev * 1e-3 * 1e3, 0.246, 7.8e-4))
    c = (0.05, 4.0, -20.0, 30.0)
    x = t_kev * 1e-3
    np.testing.assert_allclose(polynomial_quenching_kevee(x, c), 1e3 * (c[0] * x + c[1] * x**2 + c[2] * x**3 + c[3] * x**4))
    np.testing.assert_array_equal(make_response("quenching", "polynomial", coefficients=c).electron_equivalent_kev(x),
                                  polynomial_quenching_kevee(x, c))
    pe = np.array([0.0, 7.0, 7.2, 30.0, 200.0])
    eff = logistic_efficiency(pe, 1.32045, 0.285979, 10.8646, -0.333322)
    assert eff[0] == 0.0 and eff[1] == 0.0 and eff[2] > 0  # clipped below the zero crossing at 7.07 PE
    assert eff[-1] == pytest.approx(1.32045 - 0.333322)
    assert logistic_efficiency(np.array([100.0]), 2.0, 1.0, 0.0, 0.0, upper=1.0)[0] == 1.0
