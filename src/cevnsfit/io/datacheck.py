"""Where the data are looked for (``cevnsfit data info``; the inventory of every expected file is
:func:`cevnsfit.analysis.data_inventory`)."""

from __future__ import annotations

from .datadir import search_path
from .registry import default_datasets


def search_report(data_dir=None) -> dict[str, list]:
    """{collection: the places searched for it, in order} for every collection the package reads."""
    collections = list(dict.fromkeys(d.collection for d in default_datasets()))
    return {c: search_path(c, data_dir, "--data-dir") if c == "coherent" else
            search_path(c, None, "explicit folder (Python API)") for c in collections}
