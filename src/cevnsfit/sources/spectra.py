"""Energy spectra of the SNS pion-decay-at-rest neutrinos, normalised to one neutrino per decay.

* prompt nu_mu: a line at E_pi = (m_pi^2 - m_mu^2) / (2 m_pi) = 29.79 MeV;
* delayed nu_e:      f(E) = (192/m_mu) (E/m_mu)^2 (1/2 - E/m_mu),  0 <= E <= m_mu/2;
* delayed nu_mu-bar: f(E) = ( 64/m_mu) (E/m_mu)^2 (3/4 - E/m_mu).

Every spectrum provides exact *spectral moments* m_k(E_min) = int_{E_min} E^k f(E) dE for k = 0, -1, -2: the
CEvNS rate at recoil T needs only these moments at E_min(T), because the cross section is a polynomial in 1/E.
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
