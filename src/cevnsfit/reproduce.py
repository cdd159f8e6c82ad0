"""``cevnsfit reproduce``: the paper's tables, figures, scans and a report from one call.

Output folder layout::

    limits.{md,tex,csv,json}   2 sigma limits (g for M -> 0, g/M in GeV^-1 for M -> inf), all models and data sets
    verdicts.json              does CsI+LAr exclude the (g-2)_mu band? (2021, 2023, 2025 values of Delta a_mu)
    scans/<model>_<dataset>.nc (M, g) Delta chi^2 grids (NetCDF)
    figures/*.png, *.pdf       one (M, g) figure per model, the summary figure, the CsI and LAr spectra
    report.md                  inputs and citations, conventions, numbers vs references, checksums, wall time
    run.json                   the run record: its id, options, cache key and the SHA-256 of every result file
    cache/<model>.npz          chi^2 grids keyed on everything that changes them (reused by a rerun)

How a run survives faults (docs/decisions.md, "Faults"):

1. every precondition is checked before the first write: option names, the COHERENT data (read, and the response
   kernels built), the other experiments' limit curves (shared/data/limits, found by
   :func:`cevnsfit.limits.catalog.resolve_limits_dir`) and every output path;
2. a lock (``.cevnsfit-reproduce.lock``, ``flock``: released by the kernel even after SIGKILL) makes a second run
   into the same folder refuse at once with one line;
3. the results are written into a staging folder ``.staging-<id>/``; when it is complete (run record written) it is
   renamed ``.commit-<id>/`` and its files are moved into place, the run record last.  A run that fails, is
   interrupted or killed before the rename leaves the previous results untouched; one killed during the move is
   completed ("rolled forward") by the next run, which also removes the staging folders and temporary files of
   killed runs.  So the folder never mixes two runs once a run has finished, and ``run.json`` names the run;
4. the chi^2 grids cached in ``cache/`` are written atomically and keyed (:func:`cache_key`) on the code (version
   and a hash of the package's source), the physics inputs (parameters.yaml, models.yaml, gm2.yaml and the
   parameter values in use, overrides included), the data checksums, the experiments' options, the grids and the
   model: a changed input never gets a stale grid.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import platform
import secrets
import shutil
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .analysis import sm_summary
from .errors import CevnsfitError, InputError
from .experiments import DATA_SETS, EXPERIMENTS
from .io.atomic import atomic_path, check_writable_dir, signals_held, stale_temporaries, write_text
from .io.jsonio import NULL_MEANING, nulls_for_nonfinite, write_json
from .io.results import data_checksums, scan_dataset, write_netcdf
from .io.tables import csv_text, latex, markdown
from .parameters import package_yaml
from .mediators import (DATASETS, HIGH_MASS_G_OVER_M_MEV, LOW_MASS_G, POINTS_PER_DECADE, Grid, MediatorAnalysis,
                        ModelAnalysis, analysis_axes, convention, data_set_experiments, default_couplings,
                        default_masses, gm2_verdict)
from .forkpool import ForkPool
from .physics.models import get_model, model_names
from .process import check_interrupted, usable_cores

# AC22 2 sigma table rows available to this project (g, g/M in GeV^-1); the other nine models' rows are not.
AC22_REFERENCE = {
    ("B-L", "lar"): (5.35e-5, 1.67e-3), ("B-L", "csi"): (5.27e-5, 1.00e-3), ("B-L", "csi+lar"): (4.42e-5, 0.99e-3),
    ("L_mu-L_tau", "lar"): (234e-5, 80.9e-3), ("L_mu-L_tau", "csi"): (116e-5, 26.6e-3),
    ("L_mu-L_tau", "csi+lar"): (103e-5, 24.2e-3),
}
GM2_EPOCHS = ("2021", "2023", "2025")
# The experiments whose registry entry asks for the full (121 x 322) plane; data sets with any other (XENONnT,
# plane_step (3, 2): 41 x 162 points incl. g = 0, its profiled chi^2 costs ~20x a COHERENT one,
# benchmarks/bench_xenonnt.py) are profiled on the coarser step, with the full M = 0 and M = inf lines, so every
# tabulated limit keeps the full resolution and only the contours, verdicts and figures of those data sets are coarser.
RUN_OPTIONS = package_yaml("datasets.yaml")["reproduce"]  # plane steps, the SM table (data/datasets.yaml)
PLANE_STEP = {n: tuple(RUN_OPTIONS["plane_step"].get(n, (1, 1))) for n in EXPERIMENTS}
FULL_PLANE_EXPERIMENTS = tuple(n for n, step in PLANE_STEP.items() if step == (1, 1))
COARSE_STEP = tuple(max(s) for s in zip(*PLANE_STEP.values()))  # (masses, couplings)
GM2_DATA_SETS = tuple(n for n, d in DATA_SETS.items() if d.reproduce.get("gm2_verdict"))  # COHERENT (AC22), + XENONnT
TABLE_COLUMNS = {n: d.label for n, d in DATA_SETS.items()}  # the limits table's columns, in registry order
# The report's Standard-Model table is AC22's (Table 1: the COHERENT fits): the experiments that the data sets use
# and whose data are COHERENT releases.  Not every experiment with an SM summary: XENONnT's is an 8B flux fit with
# its own document (`cevnsfit sm --experiment xenonnt`), not a row of that table.
SM_EXPERIMENTS = tuple(RUN_OPTIONS["sm_table"])
LOCK_NAME = ".cevnsfit-reproduce.lock"
STAGING_PREFIX = ".staging-"
COMMIT_PREFIX = ".commit-"
RUN_RECORD = "run.json"
RESULT_FILES = ("limits.md", "limits.tex", "limits.csv", "limits.json", "verdicts.json", "report.md")
PHYSICS_INPUTS = ("parameters.yaml", "models.yaml", "gm2.yaml")


class BusyError(CevnsfitError):
    """Another process holds the output folder's lock."""


def _source_hash() -> str:
    """SHA-256 over the package's Python sources and data files: the code that computes the grids."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
            h.update(path.relative_to(root).as_posix().encode())
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
    """Key of a model's cached chi^2 grids: everything that changes them (see the module docstring).

    The options that only read the grids afterwards (``cl``, the (g-2) epochs drawn) are not part of it: they change
    the tables and figures, which are recomputed from the grids on every run, not the grids."""
    parts = {
        "version": __version__,
        "code": _source_hash(),
        "physics_inputs": physics_inputs_hash(an.params),
        "data": checksums,
        "options": {n: repr(an.experiment(n).options) for n in data_set_experiments()},
        "coarse_plane": [FULL_PLANE_EXPERIMENTS, COARSE_STEP],
        "model": repr(model),
        "line_grids": [LOW_MASS_G, HIGH_MASS_G_OVER_M_MEV, POINTS_PER_DECADE],
    }
    h = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
    h.update(np.ascontiguousarray(masses, float).tobytes() + b"|" + np.ascontiguousarray(couplings, float).tobytes())
    return h.hexdigest()


def _prefix(part: str) -> str:
    return "" if part == "full" else f"{part}/"  # the full-plane grids keep the keys of the COHERENT-only format


def _save_cache(path: Path, results, key: str) -> None:
    """``results``: tag ("full", "coarse") -> ModelAnalysis (or one ModelAnalysis: the full plane); every grid's
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


def _load_cache(path: Path, an: MediatorAnalysis, model, key: str) -> dict | None:
    """tag -> ModelAnalysis of the parts the file holds under ``key`` (None: no file, another key, unreadable)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != key:
                return None
            out = {}
            for part, names in _parts().items():
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


def _parts() -> dict:
    """"full": the experiments on the full plane; "coarse": every experiment, on the coarse plane (if any other)."""
    full = tuple(n for n in data_set_experiments() if n in FULL_PLANE_EXPERIMENTS)
    parts = {"full": full}
    if len(full) < len(data_set_experiments()):
        parts["coarse"] = data_set_experiments()
    return parts


def _part_of(dataset: str) -> str:
    return "full" if set(DATASETS[dataset]) <= set(FULL_PLANE_EXPERIMENTS) else "coarse"


def _comparison_part() -> str | None:
    """The plane part that holds every data set of the COHERENT-vs-XENONnT figure; None when one is not registered."""
    from .plotting.compare import COMPARED

    if not set(COMPARED) <= set(DATASETS):
        return None
    return "coarse" if any(_part_of(d) == "coarse" for d in COMPARED) else "full"


def _analyse(an: MediatorAnalysis, model, masses: np.ndarray, couplings: np.ndarray) -> dict:
    """The model's grids: the full plane for FULL_PLANE_EXPERIMENTS; for the data sets with other experiments, a
    plane of every COARSE_STEP-th mass and coupling (a subset of the full one: the full-plane experiments' chi^2 is
    taken from their full grid, not recomputed) and the full M = 0 and M = inf lines."""
    parts = _parts()
    if "coarse" not in parts:
        return {"full": an.analyse(model, masses, couplings, parts["full"])}
    others = tuple(n for n in parts["coarse"] if n not in parts["full"])
    (m_plane, g_plane), *line_axes = analysis_axes(masses, couplings)
    im = np.arange(0, m_plane.size, COARSE_STEP[0])
    ig = np.concatenate([[0], np.arange(1, g_plane.size, COARSE_STEP[1])])  # g = 0 kept

    def coarse():
        return [an.grid(model, m_plane[im], g_plane[ig], others)] + [an.grid(model, *ax, others) for ax in line_axes]

    # the full plane (COHERENT) and the coarse grids (XENONnT) are independent: in two threads when the kernels
    # release the GIL (both have ended before the caller forks a figure worker)
    if an.workers(tuple(parts["full"]) + others) > 1:
        with ThreadPoolExecutor(1, thread_name_prefix="cevnsfit-coarse") as pool:
            other = pool.submit(coarse)
            full = an.analyse(model, masses, couplings, parts["full"])
            plane, *lines = other.result()
    else:
        full = an.analyse(model, masses, couplings, parts["full"])
        plane, *lines = coarse()
    for grid, src in zip((plane, *lines), (full.plane, full.low, full.high)):
        sub = (lambda a: a[np.ix_(im, ig)]) if grid is plane else (lambda a: a)
        grid.chi2.update({n: sub(src.chi2[n]) for n in parts["full"]})
        grid.chi2_sm.update({n: src.chi2_sm[n] for n in parts["full"]})
    return {"full": full, "coarse": ModelAnalysis(an, full.model, plane, *lines)}


def reproduce(out_dir, data_dir=None, models=None, gm2_epochs=("2021", "2025"), cl: str = "2dof",
              progress: Callable[[str, int, int], None] | None = None, fc_toys: int | None = None,
              fc_backend: str = "dask", figure_workers: int | None = None) -> dict:
    """Run the whole analysis into ``out_dir``; returns a summary dict (paths, timing, verdicts).

    ``fc_toys``: also Feldman-Cousins limits on both asymptotic lines with that many toys per tested coupling
    (:func:`cevnsfit.fc.run_fc`, store in ``cache/fc/``, resumable): FC columns (one-parameter Wilks | FC | toy
    error) in limits.md, limits.json and report.md, and the FC asymptotes on the plane figures.  Off by default.

    ``figure_workers``: child processes drawing the figures while the run computes (default: one per usable core,
    none with ``fc_toys``; 0 draws them in this process).  Each figure is drawn from the same numbers either way.

    Raises :class:`InputError`/:class:`DataError` before writing anything when an input is unusable and
    :class:`BusyError` when another run holds ``out_dir``.
    """
    from .limits.catalog import curves_for_model
    from .physics.gm2 import get_epoch

    t_start = time.perf_counter()
    # 1. Preconditions, read only: names, convention, data (kernels built: the flux grid is read then), the other
    # experiments' limit curves, every output path.
    models = [get_model(m) for m in (models or model_names())]
    convention(cl)
    fc = None
    if fc_toys is not None:
        from .fc import BACKENDS

        if not 1 <= int(fc_toys) <= 10_000_000 or fc_backend not in BACKENDS:
            raise InputError(f"--toys must be in 1..1e7 and the FC backend one of {', '.join(BACKENDS)}")
        fc = {"toys": int(fc_toys), "backend": fc_backend, "data_dir": data_dir}
    for ep in gm2_epochs:
        get_epoch(ep)
    an = MediatorAnalysis(data_dir)
    exps = [an.experiment(n) for n in data_set_experiments()]
    for exp in exps:
        exp.kernel  # noqa: B018 - builds the response (reads the flux grid) now rather than after the first write
    curves = {m.name: curves_for_model(m.name) for m in models}
    out = Path(out_dir)
    _check_output_paths(out, models)
    checksums = data_checksums(exps)
    masses, couplings = default_masses(), default_couplings()

    # 2. The first write: the folder and its lock; then finish or clear what a killed run left.
    out = check_writable_dir(out)
    with _FolderLock(out) as lock:
        _recover(out)
        stage = out / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        stage.mkdir()
        try:
            if figure_workers is None:  # with toys, Dask's threads outlive its cluster: no fork after them (the
                # figures are seconds of a run of minutes)
                figure_workers = usable_cores() if fc is None else 0
            with ForkPool(figure_workers, close_fds=(lock.fd,), warm_up=True) as pool:
                result = _run(out, stage, an, exps, models, curves, checksums, masses, couplings, gm2_epochs, cl,
                              progress, t_start, pool, fc=fc)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _commit(out, stage)
    return result


def _run(out, stage, an, exps, models, curves, checksums, masses, couplings, gm2_epochs, cl, progress, t_start,
         pool: ForkPool, fc: dict | None = None):
    """Compute everything; cache into ``out/cache``, results into ``stage``; ``pool`` draws the figures (each as
    soon as its numbers are known, while the next model is computed)."""
    run_id = stage.name[len(STAGING_PREFIX):]
    for sub in ("scans", "figures"):
        (stage / sub).mkdir()
    check_writable_dir(out / "cache")
    steps = len(models) + 2 + (fc is not None)
    step = 0

    def tick(label: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(label, step, steps)

    figures = _Figures(stage / "figures", pool, gm2_epochs, cl, curves)
    # Standard Model
    sm = {name: sm_summary(an.experiment(name)) for name in SM_EXPERIMENTS}
    tick("Standard-Model fits")

    results, rows, rows_1dof, verdicts, keys = {}, [], [], [], {}
    for model in models:
        key = keys[model.name] = cache_key(an, checksums, masses, couplings, model)
        cache = out / "cache" / f"{_slug(model.name)}.npz"
        parts = _load_cache(cache, an, model, key)
        if parts is None or set(parts) != set(_parts()):
            parts = _analyse(an, model, masses, couplings)
            _save_cache(cache, parts, key)
            pool.poll()  # the grids' threads have ended: a figure waiting for a free worker starts now
        results[model.name] = parts
        for d in DATASETS:
            res = parts[_part_of(d)]
            rows.append(res.row(d, cl))
            rows_1dof.append({k: v for k, v in res.row(d, "1dof").items() if k != "contour"})
            ds = scan_dataset(res.plane, d, res.contour(d, cl), [e for e in exps if e.name in DATASETS[d]])
            write_netcdf(ds, stage / "scans" / f"{_slug(model.name)}_{_slug(d)}.nc")
        for d in GM2_DATA_SETS:
            if d in DATASETS:
                verdicts += [gm2_verdict(parts[_part_of(d)], d, ep, cl) for ep in GM2_EPOCHS]
        if fc is None:  # with FC the figure waits for the toys' asymptotes
            figures.plane(model.name, parts["full"])
        if model is models[0]:
            figures.spectra(an)
        tick(f"model {model.name}")

    if fc is not None:
        from .fc import with_fc_columns
        from .plotting.fc import asymptote_overlay

        fc_rows = _fc_rows(out, an, models, fc)
        rows = with_fc_columns(rows, fc_rows)
        for model in models:
            figures.plane(model.name, results[model.name]["full"], asymptote_overlay(fc_rows[(model.name, "csi+lar")]))
        tick("Feldman-Cousins toys")
    figures.summaries(results)

    # tables
    caption = f"2 sigma limits ({convention(cl)['description']}); g for M -> 0, g/M in GeV^-1 for M -> inf"
    write_text(stage / "limits.md", markdown(rows, caption, TABLE_COLUMNS) + _fc_markdown(rows, fc))
    write_text(stage / "limits.tex", latex(rows, caption, TABLE_COLUMNS))
    write_text(stage / "limits.csv", csv_text(rows))
    write_json(nulls_for_nonfinite({"convention": convention(cl), "units": {"mass": "MeV", "g_over_M": "GeV^-1", "g": "1"},
                                    "limits": rows, "limits_1dof": rows_1dof, "null": NULL_MEANING}), stage / "limits.json")
    write_json(verdicts, stage / "verdicts.json")

    pool.join()
    figures = [str(out / Path(p).relative_to(stage)) for p in figures.paths()]
    tick("figures")
    wall = time.perf_counter() - t_start
    report = _report(sm, rows, rows_1dof, verdicts, figures, checksums, cl, gm2_epochs, wall, models, an.params)
    report += _fc_markdown(rows, fc)
    write_text(stage / "report.md", report)
    files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
    record = {
        "run": run_id, "software": f"cevnsfit {__version__}", "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": {"models": [m.name for m in models], "gm2_epochs": list(gm2_epochs), "cl": cl,
                    "data_dir": str(exps[0].data_dir),
                    "fc_toys": None if fc is None else fc["toys"]},
        "cache_keys": keys, "data_sha256": checksums,
        "files": {f: _sha256(stage / f) for f in files},
        "previous_files": _previous_files(out),
    }
    write_json(record, stage / RUN_RECORD)
    return {"out": str(out), "wall_time_s": wall, "figures": figures, "verdicts": verdicts, "run": run_id}


def _fc_rows(out: Path, an: MediatorAnalysis, models, fc: dict) -> dict:
    """(model, data set) -> fc.json row of both asymptotic lines (store: out/cache/fc/<model>, resumable); ``an``
    is the run's analysis (its experiments are not loaded again).  The dask backend runs every model on one
    local cluster (started by the first model with toys to run: a cluster costs seconds to start)."""
    from .fc import REGIMES, DaskSession, run_fc, toy_data_sets

    rows = {}
    with DaskSession() as dask:
        for model in models:
            doc = run_fc(model.name, toy_data_sets(an), REGIMES["both"], fc["toys"], 0, "2sigma",
                         out / "cache" / "fc" / _slug(model.name), backend=fc["backend"], data_dir=fc["data_dir"],
                         with_table=False, analysis=an, dask=dask)
            rows.update({(r["model"], r["dataset"]): r for r in doc["limits"]})
    return rows


def _fc_markdown(rows: list, fc: dict | None) -> str:
    if fc is None:
        return ""
    from .fc import fc_columns_markdown

    return "\n" + fc_columns_markdown(rows, fc["toys"])


def _sha256(path: Path) -> str:
    from .io.datadir import sha256

    return sha256(path)


def _previous_files(out: Path) -> list[str]:
    """Result files of the run now in ``out`` (from its record; without one, the files of the known layout)."""
    try:
        return sorted(json.loads((out / RUN_RECORD).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        found = [f for f in RESULT_FILES if (out / f).is_file()]
        for sub, suffixes in (("scans", (".nc",)), ("figures", (".png", ".pdf"))):
            if (out / sub).is_dir():
                found += [f"{sub}/{p.name}" for p in (out / sub).iterdir() if p.is_file() and p.suffix in suffixes]
        return sorted(found)


def _check_output_paths(out: Path, models) -> None:
    """Every output path usable, checked before anything is written (a directory where a file goes, a file where a
    folder goes, a read-only folder would otherwise stop the run late)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"cannot write into {out}: it is not a directory")
    for path in _planned_outputs(out, models):
        if path.is_dir():
            raise InputError(f"cannot write {path}: it is a directory")
        if path.parent.exists() and not path.parent.is_dir():
            raise InputError(f"cannot write {path}: {path.parent} is not a directory")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into {out}: {existing} is not a writable directory")
    for sub in (out, out / "cache", out / "scans", out / "figures"):
        if sub.is_dir() and not os.access(sub, os.W_OK | os.X_OK):
            raise InputError(f"cannot write into {sub}: it is not writable")


class _FolderLock:
    """Exclusive ``flock`` on ``folder/.cevnsfit-reproduce.lock``; a second holder is refused with one line.

    The kernel drops an flock when its process dies, even by SIGKILL, so a killed run never blocks the next one.
    The file is removed on release; a process that locked a file someone just removed sees another inode at the
    path and tries again (the usual lock-file race)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self):
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise BusyError(f"{self.folder} is in use by another cevnsfit reproduce (pid {holder}); wait for it "
                                    f"to finish or choose another --out") from None
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)


def _recover(out: Path) -> None:
    """With the lock held: finish the move of a committed run that was killed, drop what killed runs left."""
    for commit in sorted(out.glob(COMMIT_PREFIX + "*")):
        if commit.is_dir():
            _move_into_place(out, commit)
    for stage in out.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(stage, ignore_errors=True)
    for tmp in stale_temporaries(out):
        tmp.unlink(missing_ok=True)


def _commit(out: Path, stage: Path) -> None:
    commit = out / (COMMIT_PREFIX + stage.name[len(STAGING_PREFIX):])
    with signals_held():  # a few renames: a Ctrl-C now is acted on once the folder holds the complete new run
        check_interrupted()  # one a library swallowed earlier: the staged run is not committed
        os.replace(stage, commit)  # from here on the run is complete; a killed move is rolled forward
        _move_into_place(out, commit)


def _move_into_place(out: Path, commit: Path) -> None:
    """Move the files of a committed run into ``out`` (idempotent: resumes a move that was killed)."""
    record_path = commit / RUN_RECORD
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        (out / RUN_RECORD).unlink(missing_ok=True)  # the folder is between two runs until the new record lands
        for rel in record["files"]:
            src = commit / rel
            if src.is_file():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, out / rel)
        for rel in set(record.get("previous_files", ())) - set(record["files"]):
            (out / rel).unlink(missing_ok=True)  # a result of the previous run that this run does not make
        os.replace(record_path, out / RUN_RECORD)
    shutil.rmtree(commit, ignore_errors=True)


def _planned_outputs(out: Path, models) -> list[Path]:
    """Every file :func:`reproduce` leaves in ``out``."""
    paths = [out / f for f in (*RESULT_FILES, RUN_RECORD)]
    stems = [f"plane_{_slug(m.name)}" for m in models] + ["summary_csi+lar"]
    stems += [f"spectra_{n}" for n in data_set_experiments()]
    if _comparison_part() is not None:
        stems.append("coherent_vs_xenonnt")
    paths += [out / "figures" / f"{stem}{suffix}" for stem in stems for suffix in (".png", ".pdf")]
    for m in models:
        paths.append(out / "cache" / f"{_slug(m.name)}.npz")
        paths += [out / "scans" / f"{_slug(m.name)}_{_slug(d)}.nc" for d in DATASETS]
    return paths


def _slug(name: str) -> str:
    return name.replace("+", "p").replace("/", "_")


class _Figures:
    """The run's figures, each built once and saved as PNG and PDF by a job of ``pool``
    (:class:`~cevnsfit.forkpool.ForkPool`: in a child process, while the parent computes on).  :meth:`paths` lists
    them in the report's order -- the planes in model order, the summaries, the spectra -- whatever order they
    were drawn in.

    The first figure (the first model's plane) is drawn in the parent, in the pool's warm-up thread while the run
    computes the next model: it fills the process's caches (fonts; the parsed math text of the tick labels, see
    plotting/mathtext_cache.py) that every child then inherits.  A plane figure took 1.2-1.4 s in a child forked
    before any drawing, ~1.0 s after this warm-up; a spectra figure as the warm-up (it needs no model, so it could
    be drawn during the first model) left the children ~1 s of CPU more in all (measured, three runs each).  Its
    failure (a full disk, say) is raised after the next model, at the pool's next submit or poll, as a worker's is."""

    def __init__(self, folder: Path, pool: ForkPool, gm2_epochs, cl: str, curves: dict):
        # imported here, in the parent, before the first child is forked: the children share these modules
        from .plotting import compare, planes, spectra, style

        self.folder, self.pool, self.gm2_epochs, self.cl, self.curves = folder, pool, gm2_epochs, cl, curves
        self._compare, self._planes, self._spectra, self._style = compare, planes, spectra, style
        self._stems: dict[str, list[str]] = {"plane": [], "summary": [], "spectra": []}

    def _draw(self, kind: str, stem: str, build: Callable, first: bool = False) -> None:
        self._stems[kind].append(stem)
        plt, save = self._style.plt, self._style.save

        def job():
            fig = build()
            try:
                for suffix in (".png", ".pdf"):
                    save(fig, self.folder / f"{stem}{suffix}", close=False)
            finally:
                plt.close(fig)

        self.pool.submit(job, first=first)

    def plane(self, name: str, res: ModelAnalysis, overlay=None) -> None:
        self._draw("plane", f"plane_{_slug(name)}", lambda: self._planes.plane_figure(
            res, gm2_epochs=self.gm2_epochs, curves=self.curves[name], cl=self.cl, overlay=overlay))

    def summaries(self, results: dict) -> None:
        """The figures of all models: submitted last, they go ahead of the planes still waiting, the comparison
        (12 panels, the costliest figure: ~2.5 s) first -- else it would end the run alone."""
        full = {n: parts["full"] for n, parts in results.items()}
        vectors = {n: r for n, r in full.items() if getattr(r.model, "kind", "vector") == "vector"}
        if vectors:
            self._draw("summary", "summary_csi+lar", lambda: self._planes.summary_figure(vectors, "csi+lar", self.cl),
                       first=True)
        part = _comparison_part()
        if part is not None:
            chosen = {n: parts[part] for n, parts in results.items()}
            self._draw("summary", "coherent_vs_xenonnt", lambda: self._compare.comparison_figure(chosen, self.cl),
                       first=True)

    def spectra(self, an: MediatorAnalysis) -> None:
        for exp_name in data_set_experiments():
            exp = an.experiment(exp_name)
            self._draw("spectra", f"spectra_{exp_name}", lambda exp=exp: self._spectra.experiment_figure(exp))

    def paths(self) -> list[str]:
        stems = self._stems["plane"] + self._stems["summary"] + self._stems["spectra"]
        return [str(self.folder / f"{stem}{suffix}") for stem in stems for suffix in (".png", ".pdf")]


def _report(sm, rows, rows_1dof, verdicts, figures, checksums, cl, gm2_epochs, wall, models, params) -> str:
    by = {(r["model"], r["dataset"]): r for r in rows}
    lines = ["# cevnsfit reproduction of Atzori Corona et al., JHEP 05 (2022) 109 (arXiv:2202.11002)", "",
             f"- software: cevnsfit {__version__}, Python {platform.python_version()}, {platform.platform()}",
             f"- wall time: {wall:.1f} s", f"- limits convention: {convention(cl)['description']}; "
             f"reference minimum: {convention(cl)['reference_minimum']}",
             f"- (g-2)_mu bands drawn: {', '.join(gm2_epochs)} (2 sigma); verdicts computed for {', '.join(GM2_EPOCHS)}", "",
             "## Standard Model", "", "| data set | component | predicted | best fit | observed | chi2_min / bins |", "|---|---|---|---|---|---|"]
    for name, r in sm.items():
        for z in r["predicted"]:
            lines.append(f"| {name} | {z} | {r['predicted'][z]:.1f} | {r['best_fit'][z]:.1f} | {r['observed']} | "
                         f"{r['chi2_min']:.2f} / {r['n_bins']} |")
    lines += ["", "## 2 sigma limits", "", markdown(rows, "", TABLE_COLUMNS), "", "### Against the AC22 rows available to us", "",
              "| model | data set | g (ours / AC22) | g/M [GeV^-1] (ours / AC22) |", "|---|---|---|---|"]
    for (m, d), (g_ref, gm_ref) in AC22_REFERENCE.items():
        r = by.get((m, d))
        if r is None:
            continue
        lines.append(f"| {m} | {d} | {r['g_low_mass']:.3g} / {g_ref:.3g} ({100 * (r['g_low_mass'] / g_ref - 1):+.1f} %) | "
                     f"{r['g_over_M_high_mass']:.3g} / {gm_ref:.3g} ({100 * (r['g_over_M_high_mass'] / gm_ref - 1):+.1f} %) |")
    islands = [r for r in rows if r["low_mass_islands"] or r["high_mass_islands"]]
    if islands:
        lines += ["", "Sign-flip (destructive interference) allowed islands above the tabulated limit:", ""]
        for r in islands:
            parts = [f"g in [{a:.3g}, {b:.3g}]" for a, b in r["low_mass_islands"]]
            parts += [f"g/M in [{a:.3g}, {b:.3g}] GeV^-1" for a, b in r["high_mass_islands"]]
            lines.append(f"- {r['model']} ({r['dataset']}): " + "; ".join(parts))
    per = {}
    for v in verdicts:
        per.setdefault(v["dataset"], {}).setdefault(v["model"], {})[v["epoch"]] = v["verdict"]
    for d, by_model in per.items():
        lines += ["", f"## (g-2)_mu verdicts ({DATA_SETS[d].label})", "", "| model | " + " | ".join(GM2_EPOCHS) + " |",
                  "|---" * 4 + "|"]
        for m, eps in by_model.items():
            lines.append(f"| {m} | " + " | ".join(eps.get(e, "") for e in GM2_EPOCHS) + " |")
    lines += ["", "AC22 concludes that COHERENT excludes the (g-2)_mu explanation for the models with tree-level quark and",
              "muon couplings; its conclusion also names B-3L_e, which has Q'_mu = 0 and hence no band (see the physics",
              "specification, open point b): we report 'no band' for it.", "",
              "## Figures", ""] + [f"- {p}" for p in figures if p.endswith(".png")]
    lines += ["", "## Inputs and citations", "", "| parameter | value | unit | source |", "|---|---|---|---|"]
    for key, value, unit, source in params.citations():
        lines.append(f"| {key} | {value:g} | {unit} | {source} |")
    lines += ["", "## Data files (SHA-256)", ""] + [f"- `{k}`: `{v}`" for k, v in checksums.items()]
    return "\n".join(lines) + "\n"
