"""Fits of registered parameters of interest (``poi.py``) and of nuisances: best fit, profiled intervals, curves.

One or two named parameters are scanned on a grid (every other registered parameter at its SM value); at every
point the detector nuisances are profiled by the experiments' own costs (``experiment.cost()``, stats/chi2.py),
and data sets add with independent nuisances.  A parameter may also be a nuisance of an experiment's cost, named
``<experiment>.<nuisance>`` (``csi.norm_cevns``, ``lar.shape_cevns_f90``, ``xenonnt.tly``): it is then held at
each scanned value with its prior term (``cost.fix``), every other nuisance profiled -- its profile likelihood.
A parameter that acts on none of the data set's experiments (a neutron radius of a nucleus none of them contains,
a flavour none of their sources emits) is refused.  Intervals come from the *profiled one-parameter* Delta chi^2 of each
named parameter, at the one-parameter levels 1, 2.71, 4 (1 sigma, 90 %, 2 sigma); they are lists because a
parameter can have disjoint allowed regions (NSI: the degenerate solution that flips the sign of the weak charge).
Two-parameter figures draw the two-parameter contours (2.30, 4.61, 6.18).

1 parameter: crossings are refined with Brent's method on the exact chi^2 (precision 1e-7 relative); the minimum
with bounded Brent between the grid neighbours.  2 parameters: the profile over the other parameter is the grid
minimum with a parabolic refinement, crossings are linearly interpolated (precision ~ 1/10 of a grid step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from .errors import InputError
from .experiments import DATA_SETS, DEFAULT_DATA_SET, load_experiment
from .mediators import dataset_members
from .parameters import DEFAULT, Parameters
from .poi import PoiPredictor, check_applies, check_names, get_poi, mediator_poi, min_radius_fm, nuisance_poi
from .stats.intervals import allowed_intervals

__all__ = ["PoiFit", "FitOutcome"]

# one-parameter Delta chi^2 levels (chi^2 quantiles, 1 dof) and the two-parameter contour levels (2 dof)
LEVELS_1D = {"1sigma": 1.0, "90": 2.705543454095404, "2sigma": 4.0}
LEVELS_2D = {"1sigma": 2.295748928898636, "90": 4.605170185988092, "2sigma": 6.180074306244168}
N_GRID_1D = 241
N_GRID_2D = 100
MAX_WIDENINGS = 3
ZOOM_DELTA_CHI2 = 25.0  # 5 sigma: the region a coarse grid is refined on
MIN_POINTS_IN_REGION = 20


@dataclass
class FitOutcome:
    """Result of :meth:`PoiFit.run` (``document()`` gives the JSON of the ``fit`` command)."""

    names: tuple
    dataset: str
    units: dict
    sm: dict
    best_fit: dict
    chi2_min: float
    chi2_sm: float
    intervals: dict  # name -> level -> [[lo, hi], ...] (None = open beyond the scanned range)
    grids: tuple  # axis values per parameter
    chi2: np.ndarray  # (n,) or (n, n)
    members: dict = field(default_factory=dict)  # experiment -> its own chi^2 on the grid (1-D, several experiments)

    @property
    def delta_chi2_sm(self) -> float:
        return self.chi2_sm - self.chi2_min

    def document(self) -> dict:
        return {"params": list(self.names), "dataset": self.dataset, "units": self.units, "sm": self.sm,
                "best_fit": self.best_fit, "chi2_min": self.chi2_min, "delta_chi2_sm": self.delta_chi2_sm,
                "intervals": self.intervals}


class PoiFit:
    """chi^2 of ``dataset`` (a registered data set) as a function of the named parameters."""

    def __init__(self, names, dataset: str = DEFAULT_DATA_SET, data_dir=None, params: Parameters = DEFAULT,
                 experiments: dict | None = None, ranges: dict | None = None, mediator: tuple | None = None):
        """``mediator`` = (vector model name, mass in MeV): its coupling g joins the fit as parameter "g".
        ``experiments`` (name -> experiment) replaces loaded ones; with a ``dataset`` name outside the registry they
        are the data set (``cevnsfit project``: a planned detector with its Asimov data)."""
        names = tuple(names)
        med = mediator_poi(*mediator) if mediator is not None else None
        self.dataset = dataset
        self.params = params
        # a data set of the registry, or (projections) the experiments given, under their own names
        members = tuple(experiments) if experiments and dataset not in DATA_SETS else dataset_members(dataset)
        experiments = experiments or {}
        self.experiments = {m: experiments.get(m) or load_experiment(m, data_dir, params) for m in members}
        self.costs = {m: e.cost() for m, e in self.experiments.items()}
        nuisances = {n: nuisance_poi(n, self.experiments, self.costs) for n in names
                     if n.split(".", 1)[0] in self.experiments}
        physics = tuple(n for n in names if n not in nuisances)
        self.names = check_names(physics) if physics or (med is None and not nuisances) else ()
        if len(names) != len(set(names)):
            raise InputError(f"parameter named twice: {', '.join(names)}")
        if len(names) + (med is not None) > 2:
            raise InputError(f"fit at most two parameters at once, got {len(names) + (med is not None)}")
        self.pois = ([get_poi(n, params) if n not in nuisances else nuisances[n] for n in names]
                     + ([med] if med is not None else []))
        for p in self.pois:
            check_applies(p, self.experiments, dataset)
        self.names = tuple(p.name for p in self.pois)
        self.spans = [p.scan for p in self.pois]
        self.user_range = [False] * len(self.pois)
        for name, (lo, hi) in (ranges or {}).items():
            if name not in self.names:
                raise InputError(f"--range given for '{name}', which is not fitted ({', '.join(self.names)})")
            p = self.pois[self.names.index(name)]
            lo, hi = p.check(lo), p.check(hi)
            if not lo < hi:
                raise InputError(f"range of {name}: need LO < HI, got {lo:g}, {hi:g}")
            self.spans[self.names.index(name)] = (lo, hi)
            self.user_range[self.names.index(name)] = True  # a range the user gave is kept as given
        # a neutron radius cannot go below what the form-factor shape can describe: the scan floor
        self.floor = [max(min_radius_fm(e.options.form_factor, params) for e in self.experiments.values())
                      if p.kind == "neutron_radius" else None for p in self.pois]
        # the physics parameters (and the mediator) enter the predictions; the nuisances the costs
        self.physics = [i for i, p in enumerate(self.pois) if p.kind != "nuisance"]
        self.held = [i for i, p in enumerate(self.pois) if p.kind == "nuisance"]
        physics_names = tuple(self.pois[i].name for i in self.physics if med is None or self.pois[i] is not med)
        self.predictors = ({m: PoiPredictor(e, physics_names, params, mediator=med) for m, e in self.experiments.items()}
                           if self.physics else {})

    # ---- chi^2 --------------------------------------------------------------------------------------------
    def chi2(self, values) -> np.ndarray | float:
        """Profiled chi^2 at one point (k,) -> float, or a batch (n, k) -> (n,): the sum of :meth:`chi2_members`."""
        single = np.ndim(values) == 1
        out = sum(self.chi2_members(np.atleast_2d(np.asarray(values, dtype=float))).values())
        return float(out[0]) if single else out

    def chi2_members(self, values: np.ndarray) -> dict:
        """experiment -> its profiled chi^2 (n,) at the points ``values`` (n, k) (the data set's nuisances are
        independent per experiment, so the data set's chi^2 is their sum)."""
        v = np.asarray(values, dtype=float)
        for j in self.held:  # a nuisance's value is checked like any parameter's
            for x in np.unique(v[:, j]):
                self.pois[j].check(x)
        out = {}
        for m, e in self.experiments.items():
            out[m] = np.zeros(v.shape[0])
            counts = self.predictors[m].counts(v[:, self.physics]) if self.physics else \
                np.broadcast_to(e.signal(e.kernel.sm_counts()), (v.shape[0], *self.costs[m].shape))
            held = [j for j in self.held if self.pois[j].experiment == m]
            if not held:
                out[m] += np.atleast_1d(self.costs[m](counts))
                continue
            # rows that hold this experiment's nuisances at the same values share one fixed cost
            keys = v[:, held]
            uniq, inv = np.unique(keys, axis=0, return_inverse=True)
            for u, row in enumerate(uniq):
                sel = np.flatnonzero(inv.ravel() == u)
                cost = self.costs[m].fix({self.pois[j].nuisance: float(x) for j, x in zip(held, row)})
                out[m][sel] += np.atleast_1d(cost(counts[sel]))
        return out

    def chi2_sm(self) -> float:
        """chi^2 of the default Standard-Model prediction (every registered parameter at its SM value)."""
        return float(sum(self.costs[m](e.signal(e.kernel.sm_counts())) for m, e in self.experiments.items()))

    # ---- grids --------------------------------------------------------------------------------------------
    def axis(self, i: int, n: int, span: tuple | None = None) -> np.ndarray:
        """n points over the scan range of parameter i (kept inside its physical range; open ends excluded)."""
        p = self.pois[i]
        lo, hi = span or self.spans[i]
        if p.low is not None:
            lo = max(lo, p.low)
        if p.high is not None:
            hi = min(hi, p.high)
        if self.floor[i] is not None:
            lo = max(lo, self.floor[i])
        pad = 1e-6 * (hi - lo)
        if p.low is not None and lo == p.low and "low" in p.open_ends:
            lo += pad
        if p.high is not None and hi == p.high and "high" in p.open_ends:
            hi -= pad
        return np.linspace(lo, hi, n)

    def run(self, n_points: int | None = None) -> FitOutcome:
        if len(self.names) == 1:
            return self._run_1d(n_points or N_GRID_1D)
        return self._run_2d(n_points or N_GRID_2D)

    def _widen(self, i: int, span: tuple) -> tuple | None:
        """Twice the span about its centre, clipped to the physical range; None if it cannot grow."""
        p = self.pois[i]
        lo, hi = span
        c, h = 0.5 * (lo + hi), (hi - lo)
        new = (c - h, c + h)
        if p.low is not None:
            new = (max(new[0], p.low, self.floor[i] or p.low), new[1])
        if p.high is not None:
            new = (new[0], min(new[1], p.high))
        return None if new == span else new

    def _open_at_end(self, grid: np.ndarray, delta: np.ndarray, i: int) -> bool:
        """Is the widest (2 sigma) region cut by a scan end that is not a physical bound?"""
        p, thr = self.pois[i], LEVELS_1D["2sigma"]
        low = p.low if self.floor[i] is None else self.floor[i]
        at_lo = delta[0] < thr and not (low is not None and grid[0] <= low + 1e-5 * abs(grid[-1] - grid[0]))
        at_hi = delta[-1] < thr and not (p.high is not None and grid[-1] >= p.high - 1e-5 * abs(grid[-1] - grid[0]))
        return at_lo or at_hi

    def _intervals(self, i: int, grid: np.ndarray, profile: np.ndarray, chi2_min: float, refine=None) -> dict:
        p = self.pois[i]
        out = {}
        for level, thr in LEVELS_1D.items():
            f = None if refine is None else (lambda x: refine(x) - chi2_min)
            allowed = allowed_intervals(grid, profile - chi2_min, thr, refine=f, log=False)
            ivs = []
            for lo, hi in allowed.intervals:
                lo_v = None if (lo == grid[0] and not _at_bound(p, lo, "low", grid)) else float(lo)
                hi_v = None if (math.isinf(hi) and not _at_bound(p, grid[-1], "high", grid)) else float(
                    grid[-1] if math.isinf(hi) else hi)
                ivs.append([lo_v, hi_v])
            out[level] = ivs
        return out

    def _run_1d(self, n: int) -> FitOutcome:
        span = self.spans[0]
        for _ in range(MAX_WIDENINGS + 1):
            grid = self.axis(0, n, span)
            chi = self.chi2(grid[:, None])
            k = int(np.argmin(chi))
            if self.user_range[0] or not self._open_at_end(grid, chi - chi[k], 0):
                break
            wider = self._widen(0, span)
            if wider is None:
                break
            span = wider
        f = lambda x: self.chi2(np.array([x]))  # noqa: E731
        for zoom in range(MAX_WIDENINGS + 1):
            best, chi_min = self._refine_1d(f, grid, chi)
            # a grid too coarse for the allowed region (a wide user range) misses the minimum or brackets no
            # crossing: zoom onto the points with Delta chi^2 < 25 and their outer neighbours
            near = np.flatnonzero(chi - chi_min < ZOOM_DELTA_CHI2)
            if zoom == MAX_WIDENINGS or (near.size >= MIN_POINTS_IN_REGION and chi.min() - chi_min < 0.1):
                break
            k = int(np.argmin(chi))
            if chi[k] - chi_min >= 0.1:  # the minimum lies between two grid points: zoom onto them
                lo_i, hi_i = max(k - 1, 0), min(k + 1, n - 1)
            else:
                lo_i, hi_i = max(near[0] - 1, 0), min(near[-1] + 1, n - 1)
            grid = np.linspace(grid[lo_i], grid[hi_i], n)
            chi = self.chi2(grid[:, None])
        intervals = {self.names[0]: self._intervals(0, grid, chi, chi_min, refine=f)}
        outcome = self._outcome({self.names[0]: best}, chi_min, intervals, (grid,), chi)
        if len(self.experiments) > 1:  # each experiment's own curve, for the figure
            outcome.members = self.chi2_members(grid[:, None])
        return outcome

    @staticmethod
    def _refine_1d(f, grid: np.ndarray, chi: np.ndarray) -> tuple[float, float]:
        """Best fit: bounded Brent between the grid neighbours of the grid minimum."""
        k, n = int(np.argmin(chi)), grid.size
        best, chi_min = float(grid[k]), float(chi[k])
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, n - 1)]
        res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10 * max(abs(hi - lo), 1e-300)})
        if res.fun < chi_min:
            best, chi_min = float(res.x), float(res.fun)
        return best, chi_min

    def _run_2d(self, n: int) -> FitOutcome:
        gx, gy = self.axis(0, n), self.axis(1, n)
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        chi = self.chi2(np.stack([X.ravel(), Y.ravel()], axis=1)).reshape(n, n)
        i, j = np.unravel_index(int(np.argmin(chi)), chi.shape)
        best, chi_min = (float(gx[i]), float(gy[j])), float(chi[i, j])
        bounds = [(gx[max(i - 1, 0)], gx[min(i + 1, n - 1)]), (gy[max(j - 1, 0)], gy[min(j + 1, n - 1)])]
        res = minimize(lambda v: self.chi2(np.asarray(v)), x0=np.array(best), method="Nelder-Mead", bounds=bounds,
                       options={"xatol": 1e-9, "fatol": 1e-9})
        if res.fun < chi_min:
            best, chi_min = (float(res.x[0]), float(res.x[1])), float(res.fun)
        intervals = {
            self.names[0]: self._intervals(0, gx, _profile_min(chi, axis=1), chi_min),
            self.names[1]: self._intervals(1, gy, _profile_min(chi, axis=0), chi_min),
        }
        return self._outcome(dict(zip(self.names, best)), chi_min, intervals, (gx, gy), chi)

    def _outcome(self, best, chi_min, intervals, grids, chi) -> FitOutcome:
        # the SM point is a point of the fit too when the named parameters reproduce the default prediction there
        # (all but the common radius r_n.CsI): a minimum at the SM, e.g. on the boundary mu = 0, is then exact
        # rather than one Brent tolerance above it, and Delta chi^2(SM) >= 0 by construction
        chi2_sm = self.chi2_sm()
        sm = [p.sm for p in self.pois]
        if all(p.sm_exact for p in self.pois) and all(g[0] <= x <= g[-1] for g, x in zip(grids, sm)) and chi2_sm < chi_min:
            best, chi_min = dict(zip(self.names, map(float, sm))), chi2_sm
        return FitOutcome(self.names, self.dataset, {p.name: p.unit for p in self.pois}, {p.name: p.sm for p in self.pois},
                          best, float(chi_min), chi2_sm, intervals, grids, chi)


def _at_bound(p, x: float, end: str, grid: np.ndarray) -> bool:
    bound = p.low if end == "low" else p.high
    return bound is not None and abs(x - bound) <= 1e-5 * abs(grid[-1] - grid[0])


def _profile_min(chi: np.ndarray, axis: int) -> np.ndarray:
    """Minimum along ``axis`` with a parabolic refinement through the grid minimum and its two neighbours."""
    c = np.moveaxis(chi, axis, -1)
    k = np.argmin(c, axis=-1)
    rows = np.arange(c.shape[0])
    out = c[rows, k].copy()
    inner = (k > 0) & (k < c.shape[-1] - 1)
    r = rows[inner]
    a, b, d = c[r, k[inner] - 1], c[r, k[inner]], c[r, k[inner] + 1]
    curv = a - 2.0 * b + d
    ok = curv > 0
    out[r[ok]] = b[ok] - (d[ok] - a[ok]) ** 2 / (8.0 * curv[ok])
    return out
