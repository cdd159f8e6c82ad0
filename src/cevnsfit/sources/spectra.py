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

    ``moment(k, E_min)`` = int_{E_min} E^k f(E) dE (k = 0, -1, -2), exact for the piecewise-linear density (the
    kernel's spectral moments; a trapezoid rule in E^k f overestimated the k = -2 moment by 0.4-0.7 % on the
    0.25 MeV nodes of a reactor spectrum, and the rate near a recoil's kinematic end point, a difference of two
    moments, by up to 7 %: tests/test_reactor.py).
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

    @staticmethod
    def _antiderivative(k: int, e: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """F(E) with dF/dE = (a + b E) E^k, for k = 0, -1, -2 (E > 0 where k < 0)."""
        if k == 0:
            return a * e + 0.5 * b * e**2
        if k == -1:
            return a * np.log(e) + b * e
        if k == -2:
            return -a / e + b * np.log(e)
        raise InputError(f"spectral moments are k = 0, -1, -2, got {k}")

    def _segments(self, k: int):
        """(a, b) of each segment's linear density a + b E, and each segment's exact integral of (a + b E) E^k.  For
        k < 0 the integral of a segment that starts at E = 0 diverges; it is taken, by convention, as the trapezoid
        with E^k read as 1 at E = 0: it enters only at E_min = 0 (a zero recoil), where the kernel multiplies it by
        the recoil energy."""
        e, d = self.energy_mev, self.density
        b = np.diff(d) / np.diff(e)
        a = d[:-1] - b * e[:-1]
        if k == 0:
            return a, b, np.diff(e) * 0.5 * (d[1:] + d[:-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            seg = self._antiderivative(k, e[1:], a, b) - self._antiderivative(k, np.where(e[:-1] > 0, e[:-1], np.nan), a, b)
        from_zero = e[:-1] <= 0
        seg[from_zero] = (0.5 * (d[:-1] + d[1:] * e[1:] ** k) * np.diff(e))[from_zero]
        return a, b, seg

    def moment(self, k: int, e_min_mev) -> np.ndarray:
        """int_{E_min} E^k f(E) dE, exact for the piecewise-linear density (k = 0, -1, -2; E_min > 0 for k < 0)."""
        cache = self.__dict__.setdefault("_moments", {})
        if k not in cache:
            a, b, seg = self._segments(k)
            cache[k] = (a, b, np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]]))
        a, b, tail = cache[k]
        e_min = np.asarray(e_min_mev, dtype=float)
        e = self.energy_mev
        # the segment holding E_min: its part from E_min to its upper node, exactly; then the tail above that node
        i = np.clip(np.searchsorted(e, e_min, side="right") - 1, 0, e.size - 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            part = (self._antiderivative(k, e[i + 1], a[i], b[i])
                    - self._antiderivative(k, np.maximum(e_min, e[i]), a[i], b[i]))
        inside = tail[i + 1] + np.where(e_min > 0, part, 0.0) if k else tail[i + 1] + part
        # E_min at or below the first node (energies are >= 0: E_min = 0 included): the whole (conventional) tail
        return np.where(e_min >= e[-1], 0.0, np.where(e_min <= e[0], tail[0], inside))

    @classmethod
    def from_table(cls, energy_mev, density) -> "TabulatedSpectrum":
        """A tabulated spectrum (energies in MeV, any normalisation), normalised to 1."""
        e, d = np.asarray(energy_mev, float), np.asarray(density, float)
        if e.ndim != 1 or e.shape != d.shape or e.size < 2 or np.any(np.diff(e) <= 0) or e[0] < 0 \
                or np.any(d < 0) or not np.all(np.isfinite(d)) or np.trapezoid(d, e) <= 0:
            raise InputError("a tabulated spectrum needs increasing energies >= 0 MeV and non-negative finite "
                             "densities")
        return cls(e, d / np.trapezoid(d, e))

    def scaled(self, factor: np.ndarray) -> "TabulatedSpectrum":
        """The spectrum times an energy-dependent factor on the same grid (e.g. an oscillation probability)."""
        return TabulatedSpectrum(self.energy_mev, self.density * np.asarray(factor, float))
