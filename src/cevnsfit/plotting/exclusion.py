"""Geometry of a CEvNS exclusion on the (M, g) plane: which polygons are excluded, and their boundary lines.

At every grid mass the allowed coupling intervals are those of ``res.contour(dataset, cl)`` (Delta chi^2
interpolated linearly between grid couplings, in log g, as :func:`cevnsfit.stats.intervals.allowed_intervals`
does); the excluded gaps between them are joined straight in log-log from one mass to the next.  So the drawn
boundary passes exactly through the tabulated ``g_upper`` at every grid mass, and sign-flip islands -- often
narrower than the coupling step and drifting by more than their width per mass step, which a 2-D contour of the
grid breaks into dots -- stay continuous bands.  Their widths are only as good as the scan: an island narrower than
the coupling step is under-resolved (ragged edges), and one whose Delta chi^2 dips below the threshold only between
grid couplings is missed.  The g = 0 column of the grid is not drawn (log axes).  Units: masses in MeV, couplings
dimensionless.  No drawing here: the results are arrays and a matplotlib Path (:mod:`.planes` draws them).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.path import Path as MplPath

from ..experiments import DEFAULT_DATA_SET
from ..mediators import dataset_members
from ..stats.intervals import threshold

__all__ = ["exclusion_geometry", "boundary_at"]


def _orient(poly: np.ndarray, ccw: bool) -> np.ndarray:
    """``poly`` with the requested orientation in (log M, log g) (outer boundaries CCW, holes CW)."""
    x, y = np.log10(poly[:, 0]), np.log10(poly[:, 1])
    area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return poly if (area > 0) == ccw else poly[::-1]


def _excluded_intervals(allowed: list, bottom: float, top: float) -> list[tuple[float, float]]:
    """Complement of the sorted allowed intervals (lo, hi) in (0, top]; an excluded g -> 0 starts at ``bottom``."""
    out, edge = [], bottom
    for lo, hi in allowed:
        if lo > edge:
            out.append((edge, min(lo, top)))
        edge = max(edge, hi)
        if edge >= top:
            return out
    out.append((edge, top))
    return [(a, b) for a, b in out if b > a]


def _overlap(a: tuple, b: tuple) -> float:
    """Overlap of two coupling intervals in decades (negative: the gap between them)."""
    return math.log10(min(a[1], b[1])) - math.log10(max(a[0], b[0]))


def _slab(m0: float, m1: float, left: list, right: list) -> tuple[list, list]:
    """Excluded polygons and their drawable edges between two neighbouring masses.

    ``left``/``right``: excluded intervals at m0/m1, sorted.  Same number on both sides: joined in order (the
    bands may drift by more than their width from one mass to the next).  Otherwise each band on the side with
    more bands is attached to the band of the other side it overlaps most: two or more attached to one is a
    split around an allowed island born (or closing) between the masses, drawn as a hole tapering to a point
    half-way; a band overlapping nothing is born (or dies) there, tapering to a point.
    """
    mid = math.sqrt(m0 * m1)
    polys, edges = [], []
    if len(left) == len(right):
        for (a0, b0), (a1, b1) in zip(left, right):
            polys.append([(m0, a0), (m1, a1), (m1, b1), (m0, b0)])
            edges += [[(m0, a0), (m1, a1)], [(m1, b1), (m0, b0)]]
        return polys, edges
    swap = len(left) > len(right)
    few, many = (right, left) if swap else (left, right)
    m_few, m_many = (m1, m0) if swap else (m0, m1)
    children: dict[int, list] = {k: [] for k in range(len(few))}
    for band in many:
        scores = [(_overlap(band, f), k) for k, f in enumerate(few)]
        best = max(scores) if scores else (-1.0, -1)
        if best[0] > 0:
            children[best[1]].append(band)
        else:  # born between the masses
            tip = (mid, math.sqrt(band[0] * band[1]))
            polys.append([tip, (m_many, band[0]), (m_many, band[1])])
            edges += [[tip, (m_many, band[0])], [(m_many, band[1]), tip]]
    for k, (a, b) in enumerate(few):
        kids = children[k]
        if not kids:  # dies between the masses
            tip = (mid, math.sqrt(a * b))
            polys.append([(m_few, a), tip, (m_few, b)])
            edges += [[(m_few, a), tip], [tip, (m_few, b)]]
            continue
        poly, edge = [(m_few, a), (m_many, kids[0][0])], [[(m_few, a), (m_many, kids[0][0])]]
        for c, d in zip(kids[:-1], kids[1:]):
            tip = (mid, math.sqrt(c[1] * d[0]))
            poly += [(m_many, c[1]), tip, (m_many, d[0])]
            edge.append([(m_many, c[1]), tip, (m_many, d[0])])
        poly += [(m_many, kids[-1][1]), (m_few, b)]
        edge.append([(m_many, kids[-1][1]), (m_few, b)])
        polys.append(poly)
        edges += edge
    return polys, edges


def _chain(segments: list, top: float) -> list[np.ndarray]:
    """Join polyline pieces that share end points; drop pieces along the top of the scan."""
    pieces = [list(map(tuple, s)) for s in segments if not all(p[1] >= top * (1 - 1e-12) for p in s)]
    key = lambda p: (round(math.log10(p[0]), 9), round(math.log10(p[1]), 9))  # noqa: E731
    starts: dict = {}
    for n, s in enumerate(pieces):
        starts.setdefault(key(s[0]), []).append(n)
    used, lines = set(), []
    ends = {key(s[-1]) for s in pieces}
    order = [n for n, s in enumerate(pieces) if key(s[0]) not in ends] + list(range(len(pieces)))
    for n in order:
        if n in used:
            continue
        used.add(n)
        line = list(pieces[n])
        while True:
            nxt = [j for j in starts.get(key(line[-1]), []) if j not in used]
            if not nxt:
                break
            used.add(nxt[0])
            line += pieces[nxt[0]][1:]
        arr = np.asarray(line, float)
        arr[arr[:, 1] >= top * (1 - 1e-12), 1] = np.nan  # no line along the top of the scan
        lines.append(arr)
    return lines


def exclusion_geometry(res, dataset: str = DEFAULT_DATA_SET, cl: str = "2dof") -> dict:
    """The 2 sigma excluded region of ``dataset`` from the per-mass allowed intervals of ``res.contour``.

    At every grid mass the excluded couplings are the gaps between the allowed intervals (crossings interpolated
    as in :func:`cevnsfit.stats.intervals.allowed_intervals`); gaps at neighbouring masses are joined straight in
    log-log (see :func:`_slab`).  Sign-flip islands (allowed bands inside the excluded region of destructive-
    interference models) are often narrower than the coupling step of the scan and drift by more than their width
    from one mass to the next: a 2-D contour of the grid breaks them into dots, joined per mass they stay bands.

    Returns, in (M [MeV], g): ``"boundary"``: the upper edge of the allowed interval containing g = 0 as (n, 2)
    arrays, i.e. ``res.contour(dataset, cl)["g_upper"]`` (the tabulated limit); ``"edges"``: every boundary of
    the excluded region as polylines (NaN where they would run along the top of the scan); ``"path"``: the
    excluded region as one matplotlib Path; ``"n_islands"``: number of masses with an allowed island;
    ``"contour"``: the dict of ``res.contour``.
    """
    dataset_members(dataset)
    threshold(cl)
    cont = res.contour(dataset, cl)
    masses = np.asarray(cont["mass_mev"], float)
    couplings = np.asarray(res.plane.couplings, float)
    positive = couplings[couplings > 0]
    top, bottom = float(positive.max()), float(positive.min()) * 1e-3
    upper = np.asarray(cont["g_upper"], float)

    rows = []
    for u, isl in zip(upper, cont["islands"]):
        allowed = ([(0.0, min(float(u), top))] if not np.isnan(u) else []) + [(float(a), min(float(b), top)) for a, b in isl]
        rows.append(_excluded_intervals(sorted(allowed), bottom, top))
    polys, segments = [], []
    for i in range(masses.size - 1):
        p, e = _slab(masses[i], masses[i + 1], rows[i], rows[i + 1])
        polys += p
        segments += e
    verts, codes = [], []
    for poly in polys:
        poly = _orient(np.asarray(poly, float), True)
        verts += [*poly, poly[0]]
        codes += [MplPath.MOVETO] + [MplPath.LINETO] * (len(poly) - 1) + [MplPath.CLOSEPOLY]
    path = MplPath(np.asarray(verts), codes) if verts else MplPath(np.empty((0, 2)))

    shown = np.isfinite(upper) & (upper < top)
    boundary, start = [], None
    for i in range(masses.size + 1):
        if i < masses.size and shown[i]:
            start = i if start is None else start
        elif start is not None:
            if i - start >= 2:
                boundary.append(np.column_stack((masses[start:i], upper[start:i])))
            start = None
    n_islands = sum(1 for isl in cont["islands"] if isl)
    return {"boundary": boundary, "edges": _chain(segments, top), "path": path, "n_islands": n_islands,
            "contour": cont}


def boundary_at(lines: list[np.ndarray], mass_mev: float) -> list[float]:
    """Couplings (sorted) where the lines cross the vertical M = ``mass_mev`` (log-log interpolation)."""
    lm = math.log10(mass_mev)
    out = []
    for line in lines:
        x, y = np.log10(line[:, 0]), np.log10(line[:, 1])
        for i in range(len(x) - 1):
            a, b = x[i], x[i + 1]
            if (a - lm) * (b - lm) <= 0 and a != b:
                out.append(10.0 ** (y[i] + (y[i + 1] - y[i]) * (lm - a) / (b - a)))
    return sorted(out)
