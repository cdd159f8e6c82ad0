"""Feldman-Cousins construction: what a toy line is (:class:`LineSpec`: model x data set x regime, the tested
couplings, the toy minimisation grid, the seed), the observed side on it (:func:`observe`, :func:`choose_grids`)
and one task of toys (:func:`run_task`), which a worker runs from the spec alone.

The observed side is the asymptotic path itself (same templates, same profiled costs, the minimum over g >= 0
refined between grid points); the toys come from :mod:`cevnsfit.stats.toys`.  A *line* is one model x data set x
regime (``low_mass``: M = 0, coupling g; ``high_mass``: M = inf, coupling g/M in MeV^-1; ``fixed_mass``: coupling
g at one mass).  The work is split into tasks (line, tested point, block of toys); each task draws from its own
``SeedSequence`` (master seed, model, data set, regime, point, block), so the numbers are identical whatever runs
them, in whatever order, after whatever restart.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .. import __version__
from ..errors import InputError
from ..mediators import DATASETS, MediatorAnalysis, dataset_members
from ..stats.chi2 import ReplicaCost
from ..stats.intervals import allowed_intervals
from ..stats.toys import Line, LineMember, block_rng, wilks_threshold

REGIMES = {"low": ("low_mass",), "high": ("high_mass",), "both": ("low_mass", "high_mass")}
"""``--regime`` -> the asymptotic lines it runs (``low_mass``: M -> 0, g; ``high_mass``: M -> inf, g/M)."""
DEFAULT_BLOCK = 100  # toys per task (benchmarks/bench_fc.py: ~0.1-0.3 s per task, far above Dask's ~1 ms overhead)
"""Toys per task (``--block``): ~0.1-0.3 s per task, far above Dask's ~1 ms overhead."""
POINTS_PER_DECADE = 20  # tested couplings per decade (12 % steps; the crossing is interpolated in log g)
"""Tested couplings per decade of a line (``--points-per-decade``; 12 % steps, the crossing interpolated in
log g)."""
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
    data_dir: tuple | None = None  # io.datadir.data_key of the folders the analysis reads
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
    """The analysis of ``data_dir`` (a :func:`~cevnsfit.io.datadir.data_key`) that this process's tasks build their
    lines on (made once)."""
    if data_dir not in _ANALYSES:
        _ANALYSES[data_dir] = MediatorAnalysis(None if data_dir is None else dict(data_dir))
    return _ANALYSES[data_dir]


def share_analysis(data_dir, analysis: MediatorAnalysis) -> None:
    """Let this process's tasks use ``analysis`` (made on ``data_dir`` with the default parameters)."""
    _ANALYSES[data_dir] = analysis


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


def line_chi2(an: MediatorAnalysis, spec: LineSpec) -> Callable:
    """Observed chi^2 along the line at any couplings (one batched call per experiment)."""
    def f(g):
        g = np.asarray(g, float)
        return sum(an.cost(n)(an.templates(spec.model, [spec.mass_mev], n).counts(g, 0)) for n in dataset_members(spec.dataset))
    return f

