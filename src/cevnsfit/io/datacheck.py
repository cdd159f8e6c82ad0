"""``cevnsfit data info``: is every expected release file there, and does it parse?"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CevnsfitError
from .datadir import resolve_data_dir, search_path, sha256
from .registry import default_datasets, registry


def search_report(data_dir=None) -> dict[str, list]:
    """{collection: the places searched for it, in order} for every collection the package reads."""
    collections = list(dict.fromkeys(d.collection for d in default_datasets()))
    return {c: search_path(c, data_dir, "--data-dir") if c == "coherent" else
            search_path(c, None, "explicit folder (Python API)") for c in collections}


def data_inventory(data_dir=None) -> tuple[Path, list[dict]]:
    """(the COHERENT directory, one row per expected file of every registered experiment: experiment, key, path,
    root (its collection's folder), ok, message, sha256, registered -- whether the hash is the registry's, None
    for an unregistered file).  ``data_dir`` is the COHERENT folder (``--data-dir``)."""
    from ..experiments import EXPERIMENTS, experiment_class
    from .datadir import resolve_collection

    coherent = resolve_data_dir(data_dir)
    rows = []
    roots, classes = {}, {}
    for name, spec in EXPERIMENTS.items():
        classes[name] = cls = experiment_class(name)
        try:
            roots[name] = root = coherent if spec.collection == "coherent" else resolve_collection(spec.collection)
        except CevnsfitError as exc:
            rows.append({"experiment": name, "key": "folder", "path": "", "root": "", "ok": False,
                         "message": str(exc), "sha256": None, "registered": None})
            continue
        for key, rel in cls.files.items():
            path = root / rel
            present = os.path.isfile(path)
            message, digest = ("" if present else "missing"), None
            if present:
                try:
                    digest = sha256(path)
                except OSError as exc:  # present but unreadable (permissions, an I/O error): the data are bad
                    message = f"cannot read {path}: {exc.strerror or exc}"
            entry = registry().get(f"{spec.collection}/{rel}")
            rows.append({"experiment": name, "key": key, "path": str(path), "root": str(root), "ok": not message,
                         "message": message, "sha256": digest,
                         "registered": None if entry is None or digest is None else digest == entry.sha256})
    for name, root in roots.items():
        try:
            classes[name](root).check_inputs()
        except CevnsfitError as exc:
            for row in rows:
                if row["experiment"] == name and row["ok"] and row["path"] in str(exc):
                    row["ok"], row["message"] = False, str(exc)
            if all(r["ok"] for r in rows if r["experiment"] == name):
                rows.append({"experiment": name, "key": "load", "path": "", "root": str(root), "ok": False,
                             "message": str(exc), "sha256": None, "registered": None})
    return coherent, rows
