"""A nonlinear nuisance profiled on a grid: chi^2(s) = min over theta of chi^2_theta(s).

The costs of :mod:`cevnsfit.stats` profile their nuisances through factors that multiply templates (normalisations,
shape deltas): exactly (Gaussian) or by Newton steps (Poisson).  A parameter that enters a template nonlinearly --
the decay length of an exponential background, the position of a line -- is profiled here instead: one cost per
value theta_k of a grid (the same data, the template at theta_k), and the chi^2 is the smallest of them refined by
the cubic through the grid minimum, its neighbours and one more point (:func:`grid_minimum`: exact for a chi^2
cubic in theta; on a grid of step h its error falls as h^4).  A minimum on the grid's edge is taken as it is: the
grid bounds the parameter, as a physical range would.

Costs add as every cost does; the parameter is named (``decay_exponential``) and can be fixed at any value (the
cost at that value is built by the same factory), so a scan of it is its profile likelihood.  Replicas (toys,
``cevnsfit fc``) are thrown by the member costs and profiled on the same grid: each replica's chi^2 is the refined
minimum over the grid of the members' replica chi^2 (the parameter refitted per replica, as Neyman's construction
with a profiled nuisance asks); the parameter has no prior, hence no pull centre to randomise.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import InputError
from .cost import FitResult, ReplicaCost
from .quadratic import QuadraticProfile

__all__ = ["GridProfiledCost", "grid_minimum"]


def grid_minimum(values: np.ndarray, chi2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(minimum, argmin) over the last axis of ``chi2`` (..., k) on the increasing grid ``values`` (k,): the grid
    minimum refined by the cubic through it, its two neighbours and the next point on the lower side, minimised
    between the neighbours (error O(h^4); a parabola's O(h^3) was 0.01 in Dresden-II's chi^2 at h = 0.01 keVee).
    No refinement at an edge, nor where the cubic has no minimum in that bracket."""
    x = np.asarray(values, float)
    chi2 = np.asarray(chi2, float)
    shape = chi2.shape[:-1]
    flat = chi2.reshape(-1, x.size)  # rows picked by plain indexing (take_along_axis: 2/3 of a line's ~70 us)
    rows = np.arange(flat.shape[0])
    k = np.argmin(flat, axis=-1)
    best = flat[rows, k]
    at = x[k]
    if x.size < 4:
        return best.reshape(shape), at.reshape(shape)
    kk = np.clip(k, 1, x.size - 2)
    left, right = flat[rows, kk - 1], flat[rows, kk + 1]
    # the fourth point: beyond the lower neighbour, kept inside the grid
    fourth = np.where(right < left, np.minimum(kk + 2, x.size - 1), np.maximum(kk - 2, 0))
    fourth = np.where(fourth == kk + 1, kk - 2, np.where(fourth == kk - 1, kk + 2, fourth))
    fourth = np.clip(fourth, 0, x.size - 1)
    idx = np.stack([kk - 1, kk, kk + 1, fourth], axis=-1)
    xs = x[idx]
    ys = flat[rows[:, None], idx]
    # Newton's divided differences: p(t) = c0 + c1 (t - x0) + c2 (t - x0)(t - x1) + c3 (t - x0)(t - x1)(t - x2)
    c = ys.copy()
    for j in range(1, 4):
        c[..., j:] = (c[..., j:] - c[..., j - 1:-1]) / (xs[..., j:] - xs[..., :-j])
    x0, x1, x2 = xs[..., 0], xs[..., 1], xs[..., 2]
    # p'(t) = A t^2 + B t + C
    a_ = 3.0 * c[..., 3]
    b_ = 2.0 * c[..., 2] - 2.0 * c[..., 3] * (x0 + x1 + x2)
    c_ = c[..., 1] - c[..., 2] * (x0 + x1) + c[..., 3] * (x0 * x1 + x0 * x2 + x1 * x2)
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = np.sqrt(np.maximum(b_**2 - 4.0 * a_ * c_, 0.0))
        # the root where p'' = 2 A t + B > 0 (the minimum); a vanishing A leaves the parabola's vertex -C/B
        root = np.where(np.abs(a_) > 1e-300, (-b_ + disc) / (2.0 * a_), -c_ / b_)
        t = np.clip(root, x0, x2)
        value = c[..., 0] + (t - x0) * (c[..., 1] + (t - x1) * (c[..., 2] + c[..., 3] * (t - x2)))
    inner = (k > 0) & (k < x.size - 1)
    ok = inner & np.isfinite(value) & (2.0 * a_ * t + b_ > 0) & (b_**2 - 4.0 * a_ * c_ >= 0)
    return np.where(ok, np.minimum(value, best), best).reshape(shape), np.where(ok, t, at).reshape(shape)


class GridProfiledCost(ReplicaCost):
    """chi^2 profiled over the nonlinear parameter ``parameter`` on the grid ``values`` (module docstring).

    ``make(value) -> Cost``: the cost with the template at that value (all share the data, the bins and the other
    parameters).  ``unit``: the parameter's unit, for messages and documents."""

    def __init__(self, parameter: str, values: Sequence[float], make: Callable, unit: str = ""):
        v = np.asarray(values, float)
        if v.ndim != 1 or v.size < 3 or np.any(np.diff(v) <= 0) or not np.all(np.isfinite(v)):
            raise InputError(f"the grid of {parameter} needs at least 3 increasing finite values")
        self.parameter, self.values, self.make, self.unit = parameter, v, make, unit
        self.costs = [make(float(x)) for x in v]
        first = self.costs[0]
        self.name, self.n_bins = first.name, first.n_bins
        self.shape = getattr(first, "shape", None)
        self.components = getattr(first, "components", ())
        self.observed = getattr(first, "observed", None)
        self._fixed_others: dict = {}

    # ---- the chi^2 ----------------------------------------------------------------------------------------
    def _stack(self, per_cost: Callable) -> np.ndarray:
        return np.stack([np.asarray(per_cost(c), float) for c in self.costs], axis=-1)

    def __call__(self, signal):
        chi = self._stack(lambda c: c(signal))
        return float(grid_minimum(self.values, chi)[0]) if chi.ndim == 1 else grid_minimum(self.values, chi)[0]

    def reduce(self, signal: np.ndarray) -> np.ndarray:
        return self.costs[0].reduce(signal)

    def profile_warm(self, signal: np.ndarray, start=None):
        return grid_minimum(self.values, self._stack(lambda c: c.profile_warm(signal)[0]))[0], None

    def profile_linear(self, coefficients: np.ndarray, basis: np.ndarray, start=None):
        return self.profile_lines(coefficients, np.asarray(basis, float)[None])[0][0], None

    def profile_lines(self, coefficients: np.ndarray, bases: np.ndarray, start=None):
        form = self._members_quadratic(bases)
        if form is not None:  # every member's profile at once (stats/quadratic.py): (members, R, n) -> (R, n, members)
            return grid_minimum(self.values, np.moveaxis(form(coefficients), 0, -1))[0], None
        chi = self._stack(lambda c: c.profile_lines(coefficients, bases)[0])
        return grid_minimum(self.values, chi)[0], None

    def line(self, basis: np.ndarray):
        """chi^2 (n,) of the coefficients (n, K) on one ``basis`` (the refinement of a limit along a line): the
        members' closed forms evaluated together where they have them, else each member's ``line``."""
        form = self._members_quadratic(np.asarray(basis, dtype=float)[None])
        if form is not None:
            return lambda coefficients: grid_minimum(self.values, form(coefficients)[:, 0].T)[0]
        lines = [c.line(basis) for c in self.costs]
        return lambda coefficients: grid_minimum(self.values, np.stack([f(coefficients) for f in lines], axis=-1))[0]

    def _members_quadratic(self, bases: np.ndarray):
        """The members' closed-form profiles on ``bases`` stacked (leading axis: the grid), or None."""
        return QuadraticProfile.stack([c.quadratic(bases) for c in self.costs])

    def fit(self, signal) -> FitResult:
        """The fit at the refined parameter value (the cost there, built by ``make``), the parameter among the
        nuisances (in its unit)."""
        chi = self._stack(lambda c: c(signal))
        _, at = grid_minimum(self.values, chi)
        res = self._at(float(at)).fit(signal)
        res.nuisances = {**res.nuisances, self.parameter: float(at)}
        return res

    def _at(self, value: float):
        cost = self.make(value)
        return cost.fix(self._fixed_others) if self._fixed_others else cost

    # ---- named parameters ---------------------------------------------------------------------------------
    @property
    def parameters(self) -> tuple:
        return (*self.costs[0].parameters, self.parameter)

    @property
    def priors(self) -> dict:
        return {**self.costs[0].priors, self.parameter: (float(self.values[0]), None)}

    @property
    def fixed(self) -> dict:
        return dict(getattr(self.costs[0], "fixed", {}))

    def fix(self, values: Mapping[str, float]):
        """The cost with ``values`` fixed: the grid parameter fixed is the cost built at that value (its other
        parameters fixed too); otherwise every grid member with them fixed."""
        self._check_names(values)
        others = {k: float(v) for k, v in values.items() if k != self.parameter}
        if self.parameter in values:
            value = float(values[self.parameter])
            if not np.isfinite(value):
                raise InputError(f"{self.name}: {self.parameter} must be fixed at a finite value, got {value}")
            cost = self.make(value)
            return cost.fix(others) if others else cost
        new = GridProfiledCost.__new__(GridProfiledCost)
        new.__dict__.update(self.__dict__)
        new.costs = [c.fix(others) for c in self.costs]
        new._fixed_others = {**self._fixed_others, **others}
        return new

    # ---- the BinnedCost contract (profile) and the replica half (what stats/toys.py calls) ---------------------
    def profile(self, signal: np.ndarray):
        return (np.atleast_1d(self(signal)),)

    def _pack(self) -> None:  # the members hold the kernels' arrays
        pass

    @property
    def pull_sigmas(self) -> np.ndarray:
        """The members' pull widths, and inf for the grid parameter (no prior: no centre to randomise)."""
        return np.concatenate([self.costs[0].pull_sigmas, [np.inf]])

    def _refined_value(self, signal) -> float:
        return float(grid_minimum(self.values, self._stack(lambda c: c(signal)))[1])

    def expected(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The counts and parameter values the data favour for ``signal``: the member at the refined grid value."""
        value = self._refined_value(signal)
        counts, theta = self._at(value).expected(signal)
        return counts, np.concatenate([theta, [value]])

    def nominal(self, signal: np.ndarray) -> np.ndarray:
        """Counts at the nominal nuisances; the grid parameter, free, at the value the data favour for ``signal``."""
        return self._at(self._refined_value(signal)).nominal(signal)

    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.costs[0].sample(expected, rng, n)  # every member assumes the same fluctuations of the data

    def counts(self, signal: np.ndarray, theta: np.ndarray) -> dict:
        return self._at(float(theta[-1])).counts(signal, np.asarray(theta)[:-1])

    @staticmethod
    def _members(centres):
        return None if centres is None else np.asarray(centres, float)[:, :-1]

    def replicas(self, signal: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
        c = self._members(centres)
        return grid_minimum(self.values, self._stack(lambda m: m.replicas(signal, observed, c)))[0]

    def linear_factors(self, basis: np.ndarray):
        return [m.linear_factors(basis) for m in self.costs]

    def replicas_linear(self, coefficients, basis, observed, centres=None, factors=None) -> np.ndarray:
        c = self._members(centres)
        f = factors if factors is not None else [None] * len(self.costs)
        chi = np.stack([m.replicas_linear(coefficients, basis, observed, c, fk) for m, fk in zip(self.costs, f)], axis=-1)
        return grid_minimum(self.values, chi)[0]

    def grid_factors(self, signals: np.ndarray):
        return [m.grid_factors(signals) for m in self.costs]

    def replicas_grid(self, signals, observed, centres=None, factors=None) -> np.ndarray:
        c = self._members(centres)
        f = factors if factors is not None else [None] * len(self.costs)
        chi = np.stack([m.replicas_grid(signals, observed, c, factors=fk) for m, fk in zip(self.costs, f)], axis=-1)
        return grid_minimum(self.values, chi)[0]
