"""Light-mediator analysis: (M, g) scans, asymptotic limits and contours for the registered models.

This is the composition layer a notebook or the CLI calls: experiments (data, response kernels) + model
templates (physics) + profiled costs (statistics).  Data sets: those of the registry
(:data:`cevnsfit.experiments.DATA_SETS`, declared in data/datasets.yaml); a combination adds the chi^2 of
its experiments with independent nuisances, so every grid is computed once per experiment and summed.

Units: masses in MeV; g dimensionless; in the contact (M -> inf) limit the coupling variable is g/M in MeV^-1
(tables print GeV^-1 = 1e3 MeV^-1... i.e. value_GeV^-1 = value_MeV^-1 * 1e3).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from scipy.optimize import minimize_scalar

from .errors import InputError
from .experiments import DATA_SETS, DEFAULT_DATA_SET, EXPERIMENTS, data_set_members, load_experiment
from .parameters import DEFAULT, Parameters
from .process import usable_cores
from .physics.models import ScalarModel, check_couplings, get_model
from .stats import compiled
from .stats.intervals import CONVENTIONS, AllowedIntervals, allowed_intervals, allowed_intervals_rows, threshold
from .templates import TemplateBasis, Templates, coupling_unit

__all__ = ["MediatorAnalysis", "ModelAnalysis", "Grid", "Limit", "gm2_verdict", "convention", "default_masses",
           "default_couplings", "log_grid", "nsi_counts", "nsi_chi2", "DATASETS", "MEV_PER_GEV", "LOW_MASS_G",
           "HIGH_MASS_G_OVER_M_MEV", "POINTS_PER_DECADE"]

class _Members(Mapping):
    """Data set -> its experiments, read live from the registry (a declaration registered at run time is in it)."""

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return DATA_SETS[name].members

    def __iter__(self):
        return iter(DATA_SETS)

    def __len__(self) -> int:
        return len(DATA_SETS)


DATASETS = _Members()
"""Data set name -> its experiments (read live from :data:`cevnsfit.experiments.DATA_SETS`)."""
MEV_PER_GEV = 1e3
"""MeV per GeV: g/M in MeV^-1 times this is g/M in GeV^-1 (the tables' unit)."""

# Default coupling grids for the asymptotic limits (log-spaced, 150 points per decade, plus 0).
LOW_MASS_G = (1e-8, 10.0)
"""Couplings g (dimensionless) of the M -> 0 line: (lowest, highest), log-spaced, plus g = 0."""
HIGH_MASS_G_OVER_M_MEV = (1e-11, 1.0)
"""Couplings g/M [MeV^-1] of the M -> inf (contact) line: (lowest, highest), log-spaced, plus 0."""
POINTS_PER_DECADE = 150
"""Points per decade of the two asymptotic lines' coupling grids."""


dataset_members = data_set_members

# A grid's mass rows are profiled in blocks of MASS_CHUNK, each block's rows warm-started along the block from a cold
# first row: blocks run in parallel threads (XENONnT's plane, ~45 us per point, would otherwise hold one core while
# the others wait), and are the same whatever the number of threads (a cold row costs ~1.5 warm ones: +1 %).
MASS_CHUNK = 32


def data_set_experiments() -> tuple[str, ...]:
    """The experiments that the registered data sets use (registry order)."""
    used = {m for spec in DATA_SETS.values() for m in spec.members}
    return tuple(name for name in EXPERIMENTS if name in used)


def log_grid(lo: float, hi: float, per_decade: int = POINTS_PER_DECADE) -> np.ndarray:
    """Log-spaced points from ``lo`` to ``hi`` (both included, 0 < lo < hi, any unit) with ``per_decade`` points per
    decade."""
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise InputError(f"a log grid needs 0 < low < high (finite), got {lo}, {hi}")
    n = max(int(np.ceil(np.log10(hi / lo) * per_decade)) + 1, 2)
    return np.geomspace(lo, hi, n)


@dataclass
class Limit:
    """One-parameter limit at a fixed mass (or an asymptotic regime) for one model and data set."""

    model: str
    dataset: str
    regime: str  # "low_mass" (M = 0, bound on g), "high_mass" (contact, bound on g/M), or "fixed_mass"
    mass_mev: float
    cl: str
    chi2_sm: float
    chi2_min: float
    best_coupling: float
    allowed: AllowedIntervals
    unit: str  # unit of the coupling variable: "1" or "MeV^-1"
    grid: Grid | None = field(default=None, repr=False, compare=False)  # the single-mass chi^2 it was read from

    @property
    def value(self) -> float:
        return self.allowed.limit


@dataclass
class Grid:
    """chi^2 on a (mass, coupling) grid for one model, per experiment; combine data sets by summing."""

    model: object
    masses_mev: np.ndarray
    couplings: np.ndarray
    chi2: dict  # experiment -> (n_M, n_g)
    chi2_sm: dict  # experiment -> float (g = 0)
    templates: dict = field(default_factory=dict)
    line_minima: dict = field(default_factory=dict, repr=False)  # data set -> line_minimum (single-mass grids)
    lines: dict = field(default_factory=dict, repr=False)  # (experiment, mass index) -> its cost's ``line``

    def dataset_chi2(self, dataset: str) -> tuple[np.ndarray, float]:
        names = dataset_members(dataset)
        return sum(self.chi2[n] for n in names), sum(self.chi2_sm[n] for n in names)


class MediatorAnalysis:
    """Loads the experiments once and answers scan and limit questions for any model.

    ``threads``: how many blocks of a grid's mass rows (``MASS_CHUNK``, of every experiment) are profiled at once
    (default: one per usable core; the compiled kernels release the GIL).  The blocks are the same whatever the
    number, so the results do not depend on it.
    """

    def __init__(self, data_dir=None, params: Parameters = DEFAULT, threads: int | None = None):
        self.data_dir = data_dir
        self.params = params
        self.threads = usable_cores() if threads is None else int(threads)
        self._experiments: dict = {}
        self._costs: dict = {}
        self._template_bases: dict = {}

    def experiment(self, name: str):
        if name not in self._experiments:
            self._experiments[name] = load_experiment(name, self.data_dir, self.params)
        return self._experiments[name]

    def cost(self, name: str):
        if name not in self._costs:
            self._costs[name] = self.experiment(name).cost()
        return self._costs[name]

    # ---- chi^2 on grids -------------------------------------------------------------------------------------
    def workers(self, experiments) -> int:
        """Threads for these experiments' profiles: ``threads`` (the compiled kernels release the GIL)."""
        return self.threads

    def templates(self, model, masses_mev, name: str) -> Templates:
        """Templates of ``model`` on experiment ``name`` at ``masses_mev`` (MeV); every model shares the experiment's
        folded terms (:class:`~cevnsfit.templates.TemplateBasis`): `cevnsfit limits` builds 11 models x 3 mass sets."""
        if name not in self._template_bases:
            self._template_bases[name] = TemplateBasis(self.experiment(name), self.params)
        return self._template_bases[name].templates(get_model(model), masses_mev)

    def grid(self, model, masses_mev, couplings, experiments=None, progress: Callable | None = None) -> Grid:
        """chi^2(M, g) for every mass and coupling of the grid (nuisances profiled at every point), for the
        ``experiments`` named (default: every experiment of a registered data set)."""
        return self.grids(model, [(masses_mev, couplings)], experiments, progress)[0]

    def grids(self, model, axes, experiments=None, progress: Callable | None = None) -> list[Grid]:
        """``grid`` for each (masses_mev, couplings) of ``axes`` at once: every block of ``MASS_CHUNK`` mass rows of
        every grid and experiment is one task of one thread pool (the kernels release the GIL), and each
        experiment's templates for a grid are made by the first of its blocks to need them (an experiment's one at a
        time) -- so no grid waits for another's slowest block.  The blocks are the same whatever the number of
        threads.  ``progress(k)``: k more mass rows done (of every grid and experiment)."""
        model = get_model(model)
        experiments = data_set_experiments() if experiments is None else tuple(experiments)
        axes = [(np.asarray(m, float), np.asarray(g, float)) for m, g in axes]
        for _, couplings in axes:
            if couplings.ndim != 1 or np.any(~np.isfinite(couplings)) or np.any(couplings < 0):
                raise InputError("couplings must be finite and non-negative")
        stop = threading.Event()
        workers = self.workers(experiments)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="cevnsfit-grid") if workers > 1 else None
        # one lock per experiment: its grids' templates are made one after the other (a TemplateBasis, its caches
        # and the experiment's lazily loaded cost are not shared between threads), other experiments' meanwhile
        locks = {name: threading.Lock() for name in experiments}
        progress_lock = threading.Lock()
        prepared: dict = {}

        def prepare(key):  # the templates, reduced once to the bins the cost reads, and the SM chi^2
            with locks[key[1]]:
                if key not in prepared:
                    k, name = key
                    masses, couplings = axes[k]
                    tpl, cost = self.templates(model, masses, name), self.cost(name)
                    reduced = tpl.mapped(cost.reduce)
                    prepared[key] = (tpl, reduced, reduced.coefficients(couplings), float(cost(tpl.n0)))
            return prepared[key]

        def rows(block):
            # the block's mass rows in one call (profile_lines): an iterative profile starts each row from the
            # previous row's fit (same couplings, a neighbouring mass: the warm start of benchmarks/bench_xenonnt.py),
            # the block's first row from the nominal nuisances; a direct one does all rows at once
            k, name, first, last = block
            _, reduced, coefficients, _ = prepare((k, name))
            out[k][name][first:last] = self.cost(name).profile_lines(coefficients, reduced.bases(first, last))[0]
            if progress is not None:
                with progress_lock:  # one caller at a time: a counter in it need not be thread-safe
                    progress(last - first)

        def task(work, arg):
            try:
                if not stop.is_set():  # else another task failed, or the run was interrupted
                    work(arg)
            except BaseException:
                stop.set()  # at once, not when the caller's thread wakes: the tasks queued behind never start
                raise

        # blocks in order of the grids, the experiments' blocks interleaved: every experiment progresses at once, and
        # the short blocks at the end fill the threads' tails
        blocks = sorted(((k, name, lo, min(lo + MASS_CHUNK, axes[k][0].size)) for k in range(len(axes))
                         for name in experiments for lo in range(0, axes[k][0].size, MASS_CHUNK)),
                        key=lambda b: (b[0], b[2], experiments.index(b[1])))
        out = [{n: np.empty((m.size, g.size)) for n in experiments} for m, g in axes]
        try:
            if pool is None:
                for b in blocks:
                    task(rows, b)
            else:
                # first the kernels (the blocks wait for them) beside each experiment's first templates (its data,
                # responses and template basis, on the first model): 0.3 s off a cold `limits`; then the blocks
                first = [(compiled.load, None)] + [(prepare, (0, name)) for name in experiments]
                futures = [pool.submit(task, *t) for t in first] + [pool.submit(task, rows, b) for b in blocks]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                if any(f.exception() is not None for f in done):
                    stop.set()  # the other blocks return at once; the queued ones are cancelled below
                for f in futures:  # the first failure, in submission order, is raised
                    f.result()
        finally:
            stop.set()  # on an error or Ctrl-C the other blocks stop at their next block
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        result = []
        for k, (masses, couplings) in enumerate(axes):
            for name in experiments:  # guards the output files against NaN tables, whatever the input
                if not np.all(np.isfinite(out[k][name])):
                    raise InputError(f"chi^2 of {model.name} on {name} is not finite on this grid (couplings too "
                                     "large?)")
            made = {n: prepare((k, n)) for n in experiments}  # (already made, unless the grid has no mass)
            result.append(Grid(model, masses, couplings, out[k], {n: made[n][3] for n in experiments},
                               {n: made[n][0] for n in experiments}))
        return result

    def chi2_function(self, grid: Grid, dataset: str, mass_index: int) -> Callable[[float], float]:
        """chi^2 of ``dataset`` as a function of the coupling at one mass of ``grid`` (for refinement)."""
        lines = []
        for n in dataset_members(dataset):  # grids restored from a cache carry no templates: rebuild them (ms)
            if n not in grid.templates:
                grid.templates[n] = self.templates(grid.model, grid.masses_mev, n)
            if (n, mass_index) not in grid.lines:  # each cost's chi^2 on this mass's basis, kept for every data set
                cost = self.cost(n)
                grid.lines[n, mass_index] = cost.line(cost.reduce(grid.templates[n].basis(mass_index)))
            lines.append(grid.lines[n, mass_index])

        return lambda g: float(sum(line(Templates.coefficients(g))[0] for line in lines))

    # ---- limits ---------------------------------------------------------------------------------------------
    def fixed_mass_limit(self, model, dataset: str, mass_mev: float, cl: str = "1dof", couplings=None,
                         regime: str = "fixed_mass") -> Limit:
        """Limit at one mass from the minimum along that mass (0: light limit on g; inf: contact limit on g/M), on
        ``couplings`` (default: the asymptotic lines' grid) plus g = 0; ``regime`` labels the limit.  The line's
        chi^2 is kept in ``Limit.grid``."""
        if couplings is None:
            couplings = log_grid(*(HIGH_MASS_G_OVER_M_MEV if np.isinf(mass_mev) else LOW_MASS_G))
        grid = self.grid(model, [mass_mev], np.concatenate([[0.0], np.asarray(couplings, float)]), dataset_members(dataset))
        return line_limit(self, grid, dataset, cl, regime=regime)

    def analyse(self, model, masses_mev=None, couplings=None, experiments=None,
                progress: Callable | None = None) -> "ModelAnalysis":
        """chi^2 of ``model`` on the (M, g) plane and on the two asymptotic lines (M = 0 and M = inf)."""
        model = get_model(model)
        (m_plane, g_plane), low_axes, high_axes = analysis_axes(masses_mev, couplings)
        plane, low, high = self.grids(model, [(m_plane, g_plane), low_axes, high_axes], experiments, progress)
        return ModelAnalysis(self, model, plane, low, high)


def analysis_axes(masses_mev=None, couplings=None) -> tuple:
    """(masses [MeV], couplings) of the three grids of :meth:`MediatorAnalysis.analyse`: the (M, g) plane (default
    masses and couplings, g = 0 added), the M = 0 line on g and the M = inf (contact) line on g/M [MeV^-1]."""
    masses = default_masses() if masses_mev is None else check_finite_masses(masses_mev)
    g_plane = default_couplings() if couplings is None else check_couplings(couplings, "scan couplings")
    with_zero = lambda g: np.concatenate([[0.0], g[g > 0]])  # noqa: E731
    return ((masses, with_zero(g_plane)), (np.array([0.0]), with_zero(log_grid(*LOW_MASS_G))),
            (np.array([np.inf]), with_zero(log_grid(*HIGH_MASS_G_OVER_M_MEV))))


def line_minimum(analysis: MediatorAnalysis, grid: Grid, dataset: str) -> tuple[float, float]:
    """(coupling, chi^2) at the minimum along a single-mass grid, refined between grid points by Brent's method;
    kept on the grid (the global minimum and each limit of a line ask for it: one refinement, not two)."""
    if dataset not in grid.line_minima:
        grid.line_minima[dataset] = _refined_minimum(analysis, grid, dataset)
    return grid.line_minima[dataset]


def _refined_minimum(analysis: MediatorAnalysis, grid: Grid, dataset: str) -> tuple[float, float]:
    chi = grid.dataset_chi2(dataset)[0][0]
    k = int(np.argmin(chi))
    best_g, line_min = float(grid.couplings[k]), float(chi[k])
    if 0 < k < grid.couplings.size - 1:  # the grid minimum is only an upper bound: refine it
        f = analysis.chi2_function(grid, dataset, 0)
        res = minimize_scalar(f, bounds=(grid.couplings[k - 1], grid.couplings[k + 1]), method="bounded",
                              options={"xatol": 1e-14})
        if res.fun < line_min:
            best_g, line_min = float(res.x), float(res.fun)
    return best_g, line_min


def line_limit(analysis: MediatorAnalysis, grid: Grid, dataset: str, cl: str, reference: float | None = None,
               regime: str = "fixed_mass") -> Limit:
    """Allowed coupling intervals along a single-mass grid.

    ``reference`` is the chi^2 that Delta chi^2 is measured from (the plane's global minimum for ``2dof``); by
    default the minimum along the line (one parameter at fixed M), refined between grid points.
    """
    thr = threshold(cl)
    chi, chi_sm = grid.dataset_chi2(dataset)
    chi = chi[0]
    f = analysis.chi2_function(grid, dataset, 0)
    best_g, line_min = line_minimum(analysis, grid, dataset)
    ref = line_min if reference is None else min(reference, line_min)
    allowed = allowed_intervals(grid.couplings, chi - ref, thr, refine=lambda x: f(x) - ref)
    mass = float(grid.masses_mev[0])
    return Limit(grid.model.name, dataset, regime, mass, cl, float(chi_sm), float(ref), float(best_g), allowed,
                 coupling_unit(mass), grid)


def default_masses(lo: float = 1e-2, hi: float = 1e4, n: int = 121) -> np.ndarray:
    """The default scan masses [MeV]: ``n`` log-spaced from ``lo`` to ``hi`` (the limits' contour, AC22's range)."""
    return np.geomspace(lo, hi, n)


def default_couplings(lo: float = 1e-7, hi: float = 10.0, n: int = 321) -> np.ndarray:
    """The default scan couplings g (dimensionless): ``n`` log-spaced from ``lo`` to ``hi`` (g = 0 is added by
    the scans)."""
    return np.geomspace(lo, hi, n)


def check_finite_masses(masses_mev) -> np.ndarray:
    m = np.atleast_1d(np.asarray(masses_mev, dtype=float))
    if m.ndim != 1 or not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise InputError("scan masses must be finite and positive (MeV)")
    return np.sort(m)


@dataclass
class ModelAnalysis:
    """Grids of one model: the (M, g) plane and the exact M = 0 and M = inf (contact) lines."""

    analysis: MediatorAnalysis
    model: object
    plane: Grid
    low: Grid
    high: Grid
    _chi2_min: dict = field(default_factory=dict, repr=False)
    _contours: dict = field(default_factory=dict, repr=False)

    def chi2_min(self, dataset: str) -> float:
        """Global minimum over the plane and both asymptotic lines (g = 0, the SM, included).

        The lines' minima are refined between grid points (as the limits on them are), so that every 2dof limit and
        contour of a data set is measured from this one number: with grid minima only, a limit on the M = inf line
        was measured from its refined minimum, up to 2.7e-4 below the reported chi2_min (found by
        tests/test_limits_consistency.py).  The plane keeps its grid resolution.
        """
        if dataset not in self._chi2_min:
            lines = [line_minimum(self.analysis, g, dataset)[1] for g in (self.low, self.high)]
            # the SM chi^2 itself is in the set: a grid's g = 0 column can differ from it by rounding (a grid row
            # is profiled from warm starts and basis products, the single SM template cold; ~1e-12)
            chi, chi_sm = self.plane.dataset_chi2(dataset)
            self._chi2_min[dataset] = float(min(chi.min(), chi_sm, *lines))
        return self._chi2_min[dataset]

    def limit(self, dataset: str, regime: str, cl: str = "2dof") -> Limit:
        """Limit on g (``low_mass``, M = 0) or on g/M in MeV^-1 (``high_mass``, contact)."""
        if regime not in ("low_mass", "high_mass"):
            raise InputError(f"unknown regime '{regime}'; choose low_mass or high_mass")
        grid = self.low if regime == "low_mass" else self.high
        ref = self.chi2_min(dataset) if cl == "2dof" else None
        return line_limit(self.analysis, grid, dataset, cl, ref, regime)

    def contour(self, dataset: str, cl: str = "2dof") -> dict:
        """Allowed coupling intervals at every mass of the plane: upper edge of the one containing g = 0, islands.
        Kept per (data set, CL): the limits rows, scans, (g-2) verdicts and figures all ask for it."""
        if (dataset, cl) not in self._contours:
            self._contours[dataset, cl] = self._contour(dataset, cl)
        return self._contours[dataset, cl]

    def _contour(self, dataset: str, cl: str) -> dict:
        chi, _ = self.plane.dataset_chi2(dataset)
        ref_plane = self.chi2_min(dataset)
        ref = ref_plane if cl == "2dof" else chi.min(axis=1, keepdims=True)
        rows = allowed_intervals_rows(self.plane.couplings, chi - ref, threshold(cl))
        return {"mass_mev": self.plane.masses_mev, "g_upper": np.array([iv.limit for iv in rows]),
                "islands": [iv.islands for iv in rows], "chi2_min": ref_plane, "cl": cl}

    def row(self, dataset: str, cl: str = "2dof", contour_cl: str | None = None) -> dict:
        """One row of the limits table (JSON-ready)."""
        low, high = self.limit(dataset, "low_mass", cl), self.limit(dataset, "high_mass", cl)
        cont = self.contour(dataset, contour_cl or cl)
        return {
            "model": self.model.name,
            "kind": getattr(self.model, "kind", "vector"),
            "dataset": dataset,
            "g_low_mass": low.value,
            "g_over_M_high_mass": high.value * MEV_PER_GEV,
            "low_mass_islands": [[a, b] for a, b in low.allowed.islands],
            "high_mass_islands": [[a * MEV_PER_GEV, b * MEV_PER_GEV] for a, b in high.allowed.islands],
            "chi2_sm": low.chi2_sm,
            "chi2_min": self.chi2_min(dataset),
            "contour": {"mass_mev": cont["mass_mev"].tolist(), "g_upper": [None if not np.isfinite(x) else float(x) for x in cont["g_upper"]],
                        "islands": [[[float(a), float(b)] for a, b in row] for row in cont["islands"]], "cl": cont["cl"]},
        }


def convention(cl: str) -> dict:
    """The confidence-level convention ``cl`` (``2dof``: Delta chi^2 = 6.18 from the global minimum of the plane and
    both lines; ``1dof``: 4 from the minimum at fixed mass) as the ``convention`` entry of ``cevnsfit limits --json``."""
    threshold(cl)
    ref = ("global minimum over the (M, g) plane and the M = 0 and M = inf lines (g = 0 included)" if cl == "2dof"
           else "minimum over the coupling at fixed mass (g = 0 included)")
    return {"cl": cl, **CONVENTIONS[cl], "reference_minimum": ref,
            "table_value": "smallest coupling above 0 where Delta chi^2 reaches the threshold (edge of the interval containing g = 0)"}


def gm2_kind_and_charge(model) -> tuple[str, float]:
    """('vector', |Q'_mu|) or ('scalar', 1) -- the muon coupling is g |Q'_mu| (vector), g~_phi (scalar)."""
    if isinstance(model, ScalarModel):
        return "scalar", 1.0
    return "vector", abs(model.q_mu)


def gm2_verdict(res: ModelAnalysis, dataset: str = DEFAULT_DATA_SET, epoch: str = "2021", cl: str = "2dof") -> dict:
    """Does the CEvNS 2 sigma exclusion cover the whole (g-2)_mu favoured band over the scanned masses?

    Computed, not tabulated: at every mass of the plane the band [g_lo, g_hi] is compared with the allowed
    coupling intervals (the one containing g = 0 and any sign-flip island).  ``verdict`` is ``"excluded"`` when no
    mass keeps any part of the band, ``"allowed"`` otherwise (with the surviving mass ranges), ``"no band"`` for a
    model without a muon coupling, ``"no anomaly"`` when the band reaches g = 0 (2025: only an upper bound).
    """
    from .physics.gm2 import band_has_lower_edge, favoured_band, get_epoch

    kind, charge = gm2_kind_and_charge(res.model)
    base = {"model": res.model.name, "dataset": dataset, "epoch": str(get_epoch(epoch).name), "cl": cl}
    if charge == 0:
        return {**base, "verdict": "no band", "reason": "Q'_mu = 0: the model does not couple to the muon"}
    if not band_has_lower_edge(epoch):
        return {**base, "verdict": "no anomaly", "reason": "the favoured band reaches g = 0 (upper bound only)"}
    cont = res.contour(dataset, cl)
    masses = cont["mass_mev"]
    lo, hi = favoured_band(masses, epoch, kind, charge)
    survives = np.zeros(masses.size, dtype=bool)
    for i in range(masses.size):
        intervals = [(0.0, cont["g_upper"][i])] + list(cont["islands"][i])
        survives[i] = any(a <= hi[i] and lo[i] <= b for a, b in intervals if np.isfinite(b) or b == np.inf)
    ranges, start = [], None
    for i, s in enumerate(survives):
        if s and start is None:
            start = masses[i]
        if not s and start is not None:
            ranges.append([float(start), float(masses[i - 1])])
            start = None
    if start is not None:
        ranges.append([float(start), float(masses[-1])])
    return {**base, "verdict": "allowed" if survives.any() else "excluded", "allowed_mass_ranges_mev": ranges,
            "mass_range_checked_mev": [float(masses[0]), float(masses[-1])]}


def nsi_counts(experiment, eps: dict) -> np.ndarray:
    """Analysis CEvNS template with vector NSI couplings ``eps`` (keys such as ``"uV_ee"``, ``"dV_mumu"``,
    ``"uV_emu"``; physics spec 10.1), folded with the experiment's response kernel."""
    from .physics.cross_section import sm_couplings
    from .physics.models import nsi_weak_charge_squared

    k = experiment.kernel
    gv = sm_couplings(experiment.options.couplings, experiment.params)
    charge_sq = {}
    for x, tg in k.detector.targets.items():
        _, fz, fn = k.form_factors[x]
        for f in k.flavours:
            gvp, gvn = gv[f]
            charge_sq[(f, x)] = nsi_weak_charge_squared(f, eps, gvp, gvn, tg.nucleus.Z, tg.nucleus.N, fz, fn)
    return experiment.signal(k.counts(charge_sq))


def nsi_chi2(analysis: MediatorAnalysis, eps: dict, dataset: str = DEFAULT_DATA_SET) -> float:
    """Profiled chi^2 of ``dataset`` for vector NSI couplings ``eps``."""
    return float(sum(analysis.cost(n)(nsi_counts(analysis.experiment(n), eps)) for n in dataset_members(dataset)))
