"""Where text labels and the island inset go on an (M, g) plane, so that they hide no physics.

* Other experiments' names: over each stretch of mass, the experiment that sets the lowest visible excluded
  coupling is named once, just above its region, unless the text would leave the axes, overlap another label or
  cross a drawn line or the inset (:func:`envelope_labels`, :func:`label_other_experiments`).
* The inset zooming on sign-flip islands goes to the candidate corner that covers the least weighted "busy"
  points: CEvNS boundaries, (g-2) bands, grey limits (:func:`inset_position`, :func:`busy_points`).

Everything works in display or log-log axes fractions on an existing Axes; nothing here decides what is drawn.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.path import Path as MplPath

from .style import OTHER_TEXT

__all__ = ["family_label", "envelope_labels", "label_other_experiments", "inset_position", "busy_points",
           "nice_log_ticks", "axes_sample", "grey_sample", "gm2_fill_points", "obstacle_hit", "settle_insets",
           "INSET_SIZE"]


_FAMILY_TEX = {"(g-2)_e": r"$(g-2)_e$"}


def family_label(label: str) -> str:
    """Short name for a text label: "NA64 (2019, inv.)" -> "NA64", "(g-2)_e, alpha(Cs)" -> "(g-2)_e"."""
    label = label.replace(" [B-L proxy]", "")
    if label.startswith("(g-2)_e"):
        return _FAMILY_TEX["(g-2)_e"]
    short = label.split(" (")[0].strip()
    return short.replace("mumu", r"$\mu\mu$")


def envelope_labels(ax, curves, polys, xlim, ylim, obstacles=(), fontsize: float = 5.5, min_decades: float = 0.3):
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
        if cols.size:  # only rows below a column's lowest inside point so far can change it
            rows = rows[rows < row[cols].max()]
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
    fams = [(family_label(curves[k].label) if k >= 0 else None) for k in owner]
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
        if not inside_axes or any(bb.overlaps(o) for o in placed) or obstacle_hit(bb, obstacles):
            t.remove()
            continue
        placed.append(bb)
        texts.append(t)
        named.add(fam)
    return texts


INSET_SIZE = 0.32
"""The size of a figure's inset as a fraction of the axes (width and height)."""


# lower-left corners (axes fractions) tried for the inset, in order of preference
INSET_CORNERS = tuple((x, y) for y in (0.62, 0.57, 0.06, 0.10) for x in (0.06, 0.63, 0.345, 0.20, 0.50))


def inset_position(ax, busy_xy: np.ndarray, weights: np.ndarray, avoid: tuple) -> tuple:
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


def busy_points(ax, geos: dict, extra: list) -> tuple[np.ndarray, np.ndarray]:
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


def nice_log_ticks(lo: float, hi: float, max_ticks: int = 3) -> list[float]:
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


def axes_sample(ax, n: int = 50) -> np.ndarray:
    """An n x n grid of data points evenly spread over the (log-log) axes."""
    lx = np.linspace(*np.log10(ax.get_xlim()), n)
    ly = np.linspace(*np.log10(ax.get_ylim()), n)
    gx, gy = np.meshgrid(lx, ly)
    return 10.0 ** np.column_stack((gx.ravel(), gy.ravel()))


def grey_sample(polys, ax) -> np.ndarray:
    """Which sample points of the axes (:func:`axes_sample`, log-spaced) lie inside the polygons ``polys`` (the grey
    excluded regions): a boolean array, one entry per point."""
    pts = axes_sample(ax)
    lp = np.log10(pts)
    inside = np.zeros(len(pts), bool)
    for _, poly in polys:
        inside |= MplPath(np.log10(poly)).contains_points(lp)
    return pts[inside]


def gm2_fill_points(ax) -> list[np.ndarray]:
    """Sample points inside the (g-2) bands drawn on ``ax`` (their PolyCollections carry gid "gm2-band")."""
    pts = axes_sample(ax)
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


def obstacle_hit(bbox, artists) -> bool:
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


def settle_insets(ax, renderer) -> None:
    """Move the inset axes of ``ax`` to where they will be drawn.

    An inset takes its position from its locator only when it is drawn, so after a layout change (tight_layout)
    its patch -- an obstacle for the labels -- is still where the inset was created.  Applying the locators here
    settles the positions without rendering the figure: a full Agg draw only for that cost ~0.2 s per plane and
    was then thrown away (the figure is drawn again when it is saved)."""
    for child in ax.child_axes:
        locator = child.get_axes_locator()
        if locator is not None:
            child.apply_aspect(locator(child, renderer))


def label_other_experiments(ax, info: dict) -> list:
    """Small labels of the experiments that set the lowest visible other-experiment limit (call after layout:
    text extents are measured in display units)."""
    if not info.get("polys"):
        return []
    settle_insets(ax, ax.figure.canvas.get_renderer())
    return envelope_labels(ax, info["curves"], info["polys"], ax.get_xlim(), ax.get_ylim(), info["obstacles"])
