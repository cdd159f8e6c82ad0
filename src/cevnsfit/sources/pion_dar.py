"""Pion decay at rest (the SNS, the ESS): the source kind ``pion_dar``.

Stopped pi+ give three flavours with fixed spectra (:func:`.spectra.pion_dar_spectra`): a prompt nu_mu line at
29.79 MeV and delayed nu_e and nu_mu-bar from mu+ decay; each flavour's fluence at a detector is
r N_POT / (4 pi L^2) with r neutrinos per flavour per proton on target.  What differs between facilities is only the
fluence; what differs between detectors is the exposure (POT), the baseline and the arrival-time model they use:

* ``timing={"model": "grid", "path": FILE, "offset_ns": dt}``: the snsFlux2D time projection (CsI-2021);
* ``timing={"model": "analytic", "mean_ns": mu, "width_ns": sigma}``: the POT trace Gauss(mu, sigma) folded with the
  pion (and muon) lifetimes (LAr-2020);
* ``timing=None``: no arrival times (a projection with one time bin).

``spectrum="analytic"`` (default) or ``{"grid": FILE}`` (the snsFlux2D energy projection, the line moved to E_pi).
Facilities (proton energy, power, yield, beam hours: ``sources.<name>`` of data/projection.yaml) convert an exposure
in GWh or years into POT (:class:`PionDARFacility`).  Units: energies in MeV (neutrinos) and GeV (protons), L in m.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, InputError
from ..io.datadir import read_npz
from ..parameters import Parameters
from .base import Source, register_source
from .spectra import BinnedSpectrum, pion_dar_spectra, pion_line_energy_mev
from .timing import GRID_KEYS, AnalyticTiming, GridTiming

FLAVOURS = ("nue", "numu", "numubar")
JOULE_PER_GWH = 3.6e12
JOULE_PER_GEV = 1.602176634e-10  # SI 2019 exact elementary charge x 1e9


def fluence_per_cm2(pot: float, nu_per_flavour_per_pot: float, baseline_m: float) -> float:
    """Time-integrated neutrinos per flavour per cm^2 at the detector: r N_POT / (4 pi L^2)."""
    return nu_per_flavour_per_pot * pot / (4.0 * np.pi * (baseline_m * 100.0) ** 2)


def grid_spectra(path: Path, params: Parameters) -> dict:
    """Per-flavour spectra from the energy projection of the snsFlux2D grid at ``path`` (each normalised to 1); the
    prompt line, in the 30 MeV label of the grid, is moved to E_pi."""
    keys = {f: GRID_KEYS[f] for f in FLAVOURS}
    grid = read_npz(Path(path), ("E_bin_label_MeV", *keys.values()))
    labels = grid["E_bin_label_MeV"]
    spectra = {}
    for f, key in keys.items():
        w = grid[key].sum(axis=0)
        if w.shape != labels.shape or not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise DataError(f"flux grid {path}: {key} does not match E_bin_label_MeV")
        w = w / w.sum()
        centres = labels.copy()
        if f == "numu":  # the pion line sits in label 30 at bin centre 30.0: move it to E_pi
            centres[np.argmin(np.abs(labels - 30.0))] = pion_line_energy_mev(params)
        spectra[f] = BinnedSpectrum(centres, w)
    # the order of FLAVOURS (nue, numu, numubar), as the analytic spectra
    return {f: spectra[f] for f in FLAVOURS}


def arrival_times(timing, params: Parameters):
    """The arrival-time model of a ``timing`` argument (module docstring), or None."""
    if timing is None:
        return None
    if not isinstance(timing, dict) or timing.get("model") not in ("grid", "analytic"):
        raise InputError(f"pion_dar timing must be None or {{model: grid | analytic, ...}}, got {timing!r}")
    if timing["model"] == "grid":
        return GridTiming.from_npz(timing["path"], offset_ns=float(timing.get("offset_ns", 0.0)))
    return AnalyticTiming.from_parameters(float(timing["mean_ns"]), float(timing["width_ns"]), params)


@register_source("pion_dar", units={"pot": "POT", "baseline": "m", "nu_per_flavour_per_pot": "nu/flavour/POT",
                                    "exposure": "POT | GWh | years"})
def pion_dar(params: Parameters, *, baseline: float, pot: float | None = None,
             nu_per_flavour_per_pot: float | None = None, facility: str | None = None, exposure=None,
             spectrum="analytic", timing=None) -> Source:
    """Stopped-pion neutrinos at a detector ``baseline`` m away after ``pot`` protons on target (module docstring);
    or at a ``facility`` of data/projection.yaml (sns, ess) for an ``exposure`` (value, "POT" | "GWh" | "years"),
    its yield per proton unless ``nu_per_flavour_per_pot`` is given."""
    if facility is not None:
        f = PionDARFacility.from_parameters(facility, params)
        nu_per_flavour_per_pot = f.nu_per_flavour_per_pot if nu_per_flavour_per_pot is None else nu_per_flavour_per_pot
        if exposure is not None:
            if pot is not None:
                raise InputError("pion_dar: give the exposure or the POT, not both")
            pot = f.pot(*exposure)
    if pot is None or nu_per_flavour_per_pot is None:
        raise InputError("pion_dar needs the POT (or a facility and an exposure) and the yield per POT")
    if spectrum == "analytic":
        spectra = pion_dar_spectra(params)
        spectra = {f: spectra[f] for f in FLAVOURS}
    elif isinstance(spectrum, dict) and "grid" in spectrum:
        spectra = grid_spectra(spectrum["grid"], params)
    else:
        raise InputError(f"pion_dar spectrum must be 'analytic' or {{grid: FILE}}, got {spectrum!r}")
    for what, v in (("pot", pot), ("baseline", baseline), ("nu_per_flavour_per_pot", nu_per_flavour_per_pot)):
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"pion_dar {what} must be a positive number, got {v!r}")
    return Source("pion_dar", fluence_per_cm2(pot, nu_per_flavour_per_pot, baseline), spectra,
                  arrival_times(timing, params))


@dataclass(frozen=True)
class PionDARFacility:
    """A stopped-pion neutrino source: proton energy (GeV), power (MW), nu per POT per flavour, beam hours a year."""

    name: str
    proton_energy_gev: float
    power_mw: float
    nu_per_flavour_per_pot: float
    beam_hours_per_year: float

    @classmethod
    def from_parameters(cls, name: str, params: Parameters) -> "PionDARFacility":
        known = params["sources"]
        if name not in known:
            raise InputError(f"unknown neutrino source '{name}'; choose one of {', '.join(known)}")
        key = f"sources.{name}"
        return cls(name, *(float(params[f"{key}.{k}"]) for k in
                           ("proton_energy_gev", "power_mw", "nu_per_flavour_per_pot", "beam_hours_per_year")))

    def pot_per_gwh(self) -> float:
        """Protons on target per GWh of beam energy on target."""
        return JOULE_PER_GWH / (self.proton_energy_gev * JOULE_PER_GEV)

    def gwh_per_year(self) -> float:
        """Beam energy on target in one year of running (GWh): power x beam hours."""
        return self.power_mw * self.beam_hours_per_year * 1e-3

    def pot(self, value: float, unit: str) -> float:
        """Protons on target of an exposure ``value`` in ``unit`` (POT, GWh, or years at this facility's power)."""
        if unit == "POT":
            return value
        if unit not in ("GWh", "years"):
            raise InputError(f"an exposure at {self.name} is in POT, GWh or years, not '{unit}'")
        gwh = value if unit == "GWh" else value * self.gwh_per_year()
        return gwh * self.pot_per_gwh()

    def source(self, pot: float, baseline_m: float, params: Parameters) -> Source:
        """Per-flavour fluence (nu/cm^2) at ``baseline_m`` after ``pot`` protons, with the pi-DAR spectra."""
        return pion_dar(params, pot=pot, baseline=baseline_m, nu_per_flavour_per_pot=self.nu_per_flavour_per_pot)
