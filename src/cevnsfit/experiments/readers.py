"""Data of a declared experiment: counts and templates from numbers, files and registered readers.

In a declaration (:mod:`.declaration`) the observed counts and each background are one of

* a list of numbers per bin (``{counts: [...]}`` or ``{per_bin: [...]}``; nested lists for (energy, time) bins);
* ``{fraction_of_signal: q}``: q times the Standard-Model CEvNS prediction (a background that scales with it);
* ``{file: KEY, column: i, columns: n, scale: x}``: column i of a whitespace table with n columns (``files``);
* ``{reader: NAME, ...}``: a registered reader -- the format of a release, registered by the module that knows it
  (:func:`register_reader`; e.g. the CsI-2021 event lists) -- or a registered background *shape* on the response's
  bins (``{shape: NAME, ...}``, :mod:`.shapes`).

Counts for a Poisson likelihood must be non-negative integers; every array must have the experiment's number of
bins.  Errors name the file and the key.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from ..errors import CevnsfitError, InputError
from ..io.datadir import read_table

__all__ = ["READERS", "register_reader", "read_counts", "read_template"]

READERS: dict[str, Callable] = {}
"""The registered data-file readers of the declarations: name -> reader function."""


def register_reader(name: str):
    """Decorator registering ``reader(ctx, node, key, shape) -> array (n_E, n_t) or callable(experiment)``."""

    def decorate(fn):
        where = f"reader '{name}' ({fn.__module__}.{fn.__qualname__})"
        if name in READERS:
            raise ValueError(f"{where}: the name is already registered")
        if not (fn.__doc__ or "").strip() or list(inspect.signature(fn).parameters)[:4] != ["ctx", "node", "key", "shape"]:
            raise TypeError(f"{where}: a reader is documented and takes (ctx, node, key, shape)")
        READERS[name] = fn
        return fn

    return decorate


def read_template(ctx, node: dict, key: str):
    """Numbers of the ``columns``-column whitespace table ``file`` (a key of ``files``): a ``column`` (0-based; a
    list), a ``row`` (a list), or the cell at both (a number); times ``scale``."""
    unknown = set(node) - {"file", "column", "row", "columns", "scale", "source"}
    if unknown:
        ctx.fail(key, f"unknown field(s) {', '.join(sorted(unknown))} of a table {{file, column, row, columns, scale}}")
    try:
        ncols = int(node.get("columns", 1))
        col = None if "column" not in node else int(node["column"])
        row = None if "row" not in node else int(node["row"])
    except (TypeError, ValueError):
        ctx.fail(key, "column, row and columns must be integers")
    if col is None and row is None:
        col = 0
    if col is not None and not 0 <= col < ncols:
        ctx.fail(key, f"column {col} is not one of the {ncols} columns")
    table = read_table(ctx.path(key, node["file"]), ncols=ncols)
    if row is not None and not 0 <= row < table.shape[0]:
        ctx.fail(key, f"row {row} is not one of the {table.shape[0]} rows")
    scale = ctx.value(node.get("scale", 1.0), f"{key}.scale", None)
    if row is not None and col is not None:
        return float(table[row, col] * scale)
    return ((table[row] if row is not None else table[:, col]) * scale).tolist()


def read_counts(ctx, node, key: str, shape: tuple, poisson: bool):
    """Counts or a template of ``shape`` (module docstring); a callable of the experiment where it needs the
    prediction (``fraction_of_signal``, shapes)."""
    if isinstance(node, dict) and "reader" in node or isinstance(node, dict) and "shape" in node:
        from . import shapes  # noqa: F401  (registers the background shapes)

        name = node.get("reader", node.get("shape"))
        if name not in READERS:
            ctx.fail(key, f"unknown reader '{name}'; choose one of {', '.join(READERS)}")
        try:
            return READERS[name](ctx, node, key, shape)
        except CevnsfitError as exc:
            if str(exc).startswith(ctx.where):
                raise
            ctx.fail(key, str(exc))
    if isinstance(node, dict) and "fraction_of_signal" in node:
        q = ctx.value(node["fraction_of_signal"], f"{key}.fraction_of_signal", "1")
        if not q >= 0:
            ctx.fail(key, f"fraction_of_signal must not be negative, got {q:g}")
        return lambda experiment: q * experiment.kernel.sm_counts()
    if isinstance(node, dict):
        values = node.get("counts", node.get("per_bin"))
        if values is None and "file" in node:
            values = read_template(ctx, node, key)
        if values is None:
            ctx.fail(key, "give counts / per_bin (a list per bin), fraction_of_signal, file, reader or shape")
    else:
        values = node
    arr = np.asarray(ctx.value(values, key, None), dtype=float)
    n = shape[0] * shape[1]
    if arr.size != n:
        ctx.fail(key, f"{arr.size} numbers for {shape[0]} x {shape[1]} bins")
    arr = arr.reshape(shape)
    if np.any(arr < 0):
        ctx.fail(key, "counts must not be negative")
    if poisson and np.any(arr != np.round(arr)):
        ctx.fail(key, "a Poisson likelihood needs integer counts")
    return arr
