"""The morphed Poisson profile of :class:`cevnsfit.stats.morphing.MorphedPoissonChi2`, compiled (see
:mod:`cevnsfit.stats.compiled`)."""

import numpy as np

from .common import _decrement, _deviance, _hold, _jit, _poisson_derivatives, _positive_step, _solve_lu


# The quadratic convergence of Newton's method near the minimum: after a whole step from a point with decrement
# dec the next is ~ C dec^2.  The morph's chi^2 is not self-concordant in the shape nuisances (so no bound as
# kernels/poisson.py's _final_step), but with dec < 1e3 tol (1e-6 at the default tol) skipping the check changes no
# chi^2 of the 429 000 points of `cevnsfit limits` on XENONnT (all models' planes, measured bit for bit);
# tests/test_compiled.py::test_morphed_lines_from_extrapolated_starts checks the profiles against the reference
# converged to chi^2's resolution.
FINAL_STEP = 1e3


@_jit
def _cell(nodes, x):
    """(k, t): the interval of the nodes holding x (clamped to them; searchsorted(nodes, x, "right") - 1, at most
    nn - 2) and the offset t = x - nodes[k]."""
    nn = nodes.size
    x = min(max(x, nodes[0]), nodes[nn - 1])
    k = nn - 2
    for q in range(nn - 1):
        if nodes[q + 1] > x:
            k = q
            break
    return k, x - nodes[k]


@_jit
def _cell_poly(tg, ny, x_coef, y_coef, kx, ky, tmp, out):
    """out[p, q, b] = sum_ij a_p,i b_q,j tg[i ny + j, b]: the power-basis coefficients of the morphed templates on the
    cell (kx, ky) of the grid, T(x, y) = sum_pq out[p, q] t^p u^q with t, u the offsets from the cell's lower nodes
    (a_p,i: the coefficient of t^p in the cardinal spline A_i on interval kx; x_coef is scipy's (interval, 3 - p,
    node) layout).  tg (n_grid, bins); tmp (n_x, 4, bins) scratch.  Separable: first over j, then over i."""
    nx = x_coef.shape[2]
    nb = tg.shape[1]
    for i in range(nx):
        for q in range(4):
            for b in range(nb):
                tmp[i, q, b] = 0.0
            for j in range(ny):
                w = y_coef[ky, 3 - q, j]
                for b in range(nb):
                    tmp[i, q, b] += w * tg[i * ny + j, b]
    for p in range(4):
        for q in range(4):
            for b in range(nb):
                out[p, q, b] = 0.0
        for i in range(nx):
            w = x_coef[kx, 3 - p, i]
            for q in range(4):
                for b in range(nb):
                    out[p, q, b] += w * tmp[i, q, b]


@_jit
def _cubic(c0, c1, c2, c3, u):
    """c0 + c1 u + c2 u^2 + c3 u^3 and its first and second derivatives."""
    return ((c3 * u + c2) * u + c1) * u + c0, (3.0 * c3 * u + 2.0 * c2) * u + c1, 6.0 * c3 * u + 2.0 * c2


@_jit
def _poly_morph(c, t, u, z, m):
    """m[:, z] = (T, T_x, T_y, T_xx, T_xy, T_yy) at offsets (t, u) in a cell, from its coefficients c (4, 4, bins)."""
    for b in range(c.shape[2]):
        v0, d0, s0 = _cubic(c[0, 0, b], c[0, 1, b], c[0, 2, b], c[0, 3, b], u)
        v1, d1, s1 = _cubic(c[1, 0, b], c[1, 1, b], c[1, 2, b], c[1, 3, b], u)
        v2, d2, s2 = _cubic(c[2, 0, b], c[2, 1, b], c[2, 2, b], c[2, 3, b], u)
        v3, d3, s3 = _cubic(c[3, 0, b], c[3, 1, b], c[3, 2, b], c[3, 3, b], u)
        m[0, z, b] = ((v3 * t + v2) * t + v1) * t + v0
        m[1, z, b] = (3.0 * v3 * t + 2.0 * v2) * t + v1
        m[2, z, b] = ((d3 * t + d2) * t + d1) * t + d0
        m[3, z, b] = 6.0 * v3 * t + 2.0 * v2
        m[4, z, b] = (3.0 * d3 * t + 2.0 * d2) * t + d1
        m[5, z, b] = ((s3 * t + s2) * t + s1) * t + s0


@_jit
def _morph_eval(cells, row, sig, coef, basis, bkg, fixed, i_m, i_f, d, dlnd, centre, inv_var, p, nx_nodes, x_coef,
                ny_nodes, y_coef, m, mu, scratch):
    """Morphed templates and derivatives m (6, n_morphed, bins) at p's (x, y), mu (bins), and chi^2 at p, for row
    ``row`` (its signal sig[row], or coef[row] @ basis).  ``cells`` holds the power-basis coefficients of every cell
    visited so far (:func:`_cell_poly`), made on first use: the backgrounds' for the whole call, the basis's for the
    whole call, the signal's per row (the signal from the basis's: K x 16 x bins, not K x n_grid x bins)."""
    c_bkg, have_bkg, c_basis, have_basis, c_sig, sig_row, tmp = cells
    npar = p.size
    kx, t = _cell(nx_nodes, p[npar - 2])
    ky, u = _cell(ny_nodes, p[npar - 1])
    ny = ny_nodes.size
    if sig_row[kx, ky] != row:
        if coef.shape[0] > 0:
            if not have_basis[kx, ky]:
                for k in range(basis.shape[0]):
                    _cell_poly(basis[k], ny, x_coef, y_coef, kx, ky, tmp, c_basis[k, kx, ky])
                have_basis[kx, ky] = True
            # the bins innermost (they vectorise; the sum over k keeps its order): 2.4 -> 1.2 us per new row
            cs = c_sig[kx, ky]
            w = coef[row, 0]
            for p_ in range(4):
                for q in range(4):
                    for b in range(cs.shape[2]):
                        cs[p_, q, b] = w * c_basis[0, kx, ky, p_, q, b]
            for k in range(1, coef.shape[1]):
                w = coef[row, k]
                for p_ in range(4):
                    for q in range(4):
                        for b in range(cs.shape[2]):
                            cs[p_, q, b] += w * c_basis[k, kx, ky, p_, q, b]
        else:
            _cell_poly(sig[row], ny, x_coef, y_coef, kx, ky, tmp, c_sig[kx, ky])
        sig_row[kx, ky] = row
    _poly_morph(c_sig[kx, ky], t, u, 0, m)
    for z in range(1, i_m.size):
        if not have_bkg[z - 1, kx, ky]:
            _cell_poly(bkg[z - 1], ny, x_coef, y_coef, kx, ky, tmp, c_bkg[z - 1, kx, ky])
            have_bkg[z - 1, kx, ky] = True
        _poly_morph(c_bkg[z - 1, kx, ky], t, u, z, m)
    nb = mu.size
    for b in range(nb):
        acc = 0.0
        for z in range(i_m.size):
            acc += p[i_m[z]] * m[0, z, b]
        for f in range(i_f.size):
            acc += p[i_f[f]] * fixed[f, b]
        mu[b] = acc
    return _deviance(mu, d, dlnd, p, centre, inv_var, scratch)


@_jit
def _cells(n_m, nx, ny, nb, n_basis):
    """Empty caches of the cells' power-basis coefficients (see :func:`_morph_eval`), filled as Newton visits
    them: the morphed backgrounds' (and whether made), the basis templates' (and whether made), the current row's
    signal (and which row), and scratch."""
    n_cx, n_cy = nx - 1, ny - 1
    return (np.empty((n_m - 1, n_cx, n_cy, 4, 4, nb)), np.zeros((n_m - 1, n_cx, n_cy), dtype=np.bool_),
            np.empty((n_basis, n_cx, n_cy, 4, 4, nb)), np.zeros((n_cx, n_cy), dtype=np.bool_),
            np.empty((n_cx, n_cy, 4, 4, nb)), np.full((n_cx, n_cy), -1, dtype=np.int64), np.empty((nx, 4, nb)))


@_jit
def _morph_derivatives(m, mu, d, x, centre, inv_var, i_m, i_f, fixed, dmu, w1, w2, grad, hess):
    """Analytic gradient and Hessian of chi^2 at parameters x = (a_z..., x, y) from the morphed templates and
    their derivatives ``m`` (6, n_morphed, bins) and mu there (``_morph_eval``) -- every parameter free, no grid
    edge (the caller holds those).  The Hessian's diagonal carries 1e-12 more than chi^2's (keeps a flat
    direction solvable).  dmu (parameters, bins), w1, w2 (bins): work arrays."""
    npar = x.size
    nc = npar - 2
    nb = mu.size
    n_m = i_m.size
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


@_jit
def morphed_profile(sig, coef, basis, bkg, fixed, i_m, i_f, d, dlnd, centre, inv_var, free, nx_nodes, x_coef,
                    ny_nodes, y_coef, tol, p_io, chi_out):
    """``MorphedPoissonChi2.profile`` row by row: damped Newton (analytic gradient and Hessian, fixed parameters
    held, shape nuisances held at a grid edge, Levenberg shift where the Hessian is not positive definite, step
    limit on the normalisations, backtracking by halvings up to 40), from the start in ``p_io`` (minimum out),
    chi^2 into ``chi_out``.  The signals are ``sig`` (n, n_grid, bins), or, when ``coef`` (n, K) has rows,
    coef @ ``basis`` (K, n_grid, bins), formed here row by row (a batch of them is never stored).  Data ``d``
    (n or 1, bins) with dlnd = sum[D ln D - D] (n or 1,) and pull centres ``centre`` (n or 1, parameters; a = 1
    nominal): one row for the observed data, one per row for replicas.  The morph is evaluated from each cell's
    polynomial coefficients (:func:`_morph_eval`): 16 per bin and template instead of the n_grid = 49 nodes'
    weights."""
    n = max(sig.shape[0], coef.shape[0])
    nb = d.shape[1]
    npar = p_io.shape[1]
    nc = npar - 2
    n_m = i_m.size
    nx, ny = nx_nodes.size, ny_nodes.size
    lo_x, hi_x = nx_nodes[0], nx_nodes[nx - 1]
    lo_y, hi_y = ny_nodes[0], ny_nodes[ny - 1]
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
    step = np.empty(npar)
    lu = np.empty((npar, npar + 1))
    scratch = np.empty((2, nb))
    cells = _cells(n_m, nx, ny, nb, basis.shape[0] if coef.shape[0] > 0 else 0)
    for row in range(n):
        x = p_io[row]
        dr = d[row] if d.shape[0] > 1 else d[0]
        lr = dlnd[row] if dlnd.shape[0] > 1 else dlnd[0]
        cr = centre[row] if centre.shape[0] > 1 else centre[0]
        c0 = _morph_eval(cells, row, sig, coef, basis, bkg, fixed, i_m, i_f, dr, lr, cr, inv_var, x, nx_nodes,
                         x_coef, ny_nodes, y_coef, m, mu, scratch)
        for _ in range(100):
            _morph_derivatives(m, mu, dr, x, cr, inv_var, i_m, i_f, fixed, dmu, w1, w2, grad, hess)
            for k in range(npar):
                if not free[k]:
                    _hold(hess, grad, k)
            # a shape nuisance at a grid edge whose gradient points outwards stays there (projected Newton): else
            # the clipped step creeps along the edge and the decrement never falls below the tolerance
            for k, lo, hi in ((nc, lo_x, hi_x), (nc + 1, lo_y, hi_y)):
                if (x[k] <= lo and grad[k] > 0.0) or (x[k] >= hi and grad[k] < 0.0):
                    _hold(hess, grad, k)
            _solve_lu(hess, grad, lu, step)
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
                _solve_lu(hess, grad, lu, step)
                decrement = _decrement(grad, step)
            if decrement < max(tol, 1e-13 * c0):
                break
            lam = _positive_step(x, step, nc)
            moved = False
            clamped = False
            frac = 1.0
            for _h in range(40):
                for k in range(npar):
                    trial[k] = x[k] + lam * frac * step[k]
                clamped = not (lo_x <= trial[nc] <= hi_x and lo_y <= trial[nc + 1] <= hi_y)
                trial[nc] = min(max(trial[nc], lo_x), hi_x)
                trial[nc + 1] = min(max(trial[nc + 1], lo_y), hi_y)
                c = _morph_eval(cells, row, sig, coef, basis, bkg, fixed, i_m, i_f, dr, lr, cr, inv_var, trial,
                                nx_nodes, x_coef, ny_nodes, y_coef, m_t, mu_t, scratch)
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
            # a whole Newton step from a point this close (decrement < FINAL_STEP tol) ends where the next decrement,
            # ~ its square, is far below tol: its check is skipped (about one derivative evaluation in five)
            if frac == 1.0 and lam == 1.0 and not clamped and decrement < FINAL_STEP * tol:
                break
        chi_out[row] = c0


@_jit
def morphed_point(sig, bkg, fixed, i_m, i_f, d, dlnd, centre, inv_var, nx_nodes, x_coef, ny_nodes, y_coef, p, grad,
                  hess):
    """chi^2 at parameters ``p`` (a_z..., x, y) for one signal ``sig`` (n_grid, bins), with its gradient and Hessian
    into ``grad``, ``hess`` as Newton's step uses them (:func:`_morph_derivatives`: every parameter free, no grid
    edge).  The other arguments as ``morphed_profile`` (d, centre: one row)."""
    nb = d.size
    npar = p.size
    n_m = i_m.size
    m = np.empty((6, n_m, nb))
    mu = np.empty(nb)
    cells = _cells(n_m, nx_nodes.size, ny_nodes.size, nb, 0)
    ng = sig.shape[0]
    chi = _morph_eval(cells, 0, sig.reshape((1, ng, nb)), np.empty((0, 1)), np.empty((1, ng, nb)), bkg, fixed, i_m,
                      i_f, d, dlnd, centre, inv_var, p, nx_nodes, x_coef, ny_nodes, y_coef, m, mu, np.empty((2, nb)))
    _morph_derivatives(m, mu, d, p, centre, inv_var, i_m, i_f, fixed, np.empty((npar, nb)), np.empty(nb), np.empty(nb),
                       grad, hess)
    return chi
