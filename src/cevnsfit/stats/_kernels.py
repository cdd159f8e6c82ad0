"""The numba kernels of :mod:`cevnsfit.stats.compiled` (imported only where numba is installed; see there)."""

import math

import numba
import numpy as np

# reassoc/contract/arcp let the sums over bins vectorise; not nnan/ninf: the kernel tests isfinite
_jit = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp"}, error_model="numpy")


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
    r = np.empty(nz)
    step = np.empty(nz)
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
            # gradient and Hessian of the deviance, plus the pull terms; loops over bins innermost (vectorised)
            for b in range(nb):
                mu[b] = 0.0
            for z in range(nz):
                xz = x[z]
                for b in range(nb):
                    mu[b] += xz * t[z, b]
            for b in range(nb):
                ratio = di[b] / mu[b]
                w1[b] = 1.0 - ratio
                w2[b] = ratio / mu[b]
            for z in range(nz):
                s1 = 0.0
                for b in range(nb):
                    s1 += t[z, b] * w1[b]
                grad[z] = 2.0 * s1 + 2.0 * (x[z] - ci[z]) * inv_var[z]
                for y in range(z + 1):
                    s2 = 0.0
                    for b in range(nb):
                        s2 += t[z, b] * t[y, b] * w2[b]
                    hess[z, y] = 2.0 * s2
                    hess[y, z] = hess[z, y]
                hess[z, z] += 2.0 * inv_var[z] + 1e-300
            _solve_spd(hess, grad, m, r, step)
            # active set: a factor at its bound pulled down is held there (projected Newton, as the numpy path)
            any_pinned = False
            for z in range(nz):
                if x[z] < pin and (grad[z] > 0.0 or step[z] < 0.0):
                    any_pinned = True
                    grad[z] = 0.0
                    for y in range(nz):
                        hess[z, y] = 0.0
                        hess[y, z] = 0.0
                    hess[z, z] = 1.0
            if any_pinned:
                _solve_spd(hess, grad, m, r, step)
            decrement = 0.0
            for z in range(nz):
                decrement -= 0.5 * grad[z] * step[z]
            if decrement < max(tol, 1e-13 * c0):
                break
            lam = 1.0
            for z in range(nz):
                if step[z] < 0.0:
                    lam = min(lam, -0.9 * x[z] / step[z])
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
    s_mu = 0.0
    s_dl = 0.0
    for b in range(nb):
        s_mu += mu[b]
        if d[b] != 0.0:
            s_dl += d[b] * math.log(max(mu[b], 1e-300))
    out = 2.0 * (s_mu - s_dl + dlnd)
    for z in range(nz):
        out += (x[z] - ctr[z]) ** 2 * inv_var[z]
    return out


@_jit
def _solve_spd(h, g, m, r, out):
    """out = -h^-1 g by Gaussian elimination without pivoting (h symmetric positive definite; as chi2._solve_spd)."""
    k = h.shape[0]
    for i in range(k):
        r[i] = g[i]
        for j in range(k):
            m[i, j] = h[i, j]
    for i in range(k):
        for j in range(i + 1, k):
            f = m[j, i] / m[i, i]
            for l in range(i, k):
                m[j, l] -= f * m[i, l]
            r[j] -= f * r[i]
    for i in range(k - 1, -1, -1):
        s = r[i]
        for l in range(i + 1, k):
            s -= m[i, l] * out[l]
        out[i] = s / m[i, i]
    for i in range(k):
        out[i] = -out[i]
