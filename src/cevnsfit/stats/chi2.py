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
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
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


class Cost:
    """Base class: ``name`` identifies the data set in a :class:`SumCost`; costs add."""

    name: str = "cost"
    n_bins: int = 0

    def __add__(self, other: "Cost") -> "SumCost":
        return SumCost([self, other])

    def _signal(self, signal):
        return signal[self.name] if isinstance(signal, Mapping) else signal


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


class PoissonChi2(Cost):
    """Poisson chi^2 with Gaussian pulls on the component normalisations (CsI, AC22).

    ``backgrounds``: component -> template; ``sigmas``: component -> relative pull width (``None`` = free
    normalisation, no pull term).  The signal component is called ``"cevns"``.
    """

    def __init__(self, name: str, observed: np.ndarray, backgrounds: Mapping, sigmas: Mapping, tol: float = 1e-9):
        self.name = name
        self.observed = np.asarray(observed, dtype=float)
        self.shape = self.observed.shape
        self.n_bins = self.observed.size
        self.components = (SIGNAL, *backgrounds)
        self.backgrounds = np.stack([np.asarray(backgrounds[z], float).ravel() for z in backgrounds])
        self.inv_var = np.array([0.0 if sigmas[z] is None else 1.0 / sigmas[z] ** 2 for z in self.components])
        self.tol = tol
        d = self.observed.ravel()
        self._d = d
        # constant part of the deviance: D ln D (0 for empty bins)
        self._dlnd = np.sum(np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)) - d.sum()

    def _templates(self, signal: np.ndarray) -> np.ndarray:
        n = signal.shape[0]
        return np.concatenate([signal.reshape(n, 1, -1), np.broadcast_to(self.backgrounds, (n, *self.backgrounds.shape))], axis=1)

    def _chi2(self, templates: np.ndarray, eta: np.ndarray) -> np.ndarray:
        mu = np.einsum("nzb,nz->nb", templates, 1.0 + eta)
        d = self._d
        safe = np.maximum(mu, 1e-300)
        dev = 2.0 * (mu.sum(axis=1) - (d * np.log(safe)).sum(axis=1) + self._dlnd)
        return dev + np.sum(eta**2 * self.inv_var, axis=1)

    def profile(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chi^2_min, eta_hat, templates) for a batch of signals (n, n_E, n_t)."""
        tpl = self._templates(signal)
        n, nz, _ = tpl.shape
        eta = np.zeros((n, nz))
        chi = self._chi2(tpl, eta)
        d = self._d
        for _ in range(100):
            mu = np.einsum("nzb,nz->nb", tpl, 1.0 + eta)
            ratio = d / np.maximum(mu, 1e-300)
            grad = 2.0 * np.einsum("nzb,nb->nz", tpl, 1.0 - ratio) + 2.0 * eta * self.inv_var
            hess = 2.0 * np.einsum("nzb,nwb,nb->nzw", tpl, tpl, ratio / np.maximum(mu, 1e-300))
            hess[:, np.arange(nz), np.arange(nz)] += 2.0 * self.inv_var + 1e-12
            step = -np.linalg.solve(hess, grad[..., None])[..., 0]
            # damping: keep every predicted bin positive and never increase chi^2
            lam = np.ones(n)
            new_chi = np.full(n, np.inf)
            for _ in range(40):
                trial = eta + lam[:, None] * step
                mu_t = np.einsum("nzb,nz->nb", tpl, 1.0 + trial)
                ok = np.all(mu_t > 0, axis=1) & np.all(1.0 + trial > 0, axis=1)
                c = np.where(ok, self._chi2(tpl, np.where(ok[:, None], trial, eta)), np.inf)
                better = c <= chi + 1e-12
                new_chi = np.where(better, c, new_chi)
                if better.all():
                    break
                lam = np.where(better, lam, 0.5 * lam)
            accept = np.isfinite(new_chi)
            eta = np.where(accept[:, None], eta + lam[:, None] * step, eta)
            delta = np.where(accept, chi - new_chi, 0.0)
            chi = np.where(accept, new_chi, chi)
            if np.all(np.abs(delta) < self.tol) and np.all(np.abs(lam * np.abs(step).max(axis=1)) < 1e-7):
                break
        return chi, eta, tpl

    def __call__(self, signal) -> np.ndarray | float:
        batch, single = _as_batch(self._signal(signal), self.shape)
        chi = self.profile(batch)[0]
        return float(chi[0]) if single else chi

    def fit(self, signal) -> FitResult:
        batch, _ = _as_batch(self._signal(signal), self.shape)
        chi, eta, tpl = self.profile(batch[:1])
        fitted = {z: ((1.0 + eta[0, i]) * tpl[0, i]).reshape(self.shape) for i, z in enumerate(self.components)}
        return FitResult(float(chi[0]), {f"eta_{z}": float(eta[0, i]) for i, z in enumerate(self.components)}, fitted, self.n_bins)


class GaussianChi2(Cost):
    """Gaussian chi^2 with normalisation pulls and shape nuisances (LAr, AC22).

    ``shape_deltas``: name -> (component, Delta_plus, Delta_minus or None) relative per-bin variations.
    ``sigma``: per-bin statistical sigma (fixed), ``sigmas``: component -> relative pull width (None = free).
    """

    def __init__(self, name: str, observed, backgrounds: Mapping, sigmas: Mapping, sigma, shape_deltas: Mapping):
        self.name = name
        self.observed = np.asarray(observed, dtype=float)
        self.shape = self.observed.shape
        self.n_bins = self.observed.size
        self.components = (SIGNAL, *backgrounds)
        self.backgrounds = np.stack([np.asarray(backgrounds[z], float).ravel() for z in backgrounds])
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
        # branches: for a two-sided systematic, slope +Delta^+ (eps >= 0), -Delta^- (eps <= 0) or eps = 0;
        # a one-sided (single-file) systematic is linear: eta_sys = eps * Delta for both signs.
        choices = [(1, -1, 0) if ts else (2,) for ts in self.two_sided]
        self.branches = np.array(list(itertools.product(*choices)), dtype=int).reshape(-1, len(self.systematics))

    def _design(self, signal: np.ndarray) -> np.ndarray:
        """Columns (n, n_branch, n_bins, n_par): component templates then systematic slopes per branch."""
        n = signal.shape[0]
        tpl = np.concatenate([signal.reshape(n, 1, -1), np.broadcast_to(self.backgrounds, (n, *self.backgrounds.shape))], axis=1)
        nb, ns = self.branches.shape
        nz = tpl.shape[1]
        x = np.zeros((n, nb, self.n_bins, nz + ns))
        x[:, :, :, :nz] = np.swapaxes(tpl, 1, 2)[:, None, :, :]
        for l in range(ns):
            base = tpl[:, self.sys_component[l], :]  # (n, bins)
            b = self.branches[:, l]
            slope = np.where(b[:, None] == 1, self.delta_plus[l][None, :], 0.0) + np.where(
                b[:, None] == -1, -self.delta_minus[l][None, :], 0.0
            ) + np.where(b[:, None] == 2, self.delta_plus[l][None, :], 0.0)
            x[:, :, :, nz + l] = base[:, None, :] * slope[None, :, :]
        return x, tpl

    def profile(self, signal: np.ndarray):
        x, tpl = self._design(signal)
        r0 = self.observed.ravel()[None, :] - tpl.sum(axis=1)  # residual at eta = eps = 0, (n, bins)
        xw = x * self.w[None, None, :, None]
        a = np.einsum("nkbp,nkbq->nkpq", xw, x)
        a[..., np.arange(self.prior.size), np.arange(self.prior.size)] += self.prior + 1e-12
        rhs = np.einsum("nkbp,nb->nkp", xw, r0)
        theta = np.linalg.solve(a, rhs[..., None])[..., 0]  # (n, nk, p)
        resid = r0[:, None, :] - np.einsum("nkbp,nkp->nkb", x, theta)
        chi = np.einsum("nkb,b->nk", resid**2, self.w) + np.einsum("nkp,p->nk", theta**2, self.prior)
        nz = tpl.shape[1]
        eps = theta[..., nz:]
        b = self.branches[None, :, :]
        admissible = np.all(((b == 1) & (eps >= -1e-12)) | ((b == -1) & (eps <= 1e-12)) | (b == 0) | (b == 2), axis=2)
        chi = np.where(admissible, chi, np.inf)
        best = np.argmin(chi, axis=1)
        idx = np.arange(chi.shape[0])
        return chi[idx, best], theta[idx, best], x[idx, best], tpl

    def __call__(self, signal) -> np.ndarray | float:
        batch, single = _as_batch(self._signal(signal), self.shape)
        chi = self.profile(batch)[0]
        return float(chi[0]) if single else chi

    def fit(self, signal) -> FitResult:
        batch, _ = _as_batch(self._signal(signal), self.shape)
        chi, theta, x, tpl = self.profile(batch[:1])
        nz = tpl.shape[1]
        theta, x = theta[0], x[0]
        fitted = {}
        for i, z in enumerate(self.components):
            counts = tpl[0, i] * (1.0 + theta[i])
            for l, comp in enumerate(self.sys_component):
                if comp == i:
                    counts = counts + x[:, nz + l] * theta[nz + l]
            fitted[z] = counts.reshape(self.shape)
        nuis = {f"eta_{z}": float(theta[i]) for i, z in enumerate(self.components)}
        nuis.update({f"eps_{s}": float(theta[nz + l]) for l, s in enumerate(self.systematics)})
        return FitResult(float(chi[0]), nuis, fitted, self.n_bins)
