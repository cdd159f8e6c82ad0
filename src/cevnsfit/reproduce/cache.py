"""The reproduction's cache of chi^2 grids: ``cache/<model>.npz``, one file per model, written atomically and keyed
(:func:`cache_key`) on everything that changes the grids -- the code (version and a hash of the package's source),
the physics inputs (parameters.yaml, models.yaml, gm2.yaml and the parameter values in use, overrides included),
the data checksums, the experiments' options, the grids and the model: a changed input never gets a stale grid.

The options that only read the grids afterwards (``cl``, the (g-2) epochs drawn) are not part of the key: they
change the tables and figures, which are recomputed from the grids on every run.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from .. import __version__
from ..io.atomic import atomic_path
from ..mediators import (HIGH_MASS_G_OVER_M_MEV, LOW_MASS_G, POINTS_PER_DECADE, Grid, MediatorAnalysis, ModelAnalysis,
                         data_set_experiments)
from .grids import COARSE_STEP, FULL_PLANE_EXPERIMENTS, parts

PHYSICS_INPUTS = ("parameters.yaml", "models.yaml", "gm2.yaml")
PACKAGE = Path(__file__).resolve().parents[1]  # the cevnsfit package: its sources compute the grids


def _source_hash() -> str:
    """SHA-256 over the package's Python sources and data files: the code that computes the grids."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
            h.update(path.relative_to(PACKAGE).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def physics_inputs_hash(params) -> str:
    """SHA-256 of the packaged physics inputs (parameters.yaml, models.yaml, gm2.yaml) and of the parameter values
    actually in use (so that ``load_parameters({...})`` overrides change it)."""
    h = hashlib.sha256()
    for name in PHYSICS_INPUTS:
        h.update(name.encode())
        h.update(resources.files("cevnsfit.data").joinpath(name).read_bytes())
    h.update(json.dumps([list(map(str, row)) for row in params.citations()]).encode())
    return h.hexdigest()


def cache_key(an: MediatorAnalysis, checksums: dict, masses: np.ndarray, couplings: np.ndarray, model) -> str:
    """Key of a model's cached chi^2 grids: everything that changes them (see the module docstring)."""
    key_parts = {
        "version": __version__,
        "code": _source_hash(),
        "physics_inputs": physics_inputs_hash(an.params),
        "data": checksums,
        "options": {n: repr(an.experiment(n).options) for n in data_set_experiments()},
        "coarse_plane": [FULL_PLANE_EXPERIMENTS, COARSE_STEP],
        "model": repr(model),
        "line_grids": [LOW_MASS_G, HIGH_MASS_G_OVER_M_MEV, POINTS_PER_DECADE],
    }
    h = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode())
    h.update(np.ascontiguousarray(masses, float).tobytes() + b"|" + np.ascontiguousarray(couplings, float).tobytes())
    return h.hexdigest()


def _prefix(part: str) -> str:
    return "" if part == "full" else f"{part}/"  # the full-plane grids keep the keys of the COHERENT-only format


def save(path: Path, results, key: str) -> None:
    """``results``: part ("full", "coarse") -> ModelAnalysis (or one ModelAnalysis: the full plane); every grid's
    chi^2 per experiment."""
    if isinstance(results, ModelAnalysis):
        results = {"full": results}
    arrays = {"fingerprint": np.array(key)}
    for part, res in results.items():
        pre = _prefix(part)
        for tag, grid in (("plane", res.plane), ("low", res.low), ("high", res.high)):
            arrays[f"{pre}{tag}_masses"] = grid.masses_mev
            arrays[f"{pre}{tag}_couplings"] = grid.couplings
            for name, chi in grid.chi2.items():
                arrays[f"{pre}{tag}_chi2_{name}"] = chi
                arrays[f"{pre}{tag}_sm_{name}"] = np.array(grid.chi2_sm[name])
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load(path: Path, an: MediatorAnalysis, model, key: str) -> dict | None:
    """part -> ModelAnalysis of the parts the file holds under ``key`` (None: no file, another key, unreadable)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != key:
                return None
            out = {}
            for part, names in parts().items():
                pre = _prefix(part)
                if f"{pre}plane_masses" not in z.files:
                    continue
                grids = {}
                for tag in ("plane", "low", "high"):
                    chi = {n: z[f"{pre}{tag}_chi2_{n}"] for n in names}
                    sm = {n: float(z[f"{pre}{tag}_sm_{n}"]) for n in names}
                    grids[tag] = Grid(model, z[f"{pre}{tag}_masses"], z[f"{pre}{tag}_couplings"], chi, sm)
                out[part] = ModelAnalysis(an, model, grids["plane"], grids["low"], grids["high"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # an unreadable cache is recomputed, never trusted
    return out or None
