"""Arrival-time distributions of SNS neutrinos.

Two models (physics specification sections 6.3-6.4):

* :class:`GridTiming` -- the projection over energy of the snsFlux2D grid (125-ns bins) derived from COHERENT's
  CsI-2021 ``snsFlux2D.root``; the PDF is uniform inside each grid bin.  Default for CsI.
* :class:`AnalyticTiming` -- proton-on-target trace Gauss(mu, sigma) folded with the pion lifetime (prompt nu_mu)
  and with pion and muon lifetimes (delayed nu_e, nu_mu-bar).  Default for LAr (mu = 450 ns).

Both give ``bin_fractions(edges_us, efficiency)``: the fraction of each flavour's neutrinos arriving in each
analysis time bin, weighted by an optional time efficiency eps(t).  Times in us on the analysis axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.special import log_ndtr, ndtr

from ..errors import DataError
from ..io.datadir import read_npz
from ..parameters import DEFAULT, Parameters

# The flavour keys of the snsFlux2D grid.
GRID_KEYS = {"nue": "nuE", "numu": "nuMu", "numubar": "nuMuBar", "nuebar": "nuEBar"}
PROMPT = ("numu",)

Efficiency = Callable[[np.ndarray], np.ndarray]


def _bin_average(efficiency: Efficiency | None, lo: np.ndarray, hi: np.ndarray, n: int = 64) -> np.ndarray:
    """Mean of eps(t) over each [lo, hi] (Gauss-Legendre, exact enough for smooth eps with one kink per bin)."""
    if efficiency is None:
        return np.ones_like(lo)
    x, w = np.polynomial.legendre.leggauss(n)
    t = 0.5 * (hi - lo)[:, None] * x[None, :] + 0.5 * (hi + lo)[:, None]
    return (efficiency(t) * w[None, :]).sum(axis=1) / 2.0


@dataclass(frozen=True)
class GridTiming:
    """Time PDF per flavour from the derived snsFlux2D grid: probability per grid bin (sums to 1 over 0-15 us)."""

    edges_us: np.ndarray
    probability: dict

    @classmethod
    def from_npz(cls, path: Path, offset_ns: float = 0.0) -> "GridTiming":
        arrays = read_npz(Path(path), ("t_edges_ns", *GRID_KEYS.values()))
        edges = arrays["t_edges_ns"]
        hist = {f: arrays[k] for f, k in GRID_KEYS.items()}
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise DataError(f"flux grid {path}: t_edges_ns must be increasing bin edges")
        probability = {}
        for f, h in hist.items():
            if h.ndim != 2 or h.shape[0] != edges.size - 1 or not np.all(np.isfinite(h)):
                raise DataError(f"flux grid {path}: array for {f} has shape {h.shape}, expected ({edges.size - 1}, n_E)")
            t = h.sum(axis=1)
            probability[f] = t / t.sum() if t.sum() > 0 else t
        return cls((edges + offset_ns) / 1e3, probability)

    def bin_fractions(self, flavour: str, edges_us: np.ndarray, efficiency: Efficiency | None = None) -> np.ndarray:
        """Fraction of ``flavour`` arriving in each analysis bin, weighted by eps(t) (uniform within grid bins)."""
        g_lo, g_hi = self.edges_us[:-1], self.edges_us[1:]
        edges = np.asarray(edges_us, dtype=float)
        out = np.zeros(edges.size - 1)
        p = self.probability[flavour]
        for j, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            lo, hi = np.maximum(g_lo, a), np.minimum(g_hi, b)
            ok = hi > lo
            if not ok.any():
                continue
            frac = (hi[ok] - lo[ok]) / (g_hi[ok] - g_lo[ok])
            out[j] = np.sum(p[ok] * frac * _bin_average(efficiency, lo[ok], hi[ok]))
        return out


def _emg_cdf(t: np.ndarray, mu: float, sigma: float, tau: float) -> np.ndarray:
    """CDF of Gauss(mu, sigma) convolved with an exponential of mean tau (exponentially modified Gaussian)."""
    z = (t - mu) / sigma
    lam_sigma = sigma / tau
    log_tail = -(t - mu) / tau + 0.5 * lam_sigma**2 + log_ndtr(z - lam_sigma)
    return ndtr(z) - np.exp(log_tail)


@dataclass(frozen=True)
class AnalyticTiming:
    """POT trace Gauss(mean, width) folded with pion (prompt) or pion and muon (delayed) decays; times in ns."""

    mean_ns: float
    width_ns: float
    tau_pi_ns: float
    tau_mu_ns: float

    @classmethod
    def from_parameters(cls, mean_ns: float, width_ns: float, params: Parameters = DEFAULT) -> "AnalyticTiming":
        return cls(mean_ns, width_ns, params["constants.tau_pi"], params["constants.tau_mu"])

    def cdf(self, flavour: str, t_us: np.ndarray) -> np.ndarray:
        t = np.asarray(t_us, dtype=float) * 1e3
        prompt = _emg_cdf(t, self.mean_ns, self.width_ns, self.tau_pi_ns)
        if flavour in PROMPT:
            return prompt
        # pi then mu decay: hypo-exponential = [tau_mu Exp(tau_mu) - tau_pi Exp(tau_pi)] / (tau_mu - tau_pi)
        slow = _emg_cdf(t, self.mean_ns, self.width_ns, self.tau_mu_ns)
        return (self.tau_mu_ns * slow - self.tau_pi_ns * prompt) / (self.tau_mu_ns - self.tau_pi_ns)

    def bin_fractions(self, flavour: str, edges_us: np.ndarray, efficiency: Efficiency | None = None) -> np.ndarray:
        edges = np.asarray(edges_us, dtype=float)
        if efficiency is None:
            return np.diff(self.cdf(flavour, edges))
        # weighted: integrate eps(t) dP on a fine grid (10 ns) per bin
        out = np.zeros(edges.size - 1)
        for j, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            n = max(int(np.ceil((b - a) / 0.01)), 2)
            t = np.linspace(a, b, n + 1)
            dp = np.diff(self.cdf(flavour, t))
            out[j] = np.sum(dp * efficiency(0.5 * (t[1:] + t[:-1])))
        return out
