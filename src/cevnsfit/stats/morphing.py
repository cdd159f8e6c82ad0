"""Extended binned Poisson cost with templates morphed on a 2-D grid of shape nuisances.

Statistics only: observed counts, component templates, normalisation pulls and a grid.  A component template is
either fixed (n_bins,) or given on a rectangular grid of two shape nuisances (x, y) as (n_x n_y, n_bins); the
signal template is always given on the grid.  The expectation is

    mu_b(a, x, y) = sum_z a_z T_z,b(x, y),      T(x, y) = sum_ij A_i(x) B_j(y) T_ij

with A_i, B_j the *cardinal cubic splines* of the nodes (not-a-knot): the morphing reproduces every grid point
exactly (A_i(x_k) = delta_ik), is twice continuously differentiable between them (so Newton converges), and is
linear in the templates (so the mediator engine's N0 + g^2 N1 + g^4 N2 stays exact).  Outside the grid the
nuisances are clamped to its edges (|x|, |y| <= 3 for XENONnT's +-3 sigma grid).

    chi^2 = 2 sum_b [mu_b - D_b + D_b ln(D_b / mu_b)] + sum_z ((a_z - 1)/sigma_z)^2 + x^2 + y^2

(unit Gaussian priors on x, y).  ``sigmas[z]``: relative width, ``None`` = free, ``0`` = fixed at a_z = 1.  The
minimum over (a, x, y) is found by damped Newton with analytic gradient and Hessian (the Hessian is made positive
definite by a Levenberg shift where the second-derivative term makes it indefinite).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.interpolate import CubicSpline

from ..errors import InputError
from .chi2 import SIGNAL, Cost, FitResult, _as_batch


class CardinalSplines:
    """Cardinal cubic-spline basis A_i(x) on ``nodes``: values, first and second derivatives, vectorised."""

    def __init__(self, nodes):
        self.nodes = np.asarray(nodes, dtype=float)
        if self.nodes.ndim != 1 or self.nodes.size < 4 or np.any(np.diff(self.nodes) <= 0):
            raise InputError("a morphing grid needs at least 4 increasing nodes per axis")
        pp = CubicSpline(self.nodes, np.eye(self.nodes.size), axis=0)
        self._c = pp.c  # (4, n_intervals, n_nodes): coefficients of (x - x_k)^3, ^2, ^1, ^0

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, A', A''), each (len(x), n_nodes); x is clamped to the grid."""
        x = np.clip(np.asarray(x, dtype=float), self.nodes[0], self.nodes[-1])
        k = np.clip(np.searchsorted(self.nodes, x, side="right") - 1, 0, self.nodes.size - 2)
        t = (x - self.nodes[k])[:, None]
        c3, c2, c1, c0 = (self._c[i, k, :] for i in range(4))
        return ((c3 * t + c2) * t + c1) * t + c0, (3.0 * c3 * t + 2.0 * c2) * t + c1, 6.0 * c3 * t + 2.0 * c2


class GridMorph:
    """Weights of a 2-D cardinal-spline morphing: ``weights(x, y)`` -> (n, 6, n_x n_y) for
    (T, dT/dx, dT/dy, d2T/dx2, d2T/dxdy, d2T/dy2) = weights @ T_grid, grid index i * n_y + j."""

    def __init__(self, x_nodes, y_nodes):
        self.x, self.y = CardinalSplines(x_nodes), CardinalSplines(y_nodes)
        self.n_grid = self.x.nodes.size * self.y.nodes.size

    def weights(self, x, y) -> np.ndarray:
        a, da, dda = self.x(np.atleast_1d(x))
        b, db, ddb = self.y(np.atleast_1d(y))
        pairs = ((a, b), (da, b), (a, db), (dda, b), (da, db), (a, ddb))
        return np.stack([np.einsum("ni,nj->nij", p, q).reshape(p.shape[0], -1) for p, q in pairs], axis=1)

    def __call__(self, grid_templates: np.ndarray, x, y) -> np.ndarray:
        """Morphed template(s) at (x, y): grid_templates (n_grid, n_bins) -> (n, n_bins)."""
        return self.weights(x, y)[:, 0, :] @ np.asarray(grid_templates, float)


class MorphedPoissonChi2(Cost):
    """Extended binned Poisson chi^2 with normalisation pulls and two grid-morphed shape nuisances (see module).

    ``observed`` (n_bins,); ``backgrounds``: component -> (n_bins,) or (n_grid, n_bins); ``sigmas``: component
    (including ``"cevns"``) -> relative pull width, None (free) or 0 (fixed); ``grid``: (x_nodes, y_nodes);
    ``shape_names``: names of the two shape nuisances (for :meth:`fit`).  The signal passed to ``__call__`` is
    (n_grid, n_bins), or a batch (n, n_grid, n_bins).
    """

    def __init__(self, name: str, observed, backgrounds: Mapping, sigmas: Mapping, grid, shape_names=("x", "y"),
                 tol: float = 1e-9):
        self.morph = GridMorph(*grid)
        ng = self.morph.n_grid
        self.name = name
        d = np.asarray(observed, dtype=float).ravel()
        if np.any(d < 0) or not np.all(np.isfinite(d)):
            raise InputError(f"{name}: observed counts must be finite and non-negative")
        self._d, self.n_bins = d, d.size
        self.shape = (ng, d.size)
        self.components = (SIGNAL, *backgrounds)
        grids = []
        for z, t in backgrounds.items():
            t = np.asarray(t, dtype=float)
            if t.shape == (d.size,):
                t = np.broadcast_to(t, (ng, d.size))
            if t.shape != (ng, d.size) or not np.all(np.isfinite(t)) or np.any(t < 0):
                raise InputError(f"{name}: background '{z}' must be finite, >= 0, of shape ({d.size},) or ({ng}, {d.size})")
            grids.append(t)
        self._bkg = np.stack(grids)  # (n_bkg, n_grid, n_bins)
        self.shape_names = tuple(shape_names)
        missing = [z for z in self.components if z not in sigmas]
        if missing:
            raise InputError(f"{name}: no pull width for {', '.join(missing)}")
        self.free = np.array([sigmas[z] != 0 for z in self.components] + [True, True])
        self.inv_var = np.array([0.0 if sigmas[z] in (None, 0) else 1.0 / sigmas[z] ** 2 for z in self.components] + [1.0, 1.0])
        self.tol = tol
        self._dlnd = np.sum(np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)) - d.sum()
        self.observed = d

    # ---- pieces --------------------------------------------------------------------------------------------
    def _grid_templates(self, signal: np.ndarray) -> np.ndarray:
        """(n, n_comp, n_grid, n_bins): the signal batch beside the fixed backgrounds."""
        n = signal.shape[0]
        return np.concatenate([signal[:, None], np.broadcast_to(self._bkg, (n, *self._bkg.shape))], axis=1)

    def _morphed(self, tpl: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(n, 6, n_comp, n_bins): morphed templates and their x, y derivatives."""
        w = self.morph.weights(x, y)  # (n, 6, n_grid)
        return np.einsum("nkg,ncgb->nkcb", w, tpl, optimize=True)

    def _chi2_at(self, tpl: np.ndarray, p: np.ndarray) -> np.ndarray:
        w = self.morph.weights(p[:, -2], p[:, -1])[:, 0, :]
        t = np.einsum("ng,ncgb->ncb", w, tpl, optimize=True)
        mu = np.einsum("nc,ncb->nb", p[:, :-2], t)
        return self._value(mu, p)

    def _value(self, mu: np.ndarray, p: np.ndarray) -> np.ndarray:
        safe = np.maximum(mu, 1e-300)
        dev = 2.0 * (mu.sum(axis=1) - (self._d * np.log(safe)).sum(axis=1) + self._dlnd)
        centre = np.concatenate([np.ones(p.shape[1] - 2), [0.0, 0.0]])
        return dev + np.sum((p - centre) ** 2 * self.inv_var, axis=1)

    # ---- profile -------------------------------------------------------------------------------------------
    def profile(self, signal: np.ndarray, p0: np.ndarray | None = None):
        """(chi^2_min, parameters (n, n_comp + 2) = (a_z..., x, y), grid templates) for a batch of signals."""
        tpl = self._grid_templates(signal)
        n, nc = tpl.shape[:2]
        npar = nc + 2
        lo_xy, hi_xy = self.morph.x.nodes[0], self.morph.x.nodes[-1]
        lo_y, hi_y = self.morph.y.nodes[0], self.morph.y.nodes[-1]
        p = np.zeros((n, npar))
        p[:, :nc] = 1.0
        if p0 is not None:
            p = np.array(p0, dtype=float).reshape(n, npar)
        else:  # a signal far above the data starts where its scaled total matches the observed excess
            s_tot = tpl[:, 0].mean(axis=1).sum(axis=1)
            excess = max(self._d.sum() - self._bkg.mean(axis=1).sum(), 1.0)
            huge = (s_tot > 10.0 * self._d.sum()) & self.free[0]
            p[huge, 0] = excess / s_tot[huge]
        chi = self._chi2_at(tpl, p)
        d = self._d
        free = self.free
        fixed_idx = np.flatnonzero(~free)
        active = np.ones(n, dtype=bool)
        for _ in range(100):
            idx = np.flatnonzero(active)
            t, x, c0 = tpl[idx], p[idx], chi[idx]
            m = self._morphed(t, x[:, -2], x[:, -1])  # (k, 6, nc, nb)
            a = x[:, :nc]
            mu = np.einsum("kc,kcb->kb", a, m[:, 0])
            dmu = np.concatenate([m[:, 0], np.einsum("kc,kjcb->kjb", a, m[:, 1:3])], axis=1)  # (k, npar, nb)
            r = d / np.maximum(mu, 1e-300)
            centre = np.concatenate([np.ones(nc), [0.0, 0.0]])
            grad = 2.0 * np.einsum("kpb,kb->kp", dmu, 1.0 - r) + 2.0 * (x - centre) * self.inv_var
            hess = 2.0 * np.einsum("kpb,kqb,kb->kpq", dmu, dmu, r / np.maximum(mu, 1e-300))
            # second derivatives of mu: d2/(da_z dx) = dT_z/dx, d2/dx2 = sum a_z d2T_z/dx2, ...
            w1 = 1.0 - r
            cross = 2.0 * np.einsum("kjcb,kb->kcj", m[:, 1:3], w1)  # (k, nc, 2)
            hess[:, :nc, nc:] += cross
            hess[:, nc:, :nc] += np.swapaxes(cross, 1, 2)
            sec = 2.0 * np.einsum("kc,kjcb,kb->kj", a, m[:, 3:6], w1)  # xx, xy, yy
            hess[:, nc, nc] += sec[:, 0]
            hess[:, nc, nc + 1] += sec[:, 1]
            hess[:, nc + 1, nc] += sec[:, 1]
            hess[:, nc + 1, nc + 1] += sec[:, 2]
            hess[:, np.arange(npar), np.arange(npar)] += 2.0 * self.inv_var + 1e-12
            if fixed_idx.size:
                grad[:, fixed_idx] = 0.0
                hess[:, fixed_idx, :] = 0.0
                hess[:, :, fixed_idx] = 0.0
                hess[:, fixed_idx, fixed_idx] = 1.0
            # Levenberg shift where the Hessian is not positive definite
            eig_min = np.linalg.eigvalsh(hess)[:, 0]
            shift = np.where(eig_min <= 1e-10 * np.abs(hess).max(axis=(1, 2)), 1e-6 - eig_min + 1e-3 * np.abs(eig_min), 0.0)
            hess[:, np.arange(npar), np.arange(npar)] += shift[:, None]
            step = -np.linalg.solve(hess, grad[..., None])[..., 0]
            decrement = -0.5 * np.sum(grad * step, axis=1)
            done = decrement < np.maximum(self.tol, 1e-13 * c0)
            with np.errstate(divide="ignore", invalid="ignore"):
                lim_a = np.where(step[:, :nc] < 0, -0.9 * x[:, :nc] / step[:, :nc], np.inf).min(axis=1)
            lam = np.minimum(1.0, lim_a)
            new_chi = np.full(idx.size, np.inf)
            todo = ~done
            trial_p = x.copy()
            for _ in range(40):
                if not todo.any():
                    break
                sub = np.flatnonzero(todo)
                trial = x[sub] + lam[sub, None] * step[sub]
                trial[:, -2] = np.clip(trial[:, -2], lo_xy, hi_xy)
                trial[:, -1] = np.clip(trial[:, -1], lo_y, hi_y)
                c = self._chi2_at(t[sub], trial)
                better = c <= c0[sub] + 1e-12
                new_chi[sub[better]] = c[better]
                trial_p[sub[better]] = trial[better]
                lam[sub[~better]] *= 0.5
                todo[sub[better]] = False
            moved = np.isfinite(new_chi)
            # stop a point whose move no longer lowers chi^2 measurably (clamped at the grid edge, or converged)
            stalled = moved & (c0 - new_chi < 1e-12)
            p[idx[moved]] = trial_p[moved]
            chi[idx[moved]] = new_chi[moved]
            active[idx[done | ~moved | stalled]] = False
            if not active.any():
                break
        return chi, p, tpl

    def __call__(self, signal) -> np.ndarray | float:
        batch, single = _as_batch(self._signal(signal), self.shape)
        chi = self.profile(batch)[0]
        return float(chi[0]) if single else chi

    def fit(self, signal) -> FitResult:
        batch, _ = _as_batch(self._signal(signal), self.shape)
        chi, p, tpl = self.profile(batch[:1])
        nc = len(self.components)
        t = np.einsum("g,cgb->cb", self.morph.weights(p[0, -2], p[0, -1])[0, 0], tpl[0])
        fitted = {z: p[0, i] * t[i] for i, z in enumerate(self.components)}
        nuis = {f"eta_{z}": float(p[0, i] - 1.0) for i, z in enumerate(self.components)}
        nuis.update({self.shape_names[0]: float(p[0, -2]), self.shape_names[1]: float(p[0, -1])})
        return FitResult(float(chi[0]), nuis, fitted, self.n_bins)
