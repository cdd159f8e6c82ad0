"""Allowed intervals of a one-parameter Delta chi^2 and confidence-level conventions (physics spec 12.2-12.3).

Statistics only: a function of one non-negative parameter, sampled on a grid and refined with Brent's method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import brentq

from ..errors import InputError

# 2 sigma: Delta chi^2 = 4 for one parameter (g at fixed M), 6.18 for a region in the (M, g) plane.
CONVENTIONS = {
    "1dof": {"delta_chi2": 4.0, "dof": 1, "description": "2 sigma, one parameter: Delta chi^2 = 4 (g at fixed M)"},
    "2dof": {"delta_chi2": 6.18, "dof": 2, "description": "2 sigma, two parameters: Delta chi^2 = 6.18 ((M, g) region)"},
}


def threshold(cl: str) -> float:
    if cl not in CONVENTIONS:
        raise InputError(f"unknown confidence-level convention '{cl}'; choose one of {', '.join(CONVENTIONS)}")
    return CONVENTIONS[cl]["delta_chi2"]


@dataclass
class AllowedIntervals:
    """Intervals [lo, hi] of the parameter where Delta chi^2 < threshold (hi = inf if open at the grid end)."""

    intervals: list
    threshold: float

    @property
    def limit(self) -> float:
        """Upper edge of the interval that contains 0 (the tabulated limit); nan if 0 itself is excluded."""
        if not self.intervals or self.intervals[0][0] > 0:
            return float("nan")
        return float(self.intervals[0][1])

    @property
    def islands(self) -> list:
        """Allowed intervals not connected to 0 (e.g. the sign-flip band of destructive interference)."""
        return [iv for iv in self.intervals if iv[0] > 0]


def allowed_intervals(
    grid: np.ndarray, delta: np.ndarray, thr: float, refine: Callable[[float], float] | None = None, log: bool = True
) -> AllowedIntervals:
    """Allowed intervals from Delta chi^2 sampled on an increasing ``grid`` (grid[0] may be 0).

    ``refine(x)`` returns Delta chi^2 at any x; each crossing bracketed by the grid is then solved to
    relative precision 1e-10 with Brent's method, otherwise it is interpolated linearly (in log x when ``log``
    and both neighbours are positive: couplings are scanned on log grids).
    """
    grid = np.asarray(grid, dtype=float)
    delta = np.asarray(delta, dtype=float)
    if grid.shape != delta.shape:
        raise InputError("allowed_intervals needs an increasing grid and one Delta chi^2 per point")
    return allowed_intervals_rows(grid, delta[None], thr, refine, log)[0]


def allowed_intervals_rows(grid: np.ndarray, delta: np.ndarray, thr: float,
                           refine: Callable[[float], float] | None = None, log: bool = True) -> list[AllowedIntervals]:
    """:func:`allowed_intervals` of every row of ``delta`` (m, grid size) -- a plane's contour, one row per mass --
    with the grid's crossings found and interpolated for all rows at once (``refine``: of a single row)."""
    grid = np.asarray(grid, dtype=float)
    delta = np.asarray(delta, dtype=float)
    if grid.ndim != 1 or delta.ndim != 2 or delta.shape[1] != grid.size or np.any(np.diff(grid) <= 0):
        raise InputError("allowed_intervals needs an increasing grid and one Delta chi^2 per point")
    if refine is not None and delta.shape[0] != 1:
        raise InputError("a refinement of the crossings refines one row")
    inside = delta < thr
    row, i = np.nonzero(inside[:, :-1] != inside[:, 1:])  # grid[i] and grid[i + 1] on either side of thr
    a, b = grid[i], grid[i + 1]
    fa, fb = delta[row, i] - thr, delta[row, i + 1] - thr
    frac = fa / (fa - fb)
    logarithmic = log & (a > 0)
    la = np.log(np.where(logarithmic, a, 1.0))
    x = np.where(logarithmic, np.exp(la + (np.log(b) - la) * frac), a + (b - a) * frac)

    def crossing(q: int) -> float:
        if refine is not None:
            ra, rb = refine(a[q]) - thr, refine(b[q]) - thr
            if np.sign(ra) != np.sign(rb):
                # Brent starts from f(a) and f(b): the two values just computed (a refinement may be a profile fit)
                known = {a[q]: ra, b[q]: rb}
                return float(brentq(lambda t: known[t] if t in known else refine(t) - thr, a[q], b[q], xtol=1e-14,
                                    rtol=1e-10))
        return float(x[q])

    out = []
    q = 0
    for r in range(delta.shape[0]):
        intervals = []
        start = grid[0] if inside[r, 0] else None
        while q < row.size and row[q] == r:
            if inside[r, i[q]]:
                intervals.append((start, crossing(q)))
                start = None
            else:
                start = crossing(q)
            q += 1
        if start is not None:
            intervals.append((start, float("inf")))
        out.append(AllowedIntervals(intervals, thr))
    return out
