"""The reference Gaussian profile: the numpy profile that :class:`cevnsfit.stats.gaussian.GaussianChi2` had before
its profiles moved to the compiled kernel, kept here as the independent reference the kernel is compared with
(tests/test_compiled.py, tests/test_fc_speed.py): the same normal equations over the union of columns, the free
columns eliminated by a vectorised Schur complement over all rows, every branch solved at once; ``replicas_grid``
as matrix products per template (``exact``: each chosen branch's chi^2 recomputed from its residuals).  Built
from a cost's public attributes (:meth:`ReferenceGaussian.of`)."""

from __future__ import annotations

import itertools
from typing import Mapping

import numpy as np

from reference_common import jacobi_scale, solve_spd


class ReferenceGaussian:
    """Gaussian chi^2 with normalisation pulls and shape nuisances (see cevnsfit.stats.gaussian).

    ``shape_deltas``: name -> (component, Delta_plus, Delta_minus or None) relative per-bin variations.
    ``sigma``: per-bin statistical sigma (fixed), ``sigmas``: component -> relative pull width (None = free).
    """

    def __init__(self, observed, backgrounds: Mapping, sigmas: Mapping, sigma, shape_deltas: Mapping):
        self.observed = np.asarray(observed, dtype=float)
        self.shape = self.observed.shape
        self.n_bins = self.observed.size
        self.components = ("cevns", *backgrounds)
        self.backgrounds = (np.stack([np.asarray(backgrounds[z], float).ravel() for z in backgrounds]) if backgrounds
                            else np.zeros((0, self.n_bins)))
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
        """
        n = signal.shape[0]
        s = signal.reshape(n, -1)
        residual, centre, r0w = self._replica_data(n, observed, centres)
        gram, rhs = self._gram(s, residual, centre)
        col_scale = jacobi_scale(gram, rhs)
        free, signed, branch_cols = self._u, self._e, self._sel
        n_signed, n_two = signed.size, branch_cols.shape[1]
        g_fs = gram[:, free][:, :, signed]
        # free-column solutions of G_ff [y | z] = [G_fs | rhs_f]: theta_f = z - y theta_s
        y_z = np.linalg.solve(gram[:, free][:, :, free], np.concatenate([g_fs, rhs[:, free, None]], axis=2))
        schur_rhs = np.zeros((n, n_signed + n_two))
        schur_rhs[:, :n_signed] = rhs[:, signed] - np.einsum("nfs,nf->ns", g_fs, y_z[:, :, n_signed])
        eps = solve_spd(self._branch_blocks(gram, g_fs, y_z[:, :, :n_signed]), schur_rhs[:, branch_cols])
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

    def grid_factors(self, signals: np.ndarray) -> dict:
        """The template side of ``replicas_grid`` (k templates): scaled Gram matrices, G_ff^-1, y = G_ff^-1 G_fs
        and each branch's inverse of its Schur block -- the elimination of ``profile``, once per template."""
        k = signals.shape[0]
        s = np.asarray(signals, float).reshape(k, -1)
        gram, rhs = self._gram(s)
        col_scale = jacobi_scale(gram, rhs)  # the observed data's rhs, unused: replicas bring their own
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

    @classmethod
    def of(cls, cost) -> "ReferenceGaussian":
        bkg = {z: cost.backgrounds[i] for i, z in enumerate(cost.components[1:])}
        deltas = {s: (cost.components[cost.sys_component[l]], cost.delta_plus[l],
                      cost.delta_minus[l] if cost.two_sided[l] else None) for l, s in enumerate(cost.systematics)}
        sigmas = {z: cost.priors[f"norm_{z}"][1] for z in cost.components}
        return cls(cost.observed, bkg, sigmas, cost.sigma, deltas)

    def __call__(self, signal):
        s = np.asarray(signal, dtype=float)
        single = s.shape == self.shape
        chi = self.profile(s.reshape(-1, self.n_bins))[0]
        return float(chi[0]) if single else chi

    def replicas(self, signal, observed, centres=None):
        n = np.shape(signal)[0]
        return self.profile(np.asarray(signal, float).reshape(n, -1), np.asarray(observed, float).reshape(n, -1),
                            centres)[0]
