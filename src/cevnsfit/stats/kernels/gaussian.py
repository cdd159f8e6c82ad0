"""The Gaussian profile of :class:`cevnsfit.stats.gaussian.GaussianChi2`, compiled (see
:mod:`cevnsfit.stats.compiled`)."""

import math

import numpy as np

from .common import _eliminate, _jit


@_jit
def gaussian_profile(s, c, centre, sig_slope, fixed_cols, g_fixed, w, prior_col, col_param, col_sign, prior,
                     free, signed, pick, theta_fixed, sig_offset, offset, gram_sig, rhs_sig, rhs_fixed, r0w, chi_out,
                     theta_out, branch_out):
    """``GaussianChi2.profile`` row by row (the mathematics and the branch rule: see its docstring).

    s (n, bins) signals; c (n or 1, bins) residuals at zero signal (data less the nominal backgrounds and the
    fixed parameters' background terms); centre (n or 1, parameters) pull centres with a = 1 for the signal;
    theta_fixed (parameters,): the values of the fixed parameters (0 elsewhere); when ``offset``, the fixed
    parameters' signal terms sig_offset (bins) * s are taken off the residual too; sig_slope (n_sig, bins): signal
    column j = sig_slope[j] * s; fixed_cols (n_col - n_sig, bins); g_fixed: their Gram block with its prior; free,
    signed: the union columns common to all sign branches and the others; pick (branches, two-sided): each
    branch's signed columns as positions in ``signed`` (-1: none, eps = 0); gram_sig (n or 0, n_sig, n_col): the
    signal columns' rows of the Gram matrix without their prior, when the caller has them (signals linear in a
    small basis; 0 rows: computed here).  rhs_sig (n or 0, n_sig), rhs_fixed (n_col - n_sig,), r0w: the data parts
    of the right-hand side X'Wc of the signal and the other columns, and c'Wc + theta_0'P theta_0 (with the fixed
    parameters' prior terms), when the caller has them (a signal linear in a basis, the observed data): then no
    row touches the bins (s is not read), and chi^2 = r0w - rhs'theta from the normal equations.  Per row: the
    Gram matrix, Jacobi scaling, the free columns eliminated once (Schur complement), then per branch a system of
    at most two-sided x two-sided."""
    n = chi_out.shape[0]
    nb = sig_slope.shape[1]
    linear = rhs_sig.shape[0] > 0
    n_sig = sig_slope.shape[0]
    n_col = n_sig + fixed_cols.shape[0]
    n_par = prior.shape[0]
    n_br, n_pick = pick.shape
    nf, ne = free.size, signed.size
    x_sig = np.empty((n_sig, nb))
    wc = np.empty(nb)
    g = np.empty((n_col, n_col))
    rhs = np.empty(n_col)
    scale = np.empty(n_col)
    aug = np.empty((nf, ne + 1))  # G_ff^-1 [G_fs | rhs_f] = [y | z]
    gff = np.empty((nf, nf))
    schur = np.empty((ne, ne))
    srhs = np.empty(ne)
    m = np.empty((n_pick, n_pick))
    r = np.empty((n_pick, 1))
    eps = np.empty((n_pick, 1))
    best_eps = np.empty(n_pick)
    pivot = np.empty(max(nf, n_pick))
    theta_col = np.empty(n_col)
    theta = np.empty(n_par)
    excess = np.empty(nb)
    cr = np.empty(nb)
    for i in range(n):
        ci = c[i] if c.shape[0] > 1 else c[0]
        cen = centre[i] if centre.shape[0] > 1 else centre[0]
        if not linear:
            if offset:  # the signal term of fixed parameters (a fixed signal normalisation or shape)
                for b in range(nb):
                    cr[b] = ci[b] - sig_offset[b] * s[i, b]
                ci = cr
            for j in range(n_sig):
                for b in range(nb):
                    x_sig[j, b] = sig_slope[j, b] * s[i, b]
            for b in range(nb):
                wc[b] = w[b] * ci[b]
        # Gram matrix and right-hand side (the fixed block is the same for every row)
        if gram_sig.shape[0] > 0:
            for j in range(n_sig):
                for k in range(n_col):
                    g[j, k] = gram_sig[i, j, k]
                    g[k, j] = gram_sig[i, j, k]
        else:
            for j in range(n_sig):
                for k in range(j + 1):
                    acc = 0.0
                    for b in range(nb):
                        acc += x_sig[j, b] * x_sig[k, b] * w[b]
                    g[j, k] = acc
                    g[k, j] = acc
                for k in range(n_sig, n_col):
                    acc = 0.0
                    for b in range(nb):
                        acc += x_sig[j, b] * fixed_cols[k - n_sig, b] * w[b]
                    g[j, k] = acc
                    g[k, j] = acc
        for j in range(n_sig):
            g[j, j] += prior_col[j] + 1e-12
        for j in range(n_sig, n_col):
            for k in range(n_sig, n_col):
                g[j, k] = g_fixed[j - n_sig, k - n_sig]
        for j in range(n_col):
            acc = 0.0
            if linear:
                acc = rhs_sig[i, j] if j < n_sig else rhs_fixed[j - n_sig]
            elif j < n_sig:
                for b in range(nb):
                    acc += x_sig[j, b] * wc[b]
            else:
                for b in range(nb):
                    acc += fixed_cols[j - n_sig, b] * wc[b]
            rhs[j] = acc + prior_col[j] * cen[col_param[j]]
        for j in range(n_col):  # Jacobi scaling (a huge signal's columns are ~1e20 larger than the pulls')
            scale[j] = 1.0 / math.sqrt(g[j, j])
        for j in range(n_col):
            rhs[j] *= scale[j]
            for k in range(n_col):
                g[j, k] *= scale[j] * scale[k]
        # free columns: G_ff [y | z] = [G_fs | rhs_f] by elimination without pivoting (SPD)
        for a in range(nf):
            for b2 in range(nf):
                gff[a, b2] = g[free[a], free[b2]]
            for e in range(ne):
                aug[a, e] = g[free[a], signed[e]]
            aug[a, ne] = rhs[free[a]]
        _eliminate(gff, aug, nf, pivot, aug)
        # Schur complement of the signed columns and its right-hand side; chi^2 of the free part
        base = 0.0
        for a in range(nf):
            base -= rhs[free[a]] * aug[a, ne]
        for e in range(ne):
            acc = rhs[signed[e]]
            for a in range(nf):
                acc -= g[free[a], signed[e]] * aug[a, ne]
            srhs[e] = acc
            for e2 in range(ne):
                acc = g[signed[e], signed[e2]]
                for a in range(nf):
                    acc -= g[free[a], signed[e]] * aug[a, e2]
                schur[e, e2] = acc
        # every branch: its picked signed columns; chi^2 up to the row's constant; admissible signs
        best, best_chi, first_chi = -1, np.inf, 0.0
        for br in range(n_br):
            kk = 0
            for t in range(n_pick):
                e = pick[br, t]
                if e < 0:
                    continue
                r[kk, 0] = srhs[e]
                k2 = 0
                for t2 in range(n_pick):
                    e2 = pick[br, t2]
                    if e2 < 0:
                        continue
                    m[kk, k2] = schur[e, e2]
                    k2 += 1
                kk += 1
            _eliminate(m, r, kk, pivot, eps)
            ch = base
            ok = True
            kk = 0
            for t in range(n_pick):
                e = pick[br, t]
                if e < 0:
                    continue
                ch -= srhs[e] * eps[kk, 0]
                if col_sign[signed[e]] * eps[kk, 0] * scale[signed[e]] < -1e-12:
                    ok = False
                kk += 1
            if br == 0:
                first_chi = ch
            if (ok and ch < best_chi) or (best < 0 and br == 0):  # none admissible: branch 0
                if ok:
                    best_chi = ch
                best = br if ok else -1
                for q in range(kk):
                    best_eps[q] = eps[q, 0]
        chosen = best if best >= 0 else 0
        # the chosen branch's parameters (theta_f = z - y theta_s), and its chi^2 from the residuals (exact)
        for j in range(n_col):
            theta_col[j] = 0.0
        kk = 0
        for t in range(n_pick):
            e = pick[chosen, t]
            if e < 0:
                continue
            theta_col[signed[e]] = best_eps[kk]
            kk += 1
        for a in range(nf):
            acc = aug[a, ne]
            for e in range(ne):
                acc -= aug[a, e] * theta_col[signed[e]]
            theta_col[free[a]] = acc
        for p in range(n_par):
            theta[p] = theta_fixed[p]
        if linear:  # chi^2 from the normal equations (the branch's, up to the row's constant r0w)
            for j in range(n_col):
                theta[col_param[j]] += theta_col[j] * scale[j]
            chi_out[i] = r0w + (best_chi if best >= 0 else first_chi)
            for p in range(n_par):
                theta_out[i, p] = theta[p]
            theta_out[i, 0] -= 1.0
            branch_out[i] = chosen
            continue
        for b in range(nb):
            excess[b] = 0.0
        for j in range(n_col):
            t = theta_col[j] * scale[j]
            if t == 0.0:
                continue
            theta[col_param[j]] += t
            if j < n_sig:
                for b in range(nb):
                    excess[b] += t * x_sig[j, b]
            else:
                for b in range(nb):
                    excess[b] += t * fixed_cols[j - n_sig, b]
        ch = 0.0
        for b in range(nb):
            d = ci[b] - excess[b]
            ch += d * d * w[b]
        for p in range(n_par):
            ch += (theta[p] - cen[p]) ** 2 * prior[p]
        chi_out[i] = ch
        for p in range(n_par):
            theta_out[i, p] = theta[p]
        theta_out[i, 0] -= 1.0
        branch_out[i] = chosen


@_jit
def gaussian_grid(s, residual, centre, r0w, sig_w, fixed_w, prior_col, col_param, col_scale, ff_inv, g_fs,
                  branch_inv, free, signed, sel, sel_sign, chi):
    """chi[i, j] of ``GaussianChi2.replicas_grid``: replica i (residual (n, bins) = data - nominal backgrounds,
    pull centres centre (n, parameters) with a = 1, r0w[i] = c'Wc + theta_0'P theta_0) at template j (s (k, bins)),
    from the template-side factors of ``grid_factors`` (col_scale, ff_inv, g_fs, branch_inv: per template).

    Per replica the data-side products are formed once (residual x weights of every column); per pair the
    right-hand side of the normal equations, the free columns' solution z = G_ff^-1 rhs_f, the Schur right-hand
    side and, per branch, its signed solution and chi^2 = r0w - rhs_f.z - srs.eps; the smallest admissible
    chi^2 (branch 0's when none is admissible)."""
    k, nb = s.shape
    n = residual.shape[0]
    n_sig = sig_w.shape[1]
    n_col = n_sig + fixed_w.shape[1]
    nf, ne = free.size, signed.size
    n_br, two = sel.shape
    u = np.empty((n_sig, nb))
    rhs_fixed = np.empty(n_col)
    rhs = np.empty(n_col)
    z = np.empty(nf)
    srs = np.empty(ne + two)
    scale_s = np.empty(ne + two)
    eps = np.empty(two)
    for i in range(n):
        for q in range(n_sig):
            for b in range(nb):
                u[q, b] = residual[i, b] * sig_w[b, q]
        for c in range(n_col):
            acc = prior_col[c] * centre[i, col_param[c]]
            if c >= n_sig:
                for b in range(nb):
                    acc += residual[i, b] * fixed_w[b, c - n_sig]
            rhs_fixed[c] = acc
        for j in range(k):
            for c in range(n_col):
                acc = rhs_fixed[c]
                if c < n_sig:
                    for b in range(nb):
                        acc += s[j, b] * u[c, b]
                rhs[c] = acc / col_scale[j, c]
            base = r0w[i]
            for a in range(nf):
                acc = 0.0
                for a2 in range(nf):
                    acc += ff_inv[j, a, a2] * rhs[free[a2]]
                z[a] = acc
                base -= rhs[free[a]] * acc
            for e in range(ne):
                acc = rhs[signed[e]]
                for a in range(nf):
                    acc -= g_fs[j, a, e] * z[a]
                srs[e] = acc
                scale_s[e] = col_scale[j, signed[e]]
            for t in range(two):
                srs[ne + t] = 0.0
                scale_s[ne + t] = 1.0
            best = np.inf
            first = 0.0
            for br in range(n_br):
                ch = base
                ok = True
                for t in range(two):
                    acc = 0.0
                    for t2 in range(two):
                        acc += branch_inv[j, br, t, t2] * srs[sel[br, t2]]
                    eps[t] = acc
                    ch -= srs[sel[br, t]] * acc
                    if sel_sign[br, t] * acc / scale_s[sel[br, t]] < -1e-12:
                        ok = False
                if br == 0:
                    first = ch
                if ok and ch < best:
                    best = ch
            chi[i, j] = best if best < np.inf else first


