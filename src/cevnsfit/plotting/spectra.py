"""Data against the stacked best-fit prediction, in the energy and time projections (as COHERENT shows them).

The steady-state background is subtracted from the data, as in COHERENT's CsI and LAr figures; the error bars
combine the data and the steady-state sample's statistics (``experiment.ss_variance``).
"""

from __future__ import annotations

import numpy as np

from .style import STYLE, plt

COLOURS = {"cevns": "#d62728", "brn": "#1f77b4", "pbrn": "#1f77b4", "nin": "#2ca02c", "dbrn": "#2ca02c"}
LABELS = {"cevns": "CEvNS", "brn": "BRN", "pbrn": "prompt BRN", "nin": "NIN", "dbrn": "delayed BRN"}


def spectra_figure(experiment, fit, predicted: dict):
    """Figure with two panels (energy, time); ``fit`` is a FitResult, ``predicted`` the SM prediction dict."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
        obs = experiment.observed
        ss_fit = fit.fitted["ss"]
        var = obs + experiment.ss_variance
        for axis, ax in enumerate(axes):
            edges = np.asarray(experiment.energy_edges if axis == 0 else experiment.time_edges_us, float)
            other = 1 - axis
            data = (obs - ss_fit).sum(axis=other)
            err = np.sqrt(var.sum(axis=other))
            centres = 0.5 * (edges[1:] + edges[:-1])
            widths = np.diff(edges)
            bottom = np.zeros(edges.size - 1)
            for z in [c for c in experiment.components if c not in ("ss", "cevns")] + ["cevns"]:
                h = fit.fitted[z].sum(axis=other)
                ax.bar(edges[:-1], h / widths, width=widths, bottom=bottom / widths, align="edge",
                       color=COLOURS.get(z, "grey"), alpha=0.75, label=f"{LABELS.get(z, z)} (fit)")
                bottom = bottom + h
            sm = sum(predicted[z] for z in experiment.components if z != "ss").sum(axis=other)
            ax.stairs(sm / widths, edges, color="k", ls="--", lw=1.0, label="prediction (SM)")
            ax.errorbar(centres, data / widths, yerr=err / widths, xerr=widths / 2, fmt="o", ms=3, color="k",
                        lw=0.8, label="data $-$ steady state")
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_xlabel(experiment.energy_label if axis == 0 else r"$t_{\rm rec}$ [$\mu$s]")
            ax.set_ylabel("events / " + (experiment.energy_unit if axis == 0 else r"$\mu$s"))
            ax.set_xlim(edges[0], edges[-1])
        axes[0].legend(loc="upper right")
        fig.suptitle(f"COHERENT {experiment.label}: {int(obs.sum())} events, SM-fit $\\chi^2$ = {fit.chi2:.1f} / {fit.n_bins} bins")
        fig.tight_layout()
    return fig
