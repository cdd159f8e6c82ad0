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


class Cost:
    """Base class: ``name`` identifies the data set in a :class:`SumCost`; costs add."""

    name: str = "cost"
    n_bins: int = 0

    def __add__(self, other: "Cost") -> "SumCost":
        return SumCost([self, other])

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
        self._set_data(name, observed, backgrounds)
        self.inv_var = np.array([0.0 if sigmas[z] is None else 1.0 / sigmas[z] ** 2 for z in self.components])
        self.tol = tol
        d = self.observed.ravel()
        self._d = d
        # constant part of the deviance: D ln D (0 for empty bins)
        self._dlnd = np.sum(np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)) - d.sum()

    def _templates(self, signal: np.ndarray) -> np.ndarray:
        n = signal.shape[0]
        return np.concatenate([signal.reshape(n, 1, -1), np.broadcast_to(self.backgrounds, (n, *self.backgrounds.shape))], axis=1)

    def _chi2(self, templates: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """chi^2 at normalisation factors ``scale`` = 1 + eta (kept as such: eta -> -1 loses digits)."""
        mu = np.matmul(scale[:, None, :], templates)[:, 0, :]
        safe = np.maximum(mu, 1e-300)
        dev = 2.0 * (mu.sum(axis=1) - (self._d * np.log(safe)).sum(axis=1) + self._dlnd)
        return dev + np.sum((scale - 1.0) ** 2 * self.inv_var, axis=1)

    def profile(self, signal: np.ndarray, eta0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chi^2_min, eta_hat, templates) for a batch of signals (n, n_E, n_t); ``eta0`` warm-starts Newton.

        Newton iterates on the factors a_z = 1 + eta_z > 0.  A signal far above the data (absurd couplings) is
        profiled towards a_cevns -> 0 at the price of its pull: such points start where the scaled signal matches
        the observed excess, so that Newton needs a few steps.
        """
        tpl = self._templates(signal)
        n, nz, _ = tpl.shape
        if eta0 is None:
            a = np.ones((n, nz))
            s_tot = tpl[:, 0, :].sum(axis=1)
            excess = max(self._d.sum() - self.backgrounds.sum(), 1.0)
            huge = s_tot > 10.0 * self._d.sum()
            a[huge, 0] = excess / s_tot[huge]
        else:
            a = 1.0 + np.array(eta0, dtype=float).reshape(n, nz)
        chi = self._chi2(tpl, a)
        bad = ~np.isfinite(chi)
        if bad.any():  # a warm start outside the domain: restart those from the nominal normalisations
            a[bad] = 1.0
            chi[bad] = self._chi2(tpl[bad], a[bad])
        d = self._d
        diag = np.arange(nz)
        active = np.ones(n, dtype=bool)
        for _ in range(60):
            idx = np.flatnonzero(active)
            t, x, c0 = tpl[idx], a[idx], chi[idx]
            mu = np.matmul(x[:, None, :], t)[:, 0, :]
            ratio = d / mu
            grad = 2.0 * np.matmul(t, (1.0 - ratio)[..., None])[..., 0] + 2.0 * (x - 1.0) * self.inv_var
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
                c = self._chi2(t[sub], trial)
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


class GaussianChi2(Cost):
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
        # branches: for a two-sided systematic, slope +Delta^+ (eps >= 0), -Delta^- (eps <= 0) or eps = 0;
        # a one-sided (single-file) systematic is linear: eta_sys = eps * Delta for both signs.
        choices = [(1, -1, 0) if ts else (2,) for ts in self.two_sided]
        self.branches = np.array(list(itertools.product(*choices)), dtype=int).reshape(-1, len(self.systematics))

        self._precompute()

    # Every column of the design matrix is base_j * m_j: base = signal (index 0) or a background template,
    # m_j = 1 for a normalisation, the branch's slope for a shape systematic.  The normal equations of every branch
    # are therefore linear combinations of S = signal and S^2 with coefficient vectors fixed at construction: two
    # matrix products per batch instead of building the (n, branches, bins, parameters) design tensor.
    def _multipliers(self) -> np.ndarray:
        """m[branch, column, bin]."""
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

    def _precompute(self) -> None:
        nz, ns = len(self.components), len(self.systematics)
        p = nz + ns
        self.base = np.array(list(range(nz)) + self.sys_component)  # base template of each column
        m = self._multipliers()
        self.mult = m
        w = self.w
        c = self.observed.ravel() - self.backgrounds.sum(axis=0)  # residual without signal
        bg = np.vstack([np.zeros(self.n_bins), self.backgrounds])  # row 0 unused (signal)
        is_sig = self.base == 0
        nb = m.shape[0]
        # A = A_const + S @ U_lin + S^2 @ U_quad, rhs = r_const + S @ R_lin + S^2 @ R_quad (per branch, entry)
        a_const = np.zeros((nb, p, p))
        lin_cols, quad_cols = [], []
        lin_idx, quad_idx = [], []
        for j in range(p):
            for k in range(p):
                vec = w * m[:, j, :] * m[:, k, :]  # (branches, bins)
                if is_sig[j] and is_sig[k]:
                    quad_cols.append(vec)
                    quad_idx.append((j, k))
                elif is_sig[j] or is_sig[k]:
                    other = self.base[k] if is_sig[j] else self.base[j]
                    lin_cols.append(vec * bg[other])
                    lin_idx.append((j, k))
                else:
                    a_const[:, j, k] = (vec * bg[self.base[j]] * bg[self.base[k]]).sum(axis=1)
        a_const[:, np.arange(p), np.arange(p)] += self.prior + 1e-12
        self._a_const = a_const
        self._a_lin = self._dedupe(lin_cols, lin_idx, nb)
        self._a_quad = self._dedupe(quad_cols, quad_idx, nb)
        # The signal normalisation is solved for as a = 1 + eta_signal (not eta): for a signal far above the data
        # a -> 0 is then represented exactly, while eta -> -1 would lose every digit.  With r0 = D - sum B the
        # right-hand side is linear in S: rhs_j = sum w x_j r0 (+ the pull centre 1/sigma^2 for a).
        r_const = np.zeros((nb, p))
        r_lin = []
        for j in range(p):
            vec = w * m[:, j, :]
            if is_sig[j]:
                r_lin.append((vec * c, j))
            else:
                r_const[:, j] = (vec * bg[self.base[j]] * c).sum(axis=1)
        r_const[:, 0] += self.prior[0]
        self._r_const = r_const
        self._r_lin = self._dedupe([v for v, _ in r_lin], [(j,) for _, j in r_lin], nb)
        self._r0w = float(np.sum(w * c * c)) + self.prior[0]
        self._c = c

    @staticmethod
    def _dedupe(cols, idx, nb):
        """Unique coefficient vectors (bins, n_unique) and, per (branch, entry), which one to use."""
        if not cols:
            return None
        stacked = np.stack(cols, axis=1).reshape(nb * len(cols), -1)  # (branch*entry, bins)
        uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
        return uniq.T.copy(), inverse.reshape(nb, len(cols)), idx

    def _assemble(self, lin, quad, const, s, s2):
        """Batch (n, branches, ...) arrays of A (or rhs) from the precomputed pieces."""
        out = np.broadcast_to(const, (s.shape[0], *const.shape)).copy()
        for piece, base in ((lin, s), (quad, s2)):
            if piece is None:
                continue
            vecs, inverse, idx = piece
            vals = base @ vecs  # (n, n_unique)
            flat = out.reshape(out.shape[0], out.shape[1], -1)
            # every (j, k) entry appears once per piece, so a fancy-indexed add is safe
            pos = np.ravel_multi_index(tuple(np.array(idx).T), const.shape[1:]) if len(idx[0]) > 1 else np.array(idx)[:, 0]
            flat[:, :, pos] += vals[:, inverse]
        return out

    def profile(self, signal: np.ndarray):
        """(chi^2_min, theta_hat with eta_signal = a - 1, chosen branch) for a batch of signals."""
        n = signal.shape[0]
        s = signal.reshape(n, -1)
        s2 = s * s
        a = self._assemble(self._a_lin, self._a_quad, self._a_const, s, s2)
        rhs = self._assemble(self._r_lin, None, self._r_const, s, s2)
        # symmetric diagonal (Jacobi) scaling: a huge signal makes its columns ~1e20 larger than the pulls
        scale = np.sqrt(np.abs(a[..., np.arange(a.shape[-1]), np.arange(a.shape[-1])]))
        a_scaled = a / (scale[..., :, None] * scale[..., None, :])
        theta = np.linalg.solve(a_scaled, (rhs / scale)[..., None])[..., 0] / scale  # (n, branches, p)
        # chi^2 at the minimum of the quadratic form: r0'Wr0 + pull centre - rhs'theta
        chi = self._r0w - np.einsum("nkp,nkp->nk", rhs, theta)
        nz = len(self.components)
        eps = theta[..., nz:]
        b = self.branches[None, :, :]
        admissible = np.all(((b == 1) & (eps >= -1e-12)) | ((b == -1) & (eps <= 1e-12)) | (b == 0) | (b == 2), axis=2)
        chi = np.where(admissible, chi, np.inf)
        best = np.argmin(chi, axis=1)
        idx = np.arange(n)
        theta_best = theta[idx, best]
        # recompute the chosen branch's chi^2 from its residuals (exact; the shortcut loses digits at large chi^2)
        chi_best = self._branch_chi2(s, theta_best[:, None, :], best[:, None])[:, 0]
        out = theta_best.copy()
        out[:, 0] -= 1.0  # report eta_signal
        return chi_best, out, best

    def _branch_chi2(self, s: np.ndarray, theta: np.ndarray, branches: np.ndarray) -> np.ndarray:
        """chi^2 from the residuals for parameters theta (n, k, p; theta[..., 0] = a = 1 + eta_signal)."""
        n = theta.shape[0]
        m = self.mult[branches]  # (n, k, p, bins)
        bases = np.concatenate([s[:, None, :], np.broadcast_to(self.backgrounds, (n, *self.backgrounds.shape))], axis=1)
        cols = bases[:, None, self.base, :] * m
        resid = self._c[None, None, :] - np.einsum("nkpb,nkp->nkb", cols, theta)
        pulls = theta.copy()
        pulls[..., 0] -= 1.0
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
