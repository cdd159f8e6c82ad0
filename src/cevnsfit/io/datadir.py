"""Where the COHERENT data releases are, and safe readers for their text files.

Resolution order of the data directory (the folder holding ``csi2021/``, ``lar2020/`` and ``flux/``):

1. the ``data_dir`` argument (``--data-dir`` on the command line);
2. the environment variable ``CEVNSFIT_DATA``;
3. the default: the first ``shared/data/coherent`` found beside the current directory or one of its parents,
   or beside the installed package or one of its parents -- i.e. ``../shared/data/coherent`` seen from a clone
   of the repository that has ``shared/`` next to it.

The data are never copied into the package.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError

ENV_VAR = "CEVNSFIT_DATA"
DEFAULT_RELATIVE = Path("shared") / "data" / "coherent"


def _candidates() -> list[Path]:
    here = Path.cwd().resolve()
    pkg = Path(__file__).resolve()
    seen: list[Path] = []
    for base in [here, *here.parents, *pkg.parents]:
        cand = base / DEFAULT_RELATIVE
        if cand not in seen:
            seen.append(cand)
    return seen


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The COHERENT data directory (see module docstring); raises :class:`DataError` when it is not usable."""
    if data_dir is not None or os.environ.get(ENV_VAR):
        origin = "--data-dir" if data_dir is not None else f"${ENV_VAR}"
        path = Path(data_dir if data_dir is not None else os.environ[ENV_VAR]).expanduser()
        if not path.is_dir():
            raise DataError(f"data directory {path} (from {origin}) does not exist or is not a directory")
        if not any(path.iterdir()):
            raise DataError(f"data directory {path} (from {origin}) is empty")
        return path.resolve()
    for cand in _candidates():
        if cand.is_dir():
            return cand
    raise DataError(
        f"no COHERENT data directory found: pass --data-dir, set ${ENV_VAR}, or put shared/data/coherent "
        "beside the repository"
    )


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"missing data file: {path}")
    return path


def read_table(path: Path, ncols: int, min_rows: int = 1, skip_header: int = 0, with_lines: bool = False):
    """Whitespace-separated numeric table with exactly ``ncols`` columns; '#' starts a comment.

    Raises :class:`DataError` naming the file (and the line where there is one) when it is missing, unreadable
    (permissions), has the wrong shape, fewer than ``min_rows`` rows, or non-numeric / non-finite entries.
    ``with_lines`` also returns the 1-based line number of every row, for checks that name the offending line.
    """
    require_file(path)
    rows, lines = [], []
    try:
        with open(path, encoding="utf-8", errors="strict") as fh:
            for lineno, line in enumerate(fh, start=1):
                if lineno <= skip_header:
                    continue
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                parts = text.split()
                if len(parts) != ncols:
                    raise DataError(f"{path}: line {lineno} has {len(parts)} columns, expected {ncols}")
                try:
                    rows.append([float(p) for p in parts])
                except ValueError:
                    raise DataError(f"{path}: line {lineno}: non-numeric entry in '{text[:60]}'") from None
                lines.append(lineno)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text file") from None
    except OSError as exc:  # permissions, a folder in the way, an I/O error
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    table = np.array(rows, dtype=float).reshape(-1, ncols)
    if table.shape[0] < min_rows:
        raise DataError(f"{path} is truncated: {table.shape[0]} rows, expected at least {min_rows}")
    bad = ~np.all(np.isfinite(table), axis=1)
    if np.any(bad):
        raise DataError(f"{path}: line {lines[int(np.argmax(bad))]}: non-finite value")
    return (table, np.asarray(lines, dtype=int)) if with_lines else table


def read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The float arrays ``keys`` of the ``.npz`` archive at ``path`` (never unpickles).

    Raises :class:`DataError` naming the file when it is missing, is not a readable .npz archive (empty,
    truncated, another format), lacks a key, or an array is not numeric.
    """
    require_file(path)
    if not os.access(path, os.R_OK):
        raise DataError(f"cannot read {path}: permission denied")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks the array(s) {', '.join(missing)}")
            return {k: np.asarray(z[k], dtype=float) for k in keys}
    except DataError:
        raise
    except AttributeError:  # a bare .npy array has no .files
        raise DataError(f"{path} is not an .npz archive") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, TypeError) as exc:
        # ValueError also covers a non-archive file, which numpy would try to read as a pickle
        raise DataError(f"{path} is not a readable .npz archive ({type(exc).__name__})") from None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()
