"""Drawing the exclusion planes (M, g) of the light-mediator models, as in AC22 (Atzori Corona et al., JHEP 05
(2022) 109).

:func:`plane_figure` draws one model: the 2 sigma CEvNS exclusions of each data set (contour line + light fill;
allowed sign-flip islands of destructive-interference models stay unfilled), the (g-2)_mu favoured band(s), and
other experiments' limits (DarkCast v2.1 / FORESEE, grey).  :func:`summary_figure` overlays the upper-limit curves
of all vector models.

Three modules share the work: :mod:`.exclusion` computes what is excluded (polygons and boundary lines, no
drawing), :mod:`.placement` decides where labels and the island inset go so that they hide no physics, and this
module draws.  Units: masses in MeV, couplings dimensionless.  Figures use the house style
(:mod:`cevnsfit.plotting.style`); save them with ``style.save`` (png, pdf, svg).
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

from ..errors import DataError, InputError
from ..experiments import DATA_SETS, DEFAULT_DATA_SET, plane_data_sets
from ..mediators import dataset_members
from ..physics.gm2 import band_has_lower_edge, favoured_band, get_epoch
from ..stats.intervals import CONVENTIONS, threshold
from .exclusion import boundary_at, exclusion_geometry
from .placement import (busy_points, gm2_fill_points, grey_sample, inset_position, label_other_experiments,
                        nice_log_ticks)
from .style import OTHER_EDGE, OTHER_FACE, STYLE, dataset_style, plt

__all__ = ["plane_figure", "draw_plane", "summary_figure", "model_label", "charges_label", "exclusion_geometry",
           "boundary_at", "label_other_experiments", "dataset_style", "MASS_RANGE_MEV"]

MASS_RANGE_MEV = (1e-2, 1e4)  # the x axis covers at least this range
"""The mass range [MeV] that a plane figure's x axis covers at least."""
PLANE_DATA_SETS = plane_data_sets()  # drawn by default (data/datasets.yaml plot.plane_order)
GM2_COLOURS = {"2021": "#1a9641", "2023": "#66c2a5", "2025": "#00441b"}

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
    for d in sorted(geos, key=lambda d: d == DEFAULT_DATA_SET):  # the default (combined) data set on top
        colour, alpha, lw, _ = dataset_style(d)
        z = 4 if d == DEFAULT_DATA_SET else 3.5
        # add_artist, not add_patch: the view limits are set by the caller, and add_patch's data-limit update
        # walks the path segment by segment in Python (~10 % of a plane figure's build)
        ax.add_artist(PathPatch(geos[d]["path"], facecolor=colour, alpha=alpha, lw=0, zorder=2))
        for ring in geos[d]["edges"]:
            drawn += ax.plot(ring[:, 0], ring[:, 1], color=colour, lw=lw * (0.7 if inset else 1.0), zorder=z,
                             gid=f"cevns-{d}")
    return drawn


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
        busy = busy_points(ax, geos, [])
    loc = inset_position(ax, busy[0], busy[1], (x0, x1, y0, y1))
    ins = ax.inset_axes(loc, zorder=6)
    ins.set_xscale("log")
    ins.set_yscale("log")
    _draw_cevns(ins, geos, inset=True)
    ins.set_xlim(x0, x1)
    ins.set_ylim(y0, y1)
    ins.set_facecolor("white")
    for axis, (lo, hi) in ((ins.xaxis, (x0, x1)), (ins.yaxis, (y0, y1))):
        axis.set_major_locator(FixedLocator(nice_log_ticks(lo, hi)))
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_locator(NullLocator())
    ins.tick_params(labelsize=6, which="both", pad=1.5)
    ins.set_title("zoom: unfilled = allowed island", fontsize=6.5, pad=2)
    ax.indicate_inset_zoom(ins, edgecolor="0.3", lw=0.6, alpha=0.8)
    return ins


def draw_plane(ax, res, gm2_epochs=("2021",), curves=None, datasets=PLANE_DATA_SETS, cl: str = "2dof",
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
        colour, alpha, lw, label = dataset_style(d)
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
    combined = DEFAULT_DATA_SET if DEFAULT_DATA_SET in geos else (datasets[-1] if datasets else None)
    if combined is not None and (inset is True or (inset == "auto" and geos[combined]["n_islands"] > 0)):
        extra = [(np.column_stack((ln.get_xdata(), ln.get_ydata())), 2.0) for ln in gm2_lines]
        extra += [(band, 1.0) for band in gm2_fill_points(ax)]
        extra += [(grey_sample(polys, ax), 0.3)] if polys else []
        ins = _island_inset(ax, geos, combined, xlim, busy=busy_points(ax, geos, extra))
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


def plane_figure(res, gm2_epochs=("2021",), curves=None, datasets=PLANE_DATA_SETS, cl: str = "2dof",
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


def summary_figure(results: dict, dataset: str = DEFAULT_DATA_SET, cl: str = "2dof", ylim=None, figsize=(6.4, 4.8)):
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
        label = dataset_style(dataset)[3]
        ax.set_title(f"{label}: upper limits of the vector models\n{_cl_text(cl)}; region above each curve excluded",
                     fontsize=10)
        ax.legend(loc="upper left", ncol=2, fontsize=7, frameon=True, framealpha=0.9, edgecolor="none")
        fig.tight_layout()
    return fig
