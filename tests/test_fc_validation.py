"""Validation of the toy construction that could fail: Wilks far from the boundary, Chernoff at g = 0, coverage.

Fixed seeds: every number here is deterministic.  Tolerances are the binomial / sampling errors of the toys
(3 sigma), never tuned to the outcome.
"""

import numpy as np
import pytest
from scipy.stats import chi2, kstest

from cevnsfit.fc import LineSpec, _analysis, build_line, choose_grids, observe
from cevnsfit.stats.toys import block_rng, confidence_level, critical_value

CL = confidence_level("2sigma")


def line_for(model, dataset, regime="low_mass", cl="2sigma"):
    an = _analysis(None)
    obs = observe(an, model, dataset, regime, cl)
    tested, grid = choose_grids(obs, cl)
    spec = LineSpec(model, dataset, regime, tuple(tested), tuple(grid), 0, 100)
    return build_line(spec), obs, tested


def toys(line, g, n, seed):
    return line.statistic(g, block_rng(seed, ("validation", f"{g:.17g}")), n)


def nearest(tested, g):
    return float(tested[np.argmin(np.abs(np.log(tested[1:] / g))) + 1])


@pytest.fixture(scope="module")
def bl_csi():
    return line_for("B-L", "csi")


def test_far_from_the_boundary_t_follows_chi2_one_dof(bl_csi):
    """B-L on CsI at twice the Wilks limit: the toys' best fit is far from g = 0, so Wilks applies."""
    line, obs, tested = bl_csi
    g = nearest(tested, 2.0 * obs.wilks.limit)
    t = toys(line, g, 600, 11)
    assert kstest(t, chi2(1).cdf).pvalue > 0.01
    # t_c -> 4: the CL quantile of the toys, within 3 binomial sigma of the quantile level
    err = 3 * np.sqrt(CL * (1 - CL) / t.size)
    assert critical_value(t, CL - err) <= 4.0 <= critical_value(t, CL + err)


def test_at_the_boundary_t_c_falls_below_wilks(bl_csi):
    """g = 0 (the SM): about half the toys fit best at the boundary (t = 0); Chernoff's 1/2 chi2_0 + 1/2 chi2_1
    puts the 2 sigma critical value at 2.85 instead of Wilks' 4."""
    line, _, _ = bl_csi
    t = toys(line, 0.0, 600, 12)
    # the mixture itself: half the toys at t = 0, the others chi2 with one d.o.f. (this fixes t_c = 2.85)
    assert abs(np.mean(t == 0.0) - 0.5) < 3 * np.sqrt(0.25 / t.size)
    assert kstest(t[t > 0], chi2(1).cdf).pvalue > 0.01
    assert critical_value(t, CL) < 4.0


@pytest.mark.slow
def test_at_the_boundary_wilks_over_covers():
    """With enough toys the difference is significant: P(t <= 4) = 0.977 at g = 0 (Chernoff) > 0.9545."""
    line, _, _ = line_for("B-L", "csi")
    t = toys(line, 0.0, 3000, 13)
    assert np.mean(t <= 4.0) > CL + 3 * np.sqrt(CL * (1 - CL) / t.size)


def coverage(line, g, n, seed):
    """Fraction of independent toys at g whose FC interval contains g, with t_c from another set of toys.

    A toy's FC interval contains the truth g when its own t(g) <= t_c(g).  The two sets are independent, so the
    error of the fraction combines both binomial errors (of the estimate of t_c and of the fraction)."""
    t_c = critical_value(toys(line, g, n, seed), CL)
    frac = float(np.mean(toys(line, g, n, seed + 1000) <= t_c))
    return frac, np.sqrt(CL * (1 - CL) * 2.0 / n)


def test_fc_covers_at_the_limit(bl_csi):
    line, obs, tested = bl_csi
    frac, err = coverage(line, nearest(tested, obs.wilks.limit), 300, 21)
    assert abs(frac - CL) < 3 * err


@pytest.mark.slow
@pytest.mark.parametrize("model, dataset, where", [("B-L", "csi", 0.0), ("B-L", "csi", 0.5), ("B-L", "csi", 1.0),
                                                   ("B-L", "lar", 0.0), ("B-L", "lar", 1.0)])
def test_fc_coverage_at_several_true_couplings(model, dataset, where):
    line, obs, tested = line_for(model, dataset)
    g = 0.0 if where == 0 else nearest(tested, where * obs.wilks.limit)
    frac, err = coverage(line, g, 1000, 31)
    assert abs(frac - CL) < 3 * err


@pytest.mark.slow
def test_gaussian_line_far_from_the_boundary_follows_chi2():
    line, obs, tested = line_for("B-L", "lar")
    t = toys(line, nearest(tested, 2.0 * obs.wilks.limit), 1000, 41)
    assert kstest(t, chi2(1).cdf).pvalue > 0.01


@pytest.mark.slow  # four observed lines (~1 s each)
def test_raster_lines_reach_the_asymptotic_lines():
    """Analytic limits of the fixed-mass line: for M far below the momentum transfer (|q| ~ 10-100 MeV) the
    propagator is 1/q^2 and the limit on g is the M -> 0 line's; far above, it is g/M times M (contact)."""
    an = _analysis(None)
    light = observe(an, "B-L", "csi", "fixed_mass", "2sigma", mass=1e-2)
    zero = observe(an, "B-L", "csi", "low_mass", "2sigma")
    assert light.wilks.limit == pytest.approx(zero.wilks.limit, rel=1e-5)  # (M/q)^2 < 1e-6
    heavy = observe(an, "B-L", "csi", "fixed_mass", "2sigma", mass=1e5)
    contact = observe(an, "B-L", "csi", "high_mass", "2sigma")
    assert heavy.wilks.limit / 1e5 == pytest.approx(contact.wilks.limit, rel=1e-5)  # (q/M)^2 < 1e-6
