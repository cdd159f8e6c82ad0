"""The Poisson profile of :class:`cevnsfit.stats.poisson.PoissonChi2`, compiled (see
:mod:`cevnsfit.stats.compiled`)."""

import math

import numpy as np

from .common import (_decrement, _deviance, _hold, _jit, _poisson_derivatives, _poisson_derivatives4,
                     _positive_step, _solve_spd)

# A full Newton step taken without evaluating chi^2 (no logarithms).  The Poisson deviance in factors a, with mu
# linear in a, is self-concordant: per bin, 2 D (-ln mu) has |f'''| / f''^(3/2) = sqrt(2 / D) <= 2 for counts D >= 1,
# and the pulls are quadratic.  For such a function a full Newton step with lambda^2 = -grad.step < 1 stays in the
# domain, and it lowers chi^2 while lambda < 0.68 (Nesterov, Introductory Lectures on Convex Optimization,
# 2004, sec. 4.1).  So a step whose Newton decrement -grad.step / 2 = lambda^2 / 2 is below BLIND_DECREMENT (lambda < 0.32: a
# margin for non-integer data, where the bound does not hold) is taken without the line search.  Otherwise, or when
# the decrement did not fall after such a step (the step is then undone), the step is line-searched on chi^2
# (halvings until chi^2 does not rise).  The stopping rule: the decrement below the tolerance.
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
def _warm_start(t, x, floor, fixed):
    """A start x of templates t (n_z, bins) with every free factor of fewer than ``floor`` counts put on its bound,
    a = 0 (``PoissonChi2.WARM_FLOOR``)."""
    for z in range(x.size):
        if fixed[z]:
            continue
        tz = 0.0
        for b in range(t.shape[1]):
            tz += t[z, b]
        if x[z] * tz < floor:
            x[z] = 0.0


@_jit
def _cold_start(t, d, x):
    """The cold start of ``PoissonChi2.profile``: every factor 1, except a signal far above the data (> 10 times
    its total), which starts scaled to the observed excess over the backgrounds."""
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
def _poisson_newton(t, x, d, dlnd, ctr, inv_var, fixed, fixed_a, tol, pin, wk):
    """Minimise the Poisson chi^2 of one row over factors x >= 0 from x (in place); returns chi^2_min.

    t (n_z, bins): signal then backgrounds; the rest as ``poisson_profile``.  Projected Newton (active set at the
    bound a = 0, step kept 1/10 from it, stop when the Newton decrement is below the tolerance), with full steps
    taken blind when the decrement certifies them (``BLIND_DECREMENT``).  ``pin``: a factor is at its bound when
    its counts a_z sum_b t_zb are below pin (scaled per template: a signal 1e9 times the data is not at its bound
    at a = 1e-10); factors with ``fixed`` stay at ``fixed_a`` (held: zero gradient, identity Hessian row, so
    every step leaves them exactly there); ``wk``: work arrays (``_work``)."""
    mu, w1, w2, grad, step, piv, trial, x_old, hess, m, r, pins, released, wrong, scratch = wk
    nz = x.size
    for z in range(nz):
        if fixed[z]:
            x[z] = fixed_a[z]
    for z in range(nz):
        tz = 0.0
        for b in range(mu.size):
            tz += t[z, b]
        pins[z] = pin / max(tz, 1.0)
        released[z] = False
    if not _expected(t, x, d, mu):  # a warm start outside the domain: restart from the nominal normalisations
        for z in range(nz):
            if not fixed[z]:
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
            if fixed[z]:
                _hold(hess, grad, z)
        _solve_spd(hess, grad, m, r, piv, step)
        # active set: a factor at its bound pulled down is held there (projected Newton, Bertsekas 1982): else every
        # step of the others would be cut to 9/10 of its ever shorter way to 0 and Newton would stall
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
    return _snap_to_bounds(t, x, d, dlnd, ctr, inv_var, fixed, pins, c0, mu, x_old, scratch)


@_jit
def _snap_to_bounds(t, x, d, dlnd, ctr, inv_var, fixed, pins, c0, mu, x_old, scratch):
    """Free factors that Newton left below their ``pins`` (held at the bound, a little above it) set to exactly 0
    when this does not raise chi^2; returns the chi^2 at x."""
    snap = False
    for z in range(x.size):
        x_old[z] = x[z]
        if 0.0 < x[z] < pins[z] and not fixed[z]:
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
def poisson_profile(sig, bkg, d, dlnd, ctr, inv_var, fixed, fixed_a, a, chi, tol, pin, warm_floor, chain):
    """Profile row i: signal sig[i] (n_bins,), backgrounds bkg (n_z - 1, n_bins), data d[i or 0], constant
    dlnd[i], pull centres ctr[i or 0] (= 1 + centre), factors a[i] (start in, minimum out), chi[i] (out); the
    factors with ``fixed`` (n_z,) held at ``fixed_a``.  chain[i] (i >= 1): row i has row i - 1's data and centres,
    and starts from its solution instead of a[i]."""
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
            _warm_start(t, a[i], warm_floor, fixed)
        chi[i] = _poisson_newton(t, a[i], d[i] if d.shape[0] > 1 else d[0], dlnd[i], ctr[i] if ctr.shape[0] > 1 else ctr[0],
                                 inv_var, fixed, fixed_a, tol, pin, wk)


@_jit
def poisson_grid(sig, bkg, d, dlnd, ctr, inv_var, fixed, fixed_a, tol, pin, warm_floor, chi):
    """chi[i, j]: replica i (data d[i], constant dlnd[i], pull centres ctr[i] = 1 + centre) at signal template j
    (sig (k, n_bins), ordered along a line of couplings); ``fixed``, ``fixed_a`` as ``poisson_profile``.

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
                _warm_start(t, x, warm_floor, fixed)
            chi[i, j] = _poisson_newton(t, x, d[i], dlnd[i], ctr[i], inv_var, fixed, fixed_a, tol, pin, wk)
            for z in range(nz):
                x2[z] = x1[z]
                x1[z] = x[z]


@_jit
def _chi2(t, x, d, dlnd, ctr, inv_var, mu, scratch):
    """chi^2 at factors x for one row; leaves the expected counts in ``mu``."""
    _fill_mu(t, x, mu)
    return _deviance(mu, d, dlnd, x, ctr, inv_var, scratch)


