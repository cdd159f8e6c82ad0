"""The numba kernels of :mod:`cevnsfit.stats.compiled` (imported only where numba is installed; see there)."""

import math

import numba
import numpy as np

# reassoc/contract/arcp let the sums over bins vectorise; not nnan/ninf: the kernel tests isfinite
_jit = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp"}, error_model="numpy")


@_jit
def _hold(hess, grad, k):
    """Hold parameter k where it is: zero gradient, its Hessian row and column replaced by the identity's."""
    grad[k] = 0.0
    for l in range(grad.size):
        hess[k, l] = 0.0
        hess[l, k] = 0.0
    hess[k, k] = 1.0


@_jit
def _deviance(mu, d, dlnd, x, centre, inv_var):
    """Poisson chi^2 2 sum[mu - D ln mu] + 2 dlnd (dlnd = sum[D ln D - D]) plus the pulls sum (x - centre)^2 / sigma^2."""
    s_mu = 0.0
    s_dl = 0.0
    for b in range(mu.size):
        s_mu += mu[b]
        if d[b] != 0.0:
            s_dl += d[b] * math.log(max(mu[b], 1e-300))
    out = 2.0 * (s_mu - s_dl + dlnd)
    for k in range(x.size):
        out += (x[k] - centre[k]) ** 2 * inv_var[k]
    return out


@_jit
def _poisson_derivatives(jac, mu, d, x, centre, inv_var, w1, w2, grad, hess):
    """Gradient and Hessian of 2 sum[mu - D ln mu] + sum (x - centre)^2 / sigma^2 in parameters whose derivatives of
    mu are ``jac`` (k, bins): grad = 2 J (1 - D/mu) + pulls, hess = 2 J diag(D/mu^2) J' (the term of mu's second
    derivatives and the pulls' 2/sigma^2 are the caller's).  Leaves w1 = 1 - D/mu for the caller."""
    for b in range(mu.size):
        inv = 1.0 / max(mu[b], 1e-300)
        ratio = d[b] * inv
        w1[b] = 1.0 - ratio
        w2[b] = ratio * inv
    for k in range(jac.shape[0]):
        acc = 0.0
        for b in range(mu.size):
            acc += jac[k, b] * w1[b]
        grad[k] = 2.0 * acc + 2.0 * (x[k] - centre[k]) * inv_var[k]
        for l in range(k + 1):
            acc = 0.0
            for b in range(mu.size):
                acc += jac[k, b] * jac[l, b] * w2[b]
            hess[k, l] = 2.0 * acc
            hess[l, k] = 2.0 * acc


@_jit
def _decrement(grad, step):
    """Newton decrement: the chi^2 decrease that the quadratic model predicts for ``step``, -grad.step / 2."""
    out = 0.0
    for k in range(grad.size):
        out -= 0.5 * grad[k] * step[k]
    return out


@_jit
def _positive_step(x, step, n):
    """Largest fraction <= 1 of ``step`` that keeps x[:n] positive, stopping at 9/10 of the way to 0."""
    lam = 1.0
    for k in range(n):
        if step[k] < 0.0:
            lam = min(lam, -0.9 * x[k] / step[k])
    return lam


@_jit
def poisson_profile(sig, bkg, d, dlnd, ctr, inv_var, a, chi, tol, pin):
    """Profile row i: signal sig[i] (n_bins,), backgrounds bkg (n_z - 1, n_bins), data d[i or 0], constant
    dlnd[i], pull centres ctr[i or 0] (= 1 + centre), factors a[i] (start in, minimum out), chi[i] (out)."""
    n, nb = sig.shape
    nz = a.shape[1]
    t = np.empty((nz, nb))
    mu = np.empty(nb)
    w1 = np.empty(nb)
    w2 = np.empty(nb)
    grad = np.empty(nz)
    hess = np.empty((nz, nz))
    m = np.empty((nz, nz))
    r = np.empty((nz, 1))
    step = np.empty(nz)
    piv = np.empty(nz)
    trial = np.empty(nz)
    for z in range(1, nz):
        t[z] = bkg[z - 1]
    for i in range(n):
        di = d[i] if d.shape[0] > 1 else d[0]
        ci = ctr[i] if ctr.shape[0] > 1 else ctr[0]
        t[0] = sig[i]
        x = a[i]
        c0 = _chi2(t, x, di, dlnd[i], ci, inv_var, mu)
        if not math.isfinite(c0):  # a warm start outside the domain: restart from the nominal normalisations
            for z in range(nz):
                x[z] = 1.0
            c0 = _chi2(t, x, di, dlnd[i], ci, inv_var, mu)
        for _ in range(60):
            # gradient and Hessian at x (``mu`` holds x's expected counts: the last chi^2 evaluated was x's)
            _poisson_derivatives(t, mu, di, x, ci, inv_var, w1, w2, grad, hess)
            for z in range(nz):
                hess[z, z] += 2.0 * inv_var[z] + 1e-300
            _solve_spd(hess, grad, m, r, piv, step)
            # active set: a factor at its bound pulled down is held there (projected Newton, as the numpy path)
            any_pinned = False
            for z in range(nz):
                if x[z] < pin and (grad[z] > 0.0 or step[z] < 0.0):
                    any_pinned = True
                    _hold(hess, grad, z)
            if any_pinned:
                _solve_spd(hess, grad, m, r, piv, step)
            if _decrement(grad, step) < max(tol, 1e-13 * c0):
                break
            lam = _positive_step(x, step, nz)
            moved = False
            for _ in range(30):
                for z in range(nz):
                    trial[z] = x[z] + lam * step[z]
                c = _chi2(t, trial, di, dlnd[i], ci, inv_var, mu)
                if c <= c0 + 1e-12:
                    for z in range(nz):
                        x[z] = trial[z]
                    c0 = c
                    moved = True
                    break
                lam *= 0.5
            if not moved:
                break
        chi[i] = c0


@_jit
def _chi2(t, x, d, dlnd, ctr, inv_var, mu):
    """chi^2 at factors x (PoissonChi2._chi2 for one row); leaves the expected counts in ``mu``."""
    nz, nb = t.shape
    for b in range(nb):
        mu[b] = 0.0
    for z in range(nz):
        xz = x[z]
        for b in range(nb):
            mu[b] += xz * t[z, b]
    return _deviance(mu, d, dlnd, x, ctr, inv_var)


@_jit
def _eliminate(m, r, k, pivot, out):
    """Solve m[:k, :k] out[:k] = r[:k] (r, out: (>= k, n_rhs); ``out`` may be ``r``) by Gaussian elimination
    without pivoting (m symmetric positive definite; as chi2._solve_spd), overwriting m and r; pivot = 1/diagonal."""
    n_rhs = r.shape[1]
    for a in range(k):
        pivot[a] = 1.0 / m[a, a]
        for b in range(a + 1, k):
            f = m[b, a] * pivot[a]
            for l in range(a, k):
                m[b, l] -= f * m[a, l]
            for q in range(n_rhs):
                r[b, q] -= f * r[a, q]
    for a in range(k - 1, -1, -1):
        for q in range(n_rhs):
            acc = r[a, q]
            for l in range(a + 1, k):
                acc -= m[a, l] * out[l, q]
            out[a, q] = acc * pivot[a]


@_jit
def _solve_spd(h, g, m, r, pivot, out):
    """out = -h^-1 g (h symmetric positive definite; m (k, k), r (k, 1), pivot (k,): work arrays)."""
    k = h.shape[0]
    for i in range(k):
        r[i, 0] = g[i]
        for j in range(k):
            m[i, j] = h[i, j]
    _eliminate(m, r, k, pivot, r)
    for i in range(k):
        out[i] = -r[i, 0]


@_jit
def gaussian_profile(s, c, centre, sig_slope, fixed_cols, g_fixed, w, prior_col, col_param, col_sign, prior,
                     free, signed, pick, chi_out, theta_out, branch_out):
    """GaussianChi2.profile row by row (same mathematics, same branch rule; see its docstring).

    s (n, bins) signals; c (n or 1, bins) residuals at zero signal; centre (n or 1, parameters) pull centres with
    a = 1 for the signal; sig_slope (n_sig, bins): signal column j = sig_slope[j] * s; fixed_cols (n_col - n_sig,
    bins); g_fixed: their Gram block with its prior; free, signed: the union columns common to all sign branches
    and the others; pick (branches, two-sided): each branch's signed columns as positions in ``signed`` (-1: none,
    eps = 0).  Per row: the Gram matrix, Jacobi scaling, the free columns eliminated once (Schur complement), then
    per branch a system of at most two-sided x two-sided."""
    n, nb = s.shape
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
    for i in range(n):
        ci = c[i] if c.shape[0] > 1 else c[0]
        cen = centre[i] if centre.shape[0] > 1 else centre[0]
        for j in range(n_sig):
            for b in range(nb):
                x_sig[j, b] = sig_slope[j, b] * s[i, b]
        for b in range(nb):
            wc[b] = w[b] * ci[b]
        # Gram matrix and right-hand side (the fixed block is the same for every row)
        for j in range(n_sig):
            for k in range(j + 1):
                acc = 0.0
                for b in range(nb):
                    acc += x_sig[j, b] * x_sig[k, b] * w[b]
                g[j, k] = acc
                g[k, j] = acc
            g[j, j] += prior_col[j] + 1e-12
            for k in range(n_sig, n_col):
                acc = 0.0
                for b in range(nb):
                    acc += x_sig[j, b] * fixed_cols[k - n_sig, b] * w[b]
                g[j, k] = acc
                g[k, j] = acc
        for j in range(n_sig, n_col):
            for k in range(n_sig, n_col):
                g[j, k] = g_fixed[j - n_sig, k - n_sig]
        for j in range(n_col):
            acc = 0.0
            if j < n_sig:
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
        best, best_chi = -1, np.inf
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
            if (ok and ch < best_chi) or (best < 0 and br == 0):  # none admissible: branch 0 (numpy's argmin)
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
            theta[p] = 0.0
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
def _spline(nodes, coef, x, out):
    """Cardinal cubic splines at x (clamped to the nodes): out[0] = A_i(x), out[1] = A_i'(x), out[2] = A_i''(x)."""
    nn = nodes.size
    x = min(max(x, nodes[0]), nodes[nn - 1])
    k = nn - 2
    for q in range(nn - 1):  # searchsorted(nodes, x, side="right") - 1, at most nn - 2
        if nodes[q + 1] > x:
            k = q
            break
    t = x - nodes[k]
    for i in range(nn):
        c3, c2, c1, c0 = coef[k, 0, i], coef[k, 1, i], coef[k, 2, i], coef[k, 3, i]
        out[0, i] = ((c3 * t + c2) * t + c1) * t + c0
        out[1, i] = (3.0 * c3 * t + 2.0 * c2) * t + c1
        out[2, i] = 6.0 * c3 * t + 2.0 * c2


@_jit
def _morph_eval(tg, fixed, i_m, i_f, d, dlnd, centre, inv_var, p, nx_nodes, x_coef, ny_nodes, y_coef,
                sa, sb, part, m, mu):
    """Morphed templates and derivatives m (6, n_morphed, bins) at p's (x, y), mu (bins), and chi^2 at p.
    tg (n_morphed, n_x, n_y, bins): the row's grid templates, signal first; the six are (T, T_x, T_y, T_xx, T_xy,
    T_yy)."""
    n_m, nx, ny, nb = tg.shape
    npar = p.size
    _spline(nx_nodes, x_coef, p[npar - 2], sa)
    _spline(ny_nodes, y_coef, p[npar - 1], sb)
    for z in range(n_m):
        # separable: part[q][i, b] = sum_j B^(q)_j T_ij,b, then m = sum_i A^(r)_i part[q][i]
        for i in range(nx):
            for b in range(nb):
                part[0, i, b] = 0.0
                part[1, i, b] = 0.0
                part[2, i, b] = 0.0
            for j in range(ny):
                w0, w1, w2 = sb[0, j], sb[1, j], sb[2, j]
                for b in range(nb):
                    t = tg[z, i, j, b]
                    part[0, i, b] += w0 * t
                    part[1, i, b] += w1 * t
                    part[2, i, b] += w2 * t
        # (r, q) derivative orders of (A, B): T, T_x, T_y, T_xx, T_xy, T_yy
        for o in range(6):
            r = (0, 1, 0, 2, 1, 0)[o]
            q = (0, 0, 1, 0, 1, 2)[o]
            for b in range(nb):
                m[o, z, b] = 0.0
            for i in range(nx):
                wa = sa[r, i]
                for b in range(nb):
                    m[o, z, b] += wa * part[q, i, b]
    for b in range(nb):
        acc = 0.0
        for z in range(n_m):
            acc += p[i_m[z]] * m[0, z, b]
        for f in range(i_f.size):
            acc += p[i_f[f]] * fixed[f, b]
        mu[b] = acc
    return _deviance(mu, d, dlnd, p, centre, inv_var)


@_jit
def morphed_profile(sig, bkg, fixed, i_m, i_f, d, dlnd, centre, inv_var, free, nx_nodes, x_coef, ny_nodes, y_coef,
                    tol, p_io, chi_out):
    """MorphedPoissonChi2.profile row by row: the same damped Newton (analytic gradient and Hessian, fixed
    parameters, shape nuisances held at a grid edge, Levenberg shift where the Hessian is not positive definite,
    step limit on the normalisations, backtracking by halvings up to 40), from the start in ``p_io``."""
    n = sig.shape[0]
    nb = d.size
    npar = p_io.shape[1]
    nc = npar - 2
    n_m = i_m.size
    nx, ny = nx_nodes.size, ny_nodes.size
    lo_x, hi_x = nx_nodes[0], nx_nodes[nx - 1]
    lo_y, hi_y = ny_nodes[0], ny_nodes[ny - 1]
    sa = np.empty((3, nx))
    sb = np.empty((3, ny))
    part = np.empty((3, nx, nb))
    m = np.empty((6, n_m, nb))
    m_t = np.empty((6, n_m, nb))
    mu = np.empty(nb)
    mu_t = np.empty(nb)
    dmu = np.empty((npar, nb))
    w1 = np.empty(nb)
    w2 = np.empty(nb)
    grad = np.empty(npar)
    hess = np.empty((npar, npar))
    trial = np.empty(npar)
    tg = np.empty((n_m, nx, ny, nb))  # the row's grid templates (signal, morphed backgrounds), (i, j) axes
    for z in range(1, n_m):
        for i in range(nx):
            for j in range(ny):
                tg[z, i, j] = bkg[z - 1, i * ny + j]
    for row in range(n):
        x = p_io[row]
        for i in range(nx):
            for j in range(ny):
                tg[0, i, j] = sig[row, i * ny + j]
        c0 = _morph_eval(tg, fixed, i_m, i_f, d, dlnd, centre, inv_var, x, nx_nodes, x_coef, ny_nodes,
                         y_coef, sa, sb, part, m, mu)
        for _ in range(100):
            for k in range(npar):
                for b in range(nb):
                    dmu[k, b] = 0.0
            for z in range(n_m):
                for b in range(nb):
                    dmu[i_m[z], b] = m[0, z, b]
                    dmu[nc, b] += x[i_m[z]] * m[1, z, b]
                    dmu[nc + 1, b] += x[i_m[z]] * m[2, z, b]
            for f in range(i_f.size):
                for b in range(nb):
                    dmu[i_f[f], b] = fixed[f, b]
            _poisson_derivatives(dmu, mu, d, x, centre, inv_var, w1, w2, grad, hess)
            # second derivatives of mu: d2/(da_z dx) = dT_z/dx (morphed z), d2/dx2 = sum a_z d2T_z/dx2, ...
            sec0 = 0.0
            sec1 = 0.0
            sec2 = 0.0
            for z in range(n_m):
                cx = 0.0
                cy = 0.0
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                for b in range(nb):
                    cx += m[1, z, b] * w1[b]
                    cy += m[2, z, b] * w1[b]
                    s0 += m[3, z, b] * w1[b]
                    s1 += m[4, z, b] * w1[b]
                    s2 += m[5, z, b] * w1[b]
                k = i_m[z]
                hess[k, nc] += 2.0 * cx
                hess[nc, k] += 2.0 * cx
                hess[k, nc + 1] += 2.0 * cy
                hess[nc + 1, k] += 2.0 * cy
                az = x[k]
                sec0 += 2.0 * az * s0
                sec1 += 2.0 * az * s1
                sec2 += 2.0 * az * s2
            hess[nc, nc] += sec0
            hess[nc, nc + 1] += sec1
            hess[nc + 1, nc] += sec1
            hess[nc + 1, nc + 1] += sec2
            for k in range(npar):
                hess[k, k] += 2.0 * inv_var[k] + 1e-12
            for k in range(npar):
                if not free[k]:
                    _hold(hess, grad, k)
            # a shape nuisance at a grid edge whose gradient points outwards stays there (projected Newton)
            for k, lo, hi in ((nc, lo_x, hi_x), (nc + 1, lo_y, hi_y)):
                if (x[k] <= lo and grad[k] > 0.0) or (x[k] >= hi and grad[k] < 0.0):
                    _hold(hess, grad, k)
            step = -np.linalg.solve(hess, grad)
            decrement = _decrement(grad, step)
            gmax = 0.0
            for k in range(npar):
                gmax = max(gmax, abs(grad[k]))
            if not (decrement > 0.0) and gmax > 0.0:  # Hessian not positive definite: Levenberg shift
                eig_min = np.linalg.eigvalsh(hess)[0]
                scale = 0.0
                for k in range(npar):
                    for l in range(npar):
                        scale = max(scale, abs(hess[k, l]))
                shift = max(1e-6 * scale - eig_min, 0.0)
                for k in range(npar):
                    hess[k, k] += shift
                step = -np.linalg.solve(hess, grad)
                decrement = _decrement(grad, step)
            if decrement < max(tol, 1e-13 * c0):
                break
            lam = _positive_step(x, step, nc)
            moved = False
            frac = 1.0
            for _h in range(40):
                for k in range(npar):
                    trial[k] = x[k] + lam * frac * step[k]
                trial[nc] = min(max(trial[nc], lo_x), hi_x)
                trial[nc + 1] = min(max(trial[nc + 1], lo_y), hi_y)
                c = _morph_eval(tg, fixed, i_m, i_f, d, dlnd, centre, inv_var, trial, nx_nodes, x_coef, ny_nodes,
                                y_coef, sa, sb, part, m_t, mu_t)
                if c <= c0 + 1e-12:
                    moved = c0 - c >= 1e-12  # else clamped at the grid edge, or converged to rounding
                    for k in range(npar):
                        x[k] = trial[k]
                    c0 = c
                    m[:] = m_t
                    mu[:] = mu_t
                    break
                frac *= 0.5
            if not moved:
                break
        chi_out[row] = c0
