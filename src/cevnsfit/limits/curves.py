"""A published limit curve in the (M_Z' [MeV], coupling) plane, ready for line or filled plotting.

Storage convention: ``mass_mev``, ``lower`` and ``upper`` are parallel arrays; disjoint pieces of one curve
(e.g. BaBar around the J/psi and Upsilon vetoes, or the mass windows of a beam dump) are separated by one all-NaN
row, so ``plt.plot(c.mass_mev, c.lower)`` and ``fill_between`` break there instead of drawing spurious joins.
:meth:`LimitCurve.segments` and :meth:`LimitCurve.polygons` give the pieces without the separators.

Geometry (what the numbers mean):

* one-sided (``upper is None``): couplings above ``lower`` are excluded (or favoured, for a band);
* two-sided (``upper`` given): couplings between ``lower`` and ``upper`` are excluded; ``upper = inf`` where the
  source writes an off-scale value (the excluded region runs off the top of any plot);
* ``outline = True``: ``(mass_mev, lower)`` is the closed outline of the region, in drawing order (FORESEE polygons
  that double back in mass); ``upper`` is None and ``lower`` is then simply the coupling along the outline.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

KINDS = ("bound", "projection", "band")
COUPLINGS = ("g", "epsilon")

# Sources close polygons or mark "no limit at this mass" with huge couplings: DarkCast writes 1e5, FORESEE 1e4-1e7.
# No physical coupling in these plots comes near 1e3, so anything at or above it is "off scale".
OFF_SCALE = 1e3


@dataclass(frozen=True, eq=False)
class LimitCurve:
    """One external limit (or band).  Masses in MeV, couplings dimensionless in the convention ``coupling``."""

    label: str  # experiment name for a legend
    reference: str  # short citation with arXiv number
    mass_mev: np.ndarray
    lower: np.ndarray  # lower edge of the excluded coupling (NaN rows separate segments)
    upper: np.ndarray | None = None  # upper edge for two-sided limits/bands, else None
    kind: str = "bound"  # "bound" (existing limit), "projection" (future reach), "band" (favoured region, g-2)
    source_file: str = ""
    model: str = ""  # model of the numbers in the file (DarkCast / FORESEE name)
    coupling: str = "g"  # "g": gauge coupling multiplying the U(1)' charges; "epsilon": kinetic mixing
    outline: bool = False  # (mass_mev, lower) trace a closed outline (see module docstring)
    cl: str = "as published (mostly 90% CL)"
    notes: str = ""  # conventions and caveats that a plot or table should repeat

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}, not {self.coupling!r}")
        n = len(self.mass_mev)
        if len(self.lower) != n or (self.upper is not None and len(self.upper) != n):
            raise ValueError("mass_mev, lower and upper must have the same length")
        if self.outline and self.upper is not None:
            raise ValueError("an outline curve has no upper array")

    # -- pieces ------------------------------------------------------------------------------------------------
    def segments(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """The disjoint pieces as ``(mass_mev, lower, upper_or_None)`` without the NaN separators."""
        sep = np.isnan(self.mass_mev)
        edges = np.flatnonzero(sep)
        starts = np.concatenate(([0], edges + 1))
        stops = np.concatenate((edges, [len(sep)]))
        out = []
        for a, b in zip(starts, stops):
            if b > a:
                up = None if self.upper is None else self.upper[a:b]
                out.append((self.mass_mev[a:b], self.lower[a:b], up))
        return out

    def polygons(self, top: float = 1.0) -> list[np.ndarray]:
        """Vertices ``(n, 2)`` = (mass_mev, coupling) of the filled region of each piece, for ``plt.fill``.

        One-sided pieces are closed at coupling ``top`` (the top of the plot); two-sided pieces run along
        ``lower`` and back along ``upper``; outlines are returned as they are.  Every coupling is clipped to
        ``top`` so no off-scale vertex (1e5, inf) survives.  Pieces with fewer than two points are skipped.
        """
        polys = []
        for m, lo, up in self.segments():
            if len(m) < 2:
                continue
            if self.outline:
                x, y = m, lo
            elif up is None:
                x = np.concatenate((m, [m[-1], m[0]]))
                y = np.concatenate((lo, [top, top]))
            else:
                x = np.concatenate((m, m[::-1]))
                y = np.concatenate((lo, up[::-1]))
            polys.append(np.column_stack((x, np.minimum(y, top))))
        return polys

    # -- helpers -----------------------------------------------------------------------------------------------
    def has_points_in(self, mass_min_mev: float, mass_max_mev: float) -> bool:
        """True when at least one finite (mass, lower) point lies within [mass_min_mev, mass_max_mev]."""
        ok = np.isfinite(self.mass_mev) & np.isfinite(self.lower)
        ok &= (self.mass_mev >= mass_min_mev) & (self.mass_mev <= mass_max_mev)
        return bool(np.any(ok))

    def scaled(self, factor: float, **changes) -> "LimitCurve":
        """Copy with every coupling multiplied by ``factor`` (e.g. g = e * epsilon) and other fields replaced."""
        upper = None if self.upper is None else self.upper * factor
        return dataclasses.replace(self, lower=self.lower * factor, upper=upper, **changes)

    def replace(self, **changes) -> "LimitCurve":
        """Copy with some fields replaced (label, notes, kind, ...)."""
        return dataclasses.replace(self, **changes)


def join_segments(pieces: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Concatenate pieces (tuples of equal-length column arrays) with one all-NaN row between them."""
    ncols = len(pieces[0])
    cols: list[list[np.ndarray]] = [[] for _ in range(ncols)]
    for i, piece in enumerate(pieces):
        for c in range(ncols):
            if i:
                cols[c].append(np.array([np.nan]))
            cols[c].append(np.asarray(piece[c], dtype=float))
    return tuple(np.concatenate(c) for c in cols)
