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


# A full Newton step taken without evaluating chi^2 (no logarithms).  The Poisson deviance in factors a, with mu
# linear in a, is self-concordant: per bin, 2 D (-ln mu) has |f'''| / f''^(3/2) = sqrt(2 / D) <= 2 for counts D >= 1,
# and the pulls are quadratic.  For such a function a full Newton step with lambda^2 = -grad.step < 1 stays in the
# domain, and it lowers chi^2 while lambda < 0.68 (Nesterov, Introductory Lectures on Convex Optimization,
# 2004, sec. 4.1).  So a step whose Newton decrement -grad.step / 2 = lambda^2 / 2 is below BLIND_DECREMENT (lambda < 0.32: a
# margin for non-integer data, where the bound does not hold) is taken without the line search.  Otherwise, or when
# the decrement did not fall after such a step (the step is then undone), the step is line-searched on chi^2 as in
# the numpy path.  The stopping rule is the numpy path's: the decrement below the tolerance.
BLIND_DECREMENT = 0.05


@_jit
def _final_step(dec, floor):
    """True when the full Newton step from a point with decrement ``dec`` provably ends below ``floor``: for a
    standard self-concordant function lambda(x+) <= (lambda / (1 - lambda))^2 (Nesterov 2004, Thm 4.1.14), with
    lambda^2 = 2 dec; so the decrement after the step need not be computed."""
    lam = math.sqrt(2.0 * dec)
    if lam >= 0.5:
        return False
    q = lam / (1.0 - lam)
    return 0.5 * q**4 < floor


@_jit
def _fill_mu(t, x, mu):
    """Expected counts mu = sum_z x_z t_z (bins)."""
    nz, nb = t.shape
    for b in range(nb):
        mu[b] = 0.0
    for z in range(nz):
        xz = x[z]
        for b in range(nb):
            mu[b] += xz * t[z, b]


@_jit
def _expected(t, x, d, mu):
    """Expected counts mu (``_fill_mu``); False when a bin with data has mu <= 0 (outside the domain)."""
    _fill_mu(t, x, mu)
    for b in range(mu.size):
        if d[b] > 0.0 and not mu[b] > 0.0:
            return False
    return True


@_jit
def _warm_start(t, x, floor):
    """A start x of templates t (n_z, bins) with every factor of fewer than ``floor`` counts put on its bound, a = 0
    (``PoissonChi2.WARM_FLOOR``)."""
    for z in range(x.size):
        tz = 0.0
        for b in range(t.shape[1]):
            tz += t[z, b]
        if x[z] * tz < floor:
            x[z] = 0.0


@_jit
def _cold_start(t, d, x):
    """The numpy path's cold start: every factor 1, except a signal far above the data (> 10 times its total),
    which starts scaled to the observed excess over the backgrounds."""
    nz, nb = t.shape
    s_tot, d_tot, b_tot = 0.0, 0.0, 0.0
    for b in range(nb):
        s_tot += t[0, b]
        d_tot += d[b]
        for z in range(1, nz):
            b_tot += t[z, b]
    for z in range(nz):
        x[z] = 1.0
    if s_tot > 10.0 * d_tot:
        x[0] = max(d_tot - b_tot, 1.0) / s_tot


@_jit
def _poisson_newton(t, x, d, dlnd, ctr, inv_var, tol, pin, wk):
    """Minimise the Poisson chi^2 of one row over factors x >= 0 from x (in place); returns chi^2_min.

    t (n_z, bins): signal then backgrounds; the rest as ``poisson_profile``.  The projected Newton of the numpy
    path (active set at the bound a = 0, step kept 1/10 from it, stop when the Newton decrement is below the
    tolerance), with full steps taken blind when the decrement certifies them (``BLIND_DECREMENT``).  ``pin``: a
    factor is at its bound when its counts a_z sum_b t_zb are below pin (scaled per template: a signal 1e9 times
    the data is not at its bound at a = 1e-10); ``wk``: work arrays (``_work``)."""
    mu, w1, w2, grad, step, piv, trial, x_old, hess, m, r, pins, released, wrong, scratch = wk
    nz = x.size
    for z in range(nz):
        tz = 0.0
        for b in range(mu.size):
            tz += t[z, b]
        pins[z] = pin / max(tz, 1.0)
        released[z] = False
    if not _expected(t, x, d, mu):  # a warm start outside the domain: restart from the nominal normalisations
        for z in range(nz):
            x[z] = 1.0
        _expected(t, x, d, mu)
    concordant = True  # every count 0 or >= 1/2: the deviance is standard self-concordant (see BLIND_DECREMENT)
    for b in range(mu.size):
        if 0.0 < d[b] < 0.5:
            concordant = False
    c0 = np.inf  # chi^2 at x, when known
    last_dec = np.inf
    blind = False  # the last step was taken blind (from x_old)
    for _ in range(60):
        if nz == 4:
            _poisson_derivatives4(t, mu, d, x, ctr, inv_var, grad, hess)
        else:
            _poisson_derivatives(t, mu, d, x, ctr, inv_var, w1, w2, grad, hess)
        for z in range(nz):
            hess[z, z] += 2.0 * inv_var[z] + 1e-300
        _solve_spd(hess, grad, m, r, piv, step)
        # active set: a factor at its bound pulled down is held there (projected Newton, as the numpy path)
        any_pinned = False
        any_wrong = False  # a held factor whose gradient points into the allowed region (the KKT condition fails)
        for z in range(nz):
            wrong[z] = False
            if x[z] < pins[z] and (grad[z] > 0.0 or step[z] < 0.0):
                if grad[z] < 0.0 and not released[z]:
                    wrong[z] = True
                    any_wrong = True
                any_pinned = True
                _hold(hess, grad, z)
        if any_pinned:
            _solve_spd(hess, grad, m, r, piv, step)
        dec = _decrement(grad, step)
        # the floor of the stopping rule follows the resolution of a large chi^2 (~ 2 sum mu where mu >> D)
        s_mu = 0.0
        for b in range(mu.size):
            s_mu += mu[b]
        floor = max(tol, 2e-13 * s_mu)
        if dec < floor:
            if not any_wrong:
                break
            # optimal on the face a_z = 0 but not overall: chi^2 falls as a_z rises.  Newton's step held it there
            # (the step, not the gradient, pointed down); restart it from a_z = 1, once per factor
            for z in range(nz):
                if wrong[z]:
                    released[z] = True
                    x[z] = 1.0
            _expected(t, x, d, mu)
            c0 = np.inf
            blind = False
            continue
        if blind and not dec < last_dec:  # the blind step did not bring Newton closer: undo it, search its line
            for z in range(nz):
                x[z] = x_old[z]
            _expected(t, x, d, mu)
            blind = False
            last_dec = 0.0  # never blind again in this row
            continue
        lam = _positive_step(x, step, nz)
        if lam == 1.0 and concordant and not any_pinned and _final_step(dec, floor):
            for z in range(nz):
                x[z] += step[z]
            if _expected(t, x, d, mu):
                c0 = np.inf
                break
            for z in range(nz):  # cannot happen for lambda < 1 (see BLIND_DECREMENT): guard
                x[z] -= step[z]
            _expected(t, x, d, mu)
        if lam == 1.0 and dec < BLIND_DECREMENT and dec < last_dec:
            for z in range(nz):
                x_old[z] = x[z]
                x[z] += step[z]
            if _expected(t, x, d, mu):
                blind = True
                last_dec = dec
                c0 = np.inf
                continue
            for z in range(nz):  # cannot happen for lambda < 1 (the Dikin ellipsoid lies in the domain): guard
                x[z] = x_old[z]
            _expected(t, x, d, mu)
        blind = False
        last_dec = 0.0 if last_dec == 0.0 else dec
        if not c0 < np.inf:
            c0 = _deviance(mu, d, dlnd, x, ctr, inv_var, scratch)
        moved = False
        for _ in range(30):
            for z in range(nz):
                trial[z] = x[z] + lam * step[z]
            c = _chi2(t, trial, d, dlnd, ctr, inv_var, mu, scratch)
            if c <= c0 + 1e-12:
                for z in range(nz):
                    x[z] = trial[z]
                c0 = c
                moved = True
                break
            lam *= 0.5
        if not moved:
            _expected(t, x, d, mu)
            break
    if not c0 < np.inf:
        c0 = _deviance(mu, d, dlnd, x, ctr, inv_var, scratch)
    return _snap_to_bounds(t, x, d, dlnd, ctr, inv_var, pins, c0, mu, x_old, scratch)


@_jit
def _snap_to_bounds(t, x, d, dlnd, ctr, inv_var, pins, c0, mu, x_old, scratch):
    """Factors that Newton left below their ``pins`` (held at the bound, a little above it) set to exactly 0 when
    this does not raise chi^2 (as ``PoissonChi2.profile``); returns the chi^2 at x."""
    snap = False
    for z in range(x.size):
        x_old[z] = x[z]
        if 0.0 < x[z] < pins[z]:
            x[z] = 0.0
            snap = True
    if not snap:
        return c0
    if _expected(t, x, d, mu):
        c = _deviance(mu, d, dlnd, x, ctr, inv_var, scratch)
        if c <= c0:
            return c
    for z in range(x.size):
        x[z] = x_old[z]
    return c0


@_jit
def _work(nz, nb):
    """Work arrays of ``_poisson_newton``: mu, w1, w2 (bins); grad, step, piv, trial, x_old (n_z); hess, m (n_z,
    n_z); r (n_z, 1); pins, released, wrong (n_z); scratch (2, bins) of the logarithms."""
    return (np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nz), np.empty(nz), np.empty(nz), np.empty(nz),
            np.empty(nz), np.empty((nz, nz)), np.empty((nz, nz)), np.empty((nz, 1)), np.empty(nz),
            np.zeros(nz, dtype=np.bool_), np.zeros(nz, dtype=np.bool_), np.empty((2, nb)))


@_jit
def poisson_profile(sig, bkg, d, dlnd, ctr, inv_var, a, chi, tol, pin, warm_floor, chain):
    """Profile row i: signal sig[i] (n_bins,), backgrounds bkg (n_z - 1, n_bins), data d[i or 0], constant
    dlnd[i], pull centres ctr[i or 0] (= 1 + centre), factors a[i] (start in, minimum out), chi[i] (out).
    chain[i] (i >= 1): row i has row i - 1's data and centres, and starts from its solution instead of a[i]."""
    n, nb = sig.shape
    nz = a.shape[1]
    t = np.empty((nz, nb))
    wk = _work(nz, nb)
    for z in range(1, nz):
        t[z] = bkg[z - 1]
    for i in range(n):
        t[0] = sig[i]
        if i > 0 and chain[i]:
            for z in range(nz):
                a[i, z] = a[i - 1, z]
            _warm_start(t, a[i], warm_floor)
        chi[i] = _poisson_newton(t, a[i], d[i] if d.shape[0] > 1 else d[0], dlnd[i], ctr[i] if ctr.shape[0] > 1 else ctr[0],
                         inv_var, tol, pin, wk)


@_jit
def poisson_grid(sig, bkg, d, dlnd, ctr, inv_var, tol, pin, warm_floor, chi):
    """chi[i, j]: replica i (data d[i], constant dlnd[i], pull centres ctr[i] = 1 + centre) at signal template j
    (sig (k, n_bins), ordered along a line of couplings).

    Newton starts cold at j = 0; after that from the solutions at j - 1 and j - 2 extrapolated linearly in the
    total signal (from the solution at j - 1 where that would take a factor below 0), with the rule of warm starts
    (``_warm_start``).  Any start reaches the same minimum (the chi^2 is convex in the factors); a good one saves
    Newton steps (~1.6 per fit along the FC toy grids)."""
    k, nb = sig.shape
    n = d.shape[0]
    nz = bkg.shape[0] + 1
    t = np.empty((nz, nb))
    wk = _work(nz, nb)
    x, trial = np.empty(nz), np.empty(nz)
    x1, x2 = np.empty(nz), np.empty(nz)  # the solutions at j - 1 and j - 2
    s_tot = np.zeros(k)
    for j in range(k):
        for b in range(nb):
            s_tot[j] += sig[j, b]
    for z in range(1, nz):
        t[z] = bkg[z - 1]
    for i in range(n):
        for j in range(k):
            t[0] = sig[j]
            if j == 0:
                _cold_start(t, d[i], x)
            else:
                if j >= 2 and s_tot[j - 1] != s_tot[j - 2]:
                    ratio = min(max((s_tot[j] - s_tot[j - 1]) / (s_tot[j - 1] - s_tot[j - 2]), -2.0), 2.0)
                    ok = True
                    for z in range(nz):
                        trial[z] = x1[z] + ratio * (x1[z] - x2[z])
                        ok = ok and trial[z] >= 0.0
                    if ok:
                        for z in range(nz):
                            x[z] = trial[z]
                _warm_start(t, x, warm_floor)
            chi[i, j] = _poisson_newton(t, x, d[i], dlnd[i], ctr[i], inv_var, tol, pin, wk)
            for z in range(nz):
                x2[z] = x1[z]
                x1[z] = x[z]


@_jit
def _chi2(t, x, d, dlnd, ctr, inv_var, mu, scratch):
    """chi^2 at factors x (PoissonChi2._chi2 for one row); leaves the expected counts in ``mu``."""
    _fill_mu(t, x, mu)
    return _deviance(mu, d, dlnd, x, ctr, inv_var, scratch)


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


@_jit
def gaussian_profile(s, c, centre, sig_slope, fixed_cols, g_fixed, w, prior_col, col_param, col_sign, prior,
                     free, signed, pick, gram_sig, chi_out, theta_out, branch_out):
    """GaussianChi2.profile row by row (same mathematics, same branch rule; see its docstring).

    s (n, bins) signals; c (n or 1, bins) residuals at zero signal; centre (n or 1, parameters) pull centres with
    a = 1 for the signal; sig_slope (n_sig, bins): signal column j = sig_slope[j] * s; fixed_cols (n_col - n_sig,
    bins); g_fixed: their Gram block with its prior; free, signed: the union columns common to all sign branches
    and the others; pick (branches, two-sided): each branch's signed columns as positions in ``signed`` (-1: none,
    eps = 0); gram_sig (n or 0, n_sig, n_col): the signal columns' rows of the Gram matrix without their prior,
    when the caller has them (signals linear in a small basis; 0 rows: computed here).  Per row: the Gram matrix,
    Jacobi scaling, the free columns eliminated once (Schur complement), then per branch a system of at most
    two-sided x two-sided."""
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
def gaussian_grid(s, residual, centre, r0w, sig_w, fixed_w, prior_col, col_param, col_scale, ff_inv, g_fs,
                  branch_inv, free, signed, sel, sel_sign, chi):
    """chi[i, j] of ``GaussianChi2.replicas_grid``: replica i (residual (n, bins) = data - nominal backgrounds,
    pull centres centre (n, parameters) with a = 1, r0w[i] = c'Wc + theta_0'P theta_0) at template j (s (k, bins)),
    from the template-side factors of ``grid_factors`` (col_scale, ff_inv, g_fs, branch_inv: per template).

    Per replica the data-side products are formed once (residual x weights of every column); per pair the
    right-hand side of the normal equations, the free columns' solution z = G_ff^-1 rhs_f, the Schur right-hand
    side and, per branch, its signed solution and chi^2 = r0w - rhs_f.z - srs.eps; the smallest admissible
    chi^2 (branch 0's when none is admissible, as numpy's argmin over infinities)."""
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
            cs = c_sig[kx, ky]
            for p_ in range(4):
                for q in range(4):
                    for b in range(cs.shape[2]):
                        acc = 0.0
                        for k in range(coef.shape[1]):
                            acc += coef[row, k] * c_basis[k, kx, ky, p_, q, b]
                        cs[p_, q, b] = acc
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
def morphed_profile(sig, coef, basis, bkg, fixed, i_m, i_f, d, dlnd, centre, inv_var, free, nx_nodes, x_coef,
                    ny_nodes, y_coef, tol, p_io, chi_out):
    """MorphedPoissonChi2.profile row by row: the same damped Newton (analytic gradient and Hessian, fixed
    parameters, shape nuisances held at a grid edge, Levenberg shift where the Hessian is not positive definite,
    step limit on the normalisations, backtracking by halvings up to 40), from the start in ``p_io``.  The signals
    are ``sig`` (n, n_grid, bins), or, when ``coef`` (n, K) has rows, coef @ ``basis`` (K, n_grid, bins), formed
    here row by row (a batch of them is never stored).  The morph is evaluated from each cell's polynomial
    coefficients (:func:`_morph_eval`): 16 per bin and template instead of the n_grid = 49 nodes' weights."""
    n = max(sig.shape[0], coef.shape[0])
    nb = d.size
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
    # the cells' power-basis coefficients (see _morph_eval), made as Newton visits them
    n_cx, n_cy = nx - 1, ny - 1
    cells = (np.empty((n_m - 1, n_cx, n_cy, 4, 4, nb)), np.zeros((n_m - 1, n_cx, n_cy), dtype=np.bool_),
             np.empty((basis.shape[0] if coef.shape[0] > 0 else 0, n_cx, n_cy, 4, 4, nb)),
             np.zeros((n_cx, n_cy), dtype=np.bool_), np.empty((n_cx, n_cy, 4, 4, nb)),
             np.full((n_cx, n_cy), -1, dtype=np.int64), np.empty((nx, 4, nb)))
    for row in range(n):
        x = p_io[row]
        c0 = _morph_eval(cells, row, sig, coef, basis, bkg, fixed, i_m, i_f, d, dlnd, centre, inv_var, x, nx_nodes,
                         x_coef, ny_nodes, y_coef, m, mu, scratch)
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
            frac = 1.0
            for _h in range(40):
                for k in range(npar):
                    trial[k] = x[k] + lam * frac * step[k]
                trial[nc] = min(max(trial[nc], lo_x), hi_x)
                trial[nc + 1] = min(max(trial[nc + 1], lo_y), hi_y)
                c = _morph_eval(cells, row, sig, coef, basis, bkg, fixed, i_m, i_f, d, dlnd, centre, inv_var, trial,
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
        chi_out[row] = c0
