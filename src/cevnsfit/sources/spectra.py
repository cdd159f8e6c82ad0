"""Energy spectra of the SNS pion-decay-at-rest neutrinos, normalised to one neutrino per decay.

* prompt nu_mu: a line at E_pi = (m_pi^2 - m_mu^2) / (2 m_pi) = 29.79 MeV;
* delayed nu_e:      f(E) = (192/m_mu) (E/m_mu)^2 (1/2 - E/m_mu),  0 <= E <= m_mu/2;
* delayed nu_mu-bar: f(E) = ( 64/m_mu) (E/m_mu)^2 (3/4 - E/m_mu).

Every spectrum provides exact *spectral moments* m_k(E_min) = int_{E_min} E^k f(E) dE for k = 0, -1, -2: the
CEvNS rate at recoil T needs only these moments at E_min(T), because the cross section is a polynomial in 1/E.
Spectra of other sources are tabulated (:class:`TabulatedSpectrum`: the Sun's 8B, a reactor's antineutrinos).
Energies in MeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..parameters import DEFAULT, Parameters

MOMENT_ORDERS = (0, -1, -2)


def pion_line_energy_mev(params: Parameters = DEFAULT) -> float:
    """Energy of the prompt nu_mu from pi+ -> mu+ nu_mu at rest, MeV."""
    m_pi, m_mu = params["constants.m_pi"], params["constants.m_mu"]
    return (m_pi**2 - m_mu**2) / (2.0 * m_pi)


@dataclass(frozen=True)
class LineSpectrum:
    """Monochromatic spectrum delta(E - energy_mev)."""

    energy_mev: float

    @property
    def max_energy_mev(self) -> float:
        return self.energy_mev

    def moment(self, k: int, e_min_mev: np.ndarray) -> np.ndarray:
        e_min = np.asarray(e_min_mev, dtype=float)
        return np.where(e_min <= self.energy_mev, self.energy_mev**k, 0.0)


@dataclass(frozen=True)
class MichelSpectrum:
    """Michel-type spectrum f(E) = c/m (E/m)^2 (a - E/m) on [0, m/2] (c, a set by the flavour)."""

    muon_mass_mev: float
    c: float
    a: float

    @property
    def max_energy_mev(self) -> float:
        return 0.5 * self.muon_mass_mev

    def pdf(self, energy_mev: np.ndarray) -> np.ndarray:
        x = np.asarray(energy_mev, dtype=float) / self.muon_mass_mev
        inside = (x >= 0) & (x <= 0.5)
        return np.where(inside, self.c / self.muon_mass_mev * x * x * (self.a - x), 0.0)

    def _primitive(self, k: int, x: np.ndarray) -> np.ndarray:
        # int x^(2+k) (a - x) dx, exact for the k >= -2 used here
        return self.a * x ** (3 + k) / (3 + k) - x ** (4 + k) / (4 + k)

    def moment(self, k: int, e_min_mev: np.ndarray) -> np.ndarray:
        if k < -2:
            raise InputError(f"spectral moment of order {k} is not defined for a Michel spectrum")
        x = np.clip(np.asarray(e_min_mev, dtype=float) / self.muon_mass_mev, 0.0, 0.5)
        return self.c * self.muon_mass_mev**k * (self._primitive(k, 0.5) - self._primitive(k, x))


@dataclass(frozen=True)
class BinnedSpectrum:
    """Histogram spectrum: weight w_b placed at the centre of bin b (quadrature at bin centres)."""

    centres_mev: np.ndarray
    weights: np.ndarray

    @property
    def max_energy_mev(self) -> float:
        return float(self.centres_mev[self.weights > 0].max())

    def moment(self, k: int, e_min_mev: np.ndarray) -> np.ndarray:
        e_min = np.asarray(e_min_mev, dtype=float)
        terms = self.weights * self.centres_mev**k
        above = self.centres_mev[None, :] >= e_min.reshape(-1, 1)
        return (above * terms[None, :]).sum(axis=1).reshape(e_min.shape)


def pion_dar_spectra(params: Parameters = DEFAULT) -> dict:
    """The analytic pi-DAR spectra per flavour (each normalised to 1)."""
    m_mu = params["constants.m_mu"]
    return {
        "numu": LineSpectrum(pion_line_energy_mev(params)),
        "nue": MichelSpectrum(m_mu, 192.0, 0.5),
        "numubar": MichelSpectrum(m_mu, 64.0, 0.75),
    }


@dataclass(frozen=True)
class TabulatedSpectrum:
    """Spectrum given as a density on a fine energy grid (MeV), linear between nodes; integral = ``norm``.

    ``moment(k, E_min)`` = int_{E_min} E^k f(E) dE (k = 0, -1, -2), from cumulative trapezoid sums interpolated
    linearly in E_min (the kernel's spectral moments, :mod:`cevnsfit.response`).
    """

    energy_mev: np.ndarray
    density: np.ndarray  # per MeV

    @property
    def max_energy_mev(self) -> float:
        return float(self.energy_mev[np.flatnonzero(self.density > 0)[-1]]) if np.any(self.density > 0) else 0.0

    @property
    def norm(self) -> float:
        return float(np.trapezoid(self.density, self.energy_mev))

    def pdf(self, energy_mev) -> np.ndarray:
        return np.interp(energy_mev, self.energy_mev, self.density, left=0.0, right=0.0)

    def _tail(self, k: int) -> np.ndarray:
        e = self.energy_mev
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(self.density > 0, self.density * np.where(e > 0, e, 1.0) ** k, 0.0)
        seg = 0.5 * (g[1:] + g[:-1]) * np.diff(e)
        return np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])

    def moment(self, k: int, e_min_mev) -> np.ndarray:
        tail = self.__dict__.setdefault("_tails", {})
        if k not in tail:
            tail[k] = self._tail(k)
        e_min = np.asarray(e_min_mev, dtype=float)
        e = self.energy_mev
        # the tail integral is exact at the nodes; between them the density is linear, so integrate the piece
        # [E_min, next node] exactly enough by the trapezoid with the interpolated density
        idx = np.clip(np.searchsorted(e, e_min, side="right"), 1, e.size - 1)
        hi = e[idx]
        f_lo = self.pdf(e_min) * np.where(e_min > 0, e_min, 1.0) ** k
        f_hi = self.density[idx] * hi**k
        part = 0.5 * (f_lo + f_hi) * np.clip(hi - e_min, 0.0, None)
        out = tail[k][idx] + part
        return np.where(e_min >= e[-1], 0.0, np.where(e_min <= e[0], tail[k][0], out))

    @classmethod
    def from_table(cls, energy_mev, density) -> "TabulatedSpectrum":
        """A tabulated spectrum (energies in MeV, any normalisation), normalised to 1."""
        e, d = np.asarray(energy_mev, float), np.asarray(density, float)
        if e.ndim != 1 or e.shape != d.shape or e.size < 2 or np.any(np.diff(e) <= 0) or np.any(d < 0) \
                or not np.all(np.isfinite(d)) or np.trapezoid(d, e) <= 0:
            raise InputError("a tabulated spectrum needs increasing energies and non-negative finite densities")
        return cls(e, d / np.trapezoid(d, e))

    def scaled(self, factor: np.ndarray) -> "TabulatedSpectrum":
        """The spectrum times an energy-dependent factor on the same grid (e.g. an oscillation probability)."""
        return TabulatedSpectrum(self.energy_mev, self.density * np.asarray(factor, float))
