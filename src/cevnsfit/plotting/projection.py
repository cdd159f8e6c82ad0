"""Figure of ``cevnsfit project``: projected median limits with their bands on the (M, g) plane, against today's.

Each detector draws its median expected limit (line) with the +-1 sigma and +-2 sigma bands (fills) of the mass
raster (:meth:`cevnsfit.projection.Projection.mediator`); today's COHERENT limit (the edge of the allowed region
containing g = 0, :meth:`cevnsfit.mediators.ModelAnalysis.contour`) is drawn as a black line.  Masses in MeV.
"""

from __future__ import annotations

import numpy as np

from .planes import _axis_labels, model_label
from .style import STYLE, plt

COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


def projection_figure(model, projections: list[tuple[str, dict]], today: dict | None = None,
                      cl: str = "2dof", figsize=(6.4, 4.8)):
    """``model``: the mediator model (a registered one or custom); ``projections``: (label, Projection.mediator result) per detector; ``today``: {"mass_mev", "g_upper",
    "label"} of the present limit, or None."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=figsize)
        lows = []
        for (label, res), colour in zip(projections, COLOURS):
            m = np.array([r.mass_mev for r in res["raster"]])
            edge = {n: np.array([r.edges[n] for r in res["raster"]], float) for n in (-2, -1, 0, 1, 2)}
            lo2 = np.where(edge[-2] > 0, edge[-2], np.nan)  # a band reaching g = 0 is open downwards on a log axis
            ax.fill_between(m, lo2, edge[2], color=colour, alpha=0.12, lw=0)
            ax.fill_between(m, edge[-1], edge[1], color=colour, alpha=0.28, lw=0)
            ax.plot(m, edge[0], color=colour, lw=1.6, label=f"{label}: median expected")
            lows.append(np.nanmin(np.where(edge[-1] > 0, edge[-1], np.nan)))
        if today is not None:
            g = np.asarray(today["g_upper"], float)
            ax.plot(today["mass_mev"], np.where(np.isfinite(g), g, np.nan), color="black", lw=1.8, ls="--",
                    label=today["label"])
        ax.set_xscale("log")
        ax.set_yscale("log")
        xlabel, ylabel = _axis_labels(model)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ymin = 10 ** np.floor(np.log10(np.nanmin(lows))) if lows else 1e-6
        ax.set_ylim(ymin, 1.0)
        ax.set_xlim(m.min(), m.max())
        ax.set_title(f"{model_label(model.name)}: projected 2$\\sigma$ limits ({cl}), bands $\\pm1\\sigma$, $\\pm2\\sigma$ (Asimov)")
        ax.legend(loc="upper left")
        fig.tight_layout()
    return fig
