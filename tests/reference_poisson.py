"""The reference Poisson profile: the numpy profile that :class:`cevnsfit.stats.poisson.PoissonChi2` had before its
profiles moved to the compiled kernel, kept here as the independent reference the kernel is compared with
(tests/test_compiled.py, tests/test_fc_speed.py).  Same chi^2, same projected Newton (active set at a = 0, step
kept 1/10 from the bound, KKT restart, snap to the bound), vectorised over rows, with a line search on every step
(no certified blind steps) and cold starts; its ``replicas_grid`` warm-starts every template from the nearest
cold one (one in COLD_STRIDE).  Built from a cost's public attributes (:meth:`ReferencePoisson.of`)."""

from __future__ import annotations

import numpy as np

from reference_common import dlnd as _dlnd
from reference_common import dlnd_rows as _dlnd_rows
from reference_common import solve_spd as _solve_spd


class ReferencePoisson:
    """chi^2 = 2 sum[N - D + D ln(D/N)] + sum_z ((eta_z - eta_z0)/sigma_z)^2 over factors a = 1 + eta >= 0."""

    PIN = 1e-9
    WARM_FLOOR = 1e-3
    COLD_STRIDE = 4

    def __init__(self, observed, backgrounds, sigmas, tol: float = 1e-9):
        """``observed`` (any shape), ``backgrounds`` (n_bkg, n_bins), ``sigmas``: per component (signal first),
        None = free."""
        self.observed = np.asarray(observed, dtype=float)
        self.shape = self.observed.shape
        self.n_bins = self.observed.size
        self.backgrounds = np.asarray(backgrounds, dtype=float).reshape(-1, self.n_bins)
        self.components = tuple(range(1 + self.backgrounds.shape[0]))
        self.pull_sigmas = np.array([np.inf if s is None else float(s) for s in sigmas])
        self.inv_var = np.array([0.0 if s is None else 1.0 / s**2 for s in sigmas])
        self.tol = tol
        self._d = self.observed.ravel()
        self._dlnd = _dlnd(self._d)

    @classmethod
    def of(cls, cost) -> "ReferencePoisson":
        return cls(cost.observed, cost.backgrounds, [cost.priors[f"norm_{z}"][1] for z in cost.components], cost.tol)

    def __call__(self, signal):
        s = np.asarray(signal, dtype=float)
        single = s.shape == self.shape
        chi = self.profile(s.reshape(-1, *self.shape))[0]
        return float(chi[0]) if single else chi

    def replicas(self, signal, observed, centres=None):
        s = np.asarray(signal, dtype=float)
        n = s.shape[0]
        c = np.zeros((n, len(self.components))) if centres is None else np.asarray(centres, float)
        return self.profile(s.reshape(n, *self.shape), None, np.asarray(observed, float).reshape(n, -1), c)[0]

    def chi2_at(self, signal, eta) -> np.ndarray:
        """chi^2 (n,) at normalisations eta (n, n_z) for signals (n, *shape), nothing profiled."""
        s = np.asarray(signal, dtype=float).reshape(-1, *self.shape)
        return self._chi2(self._templates(s), 1.0 + np.asarray(eta, float).reshape(s.shape[0], -1))

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
            solve = lambda h, g: -_solve_spd(h, g)  # noqa: E731
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
        return chi, a - 1.0

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
        cold = np.arange(0, k, self.COLD_STRIDE)
        warm = np.setdiff1d(np.arange(k), cold)
        out = np.empty((n, k))
        nz = len(self.components)

        def solve(cols, start):
            m = cols.size
            sig = np.broadcast_to(signals[cols], (n, m, *signals.shape[1:])).reshape(n * m, *self.shape)
            chi, eta = self.profile(sig, start, np.repeat(d, m, axis=0), np.repeat(c, m, axis=0))
            out[:, cols] = chi.reshape(n, m)
            return eta.reshape(n, m, nz)

        eta_cold = solve(cold, None)
        if warm.size:
            below = np.searchsorted(cold, warm, side="right") - 1
            solve(warm, eta_cold[:, below].reshape(-1, nz))
        return out

    def _mu(self, templates: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Expected counts sum_z a_z N_z (n, bins) = a_S S + a_B @ B, the backgrounds being shared."""
        return scale[:, :1] * templates[:, 0, :] + scale[:, 1:] @ self.backgrounds

    @staticmethod
    def _derivatives(t: np.ndarray, x: np.ndarray, d: np.ndarray):
        """Gradient and Hessian of the Poisson deviance in the factors a (without the pull terms)."""
        # mu >= 1e-300 as in the compiled kernel: a bin with nothing expected nor seen (factors on their bound)
        mu = np.maximum(np.matmul(x[:, None, :], t)[:, 0, :], 1e-300)
        ratio = d / mu
        grad = 2.0 * np.matmul(t, (1.0 - ratio)[..., None])[..., 0]
        return grad, 2.0 * np.matmul(t * (ratio / mu)[:, None, :], np.swapaxes(t, 1, 2))

