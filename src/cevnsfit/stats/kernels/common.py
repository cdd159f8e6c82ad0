"""Shared pieces of the compiled kernels (numba): the jit options, the Poisson deviance with its vectorised
logarithm, its derivatives, and small dense solvers.  See :mod:`cevnsfit.stats.compiled`.

numba's on-disk cache (``cache=True``) is keyed per function on its own source file: a kernel module that
inlines a function from here keeps its cached machine code when only this file changes.  Installed files do
not change; while editing this file, clear the caches (``__pycache__/*.nbi``, ``*.nbc``) of the kernel modules.
"""

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


# ln 2 split so that e * _LN2_HI is exact for |e| < 2^11 (Cody and Waite); 1/(2k + 1): the atanh series of ln
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXPONENT_BIAS = 4503599627370496.0 + 1023.0  # 2^52 + 1023: the exponent field read as a double, less its bias


@_jit
def _log_dot(d, mu, scratch):
    """sum_b d_b ln max(mu_b, 1e-300), with a logarithm that vectorises (numba's math.log calls libm once per bin,
    ~8-16 ns; this one ~3-5 ns per bin on AVX2, tests/test_compiled.py compares the two: within 5e-16 relative).

    mu = 2^e m with m in [sqrt(1/2), sqrt(2)) (the exponent and mantissa fields split through integer views of
    ``scratch`` (2, bins)); ln m = 2 atanh(s), s = (m - 1)/(m + 1), |s| <= 0.172, by its series to s^21 (the next
    term is < 2e-17 of the sum), evaluated in two halves (Estrin) to shorten the dependency chain."""
    m = scratch[0]
    ef = scratch[1]
    m_bits = m.view(np.int64)
    e_bits = ef.view(np.int64)
    n = mu.size
    for b in range(n):
        m[b] = max(mu[b], 1e-300)  # >= 1e-300: a normal number, positive
    for b in range(n):
        bits = m_bits[b]
        m_bits[b] = (bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000  # mantissa with exponent 0: m in [1, 2)
        e_bits[b] = 0x4330000000000000 | ((bits >> 52) & 0x7FF)  # 2^52 + exponent field, as a double
    acc = 0.0
    for b in range(n):
        x = m[b]
        e = ef[b] - _EXPONENT_BIAS
        if x > 1.4142135623730951:
            x *= 0.5
            e += 1.0
        s = (x - 1.0) / (x + 1.0)
        z = s * s
        z2 = z * z
        odd = ((((z2 / 21.0 + 1.0 / 17.0) * z2 + 1.0 / 13.0) * z2 + 1.0 / 9.0) * z2 + 1.0 / 5.0) * z2 + 1.0
        even = (((z2 / 19.0 + 1.0 / 15.0) * z2 + 1.0 / 11.0) * z2 + 1.0 / 7.0) * z2 + 1.0 / 3.0
        acc += d[b] * (e * _LN2_HI + (e * _LN2_LO + 2.0 * s * (odd + z * even)))
    return acc


@_jit
def _deviance(mu, d, dlnd, x, centre, inv_var, scratch):
    """Poisson chi^2 2 sum[mu - D ln mu] + 2 dlnd (dlnd = sum[D ln D - D]) plus the pulls sum (x - centre)^2 / sigma^2;
    ``scratch`` (2, bins): work space of the logarithms (``_log_dot``)."""
    s_mu = 0.0
    for b in range(mu.size):
        s_mu += mu[b]
    out = 2.0 * (s_mu - _log_dot(d, mu, scratch) + dlnd)
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
def _poisson_derivatives4(jac, mu, d, x, centre, inv_var, grad, hess):
    """``_poisson_derivatives`` for exactly four parameters (CsI: signal and three backgrounds): the 14 sums in one
    pass over the bins, in registers -- 2x faster than the loop per sum (0.18 against 0.33 us on 99 bins)."""
    g0 = g1 = g2 = g3 = 0.0
    h00 = h10 = h11 = h20 = h21 = h22 = h30 = h31 = h32 = h33 = 0.0
    for b in range(mu.size):
        inv = 1.0 / max(mu[b], 1e-300)
        ratio = d[b] * inv
        a1 = 1.0 - ratio
        a2 = ratio * inv
        j0, j1, j2, j3 = jac[0, b], jac[1, b], jac[2, b], jac[3, b]
        g0 += j0 * a1
        g1 += j1 * a1
        g2 += j2 * a1
        g3 += j3 * a1
        q0, q1, q2, q3 = j0 * a2, j1 * a2, j2 * a2, j3 * a2
        h00 += j0 * q0
        h10 += j1 * q0
        h11 += j1 * q1
        h20 += j2 * q0
        h21 += j2 * q1
        h22 += j2 * q2
        h30 += j3 * q0
        h31 += j3 * q1
        h32 += j3 * q2
        h33 += j3 * q3
    grad[0], grad[1], grad[2], grad[3] = 2.0 * g0, 2.0 * g1, 2.0 * g2, 2.0 * g3
    for k in range(4):
        grad[k] += 2.0 * (x[k] - centre[k]) * inv_var[k]
    hess[0, 0], hess[1, 1], hess[2, 2], hess[3, 3] = 2.0 * h00, 2.0 * h11, 2.0 * h22, 2.0 * h33
    hess[1, 0] = hess[0, 1] = 2.0 * h10
    hess[2, 0] = hess[0, 2] = 2.0 * h20
    hess[2, 1] = hess[1, 2] = 2.0 * h21
    hess[3, 0] = hess[0, 3] = 2.0 * h30
    hess[3, 1] = hess[1, 3] = 2.0 * h31
    hess[3, 2] = hess[2, 3] = 2.0 * h32


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
def _solve_lu(h, g, m, out):
    """out = -h^-1 g by Gaussian elimination with partial pivoting (h any non-singular matrix; m (k, k + 1):
    work array), the algorithm of LAPACK's gesv that ``np.linalg.solve`` calls, without its copies and allocations
    (~1 us of a morphed profile's ~5 us Newton step).  A zero pivot (h singular) or a non-finite entry:
    ``np.linalg.solve``, which raises, as before."""
    k = h.shape[0]
    for i in range(k):
        for j in range(k):
            m[i, j] = h[i, j]
        m[i, k] = -g[i]
        for j in range(k + 1):
            if not np.isfinite(m[i, j]):
                out[:] = -np.linalg.solve(h, g)
                return
    for a in range(k):
        p = a
        for b in range(a + 1, k):
            if abs(m[b, a]) > abs(m[p, a]):
                p = b
        if m[p, a] == 0.0:
            out[:] = -np.linalg.solve(h, g)
            return
        if p != a:
            for l in range(a, k + 1):
                m[a, l], m[p, l] = m[p, l], m[a, l]
        inv = 1.0 / m[a, a]
        for b in range(a + 1, k):
            f = m[b, a] * inv
            if f != 0.0:
                for l in range(a + 1, k + 1):
                    m[b, l] -= f * m[a, l]
    for a in range(k - 1, -1, -1):
        acc = m[a, k]
        for l in range(a + 1, k):
            acc -= m[a, l] * out[l]
        out[a] = acc / m[a, a]


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


