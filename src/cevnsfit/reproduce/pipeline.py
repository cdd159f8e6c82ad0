"""``cevnsfit reproduce``: what the reproduction computes -- every model on every data set (the chi^2 grids, the
limits rows, the scans, the (g-2) verdicts), the Standard-Model fits, optionally the Feldman-Cousins columns -- and
in which order, writing through the run folder (:mod:`cevnsfit.io.runfolder`), the grid cache
(:mod:`.cache`), the report (:mod:`.report`) and the figures (:mod:`.figures`).

Output folder layout::

    limits.{md,tex,csv,json}   2 sigma limits (g for M -> 0, g/M in GeV^-1 for M -> inf), all models and data sets
    verdicts.json              does CsI+LAr exclude the (g-2)_mu band? (2021, 2023, 2025 values of Delta a_mu)
    scans/<model>_<dataset>.nc (M, g) Delta chi^2 grids (NetCDF)
    hepdata/                   the limits and contours as a HEPData submission (submission.yaml + one YAML per table)
    figures/*.png, *.pdf       one (M, g) figure per model, the summary figure, the CsI and LAr spectra
    report.md                  inputs and citations, conventions, numbers vs references, checksums, wall time
    run.json                   the run record: its id, options, cache key and the SHA-256 of every result file
    cache/<model>.npz          chi^2 grids keyed on everything that changes them (reused by a rerun)

How a run survives faults (docs/decisions.md, "Faults"): every precondition is checked before the first write
(option names, the COHERENT data -- read, and the response kernels built --, the other experiments' limit curves,
found by :func:`cevnsfit.limits.catalog.resolve_limits_dir`, and every output path); then the folder is locked,
the results written into a staging folder and moved into place as one (:class:`cevnsfit.io.runfolder.RunFolder`);
the grids cached in ``cache/`` are written atomically and keyed on every input (:func:`.cache.cache_key`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .. import __version__
from ..analysis import hepdata_comment, hepdata_labels, sm_summary
from ..errors import InputError
from ..experiments import DATA_SETS, DEFAULT_DATA_SET, EXPERIMENTS
from ..io.atomic import check_writable_dir, write_text
from ..io.hepdata import submission_files, write_tables
from ..io.jsonio import nulls_for_nonfinite
from ..io.results import data_checksums, scan_dataset, write_netcdf
from ..io.runfolder import RUN_RECORD, RunFolder, check_targets
from ..mediators import DATASETS, MediatorAnalysis, convention, data_set_experiments, default_couplings, \
    default_masses, gm2_verdict
from ..physics.models import get_model, model_names
from ..process import usable_cores
from . import cache, report
from .figures import FigureState, Figures, slug, workers
from .grids import RUN_OPTIONS, analyse, comparison_part, part_of, parts

GM2_EPOCHS = ("2021", "2023", "2025")
"""The Delta a_mu epochs of the (g-2)_mu verdicts in ``verdicts.json``."""
GM2_DATA_SETS = tuple(n for n, d in DATA_SETS.items() if d.reproduce.get("gm2_verdict"))  # AC22's conclusion, + solar
# The report's Standard-Model table is AC22's (Table 1: the COHERENT fits): the experiments that the data sets use
# and whose data are COHERENT releases.  Not every experiment with an SM summary: XENONnT's is an 8B flux fit with
# its own document (`cevnsfit sm --experiment xenonnt`), not a row of that table.
SM_EXPERIMENTS = tuple(RUN_OPTIONS["sm_table"])  # the report's SM table: AC22 Table 1's experiments (datasets.yaml)
"""The experiments of the report's Standard-Model table (AC22's Table 1; data/datasets.yaml)."""
LOCK_NAME = ".cevnsfit-reproduce.lock"
"""The lock file of ``cevnsfit reproduce`` in its output folder (held while a run writes there)."""
HEPDATA = "hepdata"  # the limits and contours as a HEPData submission (cevnsfit.io.hepdata)


def reproduce(out_dir, data_dir=None, models=None, gm2_epochs=("2021", "2025"), cl: str = "2dof",
              progress: Callable[[str, int, int], None] | None = None, fc_toys: int | None = None,
              fc_backend: str = "dask", figure_workers: int | None = None) -> dict:
    """Run the whole analysis into ``out_dir``; returns a summary dict (paths, timing, verdicts).

    ``fc_toys``: also Feldman-Cousins limits on both asymptotic lines with that many toys per tested coupling
    (:func:`cevnsfit.fc.run_fc`, store in ``cache/fc/``, resumable): FC columns (one-parameter Wilks | FC | toy
    error) in limits.md, limits.json and report.md, and the FC asymptotes on the plane figures.  Off by default.

    ``figure_workers``: processes drawing the figures while the run computes (default: one per usable core, none
    with ``fc_toys``; 0 draws them in this process).  Each figure is drawn from the same numbers either way.

    Raises :class:`InputError`/:class:`DataError` before writing anything when an input is unusable and
    :class:`~cevnsfit.io.runfolder.BusyError` when another run holds ``out_dir``.
    """
    from ..limits.catalog import curves_for_model
    from ..physics.gm2 import get_epoch

    t_start = time.perf_counter()
    # 1. Preconditions, read only: names, convention, data (kernels built: the flux grid is read then), the other
    # experiments' limit curves, every output path.
    models = [get_model(m) for m in (models or model_names())]
    for ep in gm2_epochs:
        get_epoch(ep)
    convention(cl)
    fc = None
    if fc_toys is not None:
        from ..fc import BACKENDS

        if not 1 <= int(fc_toys) <= 10_000_000 or fc_backend not in BACKENDS:
            raise InputError(f"--toys must be in 1..1e7 and the FC backend one of {', '.join(BACKENDS)}")
        fc = {"toys": int(fc_toys), "backend": fc_backend, "data_dir": data_dir}
    an = MediatorAnalysis(data_dir)
    exps = [an.experiment(n) for n in data_set_experiments()]
    for exp in exps:
        exp.kernel  # noqa: B018 - builds the response (reads the flux grid) now rather than after the first write
    curves = {m.name: curves_for_model(m.name) for m in models}
    out = Path(out_dir)
    check_targets(out, planned_outputs(out, models), ("cache", "scans", "figures", HEPDATA))
    checksums = data_checksums(exps)

    # 2. The first write: the folder and its lock (what a killed run left is finished or cleared), the staging
    # folder; the figure workers are forked once the experiments are loaded, before the first grid.
    with RunFolder(out, LOCK_NAME, "cevnsfit reproduce", layout=result_layout) as folder, folder.stage() as stage:
        if figure_workers is None:  # with toys, Dask's threads outlive its cluster: no fork after them (the
            # figures are seconds of a run of minutes)
            figure_workers = usable_cores() if fc is None else 0
        for sub in ("scans", "figures"):
            (stage / sub).mkdir()
        check_writable_dir(out / "cache")
        state = FigureState(stage / "figures", an, out / "cache", tuple(gm2_epochs), cl, curves)
        with workers(state, figure_workers, close_fds=(folder.lock_fd,)) as pool:
            result, record = _run(out, stage, an, exps, models, checksums, gm2_epochs, cl, progress, t_start,
                                  Figures(state, pool), fc=fc)
        result["run"] = record["run"] = folder.run_id(stage)
        folder.commit(stage, record)
    return result


def _run(out, stage, an, exps, models, checksums, gm2_epochs, cl, progress, t_start, figures: Figures,
         fc: dict | None = None):
    """Compute everything; cache into ``out/cache``, results into ``stage``; ``figures`` draws each figure as soon
    as its numbers are known.  Returns (the summary, the run record without its files)."""
    masses, couplings = default_masses(), default_couplings()
    steps = len(models) + 2 + (fc is not None)
    step = 0

    def tick(label: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(label, step, steps)

    figures.spectra()  # they need no model: the workers begin with them
    sm = {name: sm_summary(an.experiment(name)) for name in SM_EXPERIMENTS}
    tick("Standard-Model fits")

    results, rows, rows_1dof, verdicts, keys = figures.state.results, [], [], [], {}
    for model in models:
        key = keys[model.name] = cache.cache_key(an, checksums, masses, couplings, model)
        path = out / "cache" / f"{slug(model.name)}.npz"
        grids = cache.load(path, an, model, key)
        if grids is None or set(grids) != set(parts()):
            grids = analyse(an, model, masses, couplings)
            cache.save(path, grids, key)
        results[model.name] = grids
        if fc is None:  # with FC the figure waits for the toys' asymptotes
            figures.plane(model.name, key)
        for d in DATASETS:
            res = grids[part_of(d)]
            rows.append(res.row(d, cl))
            rows_1dof.append({k: v for k, v in res.row(d, "1dof").items() if k != "contour"})
            ds = scan_dataset(res.plane, d, res.contour(d, cl), [e for e in exps if e.name in DATASETS[d]])
            write_netcdf(ds, stage / "scans" / f"{slug(model.name)}_{slug(d)}.nc")
        for d in GM2_DATA_SETS:
            if d in DATASETS:
                verdicts += [gm2_verdict(grids[part_of(d)], d, ep, cl) for ep in GM2_EPOCHS]
        tick(f"model {model.name}")

    if fc is not None:
        from ..fc import with_fc_columns

        fc_rows = _fc_rows(out, an, models, fc)
        rows = with_fc_columns(rows, fc_rows)
        for model in models:
            figures.plane(model.name, keys[model.name], fc_rows[(model.name, DEFAULT_DATA_SET)])
        tick("Feldman-Cousins toys")

    fc_toys = None if fc is None else fc["toys"]
    report.write_tables(stage, rows, rows_1dof, verdicts, cl, fc_toys)
    (stage / HEPDATA).mkdir()
    # written and validated on a figure worker while this process draws the summaries (~2 s of hepdata_lib and its
    # validator off the run's critical path)
    figures.alongside(write_tables, stage / HEPDATA, nulls_for_nonfinite(rows), convention(cl), hepdata_labels(),
                      hepdata_comment({"limits": rows, "convention": convention(cl)}), fc_toys)
    figures.summaries(keys, models)
    figures.join()
    paths = [str(out / Path(p).relative_to(stage)) for p in figures.paths()]
    tick("figures")
    wall = time.perf_counter() - t_start
    write_text(stage / "report.md", report.report_markdown(sm, rows, verdicts, paths, checksums, cl, gm2_epochs,
                                                           GM2_EPOCHS, wall, an.params, fc_toys))
    record = {
        "run": None, "software": f"cevnsfit {__version__}", "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": {"models": [m.name for m in models], "gm2_epochs": list(gm2_epochs), "cl": cl,
                    "data_dir": str(exps[0].data_dir), "fc_toys": fc_toys},
        "cache_keys": keys, "data_sha256": checksums,
    }
    return {"out": str(out), "wall_time_s": wall, "figures": paths, "verdicts": verdicts, "run": None}, record


def _fc_rows(out: Path, an: MediatorAnalysis, models, fc: dict) -> dict:
    """(model, data set) -> fc.json row of both asymptotic lines (store: out/cache/fc/<model>, resumable); ``an``
    is the run's analysis (its experiments are not loaded again).  The dask backend runs every model on one
    local cluster (started by the first model with toys to run: a cluster costs seconds to start)."""
    from ..fc import REGIMES, DaskSession, run_fc, toy_data_sets

    rows = {}
    with DaskSession() as dask:
        for model in models:
            doc = run_fc(model.name, toy_data_sets(an), REGIMES["both"], fc["toys"], 0, "2sigma",
                         out / "cache" / "fc" / slug(model.name), backend=fc["backend"], data_dir=fc["data_dir"],
                         with_table=False, analysis=an, dask=dask)
            rows.update({(r["model"], r["dataset"]): r for r in doc["limits"]})
    return rows


def result_layout(out: Path) -> list[str]:
    """The result files of the known layout found in ``out`` (a folder whose run record is missing)."""
    found = [f for f in report.RESULT_FILES if (out / f).is_file()]
    for sub, suffixes in (("scans", (".nc",)), ("figures", (".png", ".pdf")), (HEPDATA, (".yaml",))):
        if (out / sub).is_dir():
            found += [f"{sub}/{p.name}" for p in (out / sub).iterdir() if p.is_file() and p.suffix in suffixes]
    return found


def planned_outputs(out: Path, models) -> list[Path]:
    """Every file :func:`reproduce` leaves in ``out``."""
    paths = [out / f for f in (*report.RESULT_FILES, RUN_RECORD)]
    stems = [f"plane_{slug(m.name)}" for m in models] + ["summary_csi+lar"]
    stems += [f"spectra_{n}" for n in data_set_experiments()]
    if comparison_part() is not None:
        stems.append("coherent_vs_xenonnt")
    paths += [out / "figures" / f"{stem}{suffix}" for stem in stems for suffix in (".png", ".pdf")]
    paths += [out / HEPDATA / f for f in submission_files([m.name for m in models], DATASETS, hepdata_labels())]
    for m in models:
        paths.append(out / "cache" / f"{slug(m.name)}.npz")
        paths += [out / "scans" / f"{slug(m.name)}_{slug(d)}.nc" for d in DATASETS]
    return paths
