"""Tests written for surviving mutants of stats/intervals.py and stats/morphing.py (tools/mutation.py;
docs/validation/tests.md, "Mutation testing")."""

import math

import numpy as np
import pytest
from scipy.stats import chi2

from cevnsfit.errors import InputError
from cevnsfit.stats.intervals import CONVENTIONS, allowed_intervals, allowed_intervals_rows, threshold


@pytest.mark.parametrize("cl", list(CONVENTIONS))
def test_two_sigma_thresholds_are_chi2_quantiles(cl):
    """2 sigma = the two-sided Gaussian probability erf(2/sqrt 2) = 95.45 %; the Delta chi^2 threshold is the
    chi^2 quantile for the convention's degrees of freedom (Wilks): 4.00 (1 dof), 6.18 (2 dof), to the 3 digits
    quoted (mutants: the 2-dof threshold 6.18 -> 7.18 and its dof 2 -> 3 survived the fast selection)."""
    p = math.erf(2.0 / math.sqrt(2.0))
    dof = CONVENTIONS[cl]["dof"]
    assert dof == {"1dof": 1, "2dof": 2}[cl]
    assert threshold(cl) == pytest.approx(chi2.ppf(p, dof), abs=5e-3)
    assert f"Delta chi^2 = {threshold(cl):g}" in CONVENTIONS[cl]["description"]  # the CLI table's title


def test_interpolated_crossings_are_exact_for_linear_and_log_linear_delta():
    """Without ``refine`` a crossing is interpolated linearly in x, or in log x (log=True, both neighbours > 0):
    exact for Delta chi^2 linear in x, resp. in log x (mutants: the neighbour index, the sign and the division of
    the linear formula, `a > 0` -> `a > 1`; the fast selection always refines)."""
    x = np.arange(0.0, 11.0)
    (lo, hi), = allowed_intervals(x, x, 4.5, log=False).intervals
    assert lo == 0.0 and hi == 4.5
    g = np.logspace(-3.0, 0.0, 7)  # below 1: a log grid of couplings
    delta = 10.0 * (np.log10(g) + 3.0)  # 0 at 1e-3, crosses 4 at 10^-2.6
    (lo, hi), = allowed_intervals(g, delta, 4.0).intervals
    assert lo == g[0] and hi == pytest.approx(10.0**-2.6, rel=1e-12, abs=0)
    # an island between two crossings: Delta chi^2 = (x - 5)^2 on x = 0..10 is below 4 for 3 < x < 7
    r = allowed_intervals(x, (x - 5.0) ** 2, 4.0, log=False)
    assert r.intervals == [(3.0, 7.0)]


def test_limit_is_nan_unless_the_first_interval_starts_at_zero():
    """`limit` is the upper edge of the interval containing 0; nan for an island-only result and for no allowed
    interval (mutants: `> 0` -> `> 1`, `or` -> `and`)."""
    x = np.arange(0.0, 11.0)
    island = allowed_intervals(x, (x - 5.0) ** 2, 4.0, log=False)
    assert math.isnan(island.limit) and island.islands == [(3.0, 7.0)]
    near = allowed_intervals(x, np.where(x < 0.5, 9.0, (x - 1.0) ** 2), 4.0, log=False)  # island from 0.6
    assert near.intervals[0][0] < 1.0 and math.isnan(near.limit)
    assert math.isnan(allowed_intervals(x, np.full(x.size, 9.0), 4.0).limit)
    assert allowed_intervals(x, x, 4.5, log=False).limit == 4.5


def test_grid_must_strictly_increase():
    """A repeated grid point is an error, with the message (mutants: `<= 0` -> `< 0`; the wording)."""
    message = r"^allowed_intervals needs an increasing grid and one Delta chi\^2 per point$"
    with pytest.raises(InputError, match=message):
        allowed_intervals(np.array([0.0, 1.0, 1.0, 2.0]), np.zeros(4), 4.0)


def test_rows_of_a_plane_are_the_intervals_of_each_row():
    """``allowed_intervals_rows`` (a contour: every mass row's crossings found and interpolated at once) gives each
    row what ``allowed_intervals`` gives it alone, written out here for the rows' cases: inside from g = 0 and
    closing, an island, outside throughout, inside throughout (open to the grid's end), crossings at the first
    interval (g = 0: linear there, log elsewhere) and several crossings in one row."""
    g = np.concatenate([[0.0], np.geomspace(1e-4, 1.0, 9)])
    rows = np.array([np.linspace(0.0, 10.0, 10),                     # closes between g[3] and g[4]
                     (np.arange(10.0) - 5.0) ** 2,                   # an island around g[5]
                     np.full(10, 9.0),                               # excluded everywhere
                     np.zeros(10),                                   # allowed everywhere
                     np.concatenate([[5.0, 1.0], np.full(8, 1.0)]),  # allowed from a crossing in [0, g[1]]
                     np.array([0, 5, 0, 5, 0, 5, 0, 5, 0, 0.0])])    # four intervals
    out = allowed_intervals_rows(g, rows, 4.0)
    assert [iv.intervals for iv in out] == [allowed_intervals(g, r, 4.0).intervals for r in rows]
    a, b = g[3], g[4]  # row 0: Delta = 10 k / 9 crosses 4 at k = 3.6, in log g
    assert out[0].intervals == [(0.0, pytest.approx(np.exp(np.log(a) + 0.6 * (np.log(b) - np.log(a))), rel=1e-14))]
    assert out[1].limit != out[1].limit and len(out[1].islands) == 1  # nan: g = 0 excluded
    assert out[2].intervals == [] and out[3].intervals == [(0.0, float("inf"))]
    assert out[4].intervals == [(pytest.approx(0.25 * g[1], rel=1e-14), float("inf"))]  # linear from g = 0
    assert len(out[5].intervals) == 5 and out[5].intervals[-1][1] == float("inf")
