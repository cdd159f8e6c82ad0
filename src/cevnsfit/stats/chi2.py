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

Replicated experiments (toys, :mod:`cevnsfit.stats.toys`) use the same objects: ``sample`` draws data as the
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
        self.backgrounds = np.stack([np.asarray(backgrounds[z], float).ravel() for z in backgrounds])

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


class PoissonChi2(BinnedCost):
    """Poisson chi^2 with Gaussian pulls on the component normalisations (CsI, AC22).

    ``backgrounds``: component -> template; ``sigmas``: component -> relative pull width (``None`` = free
    normalisation, no pull term).  The signal component is called ``"cevns"``.
    """

    def __init__(self, name: str, observed: np.ndarray, backgrounds: Mapping, sigmas: Mapping, tol: float = 1e-9):
        self._set_data(name, observed, backgrounds)
        self.inv_var = np.array([0.0 if sigmas[z] is None else 1.0 / sigmas[z] ** 2 for z in self.components])
        self.pull_sigmas = np.array([np.inf if sigmas[z] is None else float(sigmas[z]) for z in self.components])
        self.tol = tol
        d = self.observed.ravel()
        self._d = d
        self._dlnd = _dlnd(d)

    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` replicated data sets (n, n_bins) of the counts this chi^2 assumes: D_b ~ Poisson(expected_b)."""
        return rng.poisson(np.asarray(expected, float), size=(n, self.n_bins)).astype(float)

    def _templates(self, signal: np.ndarray) -> np.ndarray:
        n = signal.shape[0]
        return np.concatenate([signal.reshape(n, 1, -1), np.broadcast_to(self.backgrounds, (n, *self.backgrounds.shape))], axis=1)

    def _chi2(self, templates: np.ndarray, scale: np.ndarray, d=None, dlnd=None, centre=1.0) -> np.ndarray:
        """chi^2 at normalisation factors ``scale`` = 1 + eta (kept as such: eta -> -1 loses digits); ``d``,
        ``dlnd`` and ``centre`` (= 1 + pull centre) per row for replicas, else the observed data."""
        if d is None:
            d, dlnd = self._d, self._dlnd
        mu = np.matmul(scale[:, None, :], templates)[:, 0, :]
        safe = np.maximum(mu, 1e-300)
        dev = 2.0 * (mu.sum(axis=1) - (d * np.log(safe)).sum(axis=1) + dlnd)
        return dev + np.sum((scale - centre) ** 2 * self.inv_var, axis=1)

    def profile(self, signal: np.ndarray, eta0: np.ndarray | None = None, observed: np.ndarray | None = None,
                centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chi^2_min, eta_hat, templates) for a batch of signals (n, n_E, n_t); ``eta0`` warm-starts Newton.

        Newton iterates on the factors a_z = 1 + eta_z > 0.  A signal far above the data (absurd couplings) is
        profiled towards a_cevns -> 0 at the price of its pull: such points start where the scaled signal matches
        the observed excess, so that Newton needs a few steps.  ``observed`` (n, n_bins) and ``centres`` (n, n_z)
        replace the data and the pull centres row by row (replicated experiments; see ``replicas``).
        """
        tpl = self._templates(signal)
        n, nz, _ = tpl.shape
        if observed is None:
            d, dlnd, ctr = self._d[None, :], np.full(n, self._dlnd), np.ones((1, nz))
            row = lambda arr, i: arr  # noqa: E731 -- shared by every row
        else:
            d, dlnd = observed, _dlnd(observed)
            ctr = 1.0 + (np.zeros((n, nz)) if centres is None else centres)
            row = lambda arr, i: arr[i]  # noqa: E731
        d_tot = d.sum(axis=1)
        if eta0 is None:
            a = np.ones((n, nz))
            s_tot = tpl[:, 0, :].sum(axis=1)
            excess = np.maximum(d_tot - self.backgrounds.sum(), 1.0)
            huge = s_tot > 10.0 * d_tot
            a[huge, 0] = np.broadcast_to(excess, (n,))[huge] / s_tot[huge]
        else:
            a = 1.0 + np.array(eta0, dtype=float).reshape(n, nz)
        chi = self._chi2(tpl, a, d, dlnd, ctr)
        bad = ~np.isfinite(chi)
        if bad.any():  # a warm start outside the domain: restart those from the nominal normalisations
            a[bad] = 1.0
            chi[bad] = self._chi2(tpl[bad], a[bad], row(d, bad), dlnd[bad], row(ctr, bad))
        diag = np.arange(nz)
        active = np.ones(n, dtype=bool)
        for _ in range(60):
            idx = np.flatnonzero(active)
            sel = slice(None) if idx.size == n else idx  # views while every row is active (no copies)
            t, x, c0 = tpl[sel], a[sel], chi[sel]
            di, ci, dlndi = row(d, sel), row(ctr, sel), dlnd[sel]
            mu = np.matmul(x[:, None, :], t)[:, 0, :]
            ratio = di / mu
            grad = 2.0 * np.matmul(t, (1.0 - ratio)[..., None])[..., 0] + 2.0 * (x - ci) * self.inv_var
            hess = 2.0 * np.matmul(t * (ratio / mu)[:, None, :], np.swapaxes(t, 1, 2))
            hess[:, diag, diag] += 2.0 * self.inv_var + 1e-300
            step = -np.linalg.solve(hess, grad[..., None])[..., 0]
            # Newton decrement = predicted chi^2 decrease; the floor follows the resolution of large chi^2
            decrement = -0.5 * np.sum(grad * step, axis=1)
            done = decrement < np.maximum(self.tol, 1e-13 * c0)
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
            moved = np.isfinite(new_chi)
            a[idx[moved]] = x[moved] + lam[moved, None] * step[moved]
            chi[idx[moved]] = new_chi[moved]
            active[idx[done | ~moved]] = False
            if not active.any():
                break
        return chi, a - 1.0, tpl

    def fit(self, signal) -> FitResult:
        batch, _ = _as_batch(self._signal(signal), self.shape)
        chi, eta, tpl = self.profile(batch[:1])
        fitted = {z: ((1.0 + eta[0, i]) * tpl[0, i]).reshape(self.shape) for i, z in enumerate(self.components)}
        return FitResult(float(chi[0]), {f"eta_{z}": float(eta[0, i]) for i, z in enumerate(self.components)}, fitted, self.n_bins)


class GaussianChi2(BinnedCost):
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

    def profile(self, signal: np.ndarray, observed: np.ndarray | None = None, centres: np.ndarray | None = None):
        """(chi^2_min, theta_hat with eta_signal = a - 1, chosen branch) for a batch of signals; ``observed``
        (n, bins) and ``centres`` (n, parameters) replace the data and the pull centres row by row (replicas)."""
        n = signal.shape[0]
        s = signal.reshape(n, -1)
        if observed is None:
            c = centre = None
            r0w = self._r0w
        else:
            c = observed - self.backgrounds.sum(axis=0)
            centre = np.zeros((n, self.prior.size)) if centres is None else np.array(centres, dtype=float)
            centre[:, 0] += 1.0  # the signal parameter is a = 1 + eta_signal
            r0w = ((c * c) @ self.w + (centre * centre) @ self.prior)[:, None]
        g, h = self._gram(s, c, centre)
        # symmetric diagonal (Jacobi) scaling: a huge signal makes its columns ~1e20 larger than the pulls
        d = np.sqrt(np.einsum("nii->ni", g))
        g /= d[:, :, None] * d[:, None, :]
        h /= d
        u, e, sel = self._u, self._e, self._sel
        n_e, n_two = e.size, sel.shape[1]
        g_ue = g[:, u][:, :, e]
        x = np.linalg.solve(g[:, u][:, :, u], np.concatenate([g_ue, h[:, u, None]], axis=2))  # (n, U, E + 1)
        schur = np.zeros((n, n_e + n_two, n_e + n_two))
        schur[:, :n_e, :n_e] = g[:, e][:, :, e] - np.swapaxes(g_ue, 1, 2) @ x[:, :, :n_e]
        schur[:, np.arange(n_e, n_e + n_two), np.arange(n_e, n_e + n_two)] = 1.0
        t = np.zeros((n, n_e + n_two))
        t[:, :n_e] = h[:, e] - np.einsum("nue,nu->ne", g_ue, x[:, :, n_e])
        eps = _solve_spd(schur[:, sel[:, :, None], sel[:, None, :]], t[:, sel])  # (n, branches, two-sided), scaled
        # chi^2 at the minimum of each branch's quadratic form: r0'Wr0 + pull centre - rhs'theta
        chi = r0w - np.einsum("nu,nu->n", h[:, u], x[:, :, n_e])[:, None] - np.einsum("nkt,nkt->nk", t[:, sel], eps)
        scale = np.concatenate([d[:, e], np.ones((n, n_two))], axis=1)[:, sel]
        admissible = np.all(self._sel_sign[None] * eps / scale >= -1e-12, axis=2)
        best = np.argmin(np.where(admissible, chi, np.inf), axis=1)
        idx = np.arange(n)
        theta_e = np.zeros((n, n_e + n_two))
        np.put_along_axis(theta_e, sel[best], eps[idx, best], axis=1)
        theta_cols = np.empty((n, self._n_col))
        theta_cols[:, e] = theta_e[:, :n_e]
        theta_cols[:, u] = x[:, :, n_e] - np.einsum("nue,ne->nu", x[:, :, :n_e], theta_e[:, :n_e])
        theta_cols /= d
        theta_best = np.zeros((n, self.prior.size))
        for j, p in enumerate(self._col_param):  # the two E columns of a systematic are never both non-zero
            theta_best[:, p] += theta_cols[:, j]
        # recompute the chosen branch's chi^2 from its residuals (exact; the shortcut loses digits at large chi^2)
        chi_best = self._branch_chi2(s, theta_best, best, c, centre)
        out = theta_best.copy()
        out[:, 0] -= 1.0  # report eta_signal
        return chi_best, out, best

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


def _dlnd(d: np.ndarray) -> np.ndarray | float:
    """Constant part of the Poisson deviance, sum[D ln D - D] over the last axis (0 ln 0 = 0)."""
    return np.sum(np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0), axis=-1) - d.sum(axis=-1)


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
