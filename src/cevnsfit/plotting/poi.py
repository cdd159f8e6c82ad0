"""Figures of parameter-of-interest fits: the profiled Delta chi^2 curve (1 parameter) or contours (2 parameters)."""

from __future__ import annotations

import numpy as np

from ..poifit import LEVELS_1D, LEVELS_2D
from .style import STYLE, dataset_style, plt

LEVEL_LABELS = {"1sigma": r"1$\sigma$", "90": "90%", "2sigma": r"2$\sigma$"}
LEVEL_COLOURS = {"1sigma": "#1f77b4", "90": "#ff7f0e", "2sigma": "#2ca02c"}


def _axis_label(p) -> str:
    return f"{p.label} [{p.unit}]" if p.unit not in ("1", "") else p.label


def profile_figure(outcome, pois):
    """Delta chi^2 of one parameter, with the 1 sigma / 90 % / 2 sigma levels and the SM value."""
    p = pois[0]
    grid, chi = outcome.grids[0], outcome.chi2
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.6 if outcome.members else 5.0, 3.6))
        for name, own in outcome.members.items():  # each experiment alone, from its own minimum
            colour, _, _, legend = dataset_style(name)
            ax.plot(grid, own - own.min(), color=colour, lw=1.0, ls="-", label=legend)
        ax.plot(grid, chi - outcome.chi2_min, color="k", lw=1.8 if outcome.members else 1.2,
                label=dataset_style(outcome.dataset)[3] if outcome.members else outcome.dataset)
        for level, thr in LEVELS_1D.items():
            ax.axhline(thr, color=LEVEL_COLOURS[level], ls=":", lw=0.9, label=LEVEL_LABELS[level])
        ax.axvline(p.sm, color="grey", ls="--", lw=0.8, label="SM")
        ax.set_xlabel(_axis_label(p))
        ax.set_ylabel(r"$\Delta\chi^2$ (profiled)")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(0, max(9.0, min(25.0, float(np.nanmax(chi - outcome.chi2_min)))))
        if outcome.members:  # beside the axes: the curves fill them
            ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
        else:
            ax.legend(loc="upper center")
        fig.tight_layout()
    return fig


def contour_figure(outcome, pois):
    """Two-parameter allowed regions (Delta chi^2 = 2.30, 4.61, 6.18), best fit and SM point."""
    gx, gy = outcome.grids
    delta = (outcome.chi2 - outcome.chi2_min).T  # (y, x) for contourf
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.2, 4.2))
        levels = [0.0, *LEVELS_2D.values()]
        colours = [LEVEL_COLOURS[k] for k in LEVELS_2D]
        ax.contourf(gx, gy, delta, levels=levels, colors=colours, alpha=0.35)
        cs = ax.contour(gx, gy, delta, levels=list(LEVELS_2D.values()), colors=colours, linewidths=1.0)
        handles = [plt.Line2D([], [], color=c, lw=2, label=f"{LEVEL_LABELS[k]} (2 dof)") for k, c in zip(LEVELS_2D, colours)]
        del cs
        bx, by = (outcome.best_fit[p.name] for p in pois)
        handles.append(ax.plot([bx], [by], "k+", ms=8, label="best fit")[0])
        handles.append(ax.plot([pois[0].sm], [pois[1].sm], "r*", ms=8, label="SM")[0])
        ax.set_xlabel(_axis_label(pois[0]))
        ax.set_ylabel(_axis_label(pois[1]))
        ax.set_title(dataset_style(outcome.dataset)[3], fontsize=10)
        # beside the axes: "best" ignores the filled regions, and a degenerate pair fills a diagonal band
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
        fig.tight_layout()
    return fig


def fit_figure(outcome, pois):
    return profile_figure(outcome, pois) if len(pois) == 1 else contour_figure(outcome, pois)
