"""JSON output: strict (no NaN or Infinity, which are not JSON) and atomic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_path


def json_text(doc, indent: int | None = 2) -> str:
    """Strict JSON (numpy scalars and arrays converted); a NaN or infinity raises InputError, never bad JSON."""
    try:
        return json.dumps(doc, indent=indent, default=_json_default, allow_nan=False) + "\n"
    except ValueError:
        raise InputError("the result contains a non-finite number and cannot be written as JSON") from None


NULL_MEANING = ("null (JSON) / none (table): no finite value, e.g. a limit whose allowed interval containing g = 0 "
                "runs to the end of the scanned couplings, or is empty because g = 0 itself is excluded")


def nulls_for_nonfinite(doc):
    """``doc`` with every NaN or infinite number (also inside lists, dicts and numpy arrays) replaced by None: the
    one documented representation of "no finite value" shared by the tables and the JSON output."""
    if isinstance(doc, dict):
        return {k: nulls_for_nonfinite(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [nulls_for_nonfinite(v) for v in doc]
    if isinstance(doc, np.ndarray):
        return nulls_for_nonfinite(doc.tolist())
    if isinstance(doc, (float, np.floating)) and not np.isfinite(doc):
        return None
    return doc


def write_json(doc, out: str | Path) -> Path:
    text = json_text(doc)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text)
    return Path(out)


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")
