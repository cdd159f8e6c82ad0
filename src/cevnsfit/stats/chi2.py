"""Profiled chi^2 costs (physics specification sections 8.7, 9.6, 12.1).

A cost is a small object: ``cost(signal)`` returns the chi^2 minimised over its nuisance parameters for a
predicted signal (CEvNS) template; costs add (``csi_cost + lar_cost``) into a :class:`SumCost` with independent
nuisances.  Every ``__call__`` accepts one signal array (n_energy, n_time) or a batch (n, n_energy, n_time)
and returns a float or an (n,) array, so that scans evaluate a whole row of couplings at once.  Statistics never
knows what a neutrino is: it sees observed counts, component templates, pull widths and shape deltas.

* :class:`PoissonChi2` -- 2 sum[N - D + D ln(D/N)] + sum_z (eta_z/sigma_z)^2, N = sum_z (1 + eta_z) N_z; convex in
  eta, profiled by a damped Newton iteration with analytic gradient and Hessian (|d chi^2| < 1e-9 at exit).
* :class:`GaussianChi2` -- sum[(D - sum_z (1 + eta_z + sum_l eta^sys_zl) N_z)/sigma]^2 + sum (eta/sigma_z)^2 +
  sum eps_l^2 with eta^sys_zl = eps_l Delta^+ (eps >= 0) or |eps_l| Delta^- (eps < 0): piecewise quadratic, so it
  is profiled *exactly* by solving the normal equations on every sign branch (3 branches per two-sided
  systematic: +, -, and eps = 0) and keeping the best admissible solution.

Replicated experiments (toys, :mod:`cevnsfit.stats.toys`) use the same objects, through the replica half of the
contract (:class:`ReplicaCost`, which both costs here implement): ``sample`` draws data as the
chi^2 assumes them, ``replicas`` profiles a batch whose rows carry their own data and pull centres (the pull
terms become ((eta - eta_0)/sigma)^2), ``expected`` gives the counts at the nuisances profiled for a signal.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import InputError
from . import compiled

SIGNAL = "cevns"


@dataclass
class FitResult:
    """Profiled fit of one signal template: chi^2, nuisance values and fitted counts per component."""

    chi2: float
    nuisances: dict
    fitted: dict  # component -> fitted counts array (n_energy, n_time)
    n_bins: int

    def totals(self) -> dict:
        return {z: float(v.sum()) for z, v in self.fitted.items()}


def _as_batch(signal: np.ndarray, shape: tuple) -> tuple[np.ndarray, bool]:
    s = np.asarray(signal, dtype=float)
    if s.shape == shape:
        return s[None, ...], True
    if s.ndim == 3 and s.shape[1:] == shape:
        return s, False
    raise InputError(f"signal template has shape {s.shape}, expected {shape} or (n, *{shape})")


class Cost(ABC):
    """The contract of every cost: ``cost(signal)`` is the chi^2 profiled over the cost's nuisances (a float, or an
    (n,) array for a batch), ``cost.fit(signal)`` the profiled fit; ``name`` identifies the data set in a
    :class:`SumCost`; ``n_bins`` counts its bins.  Costs add, and ``sum(costs)`` works (``0 + cost`` is the cost).
    """

    name: str = "cost"
    n_bins: int = 0

    @abstractmethod
    def __call__(self, signal) -> np.ndarray | float:
        """Profiled chi^2 of ``signal`` (one template, a batch, or a mapping name -> template)."""

    @abstractmethod
    def fit(self, signal):
        """The profiled fit at ``signal`` (nuisances and fitted components)."""

    def __add__(self, other: "Cost") -> "SumCost":
        if not isinstance(other, Cost):
            return NotImplemented
        return SumCost([self, other])

    def __radd__(self, other) -> "Cost":
        if isinstance(other, (int, float)) and other == 0:  # the start value of sum()
            return self
        return NotImplemented


class BinnedCost(Cost):
    """A cost over one data set's bins: holds the observed counts and background templates, and computes the chi^2
    of a batch of signal templates in :meth:`profile` (returning the chi^2 array first)."""

    # a cost with a compiled kernel profiles batches of at least this many rows compiled (numba installed): smaller
    # ones do not repay numba's import.  A caller that profiles whole grids anyway sets 1 on its costs, so that every
    # evaluation it makes -- the one-point refinements of its minima and crossings too -- takes the same path
    # (~20 us instead of ~0.6 ms per point), whatever the process computed before (MediatorAnalysis.cost)
    min_compiled_rows: int = compiled.MIN_ROWS

    @abstractmethod
    def profile(self, signal: np.ndarray):
        """(chi^2 (n,), ...) for a batch of signal templates (n, *shape), nuisances profiled."""

    def _signal(self, signal):
        return signal[self.name] if isinstance(signal, Mapping) else signal

    def _set_data(self, name: str, observed, backgrounds: Mapping) -> None:
        """Observed counts and background templates (flattened; the signal is component 0, ``"cevns"``)."""
        self.name = name
        self.observed = np.asarray(observed, dtype=float)
        self.shape = self.observed.shape
        self.n_bins = self.observed.size
        self.components = (SIGNAL, *backgrounds)
        # no background at all is allowed (a background-free projected detector): an empty (0, n_bins) stack
        self.backgrounds = (np.stack([np.asarray(backgrounds[z], float).ravel() for z in backgrounds]) if backgrounds
                            else np.zeros((0, self.n_bins)))

    def __call__(self, signal) -> np.ndarray | float:
        """Profiled chi^2 of one signal template (float) or of a batch (n,) -- ``profile`` does the work."""
        batch, single = _as_batch(self._signal(signal), self.shape)
        chi = self.profile(batch)[0]
        return float(chi[0]) if single else chi

    def reduce(self, signal: np.ndarray) -> np.ndarray:
        """The signal on the bins the chi^2 reads (linear; ``cost(reduce(s)) == cost(s)``): all of them here; a cost
        that can drop or merge bins (:class:`cevnsfit.stats.morphing.MorphedPoissonChi2`) overrides it."""
        return signal

    def profile_warm(self, signal: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """(chi^2 (n,), a start for the next batch): a cost with an iterative profile uses ``start`` (the state a
        neighbouring batch returned) as a warm start; here the profile is direct and the state None."""
        return self(signal), None

    def profile_linear(self, coefficients: np.ndarray, basis: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """``profile_warm`` of the signals coefficients @ basis: ``coefficients`` (n, K), ``basis`` (K, *shape) --
        e.g. a mediator's templates N0 + g^2 N1 + g^4 N2 along a line of couplings.  A cost may use the basis to
        form its template-side products once instead of once per signal (:class:`GaussianChi2` does)."""
        return self.profile_warm(linear_signals(coefficients, basis), start)


class ReplicaCost(BinnedCost):
    """The replica (toy) half of the :class:`BinnedCost` contract, what :mod:`cevnsfit.stats.toys` calls: a cost
    that implements it can throw replicated data sets (``sample``) and profile them (``replicas``,
    ``replicas_grid``) at the counts and nuisances a signal favours (``expected``, ``nominal``).  ``pull_sigmas``
    (n_parameters,) gives the units of the pull centres.  A cost without it (the morphed XENONnT cost) is a plain
    :class:`BinnedCost`: toys and ``cevnsfit fc`` recognise it by its type, not by a flag.
    """

    pull_sigmas: np.ndarray
    # True: replicas and large batches are profiled in compiled code when numba is installed (stats/compiled.py);
    # False (per instance): always the numpy path, the reference
    compiled: bool = True

    def _compile(self, n_rows: int, replicas: bool) -> bool:
        """Profile compiled: when switched on and worth it -- always for replicas (toys: the process fits many
        batches, and whether a batch is compiled must not depend on what the process did before)."""
        return self.compiled and (compiled.available() if replicas else compiled.worth_it(n_rows, self.min_compiled_rows))

    @abstractmethod
    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` replicated data sets (n, n_bins) drawn about ``expected`` (n_bins,) as the chi^2 assumes them."""

    def linear_factors(self, basis: np.ndarray):
        """Whatever ``replicas_linear`` can precompute from a signal basis (K, *shape) alone; None: nothing."""
        return None

    def replicas_linear(self, coefficients: np.ndarray, basis: np.ndarray, observed: np.ndarray,
                        centres: np.ndarray | None = None, factors=None) -> np.ndarray:
        """``replicas`` of the signals coefficients (n, K) @ basis (K, *shape); ``factors``: ``linear_factors``."""
        return self.replicas(linear_signals(coefficients, basis), observed, centres)

    def replicas(self, signal: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
        """Profiled chi^2 (n,) of replicated data sets: row k pairs signal[k] with observed[k] (n, n_bins) and
        pull centres[k] (n, n_parameters, in the units of ``pull_sigmas``; None = the nominal 0).  The same
        chi^2 as ``__call__``, with the observed counts and the auxiliary measurements of that row."""
        s = np.asarray(signal, dtype=float)
        n = s.shape[0]
        d = np.asarray(observed, dtype=float).reshape(n, self.n_bins)
        c = np.zeros((n, self.pull_sigmas.size)) if centres is None else np.asarray(centres, dtype=float)
        if c.shape != (n, self.pull_sigmas.size):
            raise InputError(f"pull centres have shape {c.shape}, expected ({n}, {self.pull_sigmas.size})")
        return self.profile(s.reshape(n, *self.shape), observed=d, centres=c)[0]

    def grid_factors(self, signals: np.ndarray):
        """Whatever ``replicas_grid`` can precompute from the templates alone (kept by a toy line and passed back
        as ``factors``); None: nothing."""
        return None

    def replicas_grid(self, signals: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None,
                      factors=None) -> np.ndarray:
        """Profiled chi^2 (n, k) of replica r (observed (n, n_bins), centres (n, n_parameters)) at signal template
        j (signals (k, *shape)): ``replicas`` of every pair, one batched call (a cost may do it faster)."""
        k = signals.shape[0]
        n = np.asarray(observed).shape[0]
        s = np.broadcast_to(signals, (n, *signals.shape)).reshape(n * k, *signals.shape[1:])
        c = None if centres is None else np.repeat(centres, k, axis=0)
        return self.replicas(s, np.repeat(observed, k, axis=0), c).reshape(n, k)

    def expected(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(expected counts per bin (n_bins,), nuisance values (n_parameters,)) profiled for one signal template:
        the point in nuisance space that the data favour for this signal (toys are thrown there)."""
        fit = self.fit(signal)
        return sum(v.ravel() for v in fit.fitted.values()), np.array(list(fit.nuisances.values()))

    def nominal(self, signal: np.ndarray) -> np.ndarray:
        """Expected counts per bin at the nominal nuisances (every pull at its centre 0)."""
        return np.asarray(signal, float).ravel() + self.backgrounds.sum(axis=0)


class SumCost(Cost):
    """Sum of costs with independent nuisance parameters; called with a mapping name -> signal template."""

    def __init__(self, costs):
        flat = []
        for c in costs:
            flat.extend(c.costs if isinstance(c, SumCost) else [c])
        names = [c.name for c in flat]
        if len(set(names)) != len(names):
            raise InputError(f"cannot add costs with the same name twice: {names}")
        self.costs = flat
        self.name = "+".join(names)
        self.n_bins = sum(c.n_bins for c in flat)

    def __call__(self, signals: Mapping) -> np.ndarray | float:
        return sum(c(signals[c.name]) for c in self.costs)

    def fit(self, signals: Mapping) -> dict:
        return {c.name: c.fit(signals[c.name]) for c in self.costs}


class PoissonChi2(ReplicaCost):
    """Poisson chi^2 with Gaussian pulls on the component normalisations (CsI, AC22).

    ``backgrounds``: component -> template; ``sigmas``: component -> relative pull width (``None`` = free
    normalisation, no pull term).  The signal component is called ``"cevns"``.
    """

    def __init__(self, name: str, observed: np.ndarray, backgrounds: Mapping, sigmas: Mapping, tol: float = 1e-9):
        self._set_data(name, observed, backgrounds)
        self.inv_var = np.array([0.0 if sigmas[z] is None else 1.0 / sigmas[z] ** 2 for z in self.components])
        self.pull_sigmas = np.array([np.inf if sigmas[z] is None else float(sigmas[z]) for z in self.components])
        self.tol = tol
        # structured=False: the reference arithmetic (one small product per row for the expected counts, a LAPACK
        # solve of each row's Newton system); True: a_S S + a_B @ B and vectorised elimination (measured per row
        # on 5 400 CsI rows: chi^2 2.4 -> 1.6 us, solve 0.59 -> 0.39 us), equal to rounding (tests/test_fc_speed.py)
        self.structured = True
        d = self.observed.ravel()
        self._d = d
        self._dlnd = _dlnd(d)

    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` replicated data sets (n, n_bins) of the counts this chi^2 assumes: D_b ~ Poisson(expected_b)."""
        return rng.poisson(np.asarray(expected, float), size=(n, self.n_bins)).astype(float)

    def profile_warm(self, signal: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """(chi^2 (n,), (eta_hat, signal totals)) for a batch, each row started from ``start``, what the previous
        batch returned for the same row (a scan's neighbouring mass at the same coupling).  Where that fit
        suppressed the signal (a < 1/2: the data fix its counts, not its factor), the factor starts where it keeps
        those counts, a_prev S_prev / S: a signal 1e9 times the data needs a ~ 1e-9, which Newton would otherwise
        reach in factors of 10 per step."""
        n = signal.shape[0]
        s_tot = signal.reshape(n, -1).sum(axis=1)
        eta0 = None
        if start is not None:
            eta_prev, s_prev = start
            a0 = 1.0 + eta_prev[:, 0]
            ratio = np.divide(s_prev, s_tot, out=np.ones(n), where=s_tot > 0)
            eta0 = np.array(eta_prev, dtype=float)
            eta0[:, 0] = np.where(a0 < 0.5, a0 * ratio, a0) - 1.0
        chi, eta, _ = self.profile(signal, eta0)
        return chi, (eta, s_tot)

    def _templates(self, signal: np.ndarray) -> np.ndarray:
        n = signal.shape[0]
        return np.concatenate([signal.reshape(n, 1, -1), np.broadcast_to(self.backgrounds, (n, *self.backgrounds.shape))], axis=1)

    def _chi2(self, templates: np.ndarray, scale: np.ndarray, d=None, dlnd=None, centre=1.0) -> np.ndarray:
        """chi^2 at normalisation factors ``scale`` = 1 + eta (kept as such: eta -> -1 loses digits); ``d``,
        ``dlnd`` and ``centre`` (= 1 + pull centre) per row for replicas, else the observed data."""
        if d is None:
            d, dlnd = self._d, self._dlnd
        mu = self._mu(templates, scale)
        safe = np.maximum(mu, 1e-300)
        dev = 2.0 * (mu.sum(axis=1) - (d * np.log(safe)).sum(axis=1) + dlnd)
        return dev + np.sum((scale - centre) ** 2 * self.inv_var, axis=1)

    def profile(self, signal: np.ndarray, eta0: np.ndarray | None = None, observed: np.ndarray | None = None,
                centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(chi^2_min, eta_hat, templates or None) for a batch of signals (n, n_E, n_t); ``eta0`` warm-starts Newton.

        Newton iterates on the factors a_z = 1 + eta_z > 0.  A signal far above the data (absurd couplings) is
        profiled towards a_cevns -> 0 at the price of its pull: such points start where the scaled signal matches
        the observed excess, so that Newton needs a few steps.  A factor whose counts a_z sum_b N_zb fall below
        ``PIN`` while the gradient or the step pulls it down is held on its bound (projected Newton); at
        convergence a held factor whose gradient points up (the KKT condition fails) is restarted from 1, once,
        and factors left just above their bound are set to 0 where this does not raise chi^2.  ``observed``
        (n, n_bins) and ``centres`` (n, n_z) replace the data and the pull centres row by row (replicated
        experiments; see ``replicas``).
        """
        n, nz = signal.shape[0], len(self.components)
        if observed is None:
            d, dlnd, ctr = self._d[None, :], np.full(n, self._dlnd), np.ones((1, nz))
            row = lambda arr, i: arr  # noqa: E731 -- shared by every row
        else:
            d, dlnd = observed, _dlnd_rows(observed)
            ctr = 1.0 + (np.zeros((n, nz)) if centres is None else centres)
            row = lambda arr, i: arr[i]  # noqa: E731
        d_tot = d.sum(axis=1)
        if eta0 is None:
            a = np.ones((n, nz))
            s_tot = signal.reshape(n, -1).sum(axis=1)
            excess = np.maximum(d_tot - self.backgrounds.sum(), 1.0)
            huge = s_tot > 10.0 * d_tot
            a[huge, 0] = np.broadcast_to(excess, (n,))[huge] / s_tot[huge]
        else:
            # a factor profiled onto its boundary starts on it (WARM_FLOOR; one restarted at 1 would walk back down
            # in steps of 10x)
            a = 1.0 + np.array(eta0, dtype=float).reshape(n, nz)
            totals = np.concatenate([signal.reshape(n, -1).sum(axis=1)[:, None],
                                     np.broadcast_to(self.backgrounds.sum(axis=1), (n, nz - 1))], axis=1)
            a[a * totals < self.WARM_FLOOR] = 0.0
        if self._compile(n, observed is not None):  # the same Newton compiled (certified steps without line search)
            chi, a = compiled.poisson_profile(signal.reshape(n, -1), self.backgrounds, d, dlnd, ctr, self.inv_var, a,
                                              self.tol, self.PIN, self.WARM_FLOOR)
            return chi, a - 1.0, None
        tpl = self._templates(signal)
        chi = self._chi2(tpl, a, d, dlnd, ctr)
        bad = ~np.isfinite(chi) | np.any((self._mu(tpl, a) <= 0) & (d > 0), axis=1)
        if bad.any():  # a warm start outside the domain (no expected counts where data are): restart those from the
            # nominal normalisations
            a[bad] = 1.0
            chi[bad] = self._chi2(tpl[bad], a[bad], row(d, bad), dlnd[bad], row(ctr, bad))
        diag = np.arange(nz)
        active = np.ones(n, dtype=bool)
        pins = self.PIN / np.maximum(tpl.sum(axis=2), 1.0)  # a factor is at its bound when its counts are < PIN
        released = np.zeros((n, nz), dtype=bool)
        for _ in range(60):
            idx = np.flatnonzero(active)
            sel = slice(None) if idx.size == n else idx  # views while every row is active (no copies)
            t, x, c0 = tpl[sel], a[sel], chi[sel]
            di, ci, dlndi = row(d, sel), row(ctr, sel), dlnd[sel]
            grad, hess = self._derivatives(t, x, di)
            grad += 2.0 * (x - ci) * self.inv_var
            hess[:, diag, diag] += 2.0 * self.inv_var + 1e-300
            solve = lambda h, g: -(_solve_spd(h, g) if self.structured else np.linalg.solve(h, g[..., None])[..., 0])  # noqa: E731
            step = solve(hess, grad)
            # active set: a factor at its bound (a < PIN) that the gradient or the Newton step drives down is held
            # there and the step recomputed without it; else every step of the others would be cut to 9/10 of its
            # ever shorter way to 0 and Newton would stall (projected Newton, Bertsekas 1982)
            pinned = (x < pins[sel]) & ((grad > 0) | (step < 0))
            # held by its step while the gradient points into the allowed region: optimal on the face a_z = 0 is
            # then not optimal (the KKT condition fails); at convergence such a factor restarts from 1, once
            wrong_side = pinned & (grad < 0) & ~released[sel]
            if pinned.any():
                rows, cols = np.nonzero(pinned)
                grad[rows, cols] = 0.0
                hess[rows, cols, :] = 0.0
                hess[rows, :, cols] = 0.0
                hess[rows, cols, cols] = 1.0
                step = solve(hess, grad)
            # Newton decrement = predicted chi^2 decrease; the floor follows the resolution of large chi^2
            decrement = -0.5 * np.sum(grad * step, axis=1)
            done = decrement < np.maximum(self.tol, 1e-13 * c0)
            restart = done & wrong_side.any(axis=1)
            if restart.any():
                rows = idx[restart]
                released[rows] |= wrong_side[restart]
                a[rows] = np.where(wrong_side[restart], 1.0, a[rows])
                chi[rows] = self._chi2(tpl[rows], a[rows], row(d, rows), dlnd[rows], row(ctr, rows))
                done &= ~restart
            # largest step keeping every factor positive (stop at 1/10 of the distance to the boundary)
            with np.errstate(divide="ignore", invalid="ignore"):
                limit = np.where(step < 0, -0.9 * x / step, np.inf).min(axis=1)
            lam = np.minimum(1.0, limit)
            new_chi = np.full(idx.size, np.inf)
            todo = ~done
            for _ in range(30):
                if not todo.any():
                    break
                sub = np.flatnonzero(todo)
                trial = x[sub] + lam[sub, None] * step[sub]
                c = self._chi2(t[sub], trial, row(di, sub), dlndi[sub], row(ci, sub))
                better = c <= c0[sub] + 1e-12
                new_chi[sub[better]] = c[better]
                lam[sub[~better]] *= 0.5
                todo[sub[better]] = False
            moved = np.isfinite(new_chi) & ~restart
            a[idx[moved]] = x[moved] + lam[moved, None] * step[moved]
            chi[idx[moved]] = new_chi[moved]
            active[idx[done | ~(moved | restart)]] = False
            if not active.any():
                break
        # factors held at their bound end a few 1e-10 above it: set them to exactly 0 where chi^2 does not rise
        low = np.any((a > 0) & (a < pins), axis=1)
        if low.any():
            rows = np.flatnonzero(low)
            snapped = np.where(a[rows] < pins[rows], 0.0, a[rows])
            c = self._chi2(tpl[rows], snapped, row(d, rows), dlnd[rows], row(ctr, rows))
            better = c <= chi[rows]
            a[rows[better]], chi[rows[better]] = snapped[better], c[better]
        return chi, a - 1.0, tpl

    # a factor whose counts a_z sum_b N_zb are below PIN, pulled down, is at the bound a = 0 (chi^2 error ~ 2 PIN)
    PIN = 1e-9
    # a warm-started factor with fewer counts than this starts on its bound, a = 0 (in counts, not in a: a signal
    # 1e9 times the data is well fitted at a = 1e-10; a factor a little above 0 would cut every step of the others
    # to 9/10 of its way to 0)
    WARM_FLOOR = 1e-3

    # Cold starts of the grid: one column in COLD_STRIDE; the others start from the nuisances of the nearest cold
    # column below (12 % steps in g on the FC grids: Newton then needs ~2 iterations instead of ~4-5).
    COLD_STRIDE = 4

    def replicas_grid(self, signals: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None,
                      factors=None) -> np.ndarray:
        """``BinnedCost.replicas_grid`` with warm starts along the templates (ordered along a coupling line):
        Newton from a = 1 on every COLD_STRIDE-th template, the others from the nearest cold solution below.
        Equal to the cold-start reference to the Newton tolerance (tests/test_fc_speed.py)."""
        k = signals.shape[0]
        n = np.asarray(observed).shape[0]
        d = np.asarray(observed, float).reshape(n, self.n_bins)
        c = np.zeros((n, self.pull_sigmas.size)) if centres is None else np.asarray(centres, float)
        if self._compile(n * k, True):  # compiled: every template warm-started from the previous one's fit
            return compiled.poisson_grid(signals.reshape(k, -1), self.backgrounds, d, _dlnd(d), 1.0 + c, self.inv_var,
                                         self.tol, self.PIN, self.WARM_FLOOR)
        cold = np.arange(0, k, self.COLD_STRIDE)
        warm = np.setdiff1d(np.arange(k), cold)
        out = np.empty((n, k))
        nz = len(self.components)

        def solve(cols, start):
            m = cols.size
            sig = np.broadcast_to(signals[cols], (n, m, *signals.shape[1:])).reshape(n * m, *self.shape)
            chi, eta, _ = self.profile(sig, start, np.repeat(d, m, axis=0), np.repeat(c, m, axis=0))
            out[:, cols] = chi.reshape(n, m)
            return eta.reshape(n, m, nz)

        eta_cold = solve(cold, None)
        if warm.size:
            below = np.searchsorted(cold, warm, side="right") - 1
            solve(warm, eta_cold[:, below].reshape(-1, nz))
        return out

    def _mu(self, templates: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Expected counts sum_z a_z N_z (n, bins); structured: a_S S + a_B @ B, the backgrounds being shared."""
        if self.structured:
            return scale[:, :1] * templates[:, 0, :] + scale[:, 1:] @ self.backgrounds
        return np.matmul(scale[:, None, :], templates)[:, 0, :]

    @staticmethod
    def _derivatives(t: np.ndarray, x: np.ndarray, d: np.ndarray):
        """Gradient and Hessian of the Poisson deviance in the factors a (without the pull terms)."""
        # mu >= 1e-300 as in the compiled kernel: a bin with nothing expected nor seen (factors on their bound)
        mu = np.maximum(np.matmul(x[:, None, :], t)[:, 0, :], 1e-300)
        ratio = d / mu
        grad = 2.0 * np.matmul(t, (1.0 - ratio)[..., None])[..., 0]
        return grad, 2.0 * np.matmul(t * (ratio / mu)[:, None, :], np.swapaxes(t, 1, 2))

    def fit(self, signal) -> FitResult:
        batch, _ = _as_batch(self._signal(signal), self.shape)
        chi, eta, _ = self.profile(batch[:1])
        tpl = self._templates(batch[:1])
        fitted = {z: ((1.0 + eta[0, i]) * tpl[0, i]).reshape(self.shape) for i, z in enumerate(self.components)}
        return FitResult(float(chi[0]), {f"eta_{z}": float(eta[0, i]) for i, z in enumerate(self.components)}, fitted, self.n_bins)


class GaussianChi2(ReplicaCost):
    """Gaussian chi^2 with normalisation pulls and shape nuisances (LAr, AC22).

    ``shape_deltas``: name -> (component, Delta_plus, Delta_minus or None) relative per-bin variations.
    ``sigma``: per-bin statistical sigma (fixed), ``sigmas``: component -> relative pull width (None = free).
    """

    def __init__(self, name: str, observed, backgrounds: Mapping, sigmas: Mapping, sigma, shape_deltas: Mapping):
        self._set_data(name, observed, backgrounds)
        self.w = 1.0 / np.asarray(sigma, float).ravel() ** 2
        self.systematics = list(shape_deltas)
        self.sys_component = [self.components.index(shape_deltas[s][0]) for s in self.systematics]
        self.delta_plus = np.stack([np.asarray(shape_deltas[s][1], float).ravel() for s in self.systematics]) if self.systematics else np.zeros((0, self.n_bins))
        self.delta_minus = np.stack(
            [np.asarray(shape_deltas[s][2] if shape_deltas[s][2] is not None else shape_deltas[s][1], float).ravel() for s in self.systematics]
        ) if self.systematics else np.zeros((0, self.n_bins))
        self.two_sided = np.array([shape_deltas[s][2] is not None for s in self.systematics], dtype=bool)
        prior = [0.0 if sigmas[z] is None else 1.0 / sigmas[z] ** 2 for z in self.components] + [1.0] * len(self.systematics)
        self.prior = np.array(prior)
        self.pull_sigmas = np.where(self.prior > 0, 1.0 / np.sqrt(np.where(self.prior > 0, self.prior, 1.0)), np.inf)
        self.sigma = 1.0 / np.sqrt(self.w)  # per-bin statistical sigma (n_bins,)
        # branches: for a two-sided systematic, slope +Delta^+ (eps >= 0), -Delta^- (eps <= 0) or eps = 0;
        # a one-sided (single-file) systematic is linear: eta_sys = eps * Delta for both signs.
        choices = [(1, -1, 0) if ts else (2,) for ts in self.two_sided]
        self.branches = np.array(list(itertools.product(*choices)), dtype=int).reshape(-1, len(self.systematics))

        self._precompute()

    def _multipliers(self) -> np.ndarray:
        """m[branch, column, bin]: 1 for a normalisation, the branch's slope for a shape systematic."""
        nz, ns = len(self.components), len(self.systematics)
        nb = self.branches.shape[0]
        m = np.zeros((nb, nz + ns, self.n_bins))
        m[:, :nz, :] = 1.0
        for l in range(ns):
            b = self.branches[:, l][:, None]
            m[:, nz + l, :] = np.where(b == 1, self.delta_plus[l], 0.0) + np.where(b == -1, -self.delta_minus[l], 0.0) + np.where(
                b == 2, self.delta_plus[l], 0.0
            )
        return m

    # Profiling every sign branch by its own normal equations costs 27 solves of 9 x 9 per point.  Instead the
    # problem is written once over the *union* of columns: every normalisation and one-sided systematic ("U"),
    # and each two-sided systematic twice, with slope +Delta^+ and with -Delta^- ("E").  A column is base * slope
    # with base the signal S or a fixed background, so the Gram matrix is const + S @ L + S^2 @ Q (three matrix
    # products per batch).  U is eliminated once per point (Schur complement); a branch then picks at most one E
    # column per two-sided systematic and solves a (number of two-sided systematics)^2 system, by vectorised
    # elimination over every point and branch at once.  Exact: the same normal equations, reordered.
    def _precompute(self) -> None:
        nz = len(self.components)
        self.mult = self._multipliers()
        self.base = np.array(list(range(nz)) + self.sys_component)  # base template of each parameter's column
        cols = [(z, z, np.ones(self.n_bins), 0) for z in range(nz)]  # (parameter, base, slope, sign)
        for l in range(len(self.systematics)):
            base = self.sys_component[l]
            if self.two_sided[l]:
                cols += [(nz + l, base, self.delta_plus[l], 1), (nz + l, base, -self.delta_minus[l], -1)]
            else:
                cols.append((nz + l, base, self.delta_plus[l], 0))
        cols.sort(key=lambda col: col[1] != 0)  # signal-based columns first: the S-dependent blocks are contiguous
        n_sig = sum(col[1] == 0 for col in cols)
        self._n_sig, self._n_col = n_sig, len(cols)
        self._col_param = np.array([col[0] for col in cols])
        self._col_sign = np.array([col[3] for col in cols])
        slope = np.stack([col[2] for col in cols])  # (columns, bins)
        w = self.w
        c = self.observed.ravel() - self.backgrounds.sum(axis=0)  # residual at zero signal, nominal backgrounds
        fixed = slope[n_sig:] * self.backgrounds[[col[1] - 1 for col in cols[n_sig:]]]  # background-based columns
        sig = slope[:n_sig]
        prior = self.prior[self._col_param] + 1e-12
        # S-dependent pieces: G_jk = sum_b w m_j m_k S^2 (both signal), sum_b w m_j S x_k (one), rhs_j = sum w m_j S c
        self._q = (w * sig[:, None, :] * sig[None, :, :]).reshape(n_sig * n_sig, -1).T.copy()
        self._l = (w * sig[:, None, :] * fixed[None, :, :]).reshape(n_sig * len(fixed), -1).T.copy()
        self._h_sig = (w * c * sig).T.copy()
        self._sig_w, self._fixed_w = (w * sig).T.copy(), (w * fixed).T.copy()  # replicas: rhs = (S * c) @ sig_w
        self._prior_col = self.prior[self._col_param]
        self._h_sig_const = np.where(self._col_param[:n_sig] == 0, self.prior[0], 0.0)  # pull centre of a = 1
        self._prior_sig = np.diag(prior[:n_sig])
        self._g_fixed = (fixed * w) @ fixed.T + np.diag(prior[n_sig:])
        self._h_fixed = fixed @ (w * c)
        self._r0w = float(np.sum(w * c * c)) + self.prior[0]
        self._c = c
        # Schur partition, and per branch the E column chosen for each two-sided systematic (or a padding slot)
        self._u = np.flatnonzero(self._col_sign == 0)
        self._e = np.flatnonzero(self._col_sign != 0)
        two = np.flatnonzero(self.two_sided)
        n_e = self._e.size
        sel = np.empty((self.branches.shape[0], two.size), dtype=int)
        for t, l in enumerate(two):
            for k, b in enumerate(self.branches[:, l]):
                hit = [i for i, j in enumerate(self._e) if self._col_param[j] == nz + l and self._col_sign[j] == b]
                sel[k, t] = hit[0] if hit else n_e + t  # padding slot t: identity row, zero right-hand side
        self._sel = sel
        self._sel_sign = np.concatenate([self._col_sign[self._e], np.zeros(two.size, int)])[sel]
        # the compiled profile (stats/compiled.py): the column arrays, each branch's signed columns (-1: a padding
        # slot, eps = 0) and the nominal pull centres (a = 1, every other parameter 0)
        self._sig_slope, self._fixed_cols = np.ascontiguousarray(sig), np.ascontiguousarray(fixed)
        self._pick = np.where(sel < n_e, sel, -1)
        self._nominal_centre = (np.arange(self.prior.size) == 0).astype(float)[None, :]

    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` replicated data sets (n, n_bins) with this chi^2's own fluctuations: D_b = expected_b + sigma_b z,
        z ~ Normal(0, 1), sigma_b the fixed per-bin sigma of the chi^2 (it already holds the variance of any
        subtracted sample, e.g. a steady-state background measured off-beam)."""
        return np.asarray(expected, float)[None, :] + self.sigma[None, :] * rng.standard_normal((n, self.n_bins))

    def _gram(self, s: np.ndarray, c: np.ndarray | None = None, centres: np.ndarray | None = None):
        """Gram matrix (n, columns, columns) and right-hand side (n, columns) over the union of columns.

        ``c`` (n, bins): per-row residual at zero signal (replicas), ``centres`` (n, parameters): pull centres
        theta_0 (a for the signal); a pull prior (theta - theta_0)^2 adds prior * theta_0 to the right-hand side.
        """
        n, ns = s.shape[0], self._n_sig
        g = np.empty((n, self._n_col, self._n_col))
        g[:, :ns, :ns] = ((s * s) @ self._q).reshape(n, ns, ns) + self._prior_sig
        lin = (s @ self._l).reshape(n, ns, -1)
        g[:, :ns, ns:] = lin
        g[:, ns:, :ns] = np.swapaxes(lin, 1, 2)
        g[:, ns:, ns:] = self._g_fixed
        h = np.empty((n, self._n_col))
        if c is None:
            h[:, :ns] = s @ self._h_sig + self._h_sig_const
            h[:, ns:] = self._h_fixed
        else:
            h[:, :ns] = (s * c) @ self._sig_w
            h[:, ns:] = c @ self._fixed_w
            h += self._prior_col * centres[:, self._col_param]
        return g, h

    def profile(self, signal: np.ndarray, observed: np.ndarray | None = None, centres: np.ndarray | None = None,
                gram_sig: np.ndarray | None = None):
        """(chi^2_min, theta_hat with eta_signal = a - 1, chosen branch) for a batch of signals; ``observed``
        (n, bins) and ``centres`` (n, parameters) replace the data and the pull centres row by row (replicas).

        The mathematics.  Write theta for all parameters (a = 1 + eta_signal, the background eta_z, the
        systematics eps_l) and X for the "union columns" (see ``_precompute``): column j is base_j * slope_j, so
        on a sign branch -- which fixes, for every two-sided systematic, which of its two columns is used (or
        neither, eps = 0) -- the fitted excess over the nominal backgrounds is X_A theta_A for the branch's
        active columns A, and chi^2(theta) = |c - X_A theta_A|^2_W + |theta - theta_0|^2_P is quadratic:
        the minimum solves the normal equations  G_AA theta_A = rhs_A  with the Gram matrix G = X'WX + P and
        rhs = X'Wc + P theta_0, at chi^2 = c'Wc + theta_0'P theta_0 - rhs_A' theta_A.  A branch is admissible
        when its two-sided eps have the branch's signs; the profiled chi^2 is the smallest admissible one.

        Solving.  The columns that every branch uses ("free": normalisations and one-sided systematics) are
        eliminated once per row (Schur complement), leaving per branch a (number of two-sided systematics)^2
        system over the "signed" columns, solved for every row and branch at once by vectorised elimination.

        ``gram_sig`` (n, signal columns, columns): the signal columns' rows of G without their prior, when the
        caller formed them from a basis (``linear_factors``); only the compiled path uses them (numpy recomputes).
        """
        n = signal.shape[0]
        s = signal.reshape(n, -1)
        residual, centre, r0w = self._replica_data(n, observed, centres)
        if self._compile(n, observed is not None):
            return compiled.gaussian_profile(self, s, self._c[None] if residual is None else residual,
                                             self._nominal_centre if centre is None else centre, gram_sig)
        gram, rhs = self._gram(s, residual, centre)
        col_scale = _jacobi_scale(gram, rhs)
        free, signed, branch_cols = self._u, self._e, self._sel
        n_signed, n_two = signed.size, branch_cols.shape[1]
        g_fs = gram[:, free][:, :, signed]
        # free-column solutions of G_ff [y | z] = [G_fs | rhs_f]: theta_f = z - y theta_s
        y_z = np.linalg.solve(gram[:, free][:, :, free], np.concatenate([g_fs, rhs[:, free, None]], axis=2))
        schur_rhs = np.zeros((n, n_signed + n_two))
        schur_rhs[:, :n_signed] = rhs[:, signed] - np.einsum("nfs,nf->ns", g_fs, y_z[:, :, n_signed])
        eps = _solve_spd(self._branch_blocks(gram, g_fs, y_z[:, :, :n_signed]), schur_rhs[:, branch_cols])
        # chi^2 at each branch's minimum: c'Wc + theta_0'P theta_0 - rhs'theta (both blocks)
        chi = r0w - np.einsum("nf,nf->n", rhs[:, free], y_z[:, :, n_signed])[:, None] \
            - np.einsum("nkt,nkt->nk", schur_rhs[:, branch_cols], eps)
        best, eps_best = self._admissible_best(chi, eps, col_scale)
        theta_cols = np.empty((n, self._n_col))
        theta_cols[:, signed] = eps_best[:, :n_signed]
        theta_cols[:, free] = y_z[:, :, n_signed] - np.einsum("nfs,ns->nf", y_z[:, :, :n_signed], eps_best[:, :n_signed])
        return self._finish(s, theta_cols / col_scale, best, residual, centre)

    def _replica_data(self, n: int, observed, centres):
        """(residual c = D - sum B per row or None, pull centres theta_0 with a_0 = 1 or None, c'Wc + theta_0'P
        theta_0 per row or the observed constant)."""
        if observed is None:
            return None, None, self._r0w
        residual = observed - self.backgrounds.sum(axis=0)
        centre = np.zeros((n, self.prior.size)) if centres is None else np.array(centres, dtype=float)
        centre[:, 0] += 1.0  # the signal parameter is a = 1 + eta_signal
        return residual, centre, ((residual * residual) @ self.w + (centre * centre) @ self.prior)[:, None]

    def _admissible_best(self, chi: np.ndarray, eps: np.ndarray, col_scale: np.ndarray):
        """(best admissible branch (n,), its signed-column solution (n, signed + padding), still scaled).

        ``chi`` (n, branches); ``eps`` (n, branches, two-sided) the scaled solutions in the branch's slots."""
        n, n_two = chi.shape[0], self._sel.shape[1]
        scale = np.concatenate([col_scale[:, self._e], np.ones((n, n_two))], axis=1)[:, self._sel]
        admissible = np.all(self._sel_sign[None] * eps / scale >= -1e-12, axis=2)
        best = np.argmin(np.where(admissible, chi, np.inf), axis=1)
        out = np.zeros((n, self._e.size + n_two))
        np.put_along_axis(out, self._sel[best], eps[np.arange(n), best], axis=1)
        return best, out

    def _finish(self, s, theta_cols, best, residual, centre):
        """(exact chi^2, theta per parameter with eta_signal, branch) from the union-column solution."""
        theta = np.zeros((s.shape[0], self.prior.size))
        for j, p in enumerate(self._col_param):  # the two columns of a systematic are never both non-zero
            theta[:, p] += theta_cols[:, j]
        # recompute the chosen branch's chi^2 from its residuals (exact; the shortcut loses digits at large chi^2)
        chi = self._branch_chi2(s, theta, best, residual, centre)
        theta[:, 0] -= 1.0  # report eta_signal
        return chi, theta, best

    def linear_factors(self, basis: np.ndarray) -> dict:
        """Gram products of a signal basis B (K, *shape): signal column j of the signal c @ B is
        sum_k c_k slope_j B_k, so its Gram rows are quadratic in c -- G_jl = sum_kk' c_k c_k' Q[k, k', j, l] with
        the other signal columns and sum_k c_k L[k, j, m] with the background columns m.  Q and L cost one pass
        over the bins per basis instead of per signal (the per-row Gram products are most of the row's cost)."""
        b = np.asarray(basis, dtype=float).reshape(-1, self.n_bins)
        x = b[:, None, :] * self._sig_slope[None]  # (K, n_sig, bins): the signal columns of each basis template
        xw = x * self.w
        return {"q": np.einsum("kjb,lmb->kljm", xw, x), "l": np.einsum("kjb,mb->kjm", xw, self._fixed_cols)}

    def _gram_sig(self, coefficients: np.ndarray, factors: dict) -> np.ndarray:
        """The signal rows (n, n_sig, n_col) of the Gram matrix (no prior) for signals coefficients @ basis."""
        c = np.asarray(coefficients, dtype=float)
        n, k = c.shape
        q, lin = factors["q"], factors["l"]
        ns = q.shape[2]
        g_ss = ((c[:, :, None] * c[:, None, :]).reshape(n, k * k) @ q.reshape(k * k, -1)).reshape(n, ns, ns)
        return np.concatenate([g_ss, (c @ lin.reshape(k, -1)).reshape(n, ns, -1)], axis=2)

    def profile_linear(self, coefficients: np.ndarray, basis: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        n = np.shape(coefficients)[0]
        if not self._compile(n, False):
            return super().profile_linear(coefficients, basis, start)
        gram = self._gram_sig(coefficients, self.linear_factors(basis))
        return self.profile(linear_signals(coefficients, basis), gram_sig=gram)[0], None

    def replicas_linear(self, coefficients: np.ndarray, basis: np.ndarray, observed: np.ndarray,
                        centres: np.ndarray | None = None, factors=None) -> np.ndarray:
        n = np.shape(coefficients)[0]
        if not self._compile(n, True):
            return super().replicas_linear(coefficients, basis, observed, centres)
        f = self.linear_factors(basis) if factors is None else factors
        d = np.asarray(observed, dtype=float).reshape(n, self.n_bins)
        c = np.zeros((n, self.pull_sigmas.size)) if centres is None else np.asarray(centres, dtype=float)
        if c.shape != (n, self.pull_sigmas.size):
            raise InputError(f"pull centres have shape {c.shape}, expected ({n}, {self.pull_sigmas.size})")
        return self.profile(linear_signals(coefficients, basis), d, c, gram_sig=self._gram_sig(coefficients, f))[0]

    def grid_factors(self, signals: np.ndarray) -> dict:
        """The template side of ``replicas_grid`` (k templates): scaled Gram matrices, G_ff^-1, y = G_ff^-1 G_fs
        and each branch's inverse of its Schur block -- the elimination of ``profile``, once per template."""
        k = signals.shape[0]
        s = np.asarray(signals, float).reshape(k, -1)
        gram, rhs = self._gram(s)
        col_scale = _jacobi_scale(gram, rhs)  # the observed data's rhs, unused: replicas bring their own
        free, signed = self._u, self._e
        ff_inv = np.linalg.inv(gram[:, free][:, :, free])
        g_fs = gram[:, free][:, :, signed]
        y = ff_inv @ g_fs
        branch_inv = np.linalg.inv(self._branch_blocks(gram, g_fs, y))  # (k, branches, two-sided, two-sided)
        return {"s": s, "col_scale": col_scale, "ff_inv": ff_inv, "g_fs": g_fs, "y": y, "branch_inv": branch_inv}

    def _branch_blocks(self, gram: np.ndarray, g_fs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each branch's block of the Schur complement of the free columns, G_ss - G_fs' y (y = G_ff^-1 G_fs):
        (n, branches, two-sided, two-sided); a branch with eps_l = 0 picks padding slot l (identity row)."""
        signed, branch_cols = self._e, self._sel
        n_signed, n_two = signed.size, branch_cols.shape[1]
        schur = np.zeros((gram.shape[0], n_signed + n_two, n_signed + n_two))
        schur[:, :n_signed, :n_signed] = gram[:, signed][:, :, signed] - np.swapaxes(g_fs, 1, 2) @ y
        pad = np.arange(n_signed, n_signed + n_two)
        schur[:, pad, pad] = 1.0
        return schur[:, branch_cols[:, :, None], branch_cols[:, None, :]]

    def replicas_grid(self, signals: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None,
                      factors: dict | None = None, exact: bool = False) -> np.ndarray:
        """Profiled chi^2 (n, k) of every replica (observed (n, bins), centres (n, parameters)) at every signal
        template (k, *shape): ``replicas`` of all n k pairs, computed faster.

        The Gram matrix G = X'WX + P depends on the signal only, not on the replica's data: the elimination of
        ``profile`` (the free block G_ff, the Schur complement, each branch's signed block) is done once per
        template (``grid_factors``; pass them as ``factors`` to reuse them across calls), and every replica then
        costs matrix-vector products (batched as one matrix product per template and branch).  Same normal
        equations as ``profile``; agrees with it to rounding (tests/test_fc_speed.py); ``exact`` recomputes the
        chosen branch's chi^2 from its residuals as ``profile`` does (slower; the shortcut differs by < 1e-10 here).
        """
        f = self.grid_factors(signals) if factors is None else factors
        s, col_scale, ff_inv, g_fs, y, branch_inv = (f[key] for key in ("s", "col_scale", "ff_inv", "g_fs", "y", "branch_inv"))
        k = s.shape[0]
        d = np.asarray(observed, dtype=float).reshape(-1, self.n_bins)
        n = d.shape[0]
        residual, centre, r0w = self._replica_data(n, d, centres)
        if not exact and self._compile(n * k, True):
            return compiled.gaussian_grid(self, f, residual, centre, r0w[:, 0])
        free, signed, branch_cols = self._u, self._e, self._sel
        n_signed, n_two = signed.size, branch_cols.shape[1]
        # rhs (k, n, columns) = X'Wc + P theta_0, scaled: signal columns per template, the others per replica
        n_sig, n_col = self._n_sig, self._n_col
        rhs = np.empty((k, n, n_col))
        for q in range(n_sig):
            rhs[:, :, q] = s @ (residual * self._sig_w[:, q]).T
        rhs[:, :, n_sig:] = (residual @ self._fixed_w)[None]
        rhs += (self._prior_col * centre[:, self._col_param])[None]
        rhs /= col_scale[:, None, :]
        z = rhs[:, :, free] @ np.swapaxes(ff_inv, 1, 2)  # (k, n, free): G_ff^-1 rhs_f (G_ff symmetric)
        schur_rhs = np.zeros((k, n, n_signed + n_two))
        schur_rhs[:, :, :n_signed] = rhs[:, :, signed] - z @ g_fs
        srs = np.moveaxis(schur_rhs[:, :, branch_cols], 2, 1)  # (k, branches, n, two)
        eps = srs @ np.swapaxes(branch_inv, 2, 3)
        chi = (r0w[None, :, 0] - np.einsum("knf,knf->kn", rhs[:, :, free], z))[:, :, None] \
            - np.moveaxis(np.einsum("kbnt,kbnt->kbn", srs, eps), 1, 2)  # (k, n, branches)
        # rows in replica-major order (row r k + j), as ``replicas`` of the repeated arrays
        to_rows = lambda a: np.swapaxes(a, 0, 1).reshape(n * k, *a.shape[2:])  # noqa: E731
        scale_rows = to_rows(np.broadcast_to(col_scale[:, None, :], (k, n, n_col)))
        best, eps_best = self._admissible_best(to_rows(chi), to_rows(np.moveaxis(eps, 1, 2)), scale_rows)
        if exact:
            theta_cols = np.empty((n * k, n_col))
            theta_cols[:, signed] = eps_best[:, :n_signed]
            eps_k = np.swapaxes(eps_best[:, :n_signed].reshape(n, k, n_signed), 0, 1)
            theta_cols[:, free] = to_rows(z - eps_k @ np.swapaxes(y, 1, 2))
            s_rows = to_rows(np.broadcast_to(s[:, None, :], (k, n, s.shape[1])))
            rows = lambda a: np.repeat(a, k, axis=0)  # noqa: E731
            return self._finish(s_rows, theta_cols / scale_rows, best, rows(residual), rows(centre))[0].reshape(n, k)
        return to_rows(chi)[np.arange(n * k), best].reshape(n, k)

    def _branch_chi2(self, s: np.ndarray, theta: np.ndarray, branches: np.ndarray, c=None, centre=None) -> np.ndarray:
        """chi^2 (n,) from the residuals for parameters theta (n, p; theta[:, 0] = a = 1 + eta_signal) on the sign
        branch of each row: per branch, the fitted excess is (theta_S @ m_S) * S + theta_B @ (m_B * B), two matrix
        products over the rows of that branch (at most one per branch present)."""
        if not hasattr(self, "_mult_sig"):
            on_signal = self.base == 0
            self._sig_params, self._bkg_params = np.flatnonzero(on_signal), np.flatnonzero(~on_signal)
            self._mult_sig = self.mult[:, on_signal, :]
            self._mult_bkg = self.mult[:, ~on_signal, :] * self.backgrounds[self.base[~on_signal] - 1][None]
        excess = np.empty_like(s)
        for b in np.unique(branches):
            rows = np.flatnonzero(branches == b)
            t = theta[rows]
            excess[rows] = (t[:, self._sig_params] @ self._mult_sig[b]) * s[rows] + t[:, self._bkg_params] @ self._mult_bkg[b]
        resid = (self._c[None, :] if c is None else c) - excess
        pulls = theta.copy()
        if centre is None:
            pulls[:, 0] -= 1.0
        else:
            pulls -= centre
        return resid**2 @ self.w + (pulls**2) @ self.prior

    def fit(self, signal) -> FitResult:
        batch, _ = _as_batch(self._signal(signal), self.shape)
        chi, theta, branch = self.profile(batch[:1])
        theta, m = theta[0], self.mult[branch[0]]
        templates = np.vstack([batch[0].ravel()[None, :], self.backgrounds])
        nz = len(self.components)
        fitted = {}
        for i, z in enumerate(self.components):
            # (1 + eta_z + sum_l eta^sys_zl) N_z, with eta^sys = theta_l * slope_l of the chosen branch
            factor = 1.0 + theta[i] + sum(theta[j] * m[j] for j in range(nz, theta.size) if self.base[j] == i)
            fitted[z] = (factor * templates[i]).reshape(self.shape)
        nuis = {f"eta_{z}": float(theta[i]) for i, z in enumerate(self.components)}
        nuis.update({f"eps_{s}": float(theta[nz + l]) for l, s in enumerate(self.systematics)})
        return FitResult(float(chi[0]), nuis, fitted, self.n_bins)


def _jacobi_scale(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Scale the normal equations symmetrically by sqrt(diag G) in place (a huge signal makes its columns ~1e20
    larger than the pulls); returns the scale (n, columns): the scaled solution is theta * scale."""
    scale = np.sqrt(np.einsum("nii->ni", gram))
    gram /= scale[:, :, None] * scale[:, None, :]
    rhs /= scale
    return scale


def linear_signals(coefficients: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Signals (n, *shape) = coefficients (n, K) @ basis (K, *shape)."""
    basis = np.asarray(basis, dtype=float)
    out = np.asarray(coefficients, dtype=float) @ basis.reshape(basis.shape[0], -1)
    return out.reshape(-1, *basis.shape[1:])


def _dlnd(d: np.ndarray) -> np.ndarray | float:
    """Constant part of the Poisson deviance, sum[D ln D - D] over the last axis (0 ln 0 = 0)."""
    return np.sum(np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0), axis=-1) - d.sum(axis=-1)


def _dlnd_rows(d: np.ndarray) -> np.ndarray:
    """``_dlnd`` per row (n, bins) -> (n,); a row equal to the one before it (a replica's points along a line)
    reuses its value instead of taking its logarithms again."""
    new = np.ones(d.shape[0], dtype=bool)
    new[1:] = np.any(d[1:] != d[:-1], axis=1)
    return _dlnd(d[new])[np.cumsum(new) - 1]


def _solve_spd(m: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Solve symmetric positive-definite systems m x = r over leading batch axes (m: (..., k, k), k small).

    Gaussian elimination without pivoting (stable for SPD), as k^2 whole-array operations: for the tiny systems
    of the sign branches this is much faster than one LAPACK call per matrix.
    """
    m = m.copy()
    r = r.copy()
    k = m.shape[-1]
    for i in range(k):
        for j in range(i + 1, k):
            f = m[..., j, i] / m[..., i, i]
            m[..., j, i:] -= f[..., None] * m[..., i, i:]
            r[..., j] -= f * r[..., i]
    x = np.empty_like(r)
    for i in reversed(range(k)):
        x[..., i] = (r[..., i] - np.sum(m[..., i, i + 1:] * x[..., i + 1:], axis=-1)) / m[..., i, i]
    return x
