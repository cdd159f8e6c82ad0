"""The Python API behind the command line: Standard-Model predictions and fits per data set.

>>> from cevnsfit.analysis import sm_summary
>>> from cevnsfit.experiments import load_experiment
>>> sm_summary(load_experiment("csi"))["chi2_min"]    # doctest: +SKIP
"""

from __future__ import annotations

from .experiments import load_experiment


def sm_summary(experiment) -> dict:
    """Predicted and best-fit counts per component (events in the analysis region), observed count, chi^2_min.

    The fit is the profiled AC22 chi^2 of the experiment at the Standard-Model CEvNS prediction.
    """
    pred = experiment.sm_prediction()
    fit = experiment.cost().fit(pred["cevns"])
    return {
        "predicted": {z: float(pred[z].sum()) for z in experiment.components},
        "best_fit": {z: float(v) for z, v in fit.totals().items()},
        "observed": int(round(experiment.observed.sum())),
        "chi2_min": float(fit.chi2),
        "n_bins": int(fit.n_bins),
        "nuisances": fit.nuisances,
    }


def sm_summaries(names, data_dir=None, options: dict | None = None) -> dict:
    """{name: the experiment's ``sm`` document} (``options``: name -> options of that experiment)."""
    options = options or {}
    return {name: load_experiment(name, data_dir, **options.get(name, {})).sm_summary() for name in names}
