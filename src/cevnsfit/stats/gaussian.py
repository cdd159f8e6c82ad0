"""Gaussian chi^2 with normalisation pulls and shape nuisances (LAr, AC22; see :mod:`cevnsfit.stats.chi2`)."""

from __future__ import annotations

import itertools
from typing import Mapping

import numpy as np

from .compiled import Kernels
from .cost import SIGNAL, ReplicaCost, c_array, linear_signals
from .quadratic import QuadraticProfile



KERNELS = Kernels("gaussian")  # ready on first use: numba is imported then (stats/compiled.py)


class GaussianChi2(ReplicaCost):
    """chi^2 = sum_b [(D_b - sum_z (1 + eta_z + sum_l eta^sys_zl) N_z,b) / sigma_b]^2 + sum_z ((eta_z - eta_z0) /
    sigma_z)^2 + sum_l (eps_l - eps_l0)^2, with eta^sys_zl = eps_l Delta^+_l (eps >= 0) or |eps_l| Delta^-_l
    (eps < 0) for the systematics l on component z (eps_l Delta^+_l for both signs when one-sided).

    ``shape_deltas``: name -> (component, Delta_plus, Delta_minus or None) relative per-bin variations;
    ``sigma``: per-bin statistical sigma (fixed); ``sigmas``: component -> relative pull width (None: free; 0:
    fixed at 1); ``centres``: parameter name -> pull centre (default 0).  Parameters: ``norm_<component>``, then
    ``shape_<systematic>`` (in units of its unit-width prior).

    Piecewise quadratic, so profiled *exactly*: on every sign branch of the two-sided systematics (+, -, or eps = 0)
    the minimum solves normal equations (see :meth:`profile`), and the best admissible branch is kept.  A fixed
    parameter drops its column from the normal equations; its term moves to the residual.
    """

    def __init__(self, name: str, observed, backgrounds: Mapping, sigmas: Mapping, sigma, shape_deltas: Mapping,
                 centres: Mapping | None = None):
        self.name = name
        self.observed = np.asarray(observed, dtype=float)
        self.shape = self.observed.shape
        self.n_bins = self.observed.size
        self.components = (SIGNAL, *backgrounds)
        self.backgrounds = (np.stack([np.asarray(backgrounds[z], float).ravel() for z in backgrounds]) if backgrounds
                            else np.zeros((0, self.n_bins)))
        self.w = 1.0 / np.asarray(sigma, float).ravel() ** 2
        self.sigma = 1.0 / np.sqrt(self.w)  # per-bin statistical sigma (n_bins,)
        self.systematics = list(shape_deltas)
        self.sys_component = [self.components.index(shape_deltas[s][0]) for s in self.systematics]

        def flat(key):  # the systematics' per-bin deltas as one (n_systematics, n_bins) array
            rows = [np.asarray(key(shape_deltas[s]), float).ravel() for s in self.systematics]
            return np.stack(rows) if rows else np.zeros((0, self.n_bins))

        self.delta_plus = flat(lambda d: d[1])
        self.delta_minus = flat(lambda d: d[2] if d[2] is not None else d[1])
        self.two_sided = np.array([shape_deltas[s][2] is not None for s in self.systematics], dtype=bool)
        self.shape_params = tuple(f"shape_{s}" for s in self.systematics)
        self._init_parameters(sigmas, dict.fromkeys(self.shape_params, 1.0), centres)
        self._pack()

    # Profiling every sign branch by its own normal equations costs 27 solves of 9 x 9 per point.  Instead the
    # problem is written once over the *union* of columns: every active normalisation and one-sided systematic
    # ("free"), and each active two-sided systematic twice, with slope +Delta^+ and with -Delta^- ("signed").  A
    # column is base * slope with base the signal S or a background, so the Gram matrix is const + S-linear +
    # S^2 terms.  The free columns are eliminated once per point (Schur complement); a branch then picks at most one
    # signed column per two-sided systematic and solves a (number of two-sided systematics)^2 system.  Exact: the
    # same normal equations, reordered.  A fixed parameter has no column: its background term is taken off the
    # residual c = D - sum B once, its signal term (a fixed signal normalisation or signal shape) per signal, as
    # the per-bin multiplier ``sig_offset`` of S.
    def _pack(self) -> None:
        nz, ns, nb = len(self.components), len(self.systematics), self.n_bins
        self.prior = self._inv_var()  # 1/sigma^2 per parameter, 0 without a prior term
        mask, value = self._fixed_values()
        sig_offset, bkg_term = np.zeros(nb), np.zeros(nb)
        cols = []  # (parameter, base component, slope, sign)
        for z in range(nz):
            if not mask[z]:
                cols.append((z, z, np.ones(nb), 0))
            elif z == 0:
                sig_offset += 1.0 + value[0]
            else:
                bkg_term += value[z] * self.backgrounds[z - 1]
        for l in range(ns):
            base = self.sys_component[l]
            if mask[nz + l]:
                v = value[nz + l]
                shift = v * self.delta_plus[l] if v >= 0 or not self.two_sided[l] else -v * self.delta_minus[l]
                if base == 0:
                    sig_offset += shift
                else:
                    bkg_term += shift * self.backgrounds[base - 1]
            elif self.two_sided[l]:
                cols += [(nz + l, base, self.delta_plus[l], 1), (nz + l, base, -self.delta_minus[l], -1)]
            else:
                cols.append((nz + l, base, self.delta_plus[l], 0))
        self._offset = bool(np.any(sig_offset != 0))
        self._sig_offset = c_array(sig_offset)
        self._theta_fixed = c_array(np.where(mask, value, 0.0) + np.where(mask & (np.arange(mask.size) == 0), 1.0, 0.0))
        cols.sort(key=lambda col: col[1] != 0)  # signal-based columns first: the S-dependent blocks are contiguous
        n_sig = sum(col[1] == 0 for col in cols)
        self._n_sig, self._n_col = n_sig, len(cols)
        self._col_param = c_array([col[0] for col in cols], np.int64)
        self._col_sign = c_array([col[3] for col in cols], np.int64)
        slope = np.stack([col[2] for col in cols]) if cols else np.zeros((0, nb))
        fixed = slope[n_sig:] * self.backgrounds[[col[1] - 1 for col in cols[n_sig:]]].reshape(-1, nb)
        sig, w = slope[:n_sig], self.w
        self._sig_slope, self._fixed_cols = c_array(sig), c_array(fixed)
        self._prior_col = c_array(self.prior[self._col_param])
        self._g_fixed = c_array((fixed * w) @ fixed.T + np.diag(self._prior_col[n_sig:] + 1e-12))
        self._sig_w, self._fixed_w = c_array((w * sig).T), c_array((w * fixed).T)  # replicas: rhs = (S * c) @ sig_w
        # the Gram matrix's S-dependent blocks, sum_b w m_j m_k S^2 (both columns on S) and sum_b w m_j S x_k (one)
        # (explicit bin counts: with the signal's normalisation fixed there may be no signal column, n_sig = 0)
        self._q = (w * sig[:, None, :] * sig[None, :, :]).reshape(n_sig * n_sig, nb).T.copy()
        self._l = (w * sig[:, None, :] * fixed[None, :, :]).reshape(n_sig * len(fixed), nb).T.copy()
        self._k_w = c_array(w)
        self._k_prior = c_array(self.prior)
        # residual at zero signal: the data less the nominal backgrounds and the fixed parameters' background terms
        self._bkg_sum = self.backgrounds.sum(axis=0) + bkg_term
        self._c = c_array(self.observed.ravel() - self._bkg_sum)
        self._k_centre = c_array(self._centre_values()[None] + (np.arange(mask.size) == 0))  # a_0 = 1 + eta_0
        self._rhs_fixed = c_array(fixed @ (w * self._c))  # the other columns' data side of X'Wc (observed data)
        # the signed columns chosen by each branch of the active two-sided systematics (or a padding slot)
        choices = [(1, -1, 0) if self.two_sided[l] else (2,) for l in range(ns) if not mask[nz + l]]
        active = [l for l in range(ns) if not mask[nz + l]]
        # (no active systematic: the one empty branch, a (1, 0) array -- reshape(-1, 0) cannot infer its rows)
        branches = np.array(list(itertools.product(*choices)), dtype=int).reshape(-1 if active else 1, len(active))
        self._u = c_array(np.flatnonzero(self._col_sign == 0), np.int64)
        self._e = c_array(np.flatnonzero(self._col_sign != 0), np.int64)
        two = [i for i, l in enumerate(active) if self.two_sided[l]]
        n_e = self._e.size
        sel = np.empty((branches.shape[0], len(two)), dtype=np.int64)
        for t, i in enumerate(two):
            for k, b in enumerate(branches[:, i]):
                hit = [q for q, j in enumerate(self._e)
                       if self._col_param[j] == nz + active[i] and self._col_sign[j] == b]
                sel[k, t] = hit[0] if hit else n_e + t  # padding slot t: identity row, zero right-hand side
        self._sel = c_array(sel, np.int64)
        self._sel_sign = c_array(np.concatenate([self._col_sign[self._e], np.zeros(len(two), np.int64)])[sel], np.int64)
        self._pick = c_array(np.where(sel < n_e, sel, -1), np.int64)
        # c'Wc + theta_0'P theta_0 (the fixed parameters' prior terms included) on the observed data
        self._r0w = float(self._replica_data(self.observed.reshape(1, -1), None)[2][0])
        # the background block F of the normal equations (with its priors), Jacobi-scaled (backgrounds of very
        # different sizes), and its data side b: what :meth:`quadratic` eliminates, the same for every signal
        self._f_scale = 1.0 / np.sqrt(np.diag(self._g_fixed))
        self._f_scaled = self._g_fixed * self._f_scale[:, None] * self._f_scale[None, :]
        self._f_rhs = self._rhs_fixed + self._prior_col[n_sig:] * self._k_centre[0][self._col_param[n_sig:]]
        b = self._f_rhs
        self._f_const = self._r0w - (b @ self._f_solve(b[:, None])[:, 0] if b.size else 0.0)  # r0w - b'F^-1 b

    def _f_solve(self, x: np.ndarray) -> np.ndarray:
        """F^-1 x for x (background columns, m), through the Jacobi-scaled F."""
        return self._f_scale[:, None] * np.linalg.solve(self._f_scaled, self._f_scale[:, None] * x)

    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` replicated data sets (n, n_bins) with this chi^2's own fluctuations: D_b = expected_b + sigma_b z,
        z ~ Normal(0, 1), sigma_b the fixed per-bin sigma of the chi^2 (it already holds the variance of any
        subtracted sample, e.g. a steady-state background measured off-beam)."""
        return np.asarray(expected, float)[None, :] + self.sigma[None, :] * rng.standard_normal((n, self.n_bins))

    def counts(self, signal: np.ndarray, theta: np.ndarray) -> dict:
        """(1 + eta_z + sum_l eta^sys_zl) N_z per component, at parameter values ``theta``."""
        nz = len(self.components)
        tpl = [np.asarray(signal, float).ravel(), *self.backgrounds]
        factor = [np.full(self.n_bins, 1.0 + theta[z]) for z in range(nz)]
        for l, base in enumerate(self.sys_component):
            e = theta[nz + l]
            factor[base] = factor[base] + (e * self.delta_plus[l] if e >= 0 or not self.two_sided[l]
                                           else -e * self.delta_minus[l])
        return {z: factor[i] * tpl[i] for i, z in enumerate(self.components)}

    def profile(self, signal: np.ndarray, observed: np.ndarray | None = None, centres: np.ndarray | None = None,
                gram_sig: np.ndarray | None = None):
        """(chi^2_min (n,), theta_hat (n, parameters): eta, eps; chosen branch (n,)) for a batch of signals;
        ``observed`` (n, bins) and ``centres`` (n, parameters: shifts of the pull centres) replace the data and the
        centres row by row (replicas).

        The mathematics.  Write theta for the active parameters (a = 1 + eta_signal, the background eta_z, the
        systematics eps_l) and X for the union columns (see ``_pack``): on a sign branch -- which fixes, for every
        two-sided systematic, which of its two columns is used (or neither, eps = 0) -- the fitted excess over the
        residual c is X_A theta_A for the branch's active columns A, and chi^2(theta) = |c - X_A theta_A|^2_W +
        |theta - theta_0|^2_P is quadratic: the minimum solves the normal equations G_AA theta_A = rhs_A with the
        Gram matrix G = X'WX + P and rhs = X'Wc + P theta_0.  A branch is admissible when its two-sided eps have the
        branch's signs; the profiled chi^2 is the smallest admissible one, recomputed from its residuals.

        Solving (kernels/gaussian.py, row by row): Jacobi scaling; the free columns eliminated once per row (Schur
        complement), leaving per branch a (number of two-sided systematics)^2 system over the signed columns.
        ``gram_sig`` (n, signal columns, columns): the signal columns' rows of G without their prior, when the
        caller formed them from a basis (``linear_factors``).
        """
        n = signal.shape[0]
        s = c_array(signal.reshape(n, -1))
        residual, centre, _ = self._replica_data(observed, centres)
        gram_sig = np.zeros((0, self._n_sig, self._n_col)) if gram_sig is None else c_array(gram_sig)
        return self._kernel(n, s, residual, centre, gram_sig, np.zeros((0, self._n_sig)), 0.0)

    def _kernel(self, n, s, residual, centre, gram_sig, rhs_sig, r0w):
        chi, theta, branch = np.empty(n), np.empty((n, self.prior.size)), np.empty(n, dtype=np.int64)
        KERNELS.gaussian_profile(s, residual, centre, self._sig_slope, self._fixed_cols, self._g_fixed, self._k_w,
                                    self._prior_col, self._col_param, self._col_sign, self._k_prior, self._u, self._e,
                                    self._pick, self._theta_fixed, self._sig_offset, self._offset, gram_sig,
                                    rhs_sig, self._rhs_fixed, float(r0w), chi, theta, branch)
        return chi, theta, branch

    def _replica_data(self, observed, centres):
        """(residual c = D - background terms (n or 1, bins), pull centres theta_0 with a_0 = 1 + eta_0 (n or 1,
        parameters), c'Wc + theta_0'P theta_0 + the fixed parameters' prior terms per row, or None for the
        observed data)."""
        if observed is None:
            return self._c[None], self._k_centre, None
        residual = c_array(np.asarray(observed, float) - self._bkg_sum)
        centre = self._k_centre if centres is None else c_array(self._k_centre + centres)
        centre = np.broadcast_to(centre, (residual.shape[0], self.prior.size))
        mask = np.zeros(self.prior.size, dtype=bool)
        mask[self._col_param] = True  # the active parameters
        pulls = np.where(mask, centre, self._theta_fixed - centre)  # theta_0 (active) or theta_fixed - theta_0
        return residual, c_array(centre), (residual * residual) @ self.w + (pulls * pulls) @ self.prior

    def linear_factors(self, basis: np.ndarray) -> dict:
        """Gram products of a signal basis B (K, *shape): signal column j of the signal c @ B is
        sum_k c_k slope_j B_k, so its Gram rows are quadratic in c -- G_jl = sum_kk' c_k c_k' Q[k, k', j, l] with
        the other signal columns and sum_k c_k L[k, j, m] with the background columns m -- and its data side
        X'Wc = sum_k c_k R[k, j] (observed data).  Q, L and R cost one pass over the bins per basis instead of per
        signal (the per-row Gram products are most of the row's cost)."""
        return {k: v[0] for k, v in self._lines_factors(np.asarray(basis, dtype=float)[None]).items()}

    def _lines_factors(self, bases: np.ndarray) -> dict:
        """``linear_factors`` of R bases at once (R, K, *shape): each array with a leading R axis."""
        r_, k = bases.shape[:2]
        ns, nb = self._n_sig, self.n_bins
        b = bases.reshape(r_, k, nb)
        x = b[:, :, None, :] * self._sig_slope[None, None]  # (R, K, n_sig, bins): each basis template's columns
        xw = x * self.w
        # Gram products as matrix products (einsum's loops were 1/3 of Dresden-II's planes)
        q = (xw.reshape(r_, k * ns, nb) @ x.reshape(r_, k * ns, nb).transpose(0, 2, 1)).reshape(r_, k, ns, k, ns)
        lin = (xw.reshape(r_ * k * ns, nb) @ self._fixed_cols.T).reshape(r_, k, ns, self._fixed_cols.shape[0])
        return {"q": q.transpose(0, 1, 3, 2, 4), "l": lin, "r": xw @ self._c}

    def _gram_lines(self, coefficients: np.ndarray, factors: dict) -> np.ndarray:
        """The signal rows (R, n, n_sig, n_col) of the Gram matrix (no prior) for the signals coefficients (n, K)
        @ basis of each of R bases (``_lines_factors``)."""
        c = np.asarray(coefficients, dtype=float)
        n, k = c.shape
        q, lin = factors["q"], factors["l"]
        r_, ns, nf = q.shape[0], q.shape[3], lin.shape[3]  # (explicit sizes: a fixed signal norm leaves ns = 0)
        cc = (c[:, :, None] * c[:, None, :]).reshape(n, k * k)
        g_ss = (cc @ q.reshape(r_, k * k, ns * ns)).reshape(r_, n, ns, ns)
        return np.concatenate([g_ss, (c @ lin.reshape(r_, k, ns * nf)).reshape(r_, n, ns, nf)], axis=3)

    def _gram_sig(self, coefficients: np.ndarray, factors: dict) -> np.ndarray:
        """The signal rows (n, n_sig, n_col) of the Gram matrix (no prior) for signals coefficients @ basis."""
        return self._gram_lines(coefficients, {k: v[None] for k, v in factors.items()})[0]

    def profile_linear(self, coefficients: np.ndarray, basis: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """``profile`` of the signals coefficients (n, K) @ basis (K, *shape) on the observed data
        (``profile_lines`` with one basis)."""
        return self.profile_lines(coefficients, np.asarray(basis, dtype=float)[None])[0][0], None

    def profile_lines(self, coefficients: np.ndarray, bases: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """``profile_linear`` on R bases (R, K, *shape) in one pass: every row's Gram rows and right-hand side are
        quadratic and linear in its coefficients (``linear_factors``), so no row touches the bins and chi^2 comes
        from the normal equations (equal to the residuals' chi^2 to ~3e-12: tests/test_compiled.py,
        test_reactor.py).  Without two-sided systematics (one branch) the profile is a closed form in the
        coefficients (:meth:`quadratic`); with them, the kernel solves every row, branch by branch.  A fixed signal
        term (its residual depends on the signal) takes ``profile``."""
        c = np.asarray(coefficients, dtype=float)
        bases = np.asarray(bases, dtype=float)
        form = self.quadratic(bases)
        if form is not None:
            return form(c), None
        r_, n = bases.shape[0], c.shape[0]
        f = self._lines_factors(bases)
        gram = c_array(self._gram_lines(c, f).reshape(r_ * n, self._n_sig, self._n_col))
        if self._offset:
            s = np.concatenate([linear_signals(c, b) for b in bases])
            return self.profile(s, gram_sig=gram)[0].reshape(r_, n), None
        rhs = c_array((c @ f["r"]).reshape(r_ * n, self._n_sig))  # (R, n, n_sig)
        chi = self._kernel(r_ * n, np.zeros((0, self.n_bins)), self._c[None], self._k_centre, gram, rhs, self._r0w)[0]
        return chi.reshape(r_, n), None

    def quadratic(self, bases: np.ndarray) -> QuadraticProfile | None:
        """The profile of the signals in R bases (R, K, *shape) as a closed form in their coefficients
        (:class:`~cevnsfit.stats.quadratic.QuadraticProfile`, leading axis R), or None where it is not one: with
        two-sided systematics (a branch per sign) or a fixed parameter's term on the signal.

        The background columns' Gram block F (with its priors) and data side b do not depend on the signal, so they
        are eliminated once per basis instead of once per row: with G_sf = sum_k c_k L_k, G_ss = sum_kk' c_k c_k'
        Q_kk' and rhs_s = sum_k c_k R_k (``_lines_factors``), the Schur complement of F is sum_kk' c_k c_k' (Q_kk' -
        L_k F^-1 L_k'^T) + P_s, its right-hand side sum_k c_k (R_k - L_k F^-1 b) + P_s theta_0s, and the constant
        r0w - b'F^-1 b.  The same normal equations as the kernel's, eliminated in another order (agreement ~1e-14
        relative on Dresden-II's planes: tests/test_reactor.py, tests/test_compiled.py).  What it saves, measured
        against the kernel solving every point: Dresden-II (31 decay-length members, stacked by
        :class:`~cevnsfit.stats.gridprofile.GridProfiledCost`), its eleven planes 2.6 -> 0.4 s CPU, `cevnsfit limits
        --dataset dresden2` 3.0 -> 1.5 s (docs/validation/speed.md)."""
        if self._offset or self._e.size:
            return None
        bases = np.asarray(bases, dtype=float)
        f = self._lines_factors(bases)
        ns, q, lin, r = self._n_sig, f["q"], f["l"], f["r"]
        if self._f_rhs.size:
            l_f_inv = self._f_solve(lin.reshape(-1, lin.shape[-1]).T).T.reshape(lin.shape)  # L_k F^-1 (R, K, n_sig, nf)
            q = q - np.einsum("rkjm,rlim->rklji", l_f_inv, lin)
            r = r - l_f_inv @ self._f_rhs
        prior = self._prior_col[:ns]
        centre = self._k_centre[0][self._col_param[:ns]]
        return QuadraticProfile(np.full(bases.shape[0], self._f_const), q, r, prior + 1e-12, prior * centre)

    def replicas_linear(self, coefficients: np.ndarray, basis: np.ndarray, observed: np.ndarray,
                        centres: np.ndarray | None = None, factors=None) -> np.ndarray:
        n = np.shape(coefficients)[0]
        f = self.linear_factors(basis) if factors is None else factors
        d, c = self._replica_rows(n, observed, centres)
        return self.profile(linear_signals(coefficients, basis), d, c, gram_sig=self._gram_sig(coefficients, f))[0]

    def _gram(self, s: np.ndarray) -> np.ndarray:
        """Gram matrix (n, columns, columns) with the priors, over the union of columns, for signals s (n, bins)."""
        n, ns = s.shape[0], self._n_sig
        g = np.empty((n, self._n_col, self._n_col))
        g[:, :ns, :ns] = ((s * s) @ self._q).reshape(n, ns, ns) + np.diag(self._prior_col[:ns] + 1e-12)
        lin = (s @ self._l).reshape(n, ns, -1)
        g[:, :ns, ns:] = lin
        g[:, ns:, :ns] = np.swapaxes(lin, 1, 2)
        g[:, ns:, ns:] = self._g_fixed
        return g

    def grid_factors(self, signals: np.ndarray) -> dict:
        """The template side of ``replicas_grid`` (k templates): the Jacobi scale of each Gram matrix, G_ff^-1,
        G_fs and each branch's inverse of its Schur block -- the elimination of ``profile``, once per template."""
        k = signals.shape[0]
        s = np.asarray(signals, float).reshape(k, -1)
        gram = self._gram(s)
        scale = np.sqrt(np.einsum("nii->ni", gram))  # symmetric Jacobi scaling (a huge signal's columns ~1e20)
        gram /= scale[:, :, None] * scale[:, None, :]
        free, signed = self._u, self._e
        ff_inv = np.linalg.inv(gram[:, free][:, :, free])
        g_fs = gram[:, free][:, :, signed]
        branch_inv = np.linalg.inv(self._branch_blocks(gram, g_fs, ff_inv @ g_fs))  # (k, branches, two, two)
        return {"s": c_array(s), "col_scale": c_array(scale), "ff_inv": c_array(ff_inv), "g_fs": c_array(g_fs),
                "branch_inv": c_array(branch_inv)}

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
                      factors: dict | None = None) -> np.ndarray:
        """Profiled chi^2 (n, k) of every replica (observed (n, bins), centres (n, parameters)) at every signal
        template (k, *shape): ``replicas`` of all n k pairs, computed faster.

        The Gram matrix G = X'WX + P depends on the signal only, not on the replica's data: the elimination of
        ``profile`` (the free block G_ff, the Schur complement, each branch's signed block) is done once per
        template (``grid_factors``; pass them as ``factors`` to reuse them across calls), and every replica then
        costs matrix-vector products (kernels/gaussian.py, gaussian_grid), the chi^2 of a branch from its normal
        equations, c'Wc + theta_0'P theta_0 - rhs'theta (equal to the residuals' to ~1e-10, tests/test_fc_speed.py).
        With a fixed signal term the residual depends on the template too: then every pair through ``replicas``.
        """
        n = np.asarray(observed).shape[0]
        d, c = self._replica_rows(n, observed, centres)
        if self._offset:
            return ReplicaCost.replicas_grid(self, signals, d, c)
        f = self.grid_factors(signals) if factors is None else factors
        residual, centre, r0w = self._replica_data(d, c)
        chi = np.empty((n, f["s"].shape[0]))
        KERNELS.gaussian_grid(f["s"], residual, centre, c_array(r0w), self._sig_w, self._fixed_w, self._prior_col,
                                 self._col_param, f["col_scale"], f["ff_inv"], f["g_fs"], f["branch_inv"], self._u,
                                 self._e, self._sel, self._sel_sign, chi)
        return chi
