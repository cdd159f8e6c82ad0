"""The Python API behind ``cevnsfit sm``: Standard-Model predictions and fits per experiment.

>>> from cevnsfit.analysis import sm_report
>>> sm_report(["csi"])["csi"]["summary"]["chi2_min"]    # doctest: +SKIP
"""

from __future__ import annotations

from .experiments import load_experiment
from .experiments.base import sm_summary

__all__ = ["sm_summary", "sm_report"]


def sm_report(names, data_dir=None, options: dict | None = None) -> dict:
    """{name: {"summary": the experiment's ``sm`` document, "table": (title, columns, rows, footer)}} for the
    experiments ``names`` (``options``: name -> options of that experiment)."""
    options = options or {}
    out = {}
    for name in names:
        exp = load_experiment(name, data_dir, **options.get(name, {}))
        summary = exp.sm_summary()
        out[name] = {"summary": summary, "table": exp.sm_table(summary)}
    return out
