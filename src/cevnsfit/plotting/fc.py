"""Feldman-Cousins results drawn over a model's (M, g) plane (overlays for :func:`planes.plane_figure`).

Two overlays, each a callable ``overlay(ax) -> legend handles``:

* :func:`raster_overlay` -- the fixed-mass raster of ``cevnsfit fc --masses`` (fc.json ``raster``): at each mass
  the FC upper limit on g (solid, dots) beside the one-parameter Wilks limit at that mass (dashed), and the FC
  sign-flip islands as vertical bars.
* :func:`asymptote_overlay` -- the two asymptotic FC lines of ``cevnsfit fc``: g = g_FC(M -> 0) at small M and
  g = (g/M)_FC M at large M (dotted), where the plane's boundary approaches them; the one-parameter Wilks limits
  of the same lines dash-dotted.

Units: masses in MeV; g dimensionless; (g/M) in fc.json in GeV^-1 (converted here: g = (g/M) M / 1000).
"""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from ..errors import InputError
from ..mediators import MEV_PER_GEV

FC_COLOUR = "#000000"
WILKS_COLOUR = "#7a7a7a"  # the asymptotes: Wilks grey, so that it stays visible where it coincides with FC
# the asymptotes are drawn where the boundary reaches them: below 1 MeV (momentum transfers of CsI and LAr are
# tens of MeV) and above 1 GeV
LOW_MASS_MAX_MEV = 1.0
HIGH_MASS_MIN_MEV = 1e3


def raster_overlay(raster: dict, dataset: str):
    """Overlay of the fc.json ``raster`` section for ``dataset`` (FC and Wilks limits on g per mass, MeV)."""
    entries = raster.get("datasets", {}).get(dataset)
    if not entries:
        raise InputError(f"the FC raster has no data set '{dataset}' (it has {', '.join(raster.get('datasets', {}))})")

    def draw(ax) -> list:
        m = np.array([e["mass_MeV"] for e in entries])
        fc = np.array([np.nan if e["g"] is None else e["g"] for e in entries])
        wilks = np.array([np.nan if e["wilks_g"] is None else e["wilks_g"] for e in entries])
        ax.plot(m, fc, "-", color=FC_COLOUR, lw=1.4, marker="o", ms=2.5, zorder=6, gid="fc-raster")
        ax.plot(m, wilks, "--", color=FC_COLOUR, lw=1.0, zorder=6, gid="wilks-raster")
        for e in entries:
            for isl in e["islands_g"]:
                a, b = isl["interval"]
                ax.plot([e["mass_MeV"]] * 2, [a, b], "-", color=FC_COLOUR, lw=2.5, zorder=6, gid="fc-island")
        return [Line2D([], [], color=FC_COLOUR, lw=1.4, marker="o", ms=2.5, label=f"{dataset}: FC (toys), fixed M"),
                Line2D([], [], color=FC_COLOUR, lw=1.0, ls="--", label=f"{dataset}: Wilks 1 par., fixed M")]

    return draw


def asymptote_overlay(row: dict):
    """Overlay of one fc.json ``limits`` row: the FC limits of the two asymptotic lines (dotted) and the
    one-parameter Wilks limits of the same lines (dash-dot), their like-for-like partners."""

    def draw(ax) -> list:
        lo, hi = ax.get_xlim()
        handles = []
        for values, style, colour, gid, what in ((row, ":", FC_COLOUR, "fc", "FC (toys)"),
                                                 (row.get("wilks", {}), "-.", WILKS_COLOUR, "wilks", "Wilks 1 par.")):
            low, high = values.get("g_low_mass"), values.get("g_over_M_high_mass")
            if low is not None:
                ax.plot([lo, max(lo, LOW_MASS_MAX_MEV)], [low, low], style, color=colour, lw=1.3, zorder=6,
                        gid=f"{gid}-low")
            if high is not None:
                m = np.geomspace(min(hi, HIGH_MASS_MIN_MEV), hi, 20)
                ax.plot(m, high / MEV_PER_GEV * m, style, color=colour, lw=1.3, zorder=6, gid=f"{gid}-high")
            if low is not None or high is not None:
                handles.append(Line2D([], [], color=colour, lw=1.3, ls=style,
                                      label=f"{row['dataset']}: {what}, M -> 0 / inf"))
        return handles

    return draw
