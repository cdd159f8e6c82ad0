"""``cevnsfit data info``: where each data collection is looked for (the experiments' files are checked by
:func:`cevnsfit.experiments.inventory.data_inventory`)."""

from __future__ import annotations

from .datadir import folder_mapping, search_path
from .registry import default_datasets


def search_report(data_dir=None) -> dict[str, list]:
    """{collection: the places searched for it, in order} for every collection the package reads."""
    collections = list(dict.fromkeys(d.collection for d in default_datasets()))
    folders = folder_mapping(data_dir)
    return {c: search_path(c, folders.get(c), "--data-dir" if c == "coherent" else "--data-home") for c in collections}
