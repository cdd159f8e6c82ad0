"""Targets: the nuclei of a detector's fiducial mass and how many there are.

A target material is a *composition* -- nuclei per formula unit, e.g. CsI = {Cs133: 1, I127: 1}, natural argon =
{Ar36: 0.003336, Ar38: 0.000629, Ar40: 0.996035} -- and a mass.  The number of formula units is
m N_A / M with M the molar mass (g/mol): given (a cited value, e.g. CsI's 259.809 g/mol) or computed from the nuclei
(nuclear masses plus electrons; binding energies neglected, < 1e-4 relative).  Named compounds live in
``compounds`` of data/projection.yaml; an abundance given there as a parameter key (``argon_isotopes.Ar36``) is
read from that parameter, so each abundance has one source and its overrides reach every experiment.
Units: kg for masses, g/mol for molar masses, counts for nuclei.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .errors import InputError
from .parameters import Parameters
from .physics.nuclei import Nucleus, get_nucleus

__all__ = ["Target", "compound", "material_targets"]


@dataclass(frozen=True)
class Target:
    """A nucleus species of the detector and the number of such nuclei in the fiducial mass."""

    nucleus: Nucleus
    count: float


def compound(name: str, params: Parameters) -> dict[str, float]:
    """Nuclei per formula unit of the compound ``name`` of data/projection.yaml (``CsI``, ``NaI``, ``Ar``, ``Ge``,
    ``Xe``...); an entry that is a parameter key reads that parameter."""
    known = params["compounds"]
    if name not in known:
        raise InputError(f"unknown target compound '{name}'; choose one of {', '.join(known)} "
                         "or give {nucleus: atoms per formula unit}")
    out = {}
    for nucleus in known[name]:
        value = params[f"compounds.{name}.{nucleus}"]
        out[nucleus] = float(params[value] if isinstance(value, str) else value)
    return out


def material_targets(composition: Mapping[str, float], mass_kg: float, params: Parameters,
                     molar_mass_g_per_mol: float | None = None) -> dict[str, Target]:
    """{nucleus: Target} of ``mass_kg`` of a material of ``composition`` (nuclei per formula unit); the molar mass
    (g/mol) of a formula unit is computed from the nuclei when not given."""
    if not composition:
        raise InputError("a target needs at least one nucleus")
    if not mass_kg > 0:
        raise InputError(f"the target mass must be positive, got {mass_kg!r} kg")
    nuclei = {n: get_nucleus(n, params) for n in composition}
    for n, k in composition.items():
        if not k > 0:
            raise InputError(f"target: {n} must have a positive number per formula unit, got {k!r}")
    if molar_mass_g_per_mol is None:
        molar_mass_g_per_mol = sum(k * (nuclei[n].mass_mev + nuclei[n].Z * params["constants.m_e"]) / params["constants.amu"]
                                   for n, k in composition.items())
    units = mass_kg * 1e3 / molar_mass_g_per_mol * params["constants.N_A"]
    return {n: Target(nuclei[n], units * k) for n, k in composition.items()}
