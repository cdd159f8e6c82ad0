"""The reference toy line: the plain path that :class:`cevnsfit.stats.toys.Line` is compared with
(tests/test_fc_speed.py, benchmarks/bench_fc.py).  Every grid pair through ``ReplicaCost.replicas_grid`` (each
(replica, template) pair profiled from its own start), off-grid points from the signals themselves (no basis
products), and the minimum between the neighbours of the grid minimum refined by golden-section search instead of
the line's parabola vertices."""

from __future__ import annotations

import numpy as np

from cevnsfit.stats.chi2 import ReplicaCost
from cevnsfit.stats.toys import Line

# The bracket (two grid steps) shrinks by 0.618^20 = 6.6e-5; near the minimum chi^2 is quadratic, so the error of
# the minimum is ~(6.6e-5)^2 = 4e-9 of the chi^2 change across the bracket: far below the toy statistics.
GOLDEN_STEPS = 20


class ReferenceLine(Line):
    """A :class:`Line` of the same members and grid, computed the plain way (module docstring)."""

    def __init__(self, members, grid):
        super().__init__(members, grid)
        self._grid_factors = [None] * len(self.members)
        self._linear_factors = [None] * len(self.members)

    def chi2_grid(self, replicas) -> np.ndarray:
        return sum(ReplicaCost.replicas_grid(m.cost, sig, r.observed, r.centres)
                   for m, r, sig in zip(self.members, replicas, self._grid_signals))

    def _refine(self, reps, a, b) -> np.ndarray:
        ratio = (np.sqrt(5.0) - 1.0) / 2.0
        x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
        f1, f2 = self.chi2(x1, reps), self.chi2(x2, reps)
        for _ in range(GOLDEN_STEPS):
            left = f1 < f2  # the minimum lies in [a, x2]: x2 <- x1, new x1; else [x1, b]: x1 <- x2, new x2
            a, b = np.where(left, a, x1), np.where(left, x2, b)
            new = np.where(left, b - ratio * (b - a), a + ratio * (b - a))
            fn = self.chi2(new, reps)
            x2, f2, x1, f1 = np.where(left, x1, new), np.where(left, f1, fn), np.where(left, new, x2), np.where(left, fn, f2)
        return np.minimum(f1, f2)
