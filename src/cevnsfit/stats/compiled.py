"""Compiled kernels (numba, optional): the profiles of :class:`cevnsfit.stats.chi2.PoissonChi2`, ``GaussianChi2`` and
:class:`cevnsfit.stats.morphing.MorphedPoissonChi2`.

The numpy profiles run on whole batches: every iteration is a few dozen numpy calls over all rows, a few us of
arithmetic per row buried under array temporaries and per-call overhead.  The kernels here run the same
mathematics row by row in compiled code.  The Gaussian branch solutions use the same elimination (the columns
common to all sign branches once per row, a Schur complement, then each branch's small block; the chosen branch's
chi^2 recomputed from its residuals), so their chi^2 equal numpy's to rounding.  The Poisson Newton has the numpy
path's start, active set, step limit, KKT check and stopping rule, and in addition takes the steps that
self-concordance certifies without a line search (no logarithms; see ``_kernels.BLIND_DECREMENT``) and
warm-starts a replica's fits along a line; its minima agree with numpy's to the Newton tolerance (1e-9).  The
Poisson deviance's logarithms are computed by a series that vectorises (``_kernels._log_dot``, within 5e-16 of libm).
tests/test_compiled.py compares every kernel with its numpy path, which stays the reference.

They are used for replicated data sets (toys) and for other batches of :data:`MIN_ROWS` rows or more (every batch
of an analysis's costs: ``BinnedCost.min_compiled_rows``) when numba is importable (``pip install 'cevnsfit[fast]'``) and the environment variable ``CEVNSFIT_COMPILED`` is not ``0``.  Compiled functions are
cached on disk (numba ``cache=True``), so only the first run on a machine pays the compilation (~10-30 s for the
three kernels).
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import numpy as np

__all__ = ["available", "gaussian_grid", "gaussian_profile", "load", "morphed_profile", "poisson_grid", "poisson_profile",
           "worth_it"]


def available() -> bool:
    """True when the compiled kernels can be used (numba installed and ``CEVNSFIT_COMPILED`` != ``0``).  numba is
    imported on the first profile, not here: a command that fits nothing does not pay its ~0.5 s import."""
    return os.environ.get("CEVNSFIT_COMPILED", "1") != "0" and _installed()


# the kernels cost a ~0.5-1 s import of numba per process: worth it for grids and toys, not for the single fits
# and one-point refinements of a small job (benchmarks/bench_fc.py measures both paths)
MIN_ROWS = 64


def worth_it(n_rows: int, min_rows: int = MIN_ROWS) -> bool:
    """Profile a batch of ``n_rows`` compiled: available, and large enough to repay numba's import (``min_rows``: a
    caller that profiles whole grids anyway lowers it; see ``BinnedCost.min_compiled_rows``)."""
    return n_rows >= min_rows and available()


def load() -> None:
    """Import the kernels now (numba and the cached machine code: ~0.3-0.5 s), e.g. before threads call them."""
    importlib.import_module(f"{__package__}._kernels")


@lru_cache(maxsize=None)
def _installed() -> bool:
    return importlib.util.find_spec("numba") is not None


def poisson_profile(signal, backgrounds, observed, dlnd, centres, inv_var, start, tol: float, pin: float,
                    warm_floor: float):
    """chi^2_min (n,) and factors a = 1 + eta (n, n_z) for a batch: ``signal`` (n, n_bins), ``backgrounds``
    (n_z - 1, n_bins), ``observed`` (n or 1, n_bins), ``dlnd`` (n,), ``centres`` (n or 1, n_z) = 1 + pull centre,
    ``start`` (n, n_z) the factors Newton starts from -- except a row with the previous row's data and centres (a
    replica's points along a line), which starts from that row's solution (factors with fewer than ``warm_floor``
    counts on their bound).  Requires :func:`available`."""
    a = np.array(start, dtype=float, order="C")
    chi = np.empty(a.shape[0])
    observed, centres = np.ascontiguousarray(observed, float), np.ascontiguousarray(centres, float)
    chain = np.zeros(a.shape[0], dtype=bool)
    if observed.shape[0] > 1:
        chain[1:] = np.all(observed[1:] == observed[:-1], axis=1)
        if centres.shape[0] > 1:
            chain[1:] &= np.all(centres[1:] == centres[:-1], axis=1)
    from . import _kernels

    _kernels.poisson_profile(np.ascontiguousarray(signal, float), np.ascontiguousarray(backgrounds, float),
                             observed, np.ascontiguousarray(dlnd, float), centres,
                             np.ascontiguousarray(inv_var, float), a, chi, tol, pin, warm_floor, chain)
    return chi, a


def poisson_grid(signals, backgrounds, observed, dlnd, centres, inv_var, tol: float, pin: float,
                 warm_floor: float) -> np.ndarray:
    """chi^2_min (n, k) of replica i (``observed`` (n, n_bins), ``dlnd`` (n,), ``centres`` (n, n_z) = 1 + pull
    centre) at signal template j (``signals`` (k, n_bins), ordered along a line: each fit starts from the previous
    template's).  Requires :func:`available`."""
    from . import _kernels

    arr = lambda a: np.ascontiguousarray(a, dtype=float)  # noqa: E731
    chi = np.empty((np.shape(observed)[0], np.shape(signals)[0]))
    _kernels.poisson_grid(arr(signals), arr(backgrounds), arr(observed), arr(dlnd), arr(centres), arr(inv_var),
                          tol, pin, warm_floor, chi)
    return chi


def gaussian_profile(cost, signal, residual, centre, gram_sig=None):
    """(chi^2 (n,), theta (n, parameters) with eta_signal, branch (n,)) of ``GaussianChi2.profile`` for a batch:
    ``signal`` (n, n_bins), ``residual`` (n or 1, n_bins) the data minus the nominal backgrounds, ``centre`` (n or
    1, parameters) the pull centres with a = 1 for the signal; ``gram_sig`` (n, n_sig, n_col) the signal rows of
    the Gram matrix when known (see ``GaussianChi2.linear_factors``).  Requires :func:`available`."""
    from . import _kernels

    n = signal.shape[0]
    gram_sig = np.zeros((0, cost._n_sig, cost._n_col)) if gram_sig is None else np.ascontiguousarray(gram_sig, float)
    chi, theta, branch = np.empty(n), np.empty((n, cost.prior.size)), np.empty(n, dtype=np.int64)
    arr = lambda a: np.ascontiguousarray(a, dtype=float)  # noqa: E731
    _kernels.gaussian_profile(arr(signal), arr(residual), arr(centre), cost._sig_slope, cost._fixed_cols,
                              cost._g_fixed, cost.w, cost._prior_col, cost._col_param, cost._col_sign, cost.prior,
                              cost._u, cost._e, cost._pick, gram_sig, chi, theta, branch)
    return chi, theta, branch


def gaussian_grid(cost, factors: dict, residual, centre, r0w) -> np.ndarray:
    """chi^2 (n, k) of ``GaussianChi2.replicas_grid`` (without ``exact``) from its ``factors`` (``grid_factors``)
    and the replicas' ``residual`` (n, n_bins), pull ``centre`` (n, parameters) and r0w (n,).  Requires
    :func:`available`."""
    from . import _kernels

    arr = lambda a: np.ascontiguousarray(a, dtype=float)  # noqa: E731
    f = factors
    chi = np.empty((residual.shape[0], f["s"].shape[0]))
    _kernels.gaussian_grid(arr(f["s"]), arr(residual), arr(centre), arr(r0w), cost._sig_w, cost._fixed_w,
                           cost._prior_col, cost._col_param, arr(f["col_scale"]), arr(f["ff_inv"]), arr(f["g_fs"]),
                           arr(f["branch_inv"]), cost._u, cost._e, cost._sel, cost._sel_sign, chi)
    return chi


def morphed_profile(cost, signal, start, coefficients=None, basis=None):
    """(chi^2 (n,), parameters (n, n_comp + 2)) of ``MorphedPoissonChi2.profile`` for a reduced signal batch
    (n, n_grid, n_bins') -- or, with ``signal`` None, for the signals ``coefficients`` (n, K) @ ``basis`` (K,
    n_grid, n_bins'), formed in the kernel row by row -- from ``start`` (n, n_comp + 2).  Requires
    :func:`available`."""
    from . import _kernels

    p = np.array(start, dtype=float, order="C")
    chi = np.empty(p.shape[0])
    arr = lambda a: np.ascontiguousarray(a, dtype=float)  # noqa: E731
    if signal is None:
        signal = np.empty((0, *np.shape(basis)[1:]))
    else:
        coefficients, basis = np.empty((0, 1)), np.empty((1, *np.shape(signal)[1:]))
    _kernels.morphed_profile(arr(signal), arr(coefficients), arr(basis), arr(cost._bkg_morphed), arr(cost._fixed),
                             np.ascontiguousarray(cost._i_morphed, np.int64), np.ascontiguousarray(cost._i_fixed, np.int64),
                             arr(cost._d), float(cost._dlnd), arr(cost._centre), arr(cost.inv_var),
                             np.ascontiguousarray(cost.free), arr(cost.morph.x.nodes), arr(cost.morph.x._c),
                             arr(cost.morph.y.nodes), arr(cost.morph.y._c), float(cost.tol), p, chi)
    return chi, p
