"""Data against the stacked best-fit prediction, in the energy and time projections (as COHERENT shows them).

The steady-state background is subtracted from the data, as in COHERENT's CsI and LAr figures; the error bars
combine the data and the steady-state sample's statistics (``experiment.ss_variance``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import STYLE, plt

COLOURS = {"cevns": "#d62728", "brn": "#1f77b4", "pbrn": "#1f77b4", "nin": "#2ca02c", "dbrn": "#2ca02c"}
LABELS = {"cevns": "CEvNS", "brn": "BRN", "pbrn": "prompt BRN", "nin": "NIN", "dbrn": "delayed BRN"}


def spectra_figure(experiment, fit, predicted: dict):
    """Data against the stacked best fit in the energy projection and, with time bins, the time projection; ``fit``
    is a FitResult, ``predicted`` the SM prediction dict.  A steady-state background ``ss`` is subtracted from the
    data (COHERENT's figures); otherwise the data are drawn with every background stacked (a reactor's spectrum),
    with the likelihood's per-bin sigma where it has one."""
    subtract = "ss" in experiment.components
    obs = experiment.observed
    if subtract:
        # the steady-state sample's own statistics: COHERENT's modules give them (LAr's sample is wider than its
        # window); a declared experiment's sample is its declared 'ss' counts, Poisson (CsI's choice, as CsI does)
        var = obs + getattr(experiment, "ss_variance", experiment.backgrounds["ss"])
    elif hasattr(experiment.likelihood, "stat_sigma"):
        var = np.asarray(experiment.likelihood.stat_sigma(experiment), float).reshape(obs.shape) ** 2
    else:
        var = obs
    shown = obs - fit.fitted["ss"] if subtract else obs
    axes_shown = [0] + ([1] if obs.shape[1] > 1 else [])
    residual = not subtract and obs.shape[1] == 1  # one projection: the second panel shows the CEvNS excess
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2 if residual else len(axes_shown), figsize=(9.0, 3.6), squeeze=False)
        if residual:
            _residual_panel(axes[0][1], experiment, fit, predicted, var)
        for axis, ax in zip(axes_shown, axes[0]):
            edges = np.asarray(experiment.energy_edges if axis == 0 else experiment.time_edges_us, float)
            other = 1 - axis
            data = shown.sum(axis=other)
            err = np.sqrt(var.sum(axis=other))
            centres = 0.5 * (edges[1:] + edges[:-1])
            widths = np.diff(edges)
            bottom = np.zeros(edges.size - 1)
            for z in [c for c in experiment.components if c not in ("ss", "cevns")] + ["cevns"]:
                h = fit.fitted[z].sum(axis=other)
                ax.bar(edges[:-1], h / widths, width=widths, bottom=bottom / widths, align="edge",
                       color=COLOURS.get(z, _colour(experiment.components, z)), alpha=0.75,
                       label=f"{LABELS.get(z, z)} (fit)")
                bottom = bottom + h
            sm = sum(predicted[z] for z in experiment.components if z != "ss").sum(axis=other)
            ax.stairs(sm / widths, edges, color="k", ls="--", lw=1.0, label="prediction (SM)")
            ax.errorbar(centres, data / widths, yerr=err / widths, xerr=widths / 2, fmt="o", ms=3 if widths.size < 60 else 1.5,
                        color="k", lw=0.8, label="data $-$ steady state" if subtract else "data")
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_xlabel(experiment.energy_label if axis == 0 else r"$t_{\rm rec}$ [$\mu$s]")
            ax.set_ylabel("events / " + (experiment.energy_unit if axis == 0 else r"$\mu$s"))
            ax.set_xlim(edges[0], edges[-1])
        axes[0][0].legend(loc="upper right")
        fig.suptitle(f"{experiment.label}: {obs.sum():.0f} events, SM-fit $\\chi^2$ = {fit.chi2:.1f} / {fit.n_bins} bins")
        fig.tight_layout()
    return fig


_PALETTE = ("#7f7f7f", "#9467bd", "#8c564b", "#bcbd22", "#17becf", "#e377c2")  # no red: red is CEvNS


def _colour(components, z):
    """A colour for a component without its own (a declared experiment's backgrounds)."""
    return _PALETTE[list(components).index(z) % len(_PALETTE)]


def _residual_panel(ax, experiment, fit, predicted: dict, var: np.ndarray) -> None:
    """Data less the fitted backgrounds against the fitted and the SM CEvNS, over the energies where CEvNS is
    (a reactor's excess at threshold, as its papers show it)."""
    edges = np.asarray(experiment.energy_edges, float)
    widths, centres = np.diff(edges), 0.5 * (edges[1:] + edges[:-1])
    bkg = sum(fit.fitted[z] for z in experiment.components if z != "cevns").sum(axis=1)
    cevns, sm = fit.fitted["cevns"].sum(axis=1), predicted["cevns"].sum(axis=1)
    keep = np.flatnonzero(sm >= 0.01 * sm.max())
    last = min(int(keep[-1]) + 3, widths.size) if keep.size else widths.size
    sl = slice(0, last)
    ax.errorbar(centres[sl], (experiment.observed.sum(axis=1) - bkg)[sl] / widths[sl],
                yerr=np.sqrt(var.sum(axis=1))[sl] / widths[sl], fmt="o", ms=2.5, color="k", lw=0.8,
                label="data $-$ fitted backgrounds")
    ax.stairs(cevns[sl] / widths[sl], edges[: last + 1], color=COLOURS["cevns"], lw=1.5, label="CEvNS (fit)")
    ax.stairs(sm[sl] / widths[sl], edges[: last + 1], color="k", ls="--", lw=1.0, label="CEvNS (SM)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlim(edges[0], edges[last])
    ax.set_xlabel(experiment.energy_label)
    ax.set_ylabel("events / " + experiment.energy_unit)
    ax.legend(loc="upper right")


XENON_COLOURS = {"cevns": "#d62728", "ac": "#9467bd", "er": "#1f77b4", "rg": "#2ca02c"}
XENON_LABELS = {"cevns": r"$^8$B CEvNS", "ac": "accidental coincidences", "er": "electronic recoils",
                "rg": "radiogenic neutrons"}
OBSERVABLE_LABELS = {"cs2": "cS2 [PE]", "s2_shadow_s2_time_shadow_quantile": "S2 shadow (time-shadow quantile)",
                     "s1_bdt_score": "S1 BDT score", "s2_bdt_score": "S2 BDT score"}


def observables_figure(experiment, fit, per_run: bool = False):
    """XENONnT: data against the stacked best fit in the projections of the four binned observables.

    ``fit``: the :class:`~cevnsfit.stats.chi2.FitResult` of the experiment's cost (fitted counts per component,
    runs x 81 bins, at the fitted normalisations and tly/tqy); the projections sum the other three observables
    (and the runs unless ``per_run``: then one row per run).  Bins are drawn with equal widths (bin index axis,
    edges as tick labels: the cS2 bins span 90-500 PE, the scores 0-1).  Error bars: Poisson sqrt(N), N > 0.
    """
    from ..experiments.xenonnt_release import BIN_SHAPE, OBSERVABLES

    runs = experiment.runs
    rows = runs if per_run else ("all",)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(rows), 4, figsize=(12.0, 2.9 * len(rows)), squeeze=False)
        for i, run in enumerate(rows):
            sl = experiment.run_slice(run) if per_run else slice(None)
            n_run = 1 if per_run else len(runs)
            shape = (n_run, *BIN_SHAPE)
            obs = experiment.observed[sl].reshape(shape)
            # the runs have their own cS2 and BDT-score edges: a sum over runs is labelled by bin number
            edge_sets = [experiment.release[r]["edges"] for r in ((run,) if per_run else runs)]
            edges = edge_sets[0] if all(np.allclose(e, edge_sets[0]) for e in edge_sets) else None
            for k, ax in enumerate(axes[i]):
                other = tuple(a for a in range(5) if a != k + 1)
                x = np.arange(BIN_SHAPE[k] + 1)
                bottom = np.zeros(BIN_SHAPE[k])
                # a background with one normalisation per run (ac_sr0, ac_sr1, ...) is drawn as one component
                kinds = {}
                for z in (*[c for c in experiment.components if c != "cevns"], "cevns"):
                    kinds.setdefault(z.split("_sr")[0], []).append(z)
                for kind, members in kinds.items():
                    h = sum(np.asarray(fit.fitted[z])[sl].reshape(shape).sum(axis=other) for z in members)
                    ax.bar(x[:-1], h, width=1.0, bottom=bottom, align="edge", color=XENON_COLOURS.get(kind, "grey"),
                           alpha=0.75, label=f"{XENON_LABELS.get(kind, kind)} (fit)")
                    bottom = bottom + h
                data = obs.sum(axis=other)
                ax.errorbar(x[:-1] + 0.5, data, yerr=np.sqrt(data), fmt="o", ms=3.5, color="k", lw=0.9, label="data")
                if edges is not None:
                    ax.set_xticks(x)
                    ax.set_xticklabels([f"{e:.3g}" for e in edges[k]])
                else:
                    ax.set_xticks(x[:-1] + 0.5)
                    ax.set_xticklabels([f"bin {j + 1}" for j in range(BIN_SHAPE[k])])
                ax.set_xlim(0, BIN_SHAPE[k])
                ax.set_ylim(0, 1.3 * max(bottom.max(), (data + np.sqrt(data)).max(), 1.0))
                ax.set_xlabel(OBSERVABLE_LABELS.get(OBSERVABLES[k], OBSERVABLES[k]))
                if k == 0:
                    ax.set_ylabel(f"events per bin ({run if per_run else '+'.join(runs)})")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8)
        fig.suptitle(f"{experiment.label}: {int(experiment.observed.sum())} events in the bins, best fit "
                     f"$\\chi^2$ = {fit.chi2:.1f} / {fit.n_bins} bins (8B flux free, tly = {fit.nuisances['tly']:.2f}, "
                     f"tqy = {fit.nuisances['tqy']:.2f})", fontsize=10)
        fig.tight_layout(rect=(0, 0.1 / len(rows), 1, 1))
    return fig


def experiment_figure(experiment, per_run: bool = False):
    """The spectra figure of a loaded experiment: its data against its best fit (the figure its kind calls for:
    ``experiment.spectra_kind`` "observables" for a binned multi-observable release, else energy and time)."""
    from ..errors import InputError

    if getattr(experiment, "spectra_kind", "energy_time") == "observables":
        free = experiment.cost(free_signal=True).fit(experiment.signal(experiment.kernel.sm_counts()))
        return observables_figure(experiment, free, per_run)
    if per_run:
        raise InputError(f"--per-run applies to an experiment with science runs, not {experiment.name}")
    pred = experiment.sm_prediction()
    return spectra_figure(experiment, experiment.cost().fit(pred["cevns"]), pred)


def spectra_file(experiment: str, out_file, per_run: bool = False, data_dir=None):
    """``cevnsfit plot spectra``: the spectra figure of the registered ``experiment`` or of a declaration file
    (loaded from ``data_dir``, the COHERENT folder) saved to ``out_file`` (.png, .pdf or .svg); returns its path."""
    from ..errors import InputError
    from ..experiments import experiment_or_declaration
    from ..io.atomic import check_output_file
    from .style import FORMATS, save

    if Path(out_file).suffix.lower() not in FORMATS:
        raise InputError(f"cannot write a figure as '{Path(out_file).suffix or Path(out_file).name}': use one of "
                         f"{', '.join(FORMATS)}")
    check_output_file(out_file)
    exp = experiment_or_declaration(experiment, data_dir)
    return save(experiment_figure(exp, per_run), out_file)
