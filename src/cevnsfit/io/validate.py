"""Checks that refuse a data file which parses but is damaged, naming the file and the line.

The release files carry checksums (``cevnsfit data verify``), a user's own files do not: a row with swapped
columns, a duplicated row, a negative or fractional count where counts are integers, or bin centres out of sequence
would otherwise be binned silently.  Every function takes the file path, the column(s) and the line numbers from
:func:`cevnsfit.io.datadir.read_table` (``with_lines=True``) and raises :class:`DataError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError


def _fail(path: Path, line: int, message: str) -> None:
    raise DataError(f"{path}: line {int(line)}: {message}")


def require_non_negative(path: Path, values: np.ndarray, lines: np.ndarray, what: str) -> None:
    bad = np.asarray(values) < 0
    if np.any(bad):
        i = int(np.argmax(bad))
        _fail(path, lines[i], f"negative {what} {values[i]:g}")


def require_counts(path: Path, values: np.ndarray, lines: np.ndarray, what: str = "event count") -> None:
    """Observed counts: non-negative integers."""
    require_non_negative(path, values, lines, what)
    bad = np.asarray(values) != np.round(values)
    if np.any(bad):
        i = int(np.argmax(bad))
        _fail(path, lines[i], f"{what} {values[i]:g} is not an integer")


def require_uniform_centres(path: Path, centres: np.ndarray, lines: np.ndarray, what: str = "bin centre") -> None:
    """Bin centres strictly increasing with one common spacing (a swapped, duplicated or moved row breaks it)."""
    c = np.asarray(centres, float)
    if c.size < 2:
        return
    step = float(np.median(np.diff(c)))
    if not step > 0:
        _fail(path, lines[1], f"{what}s are not increasing")
    bad = np.abs(np.diff(c) - step) > 1e-6 * step
    if np.any(bad):
        i = int(np.argmax(bad)) + 1
        _fail(path, lines[i], f"{what} {c[i]:g} after {c[i - 1]:g}, expected {c[i - 1] + step:g} (rows out of "
                              "sequence, duplicated or with swapped columns)")


def require_grid(path: Path, found: np.ndarray, expected: np.ndarray, lines: np.ndarray, names: str) -> None:
    """Row k must hold the grid point ``expected[k]`` (columns ``names``), to 1e-6 relative."""
    n = min(len(found), len(expected))
    bad = ~np.all(np.isclose(found[:n], expected[:n], rtol=1e-6, atol=1e-9), axis=1)
    if np.any(bad):
        i = int(np.argmax(bad))
        fmt = lambda row: "(" + ", ".join(f"{x:g}" for x in row) + ")"  # noqa: E731
        _fail(path, lines[i], f"{names} bin centres {fmt(found[i])}, expected {fmt(expected[i])} of the release grid (a row "
                              "out of sequence, duplicated or with swapped columns)")
