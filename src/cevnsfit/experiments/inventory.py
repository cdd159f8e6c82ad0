"""``cevnsfit data info``: is every file of every registered experiment there, does it parse, is it the registered one?"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CevnsfitError
from ..io.datadir import folder_mapping, resolve_collection, sha256
from ..io.registry import registry
from ..parameters import DEFAULT
from .registry import EXPERIMENTS


def data_inventory(data_dir=None) -> tuple[Path, list[dict]]:
    """(the COHERENT directory, one row per expected file of every registered experiment: experiment, key, path,
    root (its collection's folder), ok, message, sha256, registered -- whether the hash is the registry's, None
    for an unregistered file).  ``data_dir``: the COHERENT folder (``--data-dir``) or a mapping collection ->
    folder (:func:`~cevnsfit.io.datadir.data_folders`)."""
    folders = folder_mapping(data_dir)
    coherent = resolve_collection("coherent", folders)
    rows = []
    roots = {}
    for name, spec in EXPERIMENTS.items():
        if not spec.collection:  # a declaration whose data are all in the file (counts, Asimov): nothing to look for
            continue
        try:
            roots[name] = root = resolve_collection(spec.collection, folders)
        except CevnsfitError as exc:
            rows.append({"experiment": name, "key": "folder", "path": "", "root": "", "ok": False,
                         "message": str(exc), "sha256": None, "registered": None})
            continue
        for key, rel in spec.files.items():
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
            EXPERIMENTS[name].load({**folders, EXPERIMENTS[name].collection: root}, DEFAULT).check_inputs()
        except CevnsfitError as exc:
            for row in rows:
                if row["experiment"] == name and row["ok"] and row["path"] in str(exc):
                    row["ok"], row["message"] = False, str(exc)
            if all(r["ok"] for r in rows if r["experiment"] == name):
                rows.append({"experiment": name, "key": "load", "path": "", "root": str(root), "ok": False,
                             "message": str(exc), "sha256": None, "registered": None})
    return coherent, rows
