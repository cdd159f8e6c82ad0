"""Frequentist (Neyman / Feldman-Cousins) limits on the two asymptotic lines, with toys, serially or on Dask.

Composition layer, like :mod:`cevnsfit.mediators`: the observed side is the asymptotic path itself (same templates,
same profiled costs, the minimum over g >= 0 refined between grid points); the toys come from
:mod:`cevnsfit.stats.toys`.  A *line* is one model x data set x regime (``low_mass``: M = 0, coupling g;
``high_mass``: M = inf, coupling g/M in MeV^-1).  The work is split into tasks (line, tested point, block of
toys); each task draws from its own ``SeedSequence`` (master seed, model, data set, regime, point, block), so the
numbers are identical whatever runs them, in whatever order, after whatever restart.

Store (``DIR/store``): ``manifest.json`` (the inputs of every line: grids, seed, block size, construction, data
checksums, version) and one ``.npz`` per finished task, written atomically as it arrives.  A rerun computes only
the missing tasks; a store made with other inputs is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .errors import InputError
from .io.atomic import atomic_path, check_writable_dir, stale_temporaries
from .io.jsonio import json_text
from .mediators import DATASETS, MEV_PER_GEV, MediatorAnalysis, dataset_members
from .parameters import DEFAULT
from .process import usable_cores
from .stats.chi2 import ReplicaCost
from .stats.intervals import allowed_intervals
from .stats.toys import (CONSTRUCTIONS, Line, LineMember, block_rng, check_seed, confidence_level, critical_band,
                         critical_value, p_value, significance, wilks_threshold)

REGIMES = {"low": ("low_mass",), "high": ("high_mass",), "both": ("low_mass", "high_mass")}
BACKENDS = ("dask", "serial")
DEFAULT_BLOCK = 100  # toys per task (benchmarks/bench_fc.py: ~0.1-0.3 s per task, far above Dask's ~1 ms overhead)
POINTS_PER_DECADE = 20  # tested couplings per decade (12 % steps; the crossing is interpolated in log g)
# Tested range: from UPPER/10 (t_obs is far below any critical value there) to where t_obs passes Wilks + 12.
LOWER_DECADES = 1.0
HEADROOM = 12.0


@dataclass(frozen=True)
class LineSpec:
    """Everything a worker needs to compute one task of a line (small and picklable)."""

    model: str
    dataset: str
    regime: str
    tested: tuple  # tested couplings (g, or g/M in MeV^-1), 0 first
    grid: tuple  # couplings on which each toy's chi^2 is minimised (contains ``tested``)
    seed: int
    block: int
    construction: str = "profile"
    data_dir: str | None = None
    mass: float | None = None  # MeV, for the regime "fixed_mass" (a raster line: coupling g at this mass)

    @property
    def name(self) -> str:
        where = self.regime if self.mass is None else f"m{self.mass:.6g}MeV"
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{self.model}__{self.dataset}__{where}")

    @property
    def mass_mev(self) -> float:
        return line_mass(self.regime, self.mass)

    def blocks(self, n_toys: int) -> list[int]:
        """Sizes of the blocks of ``n_toys`` toys (all ``block`` but a shorter last one)."""
        full, rest = divmod(n_toys, self.block)
        return [self.block] * full + ([rest] if rest else [])

    def inputs(self, checksums: dict) -> dict:
        """What the numbers of this line depend on (the store's key); the number of toys is not among them:
        more toys add blocks to the same store."""
        d = asdict(self)
        d.pop("data_dir")
        if d["mass"] is None:  # the asymptotic lines keep the keys of stores made before the raster existed
            d.pop("mass")
        return {**d, "tested": [float(x) for x in self.tested], "grid": [float(x) for x in self.grid],
                "data_sha256": checksums, "cevnsfit": __version__}


def line_mass(regime: str, mass: float | None = None) -> float:
    """Mediator mass (MeV) of a line: 0 (low_mass), inf (high_mass) or ``mass`` (fixed_mass)."""
    if regime == "fixed_mass":
        if mass is None or not (np.isfinite(mass) and mass > 0):
            raise InputError(f"a fixed-mass line needs a finite positive mass in MeV, got {mass}")
        return float(mass)
    return 0.0 if regime == "low_mass" else float("inf")


def without_replicas(analysis: MediatorAnalysis, dataset: str) -> list[str]:
    """The experiments of ``dataset`` whose cost cannot throw replicas (not a :class:`ReplicaCost`: XENONnT's
    morphed cost); empty when the data set can have toys."""
    return [n for n in dataset_members(dataset) if not isinstance(analysis.cost(n), ReplicaCost)]


def toy_data_sets(analysis: MediatorAnalysis | None = None) -> list[str]:
    """The registered data sets whose every cost can throw replicas, in registry order; decided from the costs
    of ``analysis`` (default: the analysis of the default data folder), so every registered experiment is loaded."""
    an = analysis if analysis is not None else _analysis(None)
    return [d for d in DATASETS if not without_replicas(an, d)]


def parse_masses(text: str) -> np.ndarray:
    """Masses (MeV) from ``"M1,M2,..."`` or ``"LO:HI:N"`` (N log-spaced masses from LO to HI)."""
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            lo, hi, n = float(lo), float(hi), int(n)
            if not (0 < lo < hi and np.isfinite(hi) and 1 <= n <= 1000):
                raise ValueError
            masses = np.geomspace(lo, hi, n)
        else:
            masses = np.array([float(x) for x in text.split(",") if x.strip()])
    except ValueError:
        raise InputError(f"--masses wants M1,M2,... or LO:HI:N (MeV, 0 < LO < HI, 1 <= N <= 1000), got '{text}'") from None
    if masses.size == 0 or not np.all(np.isfinite(masses) & (masses > 0)):
        raise InputError(f"--masses wants finite positive masses in MeV, got '{text}'")
    return np.unique(masses)


# ---- worker side ---------------------------------------------------------------------------------------------
_ANALYSES: dict = {}
_LINES: dict = {}


def _analysis(data_dir) -> MediatorAnalysis:
    if data_dir not in _ANALYSES:
        _ANALYSES[data_dir] = MediatorAnalysis(data_dir)
    return _ANALYSES[data_dir]


def build_line(spec: LineSpec) -> Line:
    """The toy line of ``spec`` (kept per process: templates and costs are built once per worker).  Keyed by the
    line's mass too: raster lines at neighbouring masses often share their snapped grid of couplings."""
    key = (spec.model, spec.dataset, spec.regime, spec.mass_mev, spec.grid, spec.data_dir)
    if key not in _LINES:
        an = _analysis(spec.data_dir)
        members = []
        for name in dataset_members(spec.dataset):
            tpl = an.templates(spec.model, [spec.mass_mev], name)
            members.append(LineMember.linear(an.cost(name), tpl.coefficients, tpl.basis(0)))
        _LINES[key] = Line(members, np.asarray(spec.grid))
    return _LINES[key]


def run_task(spec: LineSpec, point: int, block: int, n: int) -> np.ndarray:
    """t of the ``n`` toys of block ``block`` thrown at tested point ``point`` of the line."""
    g = spec.tested[point]
    key = (spec.model, spec.dataset, spec.regime) if spec.mass is None else \
        (spec.model, spec.dataset, spec.regime, f"{spec.mass:.17g}")
    rng = block_rng(spec.seed, (*key, f"{g:.17g}", block))
    return build_line(spec).statistic(g, rng, n, spec.construction)


# ---- store ---------------------------------------------------------------------------------------------------
class Store:
    """Finished tasks of every line under ``root``: manifest.json + LINE/pPOINT_bBLOCK_nN.npz."""

    def __init__(self, root: Path):
        self.root = check_writable_dir(Path(root))
        self.manifest_path = self.root / "manifest.json"
        # temporary files of writes cut short (kill -9 between write and rename): never read, removed here
        for tmp in stale_temporaries(self.root):
            tmp.unlink(missing_ok=True)
        self.lines = {}
        if self.manifest_path.exists():
            try:
                self.lines = json.loads(self.manifest_path.read_text())["lines"]
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{self.manifest_path} is not a cevnsfit fc manifest; use another --out") from None

    def register(self, spec: LineSpec, inputs: dict) -> None:
        """Accept ``spec`` if new or made with the same inputs; refuse a store made with other inputs."""
        old = self.lines.get(spec.name)
        if old is not None and old != json.loads(json_text(inputs)):
            diff = sorted(k for k in set(old) | set(inputs) if old.get(k) != json.loads(json_text(inputs)).get(k))
            raise InputError(f"the store {self.root} holds {spec.name} computed with other inputs (differs in: "
                             f"{', '.join(diff)}); use another --out or delete it")
        if old is None:
            self.lines[spec.name] = inputs
            with atomic_path(self.manifest_path) as tmp:
                Path(tmp).write_text(json_text({"format": "cevnsfit-fc-store-1", "lines": self.lines}))
        (self.root / spec.name).mkdir(exist_ok=True)

    def path(self, spec: LineSpec, point: int, block: int, n: int) -> Path:
        return self.root / spec.name / f"p{point:04d}_b{block:05d}_n{n}.npz"

    def load(self, spec: LineSpec, point: int, block: int, n: int) -> np.ndarray | None:
        p = self.path(spec, point, block, n)
        if not p.exists():
            return None
        with np.load(p) as f:
            return f["t"]

    def save(self, spec: LineSpec, point: int, block: int, t: np.ndarray) -> None:
        with atomic_path(self.path(spec, point, block, t.size)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, t=t, coupling=spec.tested[point], block=block)


# ---- running -------------------------------------------------------------------------------------------------
def _serial(tasks, on_result):
    for spec, point, block, n in tasks:
        on_result(spec, point, block, run_task(spec, point, block, n))


class DaskSession:
    """One Dask client for one or several :func:`run_fc` calls (``cevnsfit reproduce --fc``: every model), started
    by the first call that has toys to run, so a run whose toys are all stored starts no cluster.

    ``scheduler``: address of a running scheduler (tcp://HOST:PORT), else a local cluster of ``workers``
    single-threaded processes (default one per core).  ``close()`` (or leaving a ``with`` block) closes the
    client and the local cluster."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        self.scheduler, self.workers = scheduler, workers
        self._client = self._cluster = None
        self.started = 0  # clusters (or connections) made: at most one

    def client(self):
        if self._client is None:
            self._client, self._cluster = _connect(self.scheduler, self.workers)
            self.started += 1
        return self._client

    def close(self) -> None:
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(scheduler: str | None, workers: int | None):
    """(client, local cluster or None)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a dependency
        raise InputError("the dask backend needs dask.distributed: pip install 'dask[distributed]'") from None
    if scheduler:
        try:
            return Client(scheduler), None  # waits distributed.comm.timeouts.connect (Dask configuration)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    n = workers or usable_cores()
    # one single-threaded process per core: the toy fits are numpy-bound and hold the GIL
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def _dask(tasks, on_result, client):
    from dask.distributed import as_completed

    futures = {client.submit(run_task, spec, p, b, n, pure=False): (spec, p, b) for spec, p, b, n in tasks}
    for fut in as_completed(futures):
        spec, p, b = futures[fut]
        on_result(spec, p, b, fut.result())


@dataclass
class Observed:
    """The asymptotic path on one line: chi^2 minimum, Wilks intervals, t_obs at the tested couplings."""

    chi2_min: float
    best: float
    wilks: object  # AllowedIntervals at Wilks' one-parameter threshold
    upper: float  # largest finite edge of the Wilks allowed set
    fine: np.ndarray
    delta: np.ndarray
    t_obs: np.ndarray = field(default=None)


def observe(an: MediatorAnalysis, model, dataset: str, regime: str, cl: str, mass: float | None = None) -> Observed:
    """Asymptotic path on the line (:meth:`MediatorAnalysis.fixed_mass_limit`: the fine grid of mediators.py,
    minimum refined with Brent's method); ``mass`` (MeV) for the regime ``fixed_mass`` (coupling g on the grid of
    the light limit)."""
    lim = an.fixed_mass_limit(model, dataset, line_mass(regime, mass), "1dof", regime=regime)
    grid, fine = lim.grid, lim.grid.couplings
    chi, _ = grid.dataset_chi2(dataset)
    f = an.chi2_function(grid, dataset, 0)
    wilks = allowed_intervals(fine, chi[0] - lim.chi2_min, wilks_threshold(cl), refine=lambda x: f(x) - lim.chi2_min)
    edges = [b for iv in wilks.intervals for b in iv if np.isfinite(b) and b > 0]
    upper = max(edges) if edges else float(fine[-1])
    return Observed(lim.chi2_min, lim.best_coupling, wilks, upper, fine, chi[0] - lim.chi2_min)


def _lattice(lo: float, hi: float, per_decade: int) -> np.ndarray:
    """10^(k / per_decade) for the integers k with lo <= value <= hi (rounded outwards): points that depend on the
    range only through integers, so that 1e-12 changes of the observed chi^2 never move the grid (or the store)."""
    k = np.arange(np.floor(np.log10(lo) * per_decade), np.ceil(np.log10(hi) * per_decade) + 1)
    return 10.0 ** (k / per_decade)


def choose_grids(obs: Observed, cl: str, per_decade: int = POINTS_PER_DECADE) -> tuple[np.ndarray, np.ndarray]:
    """(tested couplings, toy minimisation grid) around the Wilks allowed set of the observed line."""
    lo = obs.upper / 10**LOWER_DECADES
    beyond = np.flatnonzero((obs.fine > obs.upper) & (obs.delta >= wilks_threshold(cl) + HEADROOM))
    hi = max(float(obs.fine[beyond[0]]) if beyond.size else float(obs.fine[-1]), 1.5 * obs.upper)
    tested = _lattice(lo, hi, per_decade)
    below = _lattice(tested[0] * 1e-4, tested[0], 4)
    above = _lattice(tested[-1], 3.0 * tested[-1], per_decade)
    grid = np.unique(np.concatenate([[0.0], below[below < tested[0]], tested, above[above > tested[-1]]]))
    return np.concatenate([[0.0], tested]), grid


@dataclass
class LineResult:
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
    from .io.results import data_checksums
    from .physics.models import get_model

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
    key = None if data_dir is None else str(data_dir)
    if analysis is not None:
        if analysis.params != DEFAULT or key != (None if analysis.data_dir is None else str(analysis.data_dir)):
            raise InputError("run_fc(analysis=...) needs an analysis of data_dir with the default parameters (the "
                             "toy tasks rebuild it from data_dir)")
        _ANALYSES[key] = analysis
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
                            int(block), construction, None if data_dir is None else str(data_dir), mass)
            store.register(spec, spec.inputs(checks))
            f = _line_chi2(an, spec)
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
            _serial(tasks, on_result)
        elif dask is not None:
            _dask(tasks, on_result, dask.client())
        else:
            with DaskSession(scheduler, workers) as own:
                _dask(tasks, on_result, own.client())
    lines = {}
    for spec in specs:
        t = [np.concatenate([results[(spec, p, b)] for b in range(len(spec.blocks(n_toys)))]) for p in range(len(spec.tested))]
        lines[(spec.dataset, spec.regime, spec.mass)] = LineResult(spec, observed[spec], t, cl).summary()
    table = _table_values(an, model, datasets) if with_table and regimes else {}
    rows = [_row(model, d, regimes, lines, table.get(d)) for d in datasets] if regimes else []
    raster = {"raster": _raster(model, datasets, masses, lines)} if masses else {}
    return {"method": "fc", "n_toys": int(n_toys), "seed": int(seed), "cl": cl, "cl_value": confidence_level(cl),
            "construction": construction, "block": int(block),
            "convention": {"test_statistic": "t(g) = chi2(g) - min_{g' >= 0} chi2(g') (Feldman-Cousins)",
                           "wilks": f"one parameter, Delta chi^2 = {wilks_threshold(cl):.4g}",
                           "wilks_table": "the limits table: 2 sigma, Delta chi^2 = 6.18 from the plane minimum"},
            "units": {"mass": "MeV", "g_over_M": "GeV^-1", "g": "1"}, "limits": rows, **raster}


def _raster(model: str, datasets, masses, lines: dict) -> dict:
    """The fixed-mass raster: per data set and mass, the FC allowed set in g (islands included) beside Wilks."""
    out = {"model": model, "units": {"mass": "MeV", "g": "1"}, "masses_MeV": [float(m) for m in masses],
           "convention": "per mass: t(g) = chi2(g, M) - min_{g' >= 0} chi2(g', M); Wilks with one parameter",
           "datasets": {}}
    for d in datasets:
        entries = []
        for m in masses:
            s = lines[(d, "fixed_mass", m)]
            entries.append({
                "mass_MeV": float(m), "g": _num(s["limit"]), "toy_error_g": _num(s["toy_error"]),
                "allowed_g": [[float(a), _num(b)] for a, b in s["intervals"]],
                "islands_g": [{"interval": i["interval"], "p_value": i["p_value"], "significance": _num(i["significance"])}
                              for i in s["islands"]],
                "wilks_g": _num(s["wilks"]), "wilks_islands_g": [[float(a), float(b)] for a, b in s["wilks_islands"]],
                "coupling": [float(x) for x in s["tested"]], "t_obs": [float(x) for x in s["t_obs"]],
                "t_c": [float(x) for x in s["t_c"]], "p_value": [float(x) for x in s["p_value"]],
            })
        out["datasets"][d] = entries
    return out


def _line_chi2(an: MediatorAnalysis, spec: LineSpec) -> Callable:
    """Observed chi^2 along the line at any couplings (one batched call per experiment)."""
    def f(g):
        g = np.asarray(g, float)
        return sum(an.cost(n)(an.templates(spec.model, [spec.mass_mev], n).counts(g, 0)) for n in dataset_members(spec.dataset))
    return f


def _table_values(an: MediatorAnalysis, model: str, datasets) -> dict:
    """The limits table's two-parameter (6.18) values of ``model`` for each data set."""
    res = an.analyse(model, experiments=tuple(sorted({e for d in datasets for e in DATASETS[d]})))
    return {d: {"g_low_mass": res.limit(d, "low_mass").value,
                "g_over_M_high_mass": res.limit(d, "high_mass").value * MEV_PER_GEV} for d in datasets}


def _num(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _row(model: str, dataset: str, regimes, lines: dict, table: dict | None) -> dict:
    """One fc.json row: the keys of ``limits --json`` plus the Wilks values, the toy errors and the lines."""
    unit = {"low_mass": 1.0, "high_mass": MEV_PER_GEV}
    key = {"low_mass": "g_low_mass", "high_mass": "g_over_M_high_mass"}
    row = {"model": model, "dataset": dataset, "wilks": {}, "toy_error": {}, "wilks_table": {}, "lines": {}}
    for r in ("low_mass", "high_mass"):
        s = lines.get((dataset, r, None))
        if s is None:
            row[key[r]] = None
            row[f"{r}_islands"] = []
            continue
        u = unit[r]
        if table:
            row["wilks_table"][key[r]] = _num(table[key[r]])
        row[key[r]] = _num(s["limit"] * u)
        row[f"{r}_islands"] = [[a * u, b * u] for a, b in (i["interval"] for i in s["islands"])]
        row["wilks"][key[r]] = _num(s["wilks"] * u)
        row["toy_error"][key[r]] = _num(None if s["toy_error"] is None else s["toy_error"] * u)
        row["lines"][r] = {
            "coupling_unit": "1" if r == "low_mass" else "GeV^-1",
            "coupling": [float(x * u) for x in s["tested"]],
            "t_obs": [float(x) for x in s["t_obs"]], "t_c": [float(x) for x in s["t_c"]],
            "t_c_band": [[float(a), float(b)] for a, b in s["t_c_band"]],
            "p_value": [float(x) for x in s["p_value"]], "chi2_min": float(s["chi2_min"]),
            "islands": [{"interval": [a * u, b * u], "p_value": i["p_value"], "significance": _num(i["significance"])}
                        for i, (a, b) in ((i, i["interval"]) for i in s["islands"])],
            "wilks_islands": [[a * u, b * u] for a, b in s["wilks_islands"]],
        }
    return row


def markdown(doc: dict) -> str:
    lines = [f"# Feldman-Cousins limits ({doc['cl']}: CL = {doc['cl_value']:.4f}, {doc['n_toys']} toys per point, "
             f"seed {doc['seed']}, {doc['construction']} construction)", "",
             "| model | data set | g (M -> 0) FC | Wilks | table (6.18) | g/M [GeV^-1] (M -> inf) FC | Wilks | table (6.18) | islands (FC) |",
             "|---|---|---|---|---|---|---|---|---|"]
    f = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
    if not doc["limits"]:  # a raster only
        lines = lines[:1]
    for r in doc["limits"]:
        cells = []
        for k in ("g_low_mass", "g_over_M_high_mass"):
            err = r["toy_error"].get(k)
            cells += [f(r[k]) + ("" if err is None else f" ± {err:.2g}"), f(r["wilks"].get(k)), f(r["wilks_table"].get(k))]
        isl = "; ".join(f"[{a:.3g}, {b:.3g}] (p = {i['p_value']:.3g})" for reg in r["lines"].values()
                        for i in reg["islands"] for a, b in [i["interval"]])
        lines.append(f"| {r['model']} | {r['dataset']} | " + " | ".join(cells) + f" | {isl or '-'} |")
    if "raster" in doc:
        ras = doc["raster"]
        lines += ["", f"## Fixed-mass raster ({ras['model']}): upper limit on g at each mass", "",
                  "| data set | M [MeV] | g FC | Wilks (1 parameter) | FC islands |", "|---|---|---|---|---|"]
        for d, entries in ras["datasets"].items():
            for e in entries:
                err = "" if e["toy_error_g"] is None else f" ± {e['toy_error_g']:.2g}"
                isl = "; ".join(f"[{i['interval'][0]:.3g}, {i['interval'][1]:.3g}]" for i in e["islands_g"])
                lines.append(f"| {d} | {e['mass_MeV']:.4g} | {f(e['g'])}{err} | {f(e['wilks_g'])} | {isl or '-'} |")
    return "\n".join(lines) + "\n"


def csv_text(doc: dict) -> str:
    head = "model,dataset,regime,fc,toy_error,wilks,wilks_table,unit"
    out = [head]
    for r in doc["limits"]:
        for reg, k, unit in (("low_mass", "g_low_mass", "1"), ("high_mass", "g_over_M_high_mass", "GeV^-1")):
            if reg not in r["lines"]:
                continue
            vals = [r[k], r["toy_error"].get(k), r["wilks"].get(k), r["wilks_table"].get(k)]
            out.append(",".join([r["model"], r["dataset"], reg] + ["" if v is None else f"{v:.6g}" for v in vals] + [unit]))
    for d, entries in doc.get("raster", {}).get("datasets", {}).items():
        for e in entries:  # regime "fixed_mass_<M>MeV": the upper limit on g at that mass
            vals = [e["g"], e["toy_error_g"], e["wilks_g"], None]
            out.append(",".join([doc["raster"]["model"], d, f"fixed_mass_{e['mass_MeV']:.6g}MeV"]
                                + ["" if v is None else f"{v:.6g}" for v in vals] + ["1"]))
    return "\n".join(out) + "\n"


FC_KEYS = (("g_low_mass", "g (M -> 0)"), ("g_over_M_high_mass", "g/M [GeV^-1] (M -> inf)"))


def with_fc_columns(rows: list, fc_rows: dict) -> list:
    """Limits-table rows (``limits --json`` keys) with an ``fc`` entry per number: the one-parameter Wilks
    limit on the line, the FC limit and its toy error (same units as the row: g, g/M in GeV^-1)."""
    out = []
    for r in rows:
        f = fc_rows.get((r["model"], r["dataset"]))
        extra = {} if f is None else {"fc": {k: {"wilks_1par": f["wilks"].get(k), "fc": f.get(k),
                                                 "toy_error": f["toy_error"].get(k)} for k, _ in FC_KEYS}}
        out.append({**r, **extra})
    return out


def fc_columns_markdown(rows: list, toys: int) -> str:
    """The limits table with its FC columns: table value | Wilks (1 parameter) | FC | toy error."""
    fmt = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
    head = " | ".join(f"{label}: table | Wilks 1 par. | FC | toy error" for _, label in FC_KEYS)
    lines = [f"## Feldman-Cousins ({toys} toys per tested coupling, 2 sigma = 95.45 %, one parameter per line)", "",
             f"| model | data set | {head} |", "|---|---|" + "---|---|---|---|" * len(FC_KEYS)]
    for r in rows:
        if "fc" not in r:
            continue
        cells = []
        for k, _ in FC_KEYS:
            c = r["fc"][k]
            cells += [fmt(r.get(k)), fmt(c["wilks_1par"]), fmt(c["fc"]), fmt(c["toy_error"])]
        lines.append(f"| {r['model']} | {r['dataset']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def raster_figure(doc: dict, dataset: str, path: Path, data_dir=None) -> Path:
    """The raster's FC and Wilks limits per mass over the model's (M, g) plane (Wilks contour, 1 parameter:
    Delta chi^2 from the minimum at each mass, the raster's convention), saved to ``path``."""
    from .plotting.fc import raster_overlay
    from .plotting.planes import plane_figure
    from .plotting.style import save

    an = _analysis(None if data_dir is None else str(data_dir))
    res = an.analyse(doc["raster"]["model"], experiments=DATASETS[dataset])
    fig = plane_figure(res, gm2_epochs=(), curves=[], datasets=(dataset,), cl="1dof",
                       overlay=raster_overlay(doc["raster"], dataset))
    return save(fig, path)


def write_reports(doc: dict, out: Path) -> list[Path]:
    out = check_writable_dir(Path(out))
    paths = []
    for name, text in (("fc.json", json_text(doc, 1)), ("fc.md", markdown(doc)), ("fc.csv", csv_text(doc))):
        with atomic_path(out / name) as tmp:
            Path(tmp).write_text(text)
        paths.append(out / name)
    return paths


__all__ = ["run_fc", "toy_data_sets", "write_reports", "LineSpec", "Store", "run_task", "observe", "choose_grids", "REGIMES",
           "DaskSession", "parse_masses", "line_mass", "raster_figure",
           "with_fc_columns", "fc_columns_markdown"]
