"""Poisson chi^2 with Gaussian pulls on the component normalisations (CsI, AC22; see :mod:`cevnsfit.stats.chi2`)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import InputError
from .compiled import Kernels
from .cost import SIGNAL, ReplicaCost, c_array, dlnd, dlnd_rows



KERNELS = Kernels("poisson")  # ready on first use: numba is imported then (stats/compiled.py)


class PoissonChi2(ReplicaCost):
    """chi^2 = 2 sum_b [N_b - D_b + D_b ln(D_b/N_b)] + sum_z ((eta_z - eta_z0)/sigma_z)^2, N = sum_z (1 + eta_z) N_z:
    convex in the factors a_z = 1 + eta_z >= 0, profiled by projected Newton (|d chi^2| < ``tol`` at exit).

    ``observed`` (n_energy, n_time) counts; ``backgrounds``: component -> template of that shape (the signal
    component, ``"cevns"``, is the template passed to ``__call__``); ``sigmas``: component -> relative pull width
    (None: free normalisation, no pull term; 0: fixed at a = 1); ``centres``: parameter name -> pull centre eta_0
    (default 0).  Parameters: ``norm_<component>``.
    """

    # a factor whose counts a_z sum_b N_zb are below PIN, pulled down, is at the bound a = 0 (chi^2 error ~ 2 PIN)
    PIN = 1e-9
    # a warm-started factor with fewer counts than this starts on its bound, a = 0 (in counts, not in a: a signal
    # 1e9 times the data is well fitted at a = 1e-10; a factor a little above 0 would cut every step of the others
    # to 9/10 of its way to 0)
    WARM_FLOOR = 1e-3

    def __init__(self, name: str, observed: np.ndarray, backgrounds: Mapping, sigmas: Mapping, tol: float = 1e-9,
                 centres: Mapping | None = None):
        self.name = name
        self.observed = np.asarray(observed, dtype=float)
        self.shape = self.observed.shape
        self.n_bins = self.observed.size
        self.components = (SIGNAL, *backgrounds)
        # no background at all is allowed (a background-free projected detector): an empty (0, n_bins) stack
        self.backgrounds = (np.stack([np.asarray(backgrounds[z], float).ravel() for z in backgrounds]) if backgrounds
                            else np.zeros((0, self.n_bins)))
        self.tol = tol
        self._init_parameters(sigmas, {}, centres)
        self._d = c_array(self.observed.ravel()[None])
        self._dlnd = float(dlnd(self._d[0]))
        self._pack()

    def _check_value(self, name: str, value: float) -> None:
        super()._check_value(name, value)
        if value < -1.0:
            raise InputError(f"{self.name}: {name} is eta = a - 1 with a >= 0, cannot be fixed at {value}")

    def _pack(self) -> None:
        mask, value = self._fixed_values()
        self._k_bkg = c_array(self.backgrounds)
        self._k_inv_var = c_array(self._inv_var())
        self._k_fixed, self._k_fixed_a = c_array(mask, np.bool_), c_array(1.0 + value)
        self._k_ctr = c_array(1.0 + self._centre_values()[None])  # the kernel's pull centres: a_0 = 1 + eta_0

    def sample(self, expected: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` replicated data sets (n, n_bins) of the counts this chi^2 assumes: D_b ~ Poisson(expected_b)."""
        return rng.poisson(np.asarray(expected, float), size=(n, self.n_bins)).astype(float)

    def counts(self, signal: np.ndarray, theta: np.ndarray) -> dict:
        tpl = [np.asarray(signal, float).ravel(), *self.backgrounds]
        return {z: (1.0 + theta[i]) * tpl[i] for i, z in enumerate(self.components)}

    def profile(self, signal: np.ndarray, eta0: np.ndarray | None = None, observed: np.ndarray | None = None,
                centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chi^2_min (n,), eta_hat (n, n_z)) for a batch of signals (n, n_E, n_t); ``eta0`` warm-starts Newton.

        Newton iterates on the factors a_z = 1 + eta_z > 0 (kernels/poisson.py).  A signal far above the data
        (absurd couplings) is profiled towards a_cevns -> 0 at the price of its pull: such points start where the
        scaled signal matches the observed excess, so that Newton needs a few steps.  ``observed`` (n, n_bins) and
        ``centres`` (n, n_z: shifts of the pull centres) replace the data and the centres row by row (replicated
        experiments; see ``replicas``).
        """
        n, nz = signal.shape[0], len(self.components)
        s = c_array(signal.reshape(n, -1))
        if observed is None:
            d, dl, ctr = self._d, np.full(n, self._dlnd), self._k_ctr
        else:
            d = c_array(observed)
            dl = dlnd_rows(d)
            ctr = self._k_ctr if centres is None else c_array(self._k_ctr + centres)
        s_tot = s.sum(axis=1)
        if eta0 is None:
            d_tot = d.sum(axis=1)
            a = np.ones((n, nz))
            excess = np.maximum(d_tot - self.backgrounds.sum(), 1.0)
            huge = s_tot > 10.0 * d_tot
            a[huge, 0] = np.broadcast_to(excess, (n,))[huge] / s_tot[huge]
        else:
            # a factor profiled onto its boundary starts on it (WARM_FLOOR; one restarted at 1 would walk back down
            # in steps of 10x)
            a = 1.0 + np.array(eta0, dtype=float).reshape(n, nz)
            totals = np.concatenate([s_tot[:, None], np.broadcast_to(self.backgrounds.sum(axis=1), (n, nz - 1))],
                                    axis=1)
            a[a * totals < self.WARM_FLOOR] = 0.0
        # a row with the previous row's data and centres (a replica's points along a line) starts from its solution
        chain = np.zeros(n, dtype=bool)
        if d.shape[0] > 1:
            chain[1:] = np.all(d[1:] == d[:-1], axis=1)
            if ctr.shape[0] > 1:
                chain[1:] &= np.all(ctr[1:] == ctr[:-1], axis=1)
        chi = np.empty(n)
        KERNELS.poisson_profile(s, self._k_bkg, d, c_array(dl), ctr, self._k_inv_var, self._k_fixed,
                                   self._k_fixed_a, a, chi, float(self.tol), self.PIN, self.WARM_FLOOR, chain)
        return chi, a - 1.0

    def profile_warm(self, signal: np.ndarray, start=None) -> tuple[np.ndarray, object]:
        """(chi^2 (n,), (eta_hat, signal totals)) for a batch, each row started from ``start``, what the previous
        batch returned for the same row (a scan's neighbouring mass at the same coupling).  Where that fit
        suppressed the signal (a < 1/2: the data fix its counts, not its factor), the factor starts where it keeps
        those counts, a_prev S_prev / S: a signal 1e9 times the data needs a ~ 1e-9, which Newton would otherwise
        reach in factors of 10 per step."""
        n = signal.shape[0]
        s_tot = signal.reshape(n, -1).sum(axis=1)
        eta0 = None
        if start is not None:
            eta_prev, s_prev = start
            a0 = 1.0 + eta_prev[:, 0]
            ratio = np.divide(s_prev, s_tot, out=np.ones(n), where=s_tot > 0)
            eta0 = np.array(eta_prev, dtype=float)
            eta0[:, 0] = np.where(a0 < 0.5, a0 * ratio, a0) - 1.0
        chi, eta = self.profile(signal, eta0)
        return chi, (eta, s_tot)

    def replicas_grid(self, signals: np.ndarray, observed: np.ndarray, centres: np.ndarray | None = None,
                      factors=None) -> np.ndarray:
        """``ReplicaCost.replicas_grid`` with warm starts along the templates (ordered along a coupling line): each
        replica's fit at template j starts from its fits at j - 1 and j - 2 (kernels/poisson.py, poisson_grid).
        Equal to cold fits of every pair to the Newton tolerance (tests/test_fc_speed.py)."""
        k = signals.shape[0]
        n = np.asarray(observed).shape[0]
        d, c = self._replica_rows(n, observed, centres)
        d = c_array(d)
        chi = np.empty((n, k))
        KERNELS.poisson_grid(c_array(signals.reshape(k, -1)), self._k_bkg, d, c_array(dlnd(d)),
                                c_array(self._k_ctr + c), self._k_inv_var, self._k_fixed, self._k_fixed_a,
                                float(self.tol), self.PIN, self.WARM_FLOOR, chi)
        return chi
