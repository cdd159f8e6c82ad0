"""Helpers of the reference profiles (tests/reference_*.py): the numpy pieces that the former numpy profiles of
cevnsfit.stats used, kept beside them."""

from __future__ import annotations

import numpy as np


def jacobi_scale(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Scale the normal equations symmetrically by sqrt(diag G) in place (a huge signal makes its columns ~1e20
    larger than the pulls); returns the scale (n, columns): the scaled solution is theta * scale."""
    scale = np.sqrt(np.einsum("nii->ni", gram))
    gram /= scale[:, :, None] * scale[:, None, :]
    rhs /= scale
    return scale


def linear_signals(coefficients: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Signals (n, *shape) = coefficients (n, K) @ basis (K, *shape)."""
    basis = np.asarray(basis, dtype=float)
    out = np.asarray(coefficients, dtype=float) @ basis.reshape(basis.shape[0], -1)
    return out.reshape(-1, *basis.shape[1:])


def dlnd(d: np.ndarray) -> np.ndarray | float:
    """Constant part of the Poisson deviance, sum[D ln D - D] over the last axis (0 ln 0 = 0)."""
    return np.sum(np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0), axis=-1) - d.sum(axis=-1)


def dlnd_rows(d: np.ndarray) -> np.ndarray:
    """``dlnd`` per row (n, bins) -> (n,); a row equal to the one before it (a replica's points along a line)
    reuses its value instead of taking its logarithms again."""
    new = np.ones(d.shape[0], dtype=bool)
    new[1:] = np.any(d[1:] != d[:-1], axis=1)
    return dlnd(d[new])[np.cumsum(new) - 1]


def solve_spd(m: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Solve symmetric positive-definite systems m x = r over leading batch axes (m: (..., k, k), k small).

    Gaussian elimination without pivoting (stable for SPD), as k^2 whole-array operations: for the tiny systems
    of the sign branches this is much faster than one LAPACK call per matrix.
    """
    m = m.copy()
    r = r.copy()
    k = m.shape[-1]
    for i in range(k):
        for j in range(i + 1, k):
            f = m[..., j, i] / m[..., i, i]
            m[..., j, i:] -= f[..., None] * m[..., i, i:]
            r[..., j] -= f * r[..., i]
    x = np.empty_like(r)
    for i in reversed(range(k)):
        x[..., i] = (r[..., i] - np.sum(m[..., i, i + 1:] * x[..., i + 1:], axis=-1)) / m[..., i, i]
    return x
