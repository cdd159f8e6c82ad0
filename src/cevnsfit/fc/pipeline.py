"""``cevnsfit fc``: Feldman-Cousins (Neyman, toy) limits of one model on the two asymptotic lines (or a fixed-mass
raster) beside the Wilks values -- the lines built (:mod:`.construction`), the toys that are missing from the store
(:mod:`.store`) run on a backend (:mod:`.backends`), each line summarised, and the fc.json document returned
(:mod:`.report`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..experiments import DEFAULT_DATA_SET, resolve_data_set
from ..io.datadir import data_key
from ..mediators import DATASETS, MEV_PER_GEV, MediatorAnalysis, dataset_members
from ..parameters import DEFAULT
from ..stats.intervals import allowed_intervals
from ..stats.toys import (CONSTRUCTIONS, check_seed, confidence_level, critical_band, critical_value, p_value,
                         significance, wilks_threshold)
from . import backends
from .backends import BACKENDS, DaskSession
from .construction import (DEFAULT_BLOCK, POINTS_PER_DECADE, LineSpec, Observed, _analysis, choose_grids, line_chi2,
                           line_mass, observe, share_analysis, toy_data_sets, without_replicas)
from .report import document_row, raster_section
from .store import Store


@dataclass
class LineResult:
    """The toys of one line and its observed side: :meth:`summary` gives the FC allowed set, critical values with
    their error band, p-values and islands beside Wilks."""

    spec: LineSpec
    observed: Observed
    t: list  # per tested point: t of every toy
    cl: str

    def summary(self) -> dict:
        level = confidence_level(self.cl)
        tested = np.asarray(self.spec.tested)
        t_c = np.array([critical_value(t, level) for t in self.t])
        band = np.array([critical_band(t, level) for t in self.t])
        t_obs = self.observed.t_obs
        allowed = allowed_intervals(tested, t_obs - t_c, 0.0)
        lo, hi = (allowed_intervals(tested, t_obs - band[:, k], 0.0).limit for k in (0, 1))
        pv = np.array([p_value(t, x) for t, x in zip(self.t, t_obs)])
        islands = []
        for a, b in allowed.islands:
            inside = (tested >= a) & (tested <= b)
            p = float(pv[inside].max()) if inside.any() else float("nan")
            islands.append({"interval": [a, b], "p_value": p, "significance": significance(p) if np.isfinite(p) else None})
        return {"limit": allowed.limit, "toy_error": 0.5 * abs(hi - lo) if np.isfinite(hi - lo) else None,
                "intervals": allowed.intervals, "islands": islands, "wilks": self.observed.wilks.limit,
                "wilks_islands": self.observed.wilks.islands, "tested": tested, "t_obs": t_obs, "t_c": t_c,
                "t_c_band": band, "p_value": pv, "chi2_min": self.observed.chi2_min}


def run_fc(model: str, datasets, regimes, n_toys: int, seed: int, cl: str, out: Path, backend: str = "dask",
           scheduler: str | None = None, workers: int | None = None, construction: str = "profile",
           block: int = DEFAULT_BLOCK, per_decade: int = POINTS_PER_DECADE, data_dir=None,
           progress: Callable | None = None, with_table: bool = True, masses=None,
           analysis: MediatorAnalysis | None = None, dask: DaskSession | None = None) -> dict:
    """FC lines of ``model`` on every data set and regime; returns the fc.json document (and writes the store).

    ``masses`` (MeV): also the fixed-mass raster, one line in g per mass and data set (the ``raster`` section).
    ``analysis``: an analysis already built on ``data_dir`` with the default parameters (``cevnsfit reproduce``
    passes its own), so that the experiments are not loaded a second time; the serial backend's tasks use it too
    (Dask's worker processes build their own from ``data_dir``, which is why other parameters are refused).

    ``dask``: a :class:`DaskSession` shared with other calls (the dask backend; ``scheduler`` and ``workers`` are
    then the session's); without one the call starts its own and closes it before returning.

    ``progress(total_tasks)`` is called once first, then ``progress(None, toys)`` per finished task.
    """
    from ..io.results import data_checksums
    from ..physics.models import get_model

    confidence_level(cl)
    seed = check_seed(seed)  # before the store is written: SeedSequence refuses a negative seed only at the first toy
    if construction not in CONSTRUCTIONS:
        raise InputError(f"unknown toy construction '{construction}'; choose {' or '.join(CONSTRUCTIONS)}")
    if backend not in BACKENDS:
        raise InputError(f"unknown backend '{backend}'; choose dask or serial")
    if n_toys < 1 or block < 1 or per_decade < 2:
        raise InputError("--toys, the block size and the points per decade must be positive")
    for d in datasets:
        dataset_members(d)
    masses = [] if masses is None else [line_mass("fixed_mass", m) for m in np.atleast_1d(np.asarray(masses, float))]
    model = get_model(model).name
    key = data_key(data_dir)
    if analysis is not None:
        if analysis.params != DEFAULT or key != data_key(analysis.data_dir):
            raise InputError("run_fc(analysis=...) needs an analysis of data_dir with the default parameters (the "
                             "toy tasks rebuild it from data_dir)")
        share_analysis(key, analysis)
    an = _analysis(key)
    for d in datasets:
        lacking = without_replicas(an, d)
        if lacking:
            raise InputError(f"no toys for data set '{d}': the cost of {', '.join(lacking)} has no replica path yet; "
                             f"choose {', '.join(toy_data_sets(an))}")
    store = Store(Path(out) / "store")
    specs, observed, tasks, results = [], {}, [], {}
    for d in datasets:
        checks = data_checksums([an.experiment(n) for n in dataset_members(d)])
        for r, mass in [(r, None) for r in regimes] + [("fixed_mass", m) for m in masses]:
            obs = observe(an, model, d, r, cl, mass)
            tested, grid = choose_grids(obs, cl, per_decade)
            spec = LineSpec(model, d, r, tuple(float(x) for x in tested), tuple(float(x) for x in grid), int(seed),
                            int(block), construction, key, mass)
            store.register(spec, spec.inputs(checks))
            f = line_chi2(an, spec)
            obs.t_obs = np.maximum(f(tested) - obs.chi2_min, 0.0)
            specs.append(spec)
            observed[spec] = obs
            for p in range(len(tested)):
                for b, n in enumerate(spec.blocks(n_toys)):
                    t = store.load(spec, p, b, n)
                    if t is None:
                        tasks.append((spec, p, b, n))
                    else:
                        results[(spec, p, b)] = t
    if progress is not None:
        progress(len(tasks))

    def on_result(spec, p, b, t):
        store.save(spec, p, b, t)
        results[(spec, p, b)] = t
        if progress is not None:
            progress(None, t.size)

    if tasks:
        if backend == "serial":
            backends.serial(tasks, on_result)
        elif dask is not None:
            backends.dask(tasks, on_result, dask.client())
        else:
            with DaskSession(scheduler, workers) as own:
                backends.dask(tasks, on_result, own.client())
    lines = {}
    for spec in specs:
        t = [np.concatenate([results[(spec, p, b)] for b in range(len(spec.blocks(n_toys)))]) for p in range(len(spec.tested))]
        lines[(spec.dataset, spec.regime, spec.mass)] = LineResult(spec, observed[spec], t, cl).summary()
    table = _table_values(an, model, datasets) if with_table and regimes else {}
    rows = [document_row(model, d, regimes, lines, table.get(d)) for d in datasets] if regimes else []
    raster = {"raster": raster_section(model, datasets, masses, lines)} if masses else {}
    return {"method": "fc", "n_toys": int(n_toys), "seed": int(seed), "cl": cl, "cl_value": confidence_level(cl),
            "construction": construction, "block": int(block),
            "convention": {"test_statistic": "t(g) = chi2(g) - min_{g' >= 0} chi2(g') (Feldman-Cousins)",
                           "wilks": f"one parameter, Delta chi^2 = {wilks_threshold(cl):.4g}",
                           "wilks_table": "the limits table: 2 sigma, Delta chi^2 = 6.18 from the plane minimum"},
            "units": {"mass": "MeV", "g_over_M": "GeV^-1", "g": "1"}, "limits": rows, **raster}


def _table_values(an: MediatorAnalysis, model: str, datasets) -> dict:
    """The limits table's two-parameter (6.18) values of ``model`` for each data set."""
    res = an.analyse(model, experiments=tuple(sorted({e for d in datasets for e in DATASETS[d]})))
    return {d: {"g_low_mass": res.limit(d, "low_mass").value,
                "g_over_M_high_mass": res.limit(d, "high_mass").value * MEV_PER_GEV} for d in datasets}



def run_fc_to_folder(model: str, out_dir, dataset: str = DEFAULT_DATA_SET, regime: str = "both", n_toys: int = 1000,
                     seed: int = 0, cl: str = "2sigma", construction: str = "profile", backend: str = "dask",
                     scheduler: str | None = None, workers: int | None = None, block: int = DEFAULT_BLOCK,
                     per_decade: int = POINTS_PER_DECADE, with_table: bool = True, masses: str | None = None,
                     data_dir=None, progress: Callable | None = None) -> dict:
    """``cevnsfit fc``: the FC lines of ``model`` on one data set or ``all`` (those whose costs can throw
    replicas), on the ``regime`` "low", "high" or "both" -- or, with ``masses`` ("M1,M2,..." or "LO:HI:N" in MeV),
    the fixed-mass raster of one data set; the store and fc.json, fc.md, fc.csv in ``out_dir``.  Every option is
    checked before any work.  Returns the fc.json document (:func:`run_fc`, whose ``progress`` protocol it uses)."""
    from ..physics.models import get_model
    from .construction import REGIMES, parse_masses
    from .report import write_reports

    seed = check_seed(seed)  # before anything is loaded or written (a negative seed would fail at the first toy)
    if dataset != "all":
        dataset = resolve_data_set(dataset)
    if regime not in REGIMES:
        raise InputError(f"unknown regime '{regime}'; choose low, high or both")
    if n_toys < 1 or n_toys > 10_000_000 or block < 1 or not 2 <= per_decade <= 1000:
        raise InputError("--toys must be in 1..1e7, --block positive, --points-per-decade in 2..1000")
    if workers is not None and workers < 1:
        raise InputError("--workers must be positive")
    if scheduler is not None and backend != "dask":
        raise InputError("--scheduler needs --backend dask")
    mass_list = None if masses is None else parse_masses(masses)
    get_model(model)
    confidence_level(cl)
    # which data sets can have toys is a property of their costs (stats.chi2.ReplicaCost): 'all' loads every
    # experiment once, here; run_fc reuses the analysis and refuses a data set whose costs cannot throw replicas
    an = MediatorAnalysis(data_dir)
    datasets = toy_data_sets(an) if dataset == "all" else [dataset]
    if mass_list is not None and len(datasets) != 1:
        raise InputError(f"--masses makes the raster of one data set: choose one of {', '.join(datasets)}")
    doc = run_fc(model, datasets, REGIMES[regime] if mass_list is None else (), n_toys, seed, cl, out_dir, backend,
                 scheduler, workers, construction, block, per_decade, data_dir=data_dir, progress=progress,
                 with_table=with_table, masses=mass_list, analysis=an)
    write_reports(doc, out_dir)
    return doc
