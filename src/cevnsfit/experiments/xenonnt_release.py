"""Reading the XENONnT solar 8B CEvNS release (SR0, SR1, SR2; CC-BY-4.0) and caching its arrays.

Per science run the release gives the observed events (four observables, 3 bins each: 81 bins), background
templates in events/(t yr) -- accidental coincidences (AC) and electronic recoils (ER) fixed, radiogenic neutrons
(RG) on the 7 x 7 grid of light-yield / charge-yield nuisances (tly, tqy in sigma, -3..3) -- and the detection
efficiency of mono-energetic nuclear recoils at 0.5, 0.6, ..., 5.0 keV on the same grid (layout in
shared/data/xenonnt_cevns/PROVENANCE.md).

**Cache.**  Reading the 6 900 small HDF5 files takes seconds; the arrays are cached (``.npz``, written atomically)
under ``$CEVNSFIT_CACHE`` or the user cache directory, keyed by a digest of every release file's path, size and
modification time (and the cache format), so any change to the release invalidates it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import yaml

from ..errors import DataError, InputError, OutputError
from ..io.atomic import atomic_path

RUNS = ("sr0", "sr1", "sr2")
OBSERVABLES = ("cs2", "s2_shadow_s2_time_shadow_quantile", "s1_bdt_score", "s2_bdt_score")
GRID = tuple(float(v) for v in range(-3, 4))  # tly, tqy nodes (sigma)
MONO_KEV = tuple(round(0.5 + 0.1 * i, 1) for i in range(46))  # 0.5 ... 5.0 keV
BIN_SHAPE = (3, 3, 3, 3)
N_BINS = 81
CACHE_FORMAT = 2


# ---- reading the release ----------------------------------------------------------------------------------
def _grid_tag(v: float) -> str:
    return f"{v:.1f}"


def _release_files(root: Path, run: str) -> dict:
    t = root / "templates" / run
    files = {"ac": t / "ac" / f"template_XENONnT_{run}_ac_cevns.h5", "er": t / "er" / f"template_XENONnT_{run}_er_cevns.h5"}
    for x in GRID:
        for y in GRID:
            files[("rg", x, y)] = t / "rg" / f"template_XENONnT_{run}_rg_cevns_tly_{_grid_tag(x)}_tqy_{_grid_tag(y)}.h5"
            for e in MONO_KEV:
                files[("mono", e, x, y)] = t / "mono" / f"template_XENONnT_{run}_mono_{e:.3f}_cevns_tly_{_grid_tag(x)}_tqy_{_grid_tag(y)}.h5"
    return files


def read_binning(path: Path) -> list[np.ndarray]:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataError(f"missing XENONnT binning file: {path}") from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable binning ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or any(k not in doc for k in OBSERVABLES):
        raise DataError(f"{path}: binning must give edges for {', '.join(OBSERVABLES)}")
    edges = []
    for k in OBSERVABLES:
        try:
            e = np.asarray(doc[k], dtype=float)
        except (TypeError, ValueError):
            raise DataError(f"{path}: non-numeric edges for {k}") from None
        if e.shape != (4,) or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise DataError(f"{path}: {k} needs 4 increasing finite edges (3 bins)")
        edges.append(e)
    return edges


def read_events(path: Path) -> np.ndarray:
    """The observed events of one run: (n, 4) array of the four observables (CSV with a header and index)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"missing XENONnT data file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc.__class__.__name__})") from None
    header = [h.strip() for h in lines[0].split(",")] if lines else []
    if any(k not in header for k in OBSERVABLES):
        raise DataError(f"{path}: header must name {', '.join(OBSERVABLES)}")
    cols = [header.index(k) for k in OBSERVABLES]
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            row = [float(parts[c]) for c in cols]
        except (IndexError, ValueError):
            raise DataError(f"{path}: line {i} is not a row of numbers") from None
        if not all(np.isfinite(row)):
            raise DataError(f"{path}: line {i} has a non-finite value")
        rows.append(row)
    return np.array(rows, dtype=float).reshape(-1, 4)


def bin_events_4d(events: np.ndarray, edges: list) -> np.ndarray:
    """(3, 3, 3, 3) counts; bins [lo, hi) except the last, closed (numpy.histogramdd); outside dropped."""
    hist, _ = np.histogramdd(events, bins=edges)
    return hist


def read_template(path: Path, edges: list | None = None) -> np.ndarray:
    """The (3, 3, 3, 3) histogram of one release file (h5py), checked for shape, finiteness and binning."""
    import h5py

    try:
        with h5py.File(path, "r") as h:
            t = np.asarray(h["templates/template"][()], dtype=float)
            file_edges = [np.asarray(h[f"bins/{i}"][()], float) for i in range(4)] if edges is not None else None
    except FileNotFoundError:
        raise DataError(f"missing XENONnT template: {path}") from None
    except (OSError, KeyError) as exc:
        raise DataError(f"{path}: not a XENONnT template ({exc.__class__.__name__})") from None
    if t.shape != BIN_SHAPE:
        raise DataError(f"{path}: template of shape {t.shape}, expected {BIN_SHAPE}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise DataError(f"{path}: template has NaN, infinite or negative entries")
    if file_edges is not None:
        for i, (a, b) in enumerate(zip(file_edges, edges)):
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=1e-9):
                raise DataError(f"{path}: bin edges of axis {i} differ from the run's binning file")
    return t


def _read_fast(path: Path, out: np.ndarray) -> None:
    """Read one template into ``out`` (3, 3, 3, 3) with h5py's low-level API (2x faster than ``h5py.File`` for the
    6 900 tiny files); shape and type are checked here, finiteness by the caller on the whole stack."""
    from h5py import h5d, h5f, h5s

    try:
        fid = h5f.open(os.fsencode(path), h5f.ACC_RDONLY)
    except FileNotFoundError:
        raise DataError(f"missing XENONnT template: {path}") from None
    except (OSError, ValueError) as exc:
        if not path.is_file():
            raise DataError(f"missing XENONnT template: {path}") from None
        raise DataError(f"{path}: not a XENONnT template ({exc.__class__.__name__})") from None
    try:
        try:
            ds = h5d.open(fid, b"templates/template")
        except KeyError:
            raise DataError(f"{path}: not a XENONnT template (no templates/template)") from None
        if ds.shape != BIN_SHAPE:
            raise DataError(f"{path}: template of shape {ds.shape}, expected {BIN_SHAPE}")
        if ds.dtype.kind != "f":
            raise DataError(f"{path}: template of type {ds.dtype}, expected floating point")
        ds.read(h5s.ALL, h5s.ALL, out)
    finally:
        fid.close()


def release_digest(root: Path) -> str:
    """Digest of every release file's relative path, size and mtime (the cache key).  The ~7 000 files are listed
    with ``os.scandir`` and plain strings, in ``os.walk``'s order (a folder's files sorted, then its sub-folders
    sorted; linked folders not entered): the same digest as through ``pathlib`` in a third of the time (0.08 ->
    0.02 s, a part of every command that loads XENONnT)."""
    h = hashlib.sha256(f"format {CACHE_FORMAT}".encode())

    def walk(folder: str, rel: str) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if not e.is_dir():
                st = e.stat()
                h.update(f"{rel}{os.sep}{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        for e in entries:
            if e.is_dir() and not e.is_symlink():
                walk(e.path, f"{rel}{os.sep}{e.name}")

    for base in ("data", "binning", "templates"):
        if (root / base).is_dir():
            walk(str(root / base), base)
    return h.hexdigest()


def cache_dir() -> Path:
    given = os.environ.get("CEVNSFIT_CACHE")
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cevnsfit", appauthor=False))


def read_run(root: Path, run: str) -> dict:
    """Arrays of one run: observed (81,), ac, er (81,) per t yr, rg (49, 81) per t yr, mono (49, 46, 81), edges."""
    edges = read_binning(root / "binning" / f"{run}.yaml")
    events = read_events(root / "data" / f"{run}.csv")
    files = _release_files(root, run)
    if not (root / "templates" / run).is_dir():
        raise DataError(f"missing XENONnT run: no folder {root / 'templates' / run}")
    rg = np.empty((len(GRID), len(GRID), *BIN_SHAPE))
    mono = np.empty((len(GRID), len(GRID), len(MONO_KEV), *BIN_SHAPE))
    # the bin edges of the first file of each kind are compared with the binning file; the rest is read fast
    read_template(files[("rg", GRID[0], GRID[0])], edges)
    read_template(files[("mono", MONO_KEV[0], GRID[0], GRID[0])], edges)
    for i, x in enumerate(GRID):
        for j, y in enumerate(GRID):
            _read_fast(files[("rg", x, y)], rg[i, j])
            for k, e in enumerate(MONO_KEV):
                _read_fast(files[("mono", e, x, y)], mono[i, j, k])
    # each stack with the file key of an index into it (the first bad entry names its file)
    for stack, key in ((rg, lambda i: ("rg", GRID[i[0]], GRID[i[1]])),
                       (mono, lambda i: ("mono", MONO_KEV[i[2]], GRID[i[0]], GRID[i[1]]))):
        bad = ~np.isfinite(stack) | (stack < 0)
        if bad.any():
            first = np.argwhere(bad)[0]
            raise DataError(f"{files[key(first)]}: template has NaN, infinite or negative entries")
    return {
        "observed": bin_events_4d(events, edges).ravel(),
        "n_events": np.array(events.shape[0]),
        "ac": read_template(files["ac"], edges).ravel(),
        "er": read_template(files["er"], edges).ravel(),
        "rg": rg.reshape(-1, N_BINS),
        "mono": mono.reshape(-1, len(MONO_KEV), N_BINS),  # (grid, energy, bins)
        "edges": np.stack(edges),
    }


def load_release(root: Path, runs=RUNS, use_cache: bool = True) -> dict:
    """run -> arrays (:func:`read_run`), from the cache when its key matches the release files."""
    root = Path(root)
    key = release_digest(root)
    try:
        path = cache_dir() / f"xenonnt_{key[:32]}.npz"
    except Exception:  # noqa: BLE001 - no usable home directory (platformdirs failed): the cache only saves time
        path, use_cache = None, False
    if use_cache and os.path.isfile(path):  # False, not an error, under an unreadable home directory
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return {r: {k[len(r) + 1:]: z[k] for k in z.files if k.startswith(r + "/")} for r in runs}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt
    out = {r: read_run(root, r) for r in RUNS}
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, key=np.array(key), **{f"{r}/{k}": v for r, d in out.items() for k, v in d.items()})
        except (OSError, InputError, OutputError):
            pass  # an unwritable cache only costs time
    return {r: out[r] for r in runs}
