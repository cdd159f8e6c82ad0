"""Exclusion planes (M, g) of the light-mediator models, as in AC22 (Atzori Corona et al., JHEP 05 (2022) 109).

:func:`plane_figure` draws one model: the 2 sigma CEvNS exclusions of COHERENT CsI, LAr and their combination
(contour line + light fill; allowed sign-flip islands of destructive-interference models stay unfilled), the
(g-2)_mu favoured band(s), and other experiments' limits (DarkCast v2.1 / FORESEE, grey).
:func:`summary_figure` overlays the upper-limit curves of all vector models.

Geometry (:func:`exclusion_geometry`): at every grid mass the allowed coupling intervals are those of
``res.contour(dataset, cl)`` (Delta chi^2 interpolated linearly between grid couplings, in log g, as
:func:`cevnsfit.stats.intervals.allowed_intervals` does); the excluded gaps between them are joined straight in
log-log from one mass to the next.  So the drawn boundary passes exactly through the tabulated ``g_upper`` at
every grid mass, and sign-flip islands -- often narrower than the coupling step and drifting by more than their
width per mass step, which a 2-D contour of the grid breaks into dots -- stay continuous bands.  Their widths are
only as good as the scan: an island narrower than the coupling step is under-resolved (ragged edges), and one
whose Delta chi^2 dips below the threshold only between grid couplings is missed.  The g = 0 column of the grid
is not drawn (log axes).  Units: masses in MeV, couplings dimensionless.

Figures use the house style (:mod:`cevnsfit.plotting.style`); save them with ``style.save`` (png, pdf, svg).
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

from ..errors import DataError, InputError
from ..experiments import DATA_SETS
from ..mediators import dataset_members
from ..physics.gm2 import band_has_lower_edge, favoured_band, get_epoch
from ..stats.intervals import CONVENTIONS, threshold
from .style import STYLE, plt

MASS_RANGE_MEV = (1e-2, 1e4)  # the x axis covers at least this range

# colour, fill alpha, line width, legend label -- from the data-set registry
DATASET_STYLE = {n: (d.colour, d.fill_alpha, d.line_width, d.legend) for n, d in DATA_SETS.items()}
GM2_COLOURS = {"2021": "#1a9641", "2023": "#66c2a5", "2025": "#00441b"}
OTHER_FACE, OTHER_EDGE, OTHER_TEXT = "0.85", "0.62", "0.25"

_GREEK = {"mu": r"\mu", "tau": r"\tau"}


# ---------------------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------------------


def model_label(name: str) -> str:
    """Mathtext name of a model: "L_mu-L_tau" -> "$L_\\mu-L_\\tau$"; "scalar" and "universal" stay words."""
    if name == "scalar":
        return r"light scalar $\phi$"
    if name == "universal":
        return name
    out = name
    for word, tex in _GREEK.items():
        out = out.replace(f"_{word}", f"_{tex}")
    return f"${out}$"


def _fraction(x: float) -> str:
    f = Fraction(x).limit_denominator(12)
    return str(f) if abs(float(f) - x) < 1e-9 else f"{x:g}"


def charges_label(model) -> str:
    """"$(Q'_u, ..., Q'_\\tau) = (1/3, ...)$" for a vector model; a short description for the scalar."""
    charges = getattr(model, "charges", None)
    if charges is None or getattr(model, "kind", "vector") == "scalar":
        return r"(universal coupling $\tilde g_\phi$, added incoherently)"
    values = ", ".join(_fraction(q) for q in charges)
    return rf"$(Q'_u, Q'_d, Q'_e, Q'_\mu, Q'_\tau) = ({values})$"


def _axis_labels(model) -> tuple[str, str]:
    if getattr(model, "kind", "vector") == "scalar":
        return r"$M_\phi$ [MeV]", r"$\tilde g_\phi$"
    return r"$M_{Z'}$ [MeV]", r"$g_{Z'}$"


def _cl_text(cl: str) -> str:
    info = CONVENTIONS[cl]
    return rf"2$\sigma$: $\Delta\chi^2 \geq {info['delta_chi2']:g}$ ({info['dof']} d.o.f.)"


def _times_ten(value: float, power: int = -10) -> str:
    return f"{value / 10.0**power:.3g}"


# ---------------------------------------------------------------------------------------------------------------
# Geometry of the CEvNS exclusion
# ---------------------------------------------------------------------------------------------------------------


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


def exclusion_geometry(res, dataset: str = "csi+lar", cl: str = "2dof") -> dict:
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


# ---------------------------------------------------------------------------------------------------------------
# Plot ranges
# ---------------------------------------------------------------------------------------------------------------


def _mass_limits(res) -> tuple[float, float]:
    m = np.asarray(res.plane.masses_mev, float)
    return min(MASS_RANGE_MEV[0], float(m.min())), max(MASS_RANGE_MEV[1], float(m.max()))


def _auto_ylim(uppers: list[np.ndarray]) -> tuple[float, float]:
    """One decade below the lowest and above the highest CEvNS upper limit, within [1e-8, 1]."""
    vals = np.concatenate([u[np.isfinite(u) & (u > 0)] for u in uppers]) if uppers else np.array([])
    if vals.size == 0:
        return 1e-6, 1e-1
    lo = 10.0 ** (math.floor(math.log10(vals.min())) - 1)
    hi = 10.0 ** (math.ceil(math.log10(vals.max())) + 1)
    lo, hi = max(lo, 1e-8), min(hi, 1.0)
    if hi / lo < 1e3:
        lo = hi / 1e3
    return lo, hi


# ---------------------------------------------------------------------------------------------------------------
# Other experiments
# ---------------------------------------------------------------------------------------------------------------

_FAMILY_TEX = {"(g-2)_e": r"$(g-2)_e$"}


def _family(label: str) -> str:
    """Short name for a text label: "NA64 (2019, inv.)" -> "NA64", "(g-2)_e, alpha(Cs)" -> "(g-2)_e"."""
    label = label.replace(" [B-L proxy]", "")
    if label.startswith("(g-2)_e"):
        return _FAMILY_TEX["(g-2)_e"]
    short = label.split(" (")[0].strip()
    return short.replace("mumu", r"$\mu\mu$")


def _curve_polygons(curves, top: float) -> list[tuple[int, np.ndarray]]:
    out = []
    for k, curve in enumerate(curves):
        for poly in curve.polygons(top=top):
            poly = np.asarray(poly, float)
            ok = np.all(np.isfinite(poly), axis=1)
            poly = poly[ok]
            if len(poly) < 3:
                continue
            poly[:, 1] = np.clip(poly[:, 1], 1e-30, top)
            poly[:, 0] = np.clip(poly[:, 0], 1e-30, None)
            out.append((k, poly))
    return out


def _envelope_labels(ax, curves, polys, xlim, ylim, obstacles=(), fontsize: float = 5.5, min_decades: float = 0.3):
    """Label the experiment that sets the lowest visible excluded coupling over each mass stretch."""
    nx, ny = 240, 160
    lx = np.linspace(math.log10(xlim[0]), math.log10(xlim[1]), nx)
    ly = np.linspace(math.log10(ylim[0]), math.log10(ylim[1]), ny)
    owner = np.full(nx, -1)
    row = np.full(nx, ny)
    for k, poly in polys:
        lp = np.log10(poly)
        cols = np.flatnonzero((lx >= lp[:, 0].min()) & (lx <= lp[:, 0].max()))
        rows = np.flatnonzero((ly >= lp[:, 1].min()) & (ly <= lp[:, 1].max()))
        if cols.size == 0 or rows.size == 0:
            continue
        gx, gy = np.meshgrid(lx[cols], ly[rows])
        sub = MplPath(lp).contains_points(np.column_stack((gx.ravel(), gy.ravel()))).reshape(rows.size, cols.size)
        inside = np.zeros((ny, nx), bool)
        inside[np.ix_(rows, cols)] = sub
        if not inside.any():
            continue
        first = np.where(inside.any(axis=0), inside.argmax(axis=0), ny)
        better = first < row
        row[better], owner[better] = first[better], k
    fams = [(_family(curves[k].label) if k >= 0 else None) for k in owner]
    runs, start = [], 0
    for i in range(1, nx + 1):
        if i == nx or fams[i] != fams[start]:
            if fams[start] is not None:
                runs.append((start, i - 1, fams[start]))
            start = i
    step = (lx[-1] - lx[0]) / (nx - 1)
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed, texts = [], []
    named = set()
    for a, b, fam in sorted(runs, key=lambda r: r[0] - r[1]):  # widest runs first, one label per experiment
        if (b - a + 1) * step < min_decades or fam in named:
            continue
        mid = (a + b) // 2
        y_row = row[a : b + 1].min() if row[mid] >= ny else row[mid]
        x = 10.0 ** lx[mid]
        y = 10.0 ** min(ly[min(y_row, ny - 1)] + 0.12, ly[-1] - 0.25)
        t = ax.text(x, y, fam, fontsize=fontsize, color=OTHER_TEXT, ha="center", va="bottom", zorder=2.5,
                    clip_on=True)
        bb = t.get_window_extent(renderer).expanded(1.05, 1.15)
        inside_axes = ax.get_window_extent(renderer).contains(bb.x0, bb.y0) and ax.get_window_extent(renderer).contains(bb.x1, bb.y1)
        if not inside_axes or any(bb.overlaps(o) for o in placed) or _obstacle_hit(bb, obstacles):
            t.remove()
            continue
        placed.append(bb)
        texts.append(t)
        named.add(fam)
    return texts


def _draw_other(ax, curves, ylim):
    """Grey filled regions with thin outlines; returns the polygons (for labels) and the legend label."""
    polys = _curve_polygons(curves, top=ylim[1] * 10.0)
    if polys:
        ax.add_collection(PolyCollection([p for _, p in polys], facecolors=OTHER_FACE, edgecolors=OTHER_EDGE,
                                         linewidths=0.25, zorder=1, gid="other-experiments"), autolim=False)
    sources = []
    if any("DarkCast" in c.reference or c.model.endswith("_boson") for c in curves):
        sources.append("DarkCast v2.1")
    if any("FORESEE" in c.reference for c in curves):
        sources.append("FORESEE")
    return polys, f"other experiments ({', '.join(sources) or 'published'}; mostly 90% CL)"


# ---------------------------------------------------------------------------------------------------------------
# (g-2)_mu
# ---------------------------------------------------------------------------------------------------------------


def _draw_gm2(ax, model, epochs, xlim) -> tuple[list, list[str], list]:
    """Favoured bands; returns legend handles, notes (models without a band) and the drawn edge lines."""
    kind = getattr(model, "kind", "vector")
    epochs = [get_epoch(e) for e in epochs]  # InputError for an unknown epoch, band or not
    if not epochs:
        return [], [], []
    if kind == "scalar":
        charge = 1.0
    else:
        charge = abs(float(model.q_mu))
        if charge == 0.0:
            return [], [r"no $(g-2)_\mu$ band: the model does not couple to muons ($Q'_\mu = 0$)"], []
    m = np.geomspace(xlim[0], xlim[1], 400)
    handles, lines = [], []
    for i, ep in enumerate(epochs):
        colour = GM2_COLOURS.get(ep.name, f"C{i + 2}")
        g_lo, g_hi = favoured_band(m, ep, kind, charge)
        if band_has_lower_edge(ep):
            ax.fill_between(m, g_lo, g_hi, color=colour, alpha=0.35, lw=0, zorder=3, gid="gm2-band")
            lines += ax.plot(m, g_lo, color=colour, lw=0.6, zorder=3)
            lines += ax.plot(m, g_hi, color=colour, lw=0.6, zorder=3)
            label = (rf"$(g-2)_\mu$ {ep.name}: $\Delta a_\mu = ({_times_ten(ep.delta)} \pm {_times_ten(ep.sigma)})"
                     r"\times 10^{-10}$, 2$\sigma$ band")
            handles.append(Patch(facecolor=colour, alpha=0.5, edgecolor=colour, lw=0.6, label=label))
        else:
            # Only an upper bound: couplings above the curve give too large a delta a_mu (hatched side).
            upper = ep.delta_range()[1]
            lines += ax.plot(m, g_hi, color=colour, lw=1.1, ls=(0, (4, 2)), zorder=3.2)
            strip = ax.fill_between(m, g_hi, g_hi * 1.3, facecolor="none", edgecolor=colour, hatch="/////", lw=0,
                                    alpha=0.55, zorder=3.2)
            if hasattr(strip, "set_hatch_linewidth"):
                strip.set_hatch_linewidth(0.5)
            label = rf"$(g-2)_\mu$ {ep.name}: $\Delta a_\mu < {_times_ten(upper)} \times 10^{{-10}}$ (2$\sigma$), no lower edge"
            handles.append(Patch(facecolor="none", edgecolor=colour, hatch="/////", lw=1.1, ls="--", label=label))
    return handles, [], lines


# ---------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------


def _draw_cevns(ax, geos: dict, inset: bool = False) -> list:
    """Fills and boundaries of the CEvNS exclusions (combined last, on top); returns the Line2D objects."""
    drawn = []
    for d in sorted(geos, key=lambda d: d == "csi+lar"):
        colour, alpha, lw, _ = DATASET_STYLE.get(d, ("k", 0.1, 1.0, d))
        z = 4 if d == "csi+lar" else 3.5
        ax.add_patch(PathPatch(geos[d]["path"], facecolor=colour, alpha=alpha, lw=0, zorder=2))
        for ring in geos[d]["edges"]:
            drawn += ax.plot(ring[:, 0], ring[:, 1], color=colour, lw=lw * (0.7 if inset else 1.0), zorder=z,
                             gid=f"cevns-{d}")
    return drawn


INSET_SIZE = 0.32
# lower-left corners (axes fractions) tried for the inset, in order of preference
INSET_CORNERS = tuple((x, y) for y in (0.62, 0.57, 0.06, 0.10) for x in (0.06, 0.63, 0.345, 0.20, 0.50))


def _inset_position(ax, busy_xy: np.ndarray, weights: np.ndarray, avoid: tuple) -> tuple:
    """The candidate inset rectangle (axes fractions) covering the least weight of ``busy_xy`` (data points);
    ``avoid`` = (x0, x1, y0, y1) in data units must stay visible."""
    lx0, lx1 = np.log10(ax.get_xlim())
    ly0, ly1 = np.log10(ax.get_ylim())
    fx = (np.log10(busy_xy[:, 0]) - lx0) / (lx1 - lx0)
    fy = (np.log10(busy_xy[:, 1]) - ly0) / (ly1 - ly0)
    ax0, ax1 = (np.log10(avoid[:2]) - lx0) / (lx1 - lx0)
    ay0, ay1 = (np.log10(avoid[2:]) - ly0) / (ly1 - ly0)
    # weight of each cell of a 50 x 50 raster of the axes: the largest weight of the points falling in it
    n = 50
    cells = np.zeros((n, n))
    ok = (fx >= 0) & (fx < 1) & (fy >= 0) & (fy < 1)
    np.maximum.at(cells, ((fy[ok] * n).astype(int), (fx[ok] * n).astype(int)), weights[ok])
    centres = (np.arange(n) + 0.5) / n
    best = None
    for order, (x0, y0) in enumerate(INSET_CORNERS):
        x1, y1 = x0 + INSET_SIZE, y0 + INSET_SIZE + 0.05  # title above the inset
        xm0, ym0 = x0 - 0.05, y0 - 0.05  # tick labels left and below
        sel_x = (centres > xm0) & (centres < x1)
        sel_y = (centres > ym0) & (centres < y1)
        score = float(cells[np.ix_(sel_y, sel_x)].sum())
        if ax0 < x1 and ax1 > xm0 and ay0 < y1 and ay1 > ym0:
            score += 1e9  # would hide the zoomed region
        if best is None or (score, order) < best[:2]:
            best = (score, order, (x0, y0, INSET_SIZE, INSET_SIZE))
    return best[2]


def _busy_points(ax, geos: dict, extra: list) -> tuple[np.ndarray, np.ndarray]:
    """Points (data units) that an inset should not hide, with weights: CEvNS boundaries, (g-2) bands, grey
    limits (``extra``: (points, weight) pairs)."""
    pts, w = [], []
    for geo in geos.values():
        for ring in geo["edges"]:
            ok = np.all(np.isfinite(ring), axis=1)
            r = ring[ok]
            if len(r) >= 2:  # densify in log space so that long straight pieces count too
                lr = np.log10(r)
                t = np.linspace(0, 1, 8)[:, None]
                dense = (lr[:-1, None, :] * (1 - t) + lr[1:, None, :] * t).reshape(-1, 2)
                pts.append(10.0**dense)
                w.append(np.full(len(dense), 1.0))
    for p, weight in extra:
        if len(p):
            pts.append(p)
            w.append(np.full(len(p), weight))
    if not pts:
        return np.empty((0, 2)), np.empty(0)
    return np.vstack(pts), np.concatenate(w)


def _nice_log_ticks(lo: float, hi: float, max_ticks: int = 3) -> list[float]:
    """2 to ``max_ticks`` round values inside [lo, hi] (away from its ends), the roundest mantissas first."""
    llo, lhi = math.log10(lo), math.log10(hi)
    margin = 0.08 * (lhi - llo)
    ticks: list[float] = []
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 5), (1, 1.5, 2, 3, 4, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0**k for k in range(math.floor(llo) - 1, math.ceil(lhi) + 1) for m in mantissas]
        ticks = sorted(c for c in ticks if llo + margin <= math.log10(c) <= lhi - margin)
        if len(ticks) >= 2:
            break
    while len(ticks) > max_ticks:
        ticks = ticks[::2]
    return ticks


def _island_inset(ax, geos: dict, dataset: str, xlim, busy=None, half_width_decades=0.15):
    """Zoom on the allowed islands of ``dataset``: they are ~0.03 decades wide in g, thin on the full plane.

    The window is centred half a decade above the mass where the islands first appear (where they are
    established), clipped to the masses that have one."""
    cont = geos[dataset]["contour"]
    masses = np.asarray(cont["mass_mev"], float)
    with_island = [i for i, isl in enumerate(cont["islands"]) if isl]
    if not with_island:
        return None
    lm_first, lm_last = math.log10(masses[with_island[0]]), math.log10(masses[with_island[-1]])
    centre = min(lm_first + 0.5, 0.5 * (lm_first + lm_last))
    x0, x1 = 10.0 ** (centre - half_width_decades), 10.0 ** (centre + half_width_decades)
    window = [i for i in with_island if x0 <= masses[i] <= x1] or with_island[:1]
    los = [a for i in window for a, _ in cont["islands"][i]]
    his = [b for i in window for _, b in cont["islands"][i] if np.isfinite(b)]
    if not his:
        return None
    y0, y1 = min(los) / 1.35, max(his) * 1.35
    if busy is None:
        busy = _busy_points(ax, geos, [])
    loc = _inset_position(ax, busy[0], busy[1], (x0, x1, y0, y1))
    ins = ax.inset_axes(loc, zorder=6)
    ins.set_xscale("log")
    ins.set_yscale("log")
    _draw_cevns(ins, geos, inset=True)
    ins.set_xlim(x0, x1)
    ins.set_ylim(y0, y1)
    ins.set_facecolor("white")
    for axis, (lo, hi) in ((ins.xaxis, (x0, x1)), (ins.yaxis, (y0, y1))):
        axis.set_major_locator(FixedLocator(_nice_log_ticks(lo, hi)))
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_locator(NullLocator())
    ins.tick_params(labelsize=6, which="both", pad=1.5)
    ins.set_title("zoom: unfilled = allowed island", fontsize=6.5, pad=2)
    ax.indicate_inset_zoom(ins, edgecolor="0.3", lw=0.6, alpha=0.8)
    return ins


def _axes_sample(ax, n: int = 50) -> np.ndarray:
    """An n x n grid of data points evenly spread over the (log-log) axes."""
    lx = np.linspace(*np.log10(ax.get_xlim()), n)
    ly = np.linspace(*np.log10(ax.get_ylim()), n)
    gx, gy = np.meshgrid(lx, ly)
    return 10.0 ** np.column_stack((gx.ravel(), gy.ravel()))


def _grey_sample(polys, ax) -> np.ndarray:
    pts = _axes_sample(ax)
    lp = np.log10(pts)
    inside = np.zeros(len(pts), bool)
    for _, poly in polys:
        inside |= MplPath(np.log10(poly)).contains_points(lp)
    return pts[inside]


def gm2_fill_points(ax) -> list[np.ndarray]:
    """Sample points inside the (g-2) bands drawn on ``ax`` (their PolyCollections carry gid "gm2-band")."""
    pts = _axes_sample(ax)
    lp = np.log10(pts)
    out = []
    for coll in ax.collections:
        if coll.get_gid() == "gm2-band":
            for path in coll.get_paths():
                v = path.vertices
                ok = np.all(np.isfinite(v), axis=1) & np.all(v > 0, axis=1)
                if ok.sum() >= 3:
                    out.append(pts[MplPath(np.log10(v[ok])).contains_points(lp)])
    return out


def _obstacle_hit(bbox, artists) -> bool:
    """Does ``bbox`` (display units) cross a line, or overlap a patch (the inset)?"""
    for art in artists:
        path = art.get_transform().transform_path(art.get_path())
        if isinstance(art, Line2D):
            v = path.vertices
            ok = np.all(np.isfinite(v), axis=1)
            # split at NaN gaps, so no segment is made across them
            for piece in np.split(v, np.flatnonzero(~ok)):
                piece = piece[np.all(np.isfinite(piece), axis=1)]
                if len(piece) >= 2 and MplPath(piece).intersects_bbox(bbox, filled=False):
                    return True
        elif path.intersects_bbox(bbox, filled=True):
            return True
    return False


def label_other_experiments(ax, info: dict) -> list:
    """Small labels of the experiments that set the lowest visible other-experiment limit (call after layout)."""
    if not info.get("polys"):
        return []
    ax.figure.canvas.draw()  # layout settled, so text extents are right
    return _envelope_labels(ax, info["curves"], info["polys"], ax.get_xlim(), ax.get_ylim(), info["obstacles"])


def draw_plane(ax, res, gm2_epochs=("2021",), curves=None, datasets=("csi", "lar", "csi+lar"), cl: str = "2dof",
               ylim=None, label_curves: bool = True, legend: bool = True, inset="auto", overlay=None) -> dict:
    """Draw one model's (M, g) plane into ``ax``.

    ``curves``: None reads :func:`cevnsfit.limits.catalog.curves_for_model` (a missing limits folder is noted on
    the figure with a warning); pass a list (possibly empty) to choose.  ``ylim`` defaults to one decade around
    the CEvNS upper limits.  ``inset``: "auto" adds a zoom on the CsI+LAr sign-flip islands when there are any;
    True/False force it.  Returns {"lines": {dataset: boundary arrays}, "geometry": {dataset: dict of
    :func:`exclusion_geometry`}, "ylim", "notes", "handles", "inset", ...}.  ``overlay``: a callable
    ``overlay(ax) -> legend handles`` drawn over the CEvNS regions (e.g. :mod:`cevnsfit.plotting.fc`).
    """
    threshold(cl)
    datasets = tuple(datasets)
    for d in datasets:
        dataset_members(d)
    model = res.model
    xlim = _mass_limits(res)
    notes: list[str] = []
    if curves is None:
        from ..limits.catalog import NO_CURVES, curves_for_model

        try:
            curves = curves_for_model(model.name)
        except DataError as exc:
            warnings.warn(f"other experiments' limits not drawn: {exc}", stacklevel=2)
            curves, notes = [], ["other experiments' limits: data not found"]
        else:
            if not curves:
                reason = NO_CURVES.get(model.name, "none available")
                notes.append(f"no other-experiment limits: {reason}" if len(reason) < 60 else
                             "no other-experiment limits: no DarkCast/FORESEE recast for these charges")
    curves = list(curves)

    geos = {d: exclusion_geometry(res, d, cl) for d in datasets}
    if ylim is None:
        ylim = _auto_ylim([g["contour"]["g_upper"] for g in geos.values()])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)

    obstacles = _draw_cevns(ax, geos)
    handles = []
    for d in datasets:
        colour, alpha, lw, label = DATASET_STYLE.get(d, ("k", 0.1, 1.0, d))
        handles.append(Patch(facecolor=colour + f"{int(round(alpha * 255)):02x}", edgecolor=colour, lw=lw, label=label))

    if overlay is not None:
        handles += list(overlay(ax))
    gm2_handles, gm2_notes, gm2_lines = _draw_gm2(ax, model, tuple(gm2_epochs or ()), xlim)
    obstacles += list(gm2_lines)
    handles += gm2_handles
    notes += gm2_notes

    polys = []
    if curves:
        polys, label = _draw_other(ax, curves, ylim)
        handles.append(Patch(facecolor=OTHER_FACE, edgecolor=OTHER_EDGE, lw=0.3, label=label))
        if any(c.notes and "loop" in c.notes for c in curves):
            notes.append("DarkCast loop-mixing convention for the quark couplings")

    ins = None
    combined = "csi+lar" if "csi+lar" in geos else (datasets[-1] if datasets else None)
    if combined is not None and (inset is True or (inset == "auto" and geos[combined]["n_islands"] > 0)):
        extra = [(np.column_stack((ln.get_xdata(), ln.get_ydata())), 2.0) for ln in gm2_lines]
        extra += [(band, 1.0) for band in gm2_fill_points(ax)]
        extra += [(_grey_sample(polys, ax), 0.3)] if polys else []
        ins = _island_inset(ax, geos, combined, xlim, busy=_busy_points(ax, geos, extra))
        if ins is not None:
            notes.append("sign-flip islands: allowed bands inside the excluded region")

    xl, yl = _axis_labels(model)
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(f"{model_label(model.name)}   {charges_label(model)}\n{_cl_text(cl)}", fontsize=10)
    for note in notes:
        handles.append(Line2D([], [], ls="none", label=note))
    if legend:
        # Below the axes: the plane is full of physics everywhere (grey limits, bands, islands).
        leg = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=7,
                        frameon=False, handlelength=1.8, columnspacing=1.5, borderaxespad=0.0)
        leg.set_zorder(10)
        for text, h in zip(leg.get_texts(), handles):
            if isinstance(h, Line2D) and h.get_linestyle() == "None":
                text.set_fontstyle("italic")
    if ins is not None:
        obstacles.append(ins.patch)
    info = {"lines": {d: g["boundary"] for d, g in geos.items()}, "geometry": geos, "ylim": tuple(ylim),
            "notes": notes, "handles": handles, "inset": ins, "curves": curves, "polys": polys,
            "obstacles": obstacles}
    if label_curves:
        info["labels"] = label_other_experiments(ax, info)
    return info


def plane_figure(res, gm2_epochs=("2021",), curves=None, datasets=("csi", "lar", "csi+lar"), cl: str = "2dof",
                 ylim=None, label_curves: bool = True, inset="auto", figsize=(6.4, 5.6), overlay=None):
    """Figure of one model's (M, g) plane: CEvNS 2 sigma exclusions, (g-2)_mu band(s), other experiments.

    ``res`` is a :class:`cevnsfit.mediators.ModelAnalysis`; ``gm2_epochs`` any of "2021", "2023", "2025";
    ``curves`` None (the catalogue) or a list of LimitCurve; ``datasets`` among "csi", "lar", "csi+lar";
    ``cl`` "2dof" (Delta chi^2 = 6.18 from the global minimum) or "1dof" (4 from the minimum at each mass).
    ``overlay``: see :func:`draw_plane`.  The drawn CEvNS boundaries are Line2D objects with gid ``"cevns-<dataset>"``.
    """
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=figsize)
        try:
            info = draw_plane(ax, res, gm2_epochs, curves, datasets, cl, ylim, label_curves=False, inset=inset,
                              overlay=overlay)
            fig.tight_layout()
            if label_curves:
                label_other_experiments(ax, info)
        except Exception:
            plt.close(fig)
            raise
    return fig


_SUMMARY_STYLES = ("-", "--", "-.", ":")


def summary_figure(results: dict, dataset: str = "csi+lar", cl: str = "2dof", ylim=None, figsize=(6.4, 4.8)):
    """Upper 2 sigma limit (edge of the allowed region containing g = 0) of every vector model in one panel."""
    threshold(cl)
    dataset_members(dataset)
    vectors = {name: res for name, res in results.items() if getattr(res.model, "kind", "vector") != "scalar"}
    if not vectors:
        raise InputError("summary_figure needs at least one vector-model result")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=figsize)
        uppers, xlim = [], list(MASS_RANGE_MEV)
        for i, (name, res) in enumerate(vectors.items()):
            cont = res.contour(dataset, cl)
            m, g = np.asarray(cont["mass_mev"], float), np.asarray(cont["g_upper"], float)
            g = np.where(np.isfinite(g) & (g > 0), g, np.nan)
            uppers.append(g)
            lo, hi = _mass_limits(res)
            xlim = [min(xlim[0], lo), max(xlim[1], hi)]
            ax.plot(m, g, color=f"C{i % 10}", ls=_SUMMARY_STYLES[(i // 10 + i) % len(_SUMMARY_STYLES)], lw=1.3,
                    label=model_label(name), gid=f"summary-{name}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(*xlim)
        ax.set_ylim(*(ylim or _auto_ylim(uppers)))
        ax.set_xlabel(r"$M_{Z'}$ [MeV]")
        ax.set_ylabel(r"$g_{Z'}$ (upper limit)")
        label = DATASET_STYLE.get(dataset, (None, None, None, dataset))[3]
        ax.set_title(f"{label}: upper limits of the vector models\n{_cl_text(cl)}; region above each curve excluded",
                     fontsize=10)
        ax.legend(loc="upper left", ncol=2, fontsize=7, frameon=True, framealpha=0.9, edgecolor="none")
        fig.tight_layout()
    return fig
