"""Pion-decay-at-rest facilities (SNS, ESS): exposure conversions and the source a detector sees.

Every facility is a section of ``sources`` in ``data/projection.yaml`` (proton energy, beam power, neutrinos per
proton per flavour, beam hours per year), cited and overridable (``load_parameters({"sources.ess.power_mw": 2})``).
The spectra are the analytic pi-DAR ones of :mod:`.spectra` (the same at every stopped-pion source); only the
fluence changes.  Units: energies in GeV (proton) and MeV (neutrinos), power in MW, energy on target in GWh.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..parameters import Parameters
from .sns import SNSSource, fluence_per_cm2
from .spectra import pion_dar_spectra

JOULE_PER_GWH = 3.6e12
JOULE_PER_GEV = 1.602176634e-10  # SI 2019 exact elementary charge x 1e9


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

    def source(self, pot: float, baseline_m: float, params: Parameters) -> SNSSource:
        """Per-flavour fluence (nu/cm^2) at ``baseline_m`` after ``pot`` protons, with the pi-DAR spectra."""
        return SNSSource(fluence_per_cm2(pot, self.nu_per_flavour_per_pot, baseline_m), pion_dar_spectra(params))
