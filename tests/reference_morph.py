"""The reference morphed Poisson profile: the numpy profile that :class:`cevnsfit.stats.morphing.MorphedPoissonChi2`
had before its profiles moved to the compiled kernel, kept here as the independent reference the kernel is compared
with (tests/test_compiled.py) and as the explicit chi^2 of independent minimisers (``_chi2_at``): the morph from
the cardinal-spline weights of all grid nodes, damped Newton vectorised over rows with a laddered line search.
Built from a cost's public attributes (:meth:`ReferenceMorphed.of`)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from cevnsfit.errors import InputError
from cevnsfit.stats.morphing import GridMorph

SIGNAL = "cevns"


def _as_batch(signal, shape):
    s = np.asarray(signal, dtype=float)
    return (s[None], True) if s.shape == shape else (s, False)


class ReferenceMorphed:
    """Extended binned Poisson chi^2 with normalisation pulls and two grid-morphed shape nuisances (see module).

    ``observed`` (n_bins,); ``backgrounds``: component -> (n_bins,) or (n_grid, n_bins); ``sigmas``: component
    (including ``"cevns"``) -> relative pull width, None (free) or 0 (fixed); ``grid``: (x_nodes, y_nodes);
    ``shape_names``: names of the two shape nuisances (for :meth:`fit`); ``merge_empty``: iterate on the non-empty
    bins plus their complement's sum (module doc; exact).  The signal passed to ``__call__`` is (n_grid, n_bins) or a
    batch (n, n_grid, n_bins), or the same on the reduced bins (:meth:`reduce`).
    """

    def __init__(self, observed, backgrounds: Mapping, sigmas: Mapping, grid, shape_names=("x", "y"),
                 tol: float = 1e-9, merge_empty: bool = True):
        self.morph = GridMorph(*grid)
        ng = self.morph.n_grid
        name = "reference"
        d = np.asarray(observed, dtype=float).ravel()
        if np.any(d < 0) or not np.all(np.isfinite(d)):
            raise InputError(f"{name}: observed counts must be finite and non-negative")
        self.n_bins = d.size
        self.shape = (ng, d.size)
        # the Newton iterations' bins: the non-empty ones, then (if any) the sum of the empty ones (module doc)
        # (merge_empty=False keeps every bin: the reference that tests and benchmarks compare the merge with)
        keep, empty = (np.flatnonzero(d > 0), np.flatnonzero(d == 0)) if merge_empty else (np.arange(d.size), np.zeros(0, int))
        self._keep, self._empty = keep, empty
        self._d = self._compress(d)
        self._nr = self._d.size
        self.components = (SIGNAL, *backgrounds)
        fixed, morphed = {}, {}
        for z, t in backgrounds.items():
            t = np.asarray(t, dtype=float)
            if t.shape not in ((d.size,), (ng, d.size)) or not np.all(np.isfinite(t)) or np.any(t < 0):
                raise InputError(f"{name}: background '{z}' must be finite, >= 0, of shape ({d.size},) or ({ng}, {d.size})")
            (fixed if t.ndim == 1 else morphed)[z] = t
        # parameter order = components; the morphed ones (signal first) and the fixed ones are kept apart
        self._i_morphed = np.array([0] + [self.components.index(z) for z in morphed])
        self._i_fixed = np.array([self.components.index(z) for z in fixed], dtype=int)
        self._bkg_morphed_full = np.stack(list(morphed.values())) if morphed else np.zeros((0, ng, d.size))
        self._fixed_full = np.stack(list(fixed.values())) if fixed else np.zeros((0, d.size))
        self._bkg_morphed, self._fixed = self._compress(self._bkg_morphed_full), self._compress(self._fixed_full)
        # (n_grid, n_morphed backgrounds x n_bins'): the backgrounds' grid templates as one matrix
        self._bkg_grid = np.ascontiguousarray(self._bkg_morphed.transpose(1, 0, 2).reshape(ng, -1))
        self.shape_names = tuple(shape_names)
        missing = [z for z in self.components if z not in sigmas]
        if missing:
            raise InputError(f"{name}: no pull width for {', '.join(missing)}")
        self.free = np.array([sigmas[z] != 0 for z in self.components] + [True, True])
        self.inv_var = np.array([0.0 if sigmas[z] in (None, 0) else 1.0 / sigmas[z] ** 2 for z in self.components] + [1.0, 1.0])
        self._centre = np.concatenate([np.ones(len(self.components)), [0.0, 0.0]])
        self.tol = tol
        self._dlnd = np.sum(np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)) - d.sum()
        self.observed = d

    # ---- pieces --------------------------------------------------------------------------------------------
    def _compress(self, a: np.ndarray) -> np.ndarray:
        """(..., n_bins) -> (..., n_nonempty [+ 1]): the non-empty bins, then the sum over the empty ones."""
        # indexing, not a 0/1 matrix product: for one template that product is large enough for OpenBLAS to start
        # its threads, which costs milliseconds on a loaded machine
        a = np.asarray(a, dtype=float)
        if not self._empty.size:
            return a[..., self._keep]
        return np.concatenate([a[..., self._keep], a[..., self._empty].sum(axis=-1, keepdims=True)], axis=-1)

    def reduce(self, signal: np.ndarray) -> np.ndarray:
        """The signal template(s) (..., n_grid, n_bins) on the bins the chi^2 needs (..., n_grid, n_bins'): a linear
        map, so a template family N0 + g^2 N1 + g^4 N2 can be reduced once; ``cost(reduce(s)) == cost(s)``."""
        return self._compress(signal)

    def _reduced(self, signal) -> np.ndarray:
        """A batch (n, n_grid, n_bins'), from full or already reduced templates (one or a batch)."""
        s = np.asarray(signal, dtype=float)
        if s.shape[-2:] == (self.morph.n_grid, self._nr):  # already reduced (or nothing to reduce)
            return s.reshape(-1, self.morph.n_grid, self._nr)
        return self._compress(_as_batch(s, self.shape)[0])

    def _grid_templates(self, signal: np.ndarray) -> np.ndarray:
        """(n, n_grid, n_morphed n_bins): the signal batch beside the morphed backgrounds, grid-major, on all bins
        (for :meth:`fit`'s per-bin templates; the profile keeps the signal and the shared backgrounds apart)."""
        n = signal.shape[0]
        bkg = self._bkg_morphed_full
        stack = np.concatenate([signal[:, None], np.broadcast_to(bkg, (n, *bkg.shape))], axis=1)
        return np.ascontiguousarray(stack.transpose(0, 2, 1, 3).reshape(n, stack.shape[2], -1))

    def _morph(self, w: np.ndarray, sig: np.ndarray) -> np.ndarray:
        """Morphed templates and derivatives (N, k, n_morphed, n_bins') for weights ``w`` (..., k, n_grid) and the
        reduced signal ``sig`` (broadcastable to (..., n_grid, n_bins')): the signal is a batched product, the
        backgrounds (the same for every point) one matrix product."""
        k, ng = w.shape[-2:]
        ms = np.matmul(w, sig)
        mb = (w.reshape(-1, ng) @ self._bkg_grid).reshape(*w.shape[:-1], -1, self._nr)
        return np.concatenate([ms[..., None, :], mb], axis=-2).reshape(-1, k, mb.shape[-2] + 1, self._nr)

    def _mu(self, sig: np.ndarray, p: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(mu (n, n_bins'), morphed templates and derivatives (n, k, n_morphed, n_bins')) at parameters p, on the
        compressed bins; ``sig`` is the reduced signal batch (n, n_grid, n_bins')."""
        w = self.morph.weights(p[:, -2], p[:, -1])[:, :k]
        return self._mu_from(self._morph(w, sig), p)

    def _mu_from(self, m: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = np.matmul(p[:, None, self._i_morphed], m[:, 0])[:, 0] + p[:, self._i_fixed] @ self._fixed
        return mu, m

    def _value(self, mu: np.ndarray, p: np.ndarray) -> np.ndarray:
        safe = np.maximum(mu, 1e-300)
        dev = 2.0 * (mu.sum(axis=1) - np.log(safe) @ self._d + self._dlnd)
        return dev + ((p - self._centre) ** 2) @ self.inv_var

    def _chi2_at(self, sig: np.ndarray, p: np.ndarray) -> np.ndarray:
        """chi^2 (n,) at parameters p (n, n_comp + 2) for a signal batch (full or reduced), nothing profiled."""
        return self._value(self._mu(self._reduced(sig), p)[0], p)

    def _derivatives(self, x: np.ndarray, mu: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Analytic gradient (n, n_comp + 2) and Hessian (n, n_comp + 2, n_comp + 2) of chi^2 at parameters ``x``,
        from mu and the morphed templates with their derivatives ``m`` (n, 6, n_morphed, n_bins') that
        :meth:`_mu` returns with k = 6 -- every parameter free, no grid edge (:meth:`profile` applies those).  The
        Hessian's diagonal carries 1e-12 more than chi^2's (keeps a flat direction solvable)."""
        nc = len(self.components)
        im = self._i_morphed
        am = x[:, im]
        dmu = np.empty((x.shape[0], nc + 2, self._nr))
        dmu[:, im] = m[:, 0]
        dmu[:, self._i_fixed] = self._fixed
        dmu[:, nc:] = np.matmul(am[:, None, None, :], m[:, 1:3])[:, :, 0]
        inv_mu = 1.0 / np.maximum(mu, 1e-300)
        r = self._d * inv_mu
        w1 = 1.0 - r
        grad = 2.0 * np.matmul(dmu, w1[..., None])[..., 0] + 2.0 * (x - self._centre) * self.inv_var
        hess = 2.0 * np.matmul(dmu * (r * inv_mu)[:, None, :], np.swapaxes(dmu, 1, 2))
        # second derivatives of mu: d2/(da_z dx) = dT_z/dx (morphed z), d2/dx2 = sum a_z d2T_z/dx2, ...
        cross = 2.0 * np.matmul(m[:, 1:3], w1[:, None, :, None])[..., 0]  # (n, 2, n_morphed)
        sec = 2.0 * np.matmul(am[:, None, None, :], np.matmul(m[:, 3:6], w1[:, None, :, None]))[:, :, 0, 0]
        hess[:, im, nc] += cross[:, 0]
        hess[:, im, nc + 1] += cross[:, 1]
        hess[:, nc, im] += cross[:, 0]
        hess[:, nc + 1, im] += cross[:, 1]
        hess[:, nc, nc] += sec[:, 0]
        hess[:, nc, nc + 1] += sec[:, 1]
        hess[:, nc + 1, nc] += sec[:, 1]
        hess[:, nc + 1, nc + 1] += sec[:, 2]
        diag = np.arange(nc + 2)
        hess[:, diag, diag] += 2.0 * self.inv_var + 1e-12
        return grad, hess

    # ---- profile -------------------------------------------------------------------------------------------
    def profile(self, signal: np.ndarray, p0: np.ndarray | None = None):
        """(chi^2_min, parameters (n, n_comp + 2) = (a_z..., x, y), reduced signal batch) for a batch of signals
        (full or :meth:`reduce`-d), Newton started from ``p0`` (n, n_comp + 2) if given (a warm start)."""
        tpl = signal = self._reduced(signal)  # its bin sums are the full signal's
        n = tpl.shape[0]
        nc = len(self.components)
        npar = nc + 2
        lo_x, hi_x = self.morph.x.nodes[0], self.morph.x.nodes[-1]
        lo_y, hi_y = self.morph.y.nodes[0], self.morph.y.nodes[-1]
        p = self._start(p0, lambda: signal.mean(axis=1).sum(axis=1), n)
        mu_all, m_all = self._mu(tpl, p, 6)
        chi = self._value(mu_all, p)
        fixed_idx = np.flatnonzero(~self.free)
        diag = np.arange(npar)
        active = np.ones(n, dtype=bool)
        for _ in range(100):
            if active.all():  # views, not copies of the (n, n_grid, ...) templates
                idx = np.arange(n)
                t, x, c0, mu, m = tpl, p.copy(), chi.copy(), mu_all, m_all
            else:
                idx = np.flatnonzero(active)
                t, x, c0, mu, m = tpl[idx], p[idx], chi[idx], mu_all[idx], m_all[idx]
            k = idx.size
            grad, hess = self._derivatives(x, mu, m)
            if fixed_idx.size:
                grad[:, fixed_idx] = 0.0
                hess[:, fixed_idx, :] = 0.0
                hess[:, :, fixed_idx] = 0.0
                hess[:, fixed_idx, fixed_idx] = 1.0
            # a shape nuisance at a grid edge whose gradient points outwards stays there (projected Newton): else
            # the clipped step creeps along the edge and the decrement never falls below the tolerance
            pinned = np.zeros((k, npar), dtype=bool)
            pinned[:, -2] = ((x[:, -2] <= lo_x) & (grad[:, -2] > 0)) | ((x[:, -2] >= hi_x) & (grad[:, -2] < 0))
            pinned[:, -1] = ((x[:, -1] <= lo_y) & (grad[:, -1] > 0)) | ((x[:, -1] >= hi_y) & (grad[:, -1] < 0))
            if pinned.any():
                grad[pinned] = 0.0
                hess *= (~pinned)[:, :, None] & (~pinned)[:, None, :]
                hess[:, diag, diag] += pinned
            step = -np.linalg.solve(hess, grad[..., None])[..., 0]
            decrement = -0.5 * np.sum(grad * step, axis=1)
            uphill = ~(decrement > 0) & (np.abs(grad).max(axis=1) > 0)
            if uphill.any():  # Hessian not positive definite there: Levenberg shift, solve again
                h = hess[uphill]
                eig_min = np.linalg.eigvalsh(h)[:, 0]
                scale = np.abs(h).max(axis=(1, 2))
                h[:, diag, diag] += np.maximum(1e-6 * scale - eig_min, 0.0)[:, None]
                step[uphill] = -np.linalg.solve(h, grad[uphill][..., None])[..., 0]
                decrement[uphill] = -0.5 * np.sum(grad[uphill] * step[uphill], axis=1)
            done = decrement < np.maximum(self.tol, 1e-13 * c0)
            sa = step[:, :nc]
            neg = sa < 0
            lam = np.minimum(1.0, np.min(np.where(neg, -0.9 * x[:, :nc] / np.where(neg, sa, -1.0), np.inf), axis=1))
            # backtracking line search (step lam, lam/2, ... up to 40 halvings; the first that does not go uphill
            # is taken); every trial is evaluated with its derivatives, which the next Newton step reuses.  The
            # full step is tried for all points at once; points that reject it try the next 8 halvings in one
            # batch (a ladder), not one numpy call per halving -- same accepted step, a few calls instead of 40
            moved = np.zeros(k, dtype=bool)
            sub, tried = np.flatnonzero(~done), 0
            while sub.size and tried < 40:
                rungs = 1 if tried == 0 else min(8, 40 - tried)
                frac = 0.5 ** np.arange(tried, tried + rungs)
                trial = (x[sub, None, :] + (lam[sub, None] * frac)[..., None] * step[sub, None, :]).reshape(-1, npar)
                np.clip(trial[:, -2], lo_x, hi_x, out=trial[:, -2])
                np.clip(trial[:, -1], lo_y, hi_y, out=trial[:, -1])
                w = self.morph.weights(trial[:, -2], trial[:, -1]).reshape(sub.size, rungs, 6, -1)
                m_t = self._morph(w, t[sub, None])
                mu_t, _ = self._mu_from(m_t, trial)
                c = self._value(mu_t, trial).reshape(sub.size, rungs)
                ok = c <= c0[sub, None] + 1e-12
                found = ok.any(axis=1)
                first = np.argmax(ok, axis=1)[found]
                acc, pick = sub[found], np.flatnonzero(found) * rungs + first
                c_acc = c[found, first]
                gi = idx[acc]
                p[gi], chi[gi], mu_all[gi], m_all[gi] = trial[pick], c_acc, mu_t[pick], m_t[pick]
                moved[acc] = c0[acc] - c_acc >= 1e-12  # else clamped at the grid edge, or converged to rounding
                sub, tried = sub[~found], tried + rungs
            active[idx[~moved]] = False
            if not active.any():
                break
        return chi, p, tpl

    def _start(self, p0, signal_totals, n: int) -> np.ndarray:
        """Newton's start (n, n_comp + 2): ``p0``, else the nominal parameters, except that a signal far above the
        data (``signal_totals()``: its grid-averaged total per row) starts where its scaled total matches the
        observed excess."""
        if p0 is not None:
            return np.array(p0, dtype=float).reshape(n, len(self.components) + 2)
        p = np.zeros((n, len(self.components) + 2))
        p[:, :len(self.components)] = 1.0
        s_tot = signal_totals()
        excess = max(self._d.sum() - self._bkg_morphed.mean(axis=1).sum() - self._fixed.sum(), 1.0)
        huge = (s_tot > 10.0 * self._d.sum()) & self.free[0]
        p[huge, 0] = excess / s_tot[huge]
        return p

    def __call__(self, signal) -> np.ndarray | float:
        s = np.asarray(signal, dtype=float)
        chi = self.profile(s)[0]
        return float(chi[0]) if s.ndim == 2 else chi

    def profile_warm(self, signal: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chi^2 (n,), fitted parameters (n, n_comp + 2)) for a batch, started from the parameters ``start`` that
        a neighbouring batch returned (the next mass of a scan: Newton then needs a few iterations, not ~7)."""
        chi, p, _ = self.profile(signal, start)
        return chi, p

    @classmethod
    def of(cls, cost, merge_empty=None) -> "ReferenceMorphed":
        sigmas = {z: cost.priors[f"norm_{z}"][1] for z in cost.components}
        return cls(cost.observed, cost.background_templates, sigmas, (cost.morph.x.nodes, cost.morph.y.nodes),
                   cost.shape_names, cost.tol, cost.merge_empty if merge_empty is None else merge_empty)

    def chi2_at(self, signal, p) -> np.ndarray:
        """chi^2 (n,) at parameters p (n, n_comp + 2) = (a_z..., x, y) for signals (full or reduced)."""
        return self._chi2_at(signal, np.atleast_2d(np.asarray(p, dtype=float)))
