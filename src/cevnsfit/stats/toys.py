"""Replicated experiments (toys) and the Neyman construction with Feldman-Cousins ordering for one parameter.

Statistics only: a *line* is a non-negative parameter g and, per data set, a profiled cost and a map g -> signal
template.  Nothing here knows what the parameter or the templates mean.

* Replicas are thrown from the cost objects themselves (no second model of the detector): a Poisson cost draws
  D_b ~ Poisson(N_b), a Gaussian cost draws D_b ~ N_b + sigma_b z_b with its own per-bin sigma_b (the sigma that
  its chi^2 divides by).  N_b is the expectation at the nuisance values chosen by the *construction*:

  - ``"profile"`` (default; the LHC Higgs combination and COHERENT): N at theta_hat(g), the nuisances profiled on
    the observed data for the tested g, and the auxiliary measurements -- the pull centres theta_0 of every pulled
    parameter -- randomised, theta_0 ~ Normal(theta_hat(g), sigma_theta).  Free parameters have no centre.
  - ``"fixed"`` (the plain alternative): N at the nominal nuisances (every pull at its centre 0), centres fixed.

  Each replica is then fitted with the same profiled chi^2 as the data, with its own data and centres.
* Test statistic (Feldman-Cousins likelihood ratio on the allowed space g >= 0):
  t(g) = chi^2(g) - min_{g' >= 0} chi^2(g'); the minimum is taken on a grid of g' (which contains every tested
  g and 0) and refined between the neighbours of the grid minimum, as the asymptotic path refines it with Brent's
  method: by bracket samples and parabola vertices, within 1e-6 in t of a golden-section search
  (tests/reference_toys.py; see ``Line.minimum``).
* Critical value t_c(g) = the CL quantile of t over the replicas thrown at g (smallest t with F(t) >= CL);
  the allowed set is {g : t_obs(g) <= t_c(g)}, islands included; p(g) = fraction of replicas with t >= t_obs(g).
* Seeds: every block of replicas draws from ``numpy.random.SeedSequence(master, spawn_key=key)`` with a key
  built from the block's identity, so a block's numbers do not depend on who computes it or when.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.stats import chi2 as chi2_dist
from scipy.stats import norm

from ..errors import InputError
from .cost import ReplicaCost, linear_signals

# Confidence levels: 2 sigma is the two-sided Gaussian 95.45 %, as the limits table uses.
CONFIDENCE_LEVELS = {"2sigma": float(2.0 * norm.cdf(2.0) - 1.0), "90": 0.90}
CONSTRUCTIONS = ("profile", "fixed")
# Refinement of the minimum (Line._refine): samples of the bracket in one batched call; 2 grid steps / 16 = 1.5 %
# in g
SUB_POINTS = 15
# Replicas fitted together (Line.statistic): 25 x ~54 grid values x ~100 bins x 4 components = 4 MB of templates;
# 100 at once were 30 % slower per toy (benchmarks/bench_fc.py, block sizes)
CHUNK = 25


def confidence_level(cl: str) -> float:
    if cl not in CONFIDENCE_LEVELS:
        raise InputError(f"unknown confidence level '{cl}'; choose one of {', '.join(CONFIDENCE_LEVELS)}")
    return CONFIDENCE_LEVELS[cl]


def wilks_threshold(cl: str) -> float:
    """Delta chi^2 of Wilks' theorem for one parameter at ``cl`` (4 at 2 sigma, 2.71 at 90 %)."""
    return float(chi2_dist.ppf(confidence_level(cl), 1))


def stable_int(text: str) -> int:
    """A 64-bit integer from a string, identical on every machine and Python run (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


# Master seeds: numpy's SeedSequence takes any non-negative integer; the bound keeps the seed an int64 (the fc
# store's manifest, fc.json, a Dask task's arguments)
MAX_SEED = 2**63 - 1


def check_seed(seed, what: str = "--seed") -> int:
    """``seed`` as an int in 0..2^63 - 1 (what ``SeedSequence`` accepts, bounded to int64); InputError otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise InputError(f"{what} must be an integer from 0 to 2**63 - 1, got {seed!r}")
    return int(seed)


def block_rng(master_seed: int, key: Sequence[int | str]) -> np.random.Generator:
    """Generator of one block: SeedSequence(master_seed) spawned along ``key`` (strings hashed stably)."""
    spawn = tuple(stable_int(k) if isinstance(k, str) else int(k) for k in key)
    return np.random.default_rng(np.random.SeedSequence(check_seed(master_seed, "seed"), spawn_key=spawn))


@dataclass
class Replicas:
    """Replicated data of one data set: observed counts (n, n_bins) and pull centres (n, n_parameters)."""

    observed: np.ndarray
    centres: np.ndarray

    def take(self, rows) -> "Replicas":
        return Replicas(self.observed[rows], self.centres[rows])

    def repeat(self, m: int) -> "Replicas":
        return Replicas(np.repeat(self.observed, m, axis=0), np.repeat(self.centres, m, axis=0))


@dataclass
class LineMember:
    """One data set on the line: its profiled cost and the signal templates as a function of g.

    ``basis`` and ``coefficients``, when given: the templates are linear in a fixed basis, signal(g) =
    coefficients(g) (n, K) @ basis (K, *cost.shape) -- the cost then profiles off-grid points from basis products
    formed once per line (``ReplicaCost.replicas_linear``).  Build such a member with :meth:`linear`."""

    cost: ReplicaCost
    signal: Callable[[np.ndarray], np.ndarray]  # g (n,) -> templates (n, *cost.shape)
    basis: np.ndarray | None = None
    coefficients: Callable[[np.ndarray], np.ndarray] | None = None

    @classmethod
    def linear(cls, cost: ReplicaCost, coefficients: Callable[[np.ndarray], np.ndarray], basis: np.ndarray) -> "LineMember":
        """A member whose templates are coefficients(g) @ basis."""
        basis = np.asarray(basis, dtype=float)
        return cls(cost, lambda g: linear_signals(coefficients(np.asarray(g, float)), basis), basis, coefficients)

    def chi2(self, g: np.ndarray, replicas: "Replicas", factors=None) -> np.ndarray:
        """Profiled chi^2 (n,) of replica k at g[k]; ``factors``: the cost's ``linear_factors`` of the basis."""
        if self.basis is not None and factors is not None:
            return self.cost.replicas_linear(self.coefficients(g), self.basis, replicas.observed, replicas.centres, factors)
        return self.cost.replicas(self.signal(g), replicas.observed, replicas.centres)


class Line:
    """chi^2 of replicated experiments along a non-negative parameter, summed over independent data sets.

    ``grid``: increasing values of g (starting at 0) on which every replica's chi^2 is evaluated in one batched
    call; tested values must belong to it.  The costs' template-side work is done once per line (``grid_factors``
    of the grid, ``linear_factors`` of a member's basis).
    """

    def __init__(self, members: Sequence[LineMember], grid: np.ndarray):
        grid = np.asarray(grid, dtype=float)
        if grid.ndim != 1 or grid.size < 3 or grid[0] != 0 or np.any(np.diff(grid) <= 0):
            raise InputError("a toy grid needs at least 3 increasing couplings starting at 0")
        self.members = list(members)
        for m in self.members:
            if not isinstance(m.cost, ReplicaCost):  # no sample/replicas
                raise InputError(f"cost {m.cost.name} ({type(m.cost).__name__}) cannot throw replicas: it does not "
                                 "implement the ReplicaCost half of the cost contract")
        self.grid = grid
        self._grid_signals = [m.signal(grid) for m in self.members]
        # template-side work of the grid fits, done once per line (LAr: the Gram eliminations)
        self._grid_factors = [m.cost.grid_factors(sig) for m, sig in zip(self.members, self._grid_signals)]
        # and of the off-grid points (the refinement of the minimum), for members linear in a basis
        self._linear_factors = [None if m.basis is None else m.cost.linear_factors(m.basis) for m in self.members]

    def throw(self, g: float, rng: np.random.Generator, n: int, construction: str = "profile") -> list[Replicas]:
        """``n`` replicas of every data set at the tested value ``g`` (see the module docstring)."""
        if construction not in CONSTRUCTIONS:
            raise InputError(f"unknown toy construction '{construction}'; choose {' or '.join(CONSTRUCTIONS)}")
        out = []
        for m in self.members:
            sig = m.signal(np.array([g]))[0]
            widths = m.cost.pull_sigmas
            if construction == "profile":
                expected, theta = m.cost.expected(sig)
            else:
                expected, theta = m.cost.nominal(sig), np.zeros(widths.size)
            observed = m.cost.sample(expected, rng, n)
            pulled = np.isfinite(widths)
            centres = np.zeros((n, widths.size))
            if construction == "profile":
                centres[:, pulled] = theta[pulled] + widths[pulled] * rng.standard_normal((n, int(pulled.sum())))
            out.append(Replicas(observed, centres))
        return out

    def chi2(self, g: np.ndarray, replicas: Sequence[Replicas]) -> np.ndarray:
        """chi^2 (n,) of replica k at g[k] (one batched call per data set)."""
        g = np.asarray(g, dtype=float)
        return sum(m.chi2(g, r, f) for m, r, f in zip(self.members, replicas, self._linear_factors))

    def chi2_grid(self, replicas: Sequence[Replicas]) -> np.ndarray:
        """chi^2 (n, n_grid) of every replica at every grid value: one ``replicas_grid`` call per data set."""
        return sum(m.cost.replicas_grid(sig, r.observed, r.centres, factors=f)
                   for m, r, sig, f in zip(self.members, replicas, self._grid_signals, self._grid_factors))

    def minimum(self, replicas: Sequence[Replicas], on_grid: np.ndarray) -> np.ndarray:
        """min over g >= 0 of each replica's chi^2: the grid minimum, refined between its neighbours when it is
        not at an end of the grid (as the asymptotic path refines it).

        ``_refine``: the bracket sampled at SUB_POINTS points in one batched call, then the vertex of the parabola
        through the best sample and its two neighbours, then that of the parabola through this vertex and the
        samples around it (chi^2 is quadratic near its minimum): three batched calls.  It returns the smallest
        chi^2 evaluated, an upper bound of the minimum, within 1e-6 of a golden-section search (tests/test_fc_speed.py
        against tests/reference_toys.py)."""
        k = np.argmin(on_grid, axis=1)
        best = on_grid[np.arange(k.size), k]
        inner = np.flatnonzero((k > 0) & (k < self.grid.size - 1))
        if inner.size == 0:
            return best
        reps = [r.take(inner) for r in replicas]
        a, b = self.grid[k[inner] - 1], self.grid[k[inner] + 1]
        refined = self._refine(reps, a, b)
        best[inner] = np.minimum(best[inner], refined)
        return best

    def _refine(self, reps, a, b) -> np.ndarray:
        """The minimum over [a, b] (n,) of each replica's chi^2 (see ``minimum``)."""
        n, m = a.size, SUB_POINTS
        u = np.linspace(0.0, 1.0, m + 2)[1:-1]  # interior samples (the ends are grid points, already known)
        x = a[:, None] + (b - a)[:, None] * u[None, :]
        f = self.chi2(x.ravel(), [r.repeat(m) for r in reps]).reshape(n, m)
        j = np.clip(np.argmin(f, axis=1), 1, m - 2)
        rows = np.arange(n)
        x0, x1, x2 = x[rows, j - 1], x[rows, j], x[rows, j + 1]
        f0, f1, f2 = f[rows, j - 1], f[rows, j], f[rows, j + 1]
        # vertex of the parabola through three equally spaced points
        h = x1 - x0
        curv = f0 - 2.0 * f1 + f2
        with np.errstate(divide="ignore", invalid="ignore"):
            vertex = x1 + 0.5 * h * (f0 - f2) / curv
        vertex = np.where((curv > 0) & np.isfinite(vertex), np.clip(vertex, x0, x2), x1)
        fv = self.chi2(vertex, reps)
        # second step: the parabola through the vertex and the two samples around it (unequal spacing)
        right = vertex >= x1
        xa, fa = np.where(right, x1, x0), np.where(right, f1, f0)
        xb, fb = np.where(right, x2, x1), np.where(right, f2, f1)
        va, vb = vertex - xa, vertex - xb
        num = va**2 * (fv - fb) - vb**2 * (fv - fa)
        den = va * (fv - fb) - vb * (fv - fa)
        with np.errstate(divide="ignore", invalid="ignore"):
            second = vertex - 0.5 * num / den
        ok = np.isfinite(second) & (second > xa) & (second < xb) & (den != 0)
        fs = self.chi2(np.where(ok, second, vertex), reps)
        return np.minimum(np.minimum(fs, fv), f.min(axis=1))

    def statistic(self, g: float, rng: np.random.Generator, n: int, construction: str = "profile") -> np.ndarray:
        """t(g) = chi^2(g) - min_{g' >= 0} chi^2(g') for ``n`` replicas thrown at ``g`` (a grid value)."""
        j = np.flatnonzero(self.grid == g)
        if j.size != 1:
            raise InputError(f"tested value {g} is not on the toy grid")
        return np.maximum(self.t_grid(self.throw(g, rng, n, construction))[:, j[0]], 0.0)

    def t_grid(self, reps: list) -> np.ndarray:
        """chi^2(g) - min_{g' >= 0} chi^2(g') (n, grid) of replicas ``reps`` at every grid coupling, fitted in chunks
        of CHUNK replicas: a chunk's work arrays (CHUNK x grid x bins) stay in cache, and memory stays bounded
        whatever the number of replicas."""
        n = reps[0].observed.shape[0]
        t = np.empty((n, self.grid.size))
        for start in range(0, n, CHUNK):
            rows = slice(start, min(start + CHUNK, n))
            part = [r.take(rows) for r in reps]
            on_grid = self.chi2_grid(part)
            t[rows] = on_grid - self.minimum(part, on_grid)[:, None]
        return t


def critical_value(t: np.ndarray, level: float) -> float:
    """Smallest t_c with a fraction >= ``level`` of the replicas at or below it (the empirical quantile)."""
    t = np.sort(np.asarray(t, dtype=float))
    return float(t[min(int(np.ceil(level * t.size)) - 1, t.size - 1)])


def critical_band(t: np.ndarray, level: float) -> tuple[float, float]:
    """t_c at the quantile levels level -/+ its binomial error sqrt(level (1 - level) / n): the toy-statistics
    band of the critical value (order statistics)."""
    err = np.sqrt(level * (1.0 - level) / len(t))
    return critical_value(t, max(level - err, 1.0 / len(t))), critical_value(t, min(level + err, 1.0))


def p_value(t: np.ndarray, t_obs: float) -> float:
    """Fraction of replicas at least as extreme as the observation: P(t >= t_obs)."""
    return float(np.mean(np.asarray(t) >= t_obs))


def significance(p: float) -> float:
    """Two-sided Gaussian significance of a p-value (p = 0.0455 -> 2 sigma)."""
    return float(norm.isf(p / 2.0)) if p > 0 else float("inf")
