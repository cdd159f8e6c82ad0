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
