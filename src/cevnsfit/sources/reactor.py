"""Reactor electron antineutrinos: the spectrum per fission of the four fissioning isotopes, and the flux at a detector.

Spectrum per fission of isotope i (antineutrinos per MeV), ``data/reactor.yaml``:

* 2-8 MeV, the converted spectra of P. Huber, PRC 84, 024617 (2011) for 235U, 239Pu, 241Pu and the ab initio 238U
  spectrum of Th.A. Mueller et al., PRC 83, 054615 (2011) (the "Huber-Mueller" model), 0.25 MeV nodes;
* below 2 MeV, where no converted spectrum exists, the SM-2018 summation spectra of M. Estienne et al.,
  arXiv:1904.09358 (450 d irradiation), 0.1 MeV nodes.  Their size: 66-75 % of the antineutrinos per fission, but
  a 2 MeV antineutrino gives a germanium nucleus at most 2 E^2 / M = 0.12 keVnr (~0.05 keVee), below any CEvNS
  threshold of today, so the choice changes no count of a germanium or heavier detector (tests/test_reactor.py);
* above 8 MeV nothing (the tables end there; the spectra fall by ~e per 0.5 MeV).

The density is linear between the nodes, the last summation node (1.95 MeV) joining the first converted one (2 MeV).

Flux: the fission rate is P / sum_i f_i E_i (thermal power P, fission fractions f_i, energy per fission E_i of X.B.
Ma et al., PRC 88, 014605 (2013)), spread over 4 pi L^2 at the distance L -- or a total antineutrino flux given
directly (what a collaboration quotes).  ``shape_shift`` moves the converted part by that many sigma of its quoted
relative uncertainty (Huber's total per bin, Mueller's 15 %), coherently in energy: the spectrum's shape and
normalisation nuisance of a fit.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ..errors import InputError
from ..parameters import Parameters
from .base import Source, register_source
from .spectra import TabulatedSpectrum

__all__ = ["ISOTOPES", "isotope_spectrum", "reactor_spectrum", "fission_rate_per_s", "reactor"]

ISOTOPES = ("U235", "U238", "Pu239", "Pu241")
"""The fissioning isotopes of a reactor spectrum, in the order of the fission fractions."""
CONVERTED = {"U235": "huber", "Pu239": "huber", "Pu241": "huber", "U238": "mueller"}
CM_PER_M = 100.0
MEV_PER_JOULE = 1.0 / 1.602176634e-13  # the elementary charge, exact (SI 2019)


def _converted(params: Parameters, isotope: str, shape_shift: float) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(params["reactor.huber_energies"], float)
    key = f"reactor.{CONVERTED[isotope]}_{isotope}"
    density = np.asarray(params[key], float)
    sigma = np.broadcast_to(np.asarray(params[f"{key}_sigma"], float), density.shape)
    return e, density * (1.0 + shape_shift * sigma)


def isotope_spectrum(params: Parameters, isotope: str, shape_shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(energies [MeV], antineutrinos per MeV per fission) of one isotope: the summation spectrum below 2 MeV, the
    converted one from 2 to 8 MeV (module docstring)."""
    if isotope not in ISOTOPES:
        raise InputError(f"unknown fissioning isotope '{isotope}'; the isotopes are {', '.join(ISOTOPES)}")
    e_hi, d_hi = _converted(params, isotope, shape_shift)
    e_lo = np.asarray(params["reactor.summation_energies"], float)
    d_lo = np.asarray(params[f"reactor.summation_{isotope}"], float)
    keep = e_lo < e_hi[0]
    return np.concatenate([[0.0], e_lo[keep], e_hi]), np.concatenate([[0.0], d_lo[keep], d_hi])


def _fractions(params: Parameters, fractions: Mapping) -> dict:
    if not isinstance(fractions, Mapping) or not fractions:
        raise InputError(f"reactor fission fractions must map isotopes ({', '.join(ISOTOPES)}) to fractions")
    out = {}
    for iso, f in fractions.items():
        if iso not in ISOTOPES:
            raise InputError(f"unknown fissioning isotope '{iso}'; the isotopes are {', '.join(ISOTOPES)}")
        f = float(f)
        if not (math.isfinite(f) and f >= 0):
            raise InputError(f"the fission fraction of {iso} must be a non-negative number, got {f!r}")
        out[iso] = f
    total = sum(out.values())
    if abs(total - 1.0) > 0.02:
        raise InputError(f"reactor fission fractions must sum to 1 (within 0.02), got {total:.4g}")
    return {iso: f / total for iso, f in out.items()}


def reactor_spectrum(params: Parameters, fractions: Mapping, shape_shift: float = 0.0) -> TabulatedSpectrum:
    """Antineutrinos per MeV per fission of a core with these fission ``fractions`` (sum_i f_i S_i(E)), on the union
    of the isotopes' nodes; its integral is the antineutrinos per fission."""
    return _spectrum(params, tuple(sorted(_fractions(params, fractions).items())), float(shape_shift))


def _spectrum(params: Parameters, fractions: tuple, shape_shift: float) -> TabulatedSpectrum:
    parts = [(f, *isotope_spectrum(params, iso, shape_shift)) for iso, f in fractions]
    grid = np.unique(np.concatenate([e for _, e, _ in parts]))
    density = sum(f * np.interp(grid, e, d, left=0.0, right=0.0) for f, e, d in parts)
    return TabulatedSpectrum(grid, density)


def fission_rate_per_s(params: Parameters, fractions: Mapping, power_gw: float) -> float:
    """Fissions per second of a core of thermal power ``power_gw`` (GW): P / sum_i f_i E_i (E_i: energy per fission,
    ``reactor.energy_per_fission_*``)."""
    f = _fractions(params, fractions)
    mean_mev = sum(x * params[f"reactor.energy_per_fission_{iso}"] for iso, x in f.items())
    return power_gw * 1e9 * MEV_PER_JOULE / mean_mev


@register_source("reactor", units={"flux": "cm^-2 s^-1", "power": "GW", "distance": "m", "exposure": "s",
                                   "shape_shift": "1"})
def reactor(params: Parameters, *, fractions: Mapping, exposure: float, flux: float | None = None,
            power: float | None = None, distance: float | None = None, shape_shift: float = 0.0) -> Source:
    """Electron antineutrinos of a reactor core with fission ``fractions`` {isotope: fraction} at a detector, over an
    ``exposure`` (live time, s): either the total antineutrino ``flux`` (cm^-2 s^-1) or the thermal ``power`` (GW)
    and the ``distance`` (m) to the core.  ``shape_shift``: sigma of the converted spectra's quoted uncertainty."""
    frac = _fractions(params, fractions)
    if not (math.isfinite(exposure) and exposure > 0):
        raise InputError(f"a reactor exposure must be a positive live time, got {exposure!r} s")
    spec = _spectrum(params, tuple(sorted(frac.items())), float(shape_shift))
    per_fission = spec.norm
    if flux is not None:
        if power is not None or distance is not None:
            raise InputError("give a reactor either its flux or its power and distance, not both")
        if not (math.isfinite(flux) and flux > 0):
            raise InputError(f"a reactor flux must be positive, got {flux!r} cm^-2 s^-1")
        phi = float(flux)
    else:
        if power is None or distance is None:
            raise InputError("a reactor needs its flux, or its power and its distance")
        if not (power > 0 and distance > 0):
            raise InputError(f"reactor power and distance must be positive, got {power!r} GW and {distance!r} m")
        phi = fission_rate_per_s(params, frac, power) * per_fission / (4.0 * math.pi * (distance * CM_PER_M) ** 2)
    # the spectrum normalised to 1: the fluence carries the flux (as for every source)
    unit = TabulatedSpectrum(spec.energy_mev, spec.density / per_fission)
    return Source("reactor", phi * exposure, {"nuebar": unit}, None, phi)
