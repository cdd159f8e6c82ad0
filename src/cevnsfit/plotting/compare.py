"""Where each experiment dominates: the upper 2 sigma limits of COHERENT, XENONnT and their combination, per model.

One small panel per model (mass on x, coupling on y, both log): the upper edge g_upper(M) of the allowed region
containing g = 0 (:meth:`cevnsfit.mediators.ModelAnalysis.contour`) of each compared data set, and the mass ranges
where XENONnT alone is stronger than COHERENT (CsI+LAr) alone shaded -- the solar 8B recoils (q ~ 10-30 MeV)
favour light mediators, the SNS recoils (q ~ 30-100 MeV) heavier ones.
"""

from __future__ import annotations

import math

import numpy as np

from ..experiments import DATA_SETS, compared_data_sets
from ..parameters import package_yaml
from ..stats.intervals import threshold
from .style import STYLE, plt

COMPARED = compared_data_sets()  # accelerator alone, solar alone, both (data/datasets.yaml plot.compared)
# shaded where the first data set's limit is stronger than the second's (data/datasets.yaml, plot.compare_shading)
DOMINANT = tuple(package_yaml("datasets.yaml")["plot"]["compare_shading"])


def comparison_figure(results: dict, cl: str = "2dof", datasets=COMPARED, ncols: int = 4):
    """``results``: model name -> ModelAnalysis holding every experiment of ``datasets`` (same plane)."""
    threshold(cl)
    names = list(results)
    nrows = math.ceil(len(names) / ncols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.5 * nrows + 0.6), squeeze=False,
                                 sharex=True)
        for ax, name in zip(axes.flat, names):
            res = results[name]
            uppers = {}
            for d in datasets:
                cont = res.contour(d, cl)
                g = np.asarray(cont["g_upper"], float)
                uppers[d] = np.where(np.isfinite(g) & (g > 0), g, np.nan)
                spec = DATA_SETS[d]
                ax.plot(cont["mass_mev"], uppers[d], color=spec.plot["colour"], lw=1.2 if d != datasets[-1] else 1.6,
                        ls="--" if d == datasets[-1] else "-", label=spec.legend, gid=f"compare-{d}")
            m = np.asarray(res.plane.masses_mev, float)
            a, b = uppers[DOMINANT[0]], uppers[DOMINANT[1]]
            ax.fill_between(m, 0, 1, where=np.nan_to_num(a, nan=np.inf) < np.nan_to_num(b, nan=np.inf),
                            transform=ax.get_xaxis_transform(), color=DATA_SETS[DOMINANT[0]].plot["colour"], alpha=0.12,
                            lw=0, step="mid")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in axes.flat[len(names):]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel(r"$M$ [MeV]", fontsize=8)
        for ax in axes[:, 0]:
            ax.set_ylabel(r"$g$ (upper limit)", fontsize=8)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        from matplotlib.patches import Patch

        handles.append(Patch(color=DATA_SETS[DOMINANT[0]].plot["colour"], alpha=0.25))
        labels.append(f"{DATA_SETS[DOMINANT[0]].label} stronger than {DATA_SETS[DOMINANT[1]].label}")
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
        fig.suptitle(f"Upper 2$\\sigma$ limits per data set ({cl}; region above each curve excluded)",
                     fontsize=10)
        fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return fig
