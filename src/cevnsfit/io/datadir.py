"""Where the public data are, and safe readers for their text files.

The data root is a folder laid out like ``shared/data`` of the development set-up: one folder per *collection*
(``coherent/`` with ``csi2021/``, ``lar2020/``, ``flux/``; ``limits/``; ``xenonnt_cevns/``, see
:mod:`cevnsfit.io.registry`).  Each collection's folder is looked for, in this order (the first match wins):

1. the folder given explicitly: ``--data-dir DIR`` on the command line for ``coherent``, or ``--data-home ROOT``
   for every collection that has a folder ``ROOT/<collection>`` (:func:`data_folders`);
2. the collection's environment variable (``$CEVNSFIT_DATA``, ``$CEVNSFIT_LIMITS``, ``$CEVNSFIT_XENONNT``,
   ``$CEVNSFIT_SOLAR``, ``$CEVNSFIT_REACTOR``);
3. development: ``../shared/data/<collection>`` seen from a clone of this repository -- the clone that holds the
   current directory, else the one that holds the package (a folder counts as a clone when its ``pyproject.toml``
   names the cevnsfit project; a ``shared`` folder anywhere else is never used);
4. the fetched data: ``<data home>/<collection>``, where the data home is ``$CEVNSFIT_DATA_HOME`` or the user's
   data directory (platformdirs: ``~/.local/share/cevnsfit`` on Linux), filled by ``cevnsfit data fetch``.  An
   unusable one (no home directory, an unreadable one) is a place where nothing is found, never an error: a
   command given its folder does not need it (``cevnsfit data info`` reports it as unusable).

The data are never copied into the package.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

ENV_VAR = "CEVNSFIT_DATA"
HOME_ENV_VAR = "CEVNSFIT_DATA_HOME"
DEV_RELATIVE = Path("shared") / "data"
DEFAULT_RELATIVE = DEV_RELATIVE / "coherent"


def data_home() -> Path:
    """Where ``cevnsfit data fetch`` stores the data by default: ``$CEVNSFIT_DATA_HOME`` or the user data dir.

    :class:`DataError` when there is none (no usable home directory: platformdirs or ``~`` failed)."""
    given = os.environ.get(HOME_ENV_VAR)
    try:
        if given:
            return Path(given).expanduser()
        import platformdirs

        return Path(platformdirs.user_data_dir("cevnsfit", appauthor=False))
    except Exception as exc:  # noqa: BLE001 - whatever the platform lookup raises (RuntimeError, KeyError, OSError)
        raise DataError(f"no user data directory ({type(exc).__name__}: {exc}); set ${HOME_ENV_VAR} or give the "
                        "folder explicitly") from None


def data_folders(data_dir=None, data_home=None) -> dict | None:
    """The folders a command was given, as the mapping collection -> folder every loader takes: ``data_home`` (a
    root laid out like ``shared/data``) gives each collection whose folder it holds, ``data_dir`` the COHERENT
    folder (it wins over the root's).  None when neither is given (every collection is searched).  A root that holds
    none of the collections is a :class:`DataError`."""
    from .registry import COLLECTIONS

    if data_dir is None and data_home is None:
        return None
    folders = {}
    if data_home is not None:
        root = Path(data_home).expanduser()
        if not root.is_dir():
            raise DataError(f"data home {root} (from --data-home) does not exist or is not a directory")
        folders = {c: root / c for c in COLLECTIONS if (root / c).is_dir()}
        if not folders:
            raise DataError(f"data home {root} (from --data-home) holds none of the collections' folders "
                            f"({', '.join(COLLECTIONS)})")
    if data_dir is not None:
        folders["coherent"] = Path(data_dir)
    return folders


def folder_mapping(data_dir) -> dict:
    """The mapping collection -> folder of a command's folders: None (none given), a COHERENT folder (what
    ``--data-dir`` and the Python API's ``data_dir`` have always meant) or already a mapping."""
    from collections.abc import Mapping

    if data_dir is None:
        return {}
    return dict(data_dir) if isinstance(data_dir, Mapping) else {"coherent": data_dir}


def data_key(data_dir) -> tuple | None:
    """A hashable, picklable form of a command's folders (:func:`folder_mapping`): the key under which worker
    processes rebuild the same analysis; ``dict(key)`` is the mapping again."""
    if data_dir is None:
        return None
    return tuple(sorted((str(c), str(p)) for c, p in folder_mapping(data_dir).items()))


def _is_clone(folder: Path) -> bool:
    """Whether ``folder`` is a checkout of this repository: its ``pyproject.toml``'s ``[project] name`` is cevnsfit
    (an unreadable or malformed file: not a clone)."""
    import tomllib

    try:
        with open(folder / "pyproject.toml", "rb") as f:
            project = tomllib.load(f).get("project", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return isinstance(project, dict) and project.get("name") == "cevnsfit"


def _enclosing_clone(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that is a clone (:func:`_is_clone`), or None."""
    return next((f for f in [start, *start.parents] if _is_clone(f)), None)


def _dev_candidates(collection: str) -> list[Path]:
    """``shared/data/<collection>`` beside the clone that holds the current directory, then beside the clone that
    holds the package (an editable install, or a virtual environment inside the clone).

    Only a clone's own neighbour counts: walking every parent up to ``/`` would let any ``shared/data`` left in
    ``/tmp`` or ``/`` (by another user, say) stand in for the data of every command run below it."""
    seen: list[Path] = []
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        clone = _enclosing_clone(start)
        if clone is not None and (cand := clone.parent / DEV_RELATIVE / collection) not in seen:
            seen.append(cand)
    return seen


@dataclass(frozen=True)
class Candidate:
    """One place searched for a collection: where it comes from, the folder, and whether it is used."""

    origin: str
    path: Path | None
    found: bool
    problem: str = ""  # why the place cannot be used (an unreadable home directory, say): never fatal to a search


def search_path(collection: str, explicit: str | os.PathLike | None = None,
                explicit_label: str = "--data-dir") -> list[Candidate]:
    """Every place searched for ``collection``, in order (see the module docstring)."""
    from .registry import COLLECTIONS

    spec = COLLECTIONS[collection]
    env = spec["env"]
    out = [Candidate(explicit_label, Path(explicit).expanduser() if explicit is not None else None,
                     explicit is not None)]
    given = os.environ.get(env)
    out.append(Candidate(f"${env}", Path(given).expanduser() if given else None, bool(given) and explicit is None))
    dev = next((c for c in _dev_candidates(collection) if os.path.exists(c / spec["marker"])), None)
    out.append(Candidate("shared/data beside the clone", dev, dev is not None))
    out.append(_fetched_candidate(collection, spec["marker"]))
    return out


def _fetched_candidate(collection: str, marker: str) -> Candidate:
    """The fetched-data place of ``collection``; an unusable one (no or unreadable home directory) is reported as
    such, not raised: a command given its folder explicitly does not need it."""
    origin = f"fetched data (${HOME_ENV_VAR} or the user data directory)"
    home = None
    try:
        home = data_home() / collection
        return Candidate(origin, home, (home / marker).exists())
    except DataError as exc:
        return Candidate(origin, home, False, str(exc))
    except OSError as exc:  # EACCES on a folder above it, say
        return Candidate(origin, home, False, exc.strerror or str(exc))


def resolve_collection(collection: str, explicit=None, explicit_label: str = "--data-dir") -> Path:
    """The folder of ``collection`` (see the module docstring); :class:`DataError` saying how to get it when none
    is usable.  ``explicit``: the folder given for it, or a mapping collection -> folder (``--data-dir`` gives
    ``{"coherent": DIR}``, ``--data-home`` every collection below it) from which its entry is taken (none: search)."""
    from collections.abc import Mapping

    from .registry import COLLECTIONS

    if isinstance(explicit, Mapping):
        explicit = explicit.get(collection)

    for i, cand in enumerate(search_path(collection, explicit, explicit_label)):
        if not cand.found:
            continue
        if i < 2:  # named by the user: must be usable, never silently skipped
            path = cand.path
            if not os.path.isdir(path):
                raise DataError(f"data directory {path} (from {cand.origin}) does not exist or is not a directory")
            try:
                if not any(path.iterdir()):
                    raise DataError(f"data directory {path} (from {cand.origin}) is empty")
            except OSError as exc:
                raise DataError(f"cannot read data directory {path} (from {cand.origin}): {exc.strerror or exc}") from None
            return path.resolve()
        return cand.path
    label = COLLECTIONS[collection]["label"]
    try:
        into = f"into {data_home()}"
    except DataError:
        into = "with --dest DIR (there is no user data directory here)"
    raise DataError(f"no {label} found: run `cevnsfit data fetch` to download them {into} "
                    f"(or set ${COLLECTIONS[collection]['env']})")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The COHERENT data directory (holding ``csi2021/``, ``lar2020/``, ``flux/``; see the module docstring)."""
    return resolve_collection("coherent", data_dir)


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
