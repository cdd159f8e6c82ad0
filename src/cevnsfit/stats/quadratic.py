"""A profiled chi^2 that is a closed form in the coefficients of a signal basis.

When every nuisance enters linearly and with a Gaussian prior (:class:`~cevnsfit.stats.gaussian.GaussianChi2` on its
one sign branch), the chi^2 of the signals ``c @ B`` -- a basis B (K templates: a mediator's N0, N1, N2 at one mass)
and coefficients c (n, K) -- profiled over every nuisance is, by the normal equations with the signal-independent
columns eliminated once per basis (:meth:`GaussianChi2.quadratic`),

    chi^2(c) = const - v' A^-1 v,    A = sum_kk' c_k c_k' Q_kk' + P,    v = sum_k c_k R_k + P theta_0

with (n_sig x n_sig) blocks Q_kk', vectors R_k, the signal columns' priors P and pull centres theta_0.  A row then
costs a quadratic form in K coefficients and an (n_sig x n_sig) solve instead of a profile fit.

The arrays carry leading axes -- R bases (the masses of a plane), M members of a grid-profiled cost
(:mod:`~cevnsfit.stats.gridprofile`) -- evaluated in one pass: Dresden-II's 31 decay lengths are one array
operation, not 31 fits (docs/validation/speed.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QuadraticProfile"]


@dataclass(frozen=True)
class QuadraticProfile:
    """chi^2(c) = const - v'A^-1 v (module docstring) for leading axes ``lead`` = const.shape.

    ``const`` (*lead); ``q`` (*lead, K, K, n_sig, n_sig); ``r`` (*lead, K, n_sig); ``prior`` (n_sig,): the signal
    columns' diagonal of P (with the normal equations' 1e-12); ``pull`` (n_sig,): P theta_0."""

    const: np.ndarray
    q: np.ndarray
    r: np.ndarray
    prior: np.ndarray
    pull: np.ndarray

    def __call__(self, coefficients: np.ndarray) -> np.ndarray:
        """chi^2 (*lead, n) of the signals ``coefficients`` (n, K) @ basis."""
        c = np.asarray(coefficients, dtype=float)
        n, k = c.shape
        lead, ns = self.const.shape, self.prior.size
        cc = (c[:, :, None] * c[:, None, :]).reshape(n, k * k)
        a = (cc @ self.q.reshape(*lead, k * k, ns * ns)).reshape(*lead, n, ns, ns) + np.diag(self.prior)
        v = c @ self.r + self.pull
        if ns == 1:
            return self.const[..., None] - v[..., 0] ** 2 / a[..., 0, 0]
        return self.const[..., None] - np.einsum("...j,...j->...", v, np.linalg.solve(a, v[..., None])[..., 0])

    @staticmethod
    def stack(forms: list) -> "QuadraticProfile | None":
        """One profile with a new leading axis over ``forms`` (the members of a grid-profiled cost), or None when
        one is missing (None) or their signal priors differ (then each is evaluated on its own)."""
        if not forms or any(f is None for f in forms):
            return None
        first = forms[0]
        if any(not (np.array_equal(f.prior, first.prior) and np.array_equal(f.pull, first.pull)) for f in forms):
            return None
        return QuadraticProfile(np.stack([f.const for f in forms]), np.stack([f.q for f in forms]),
                                np.stack([f.r for f in forms]), first.prior, first.pull)
