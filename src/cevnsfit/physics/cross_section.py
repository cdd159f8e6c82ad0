"""Coherent elastic neutrino-nucleus scattering cross sections.

Standard Model (physics specification section 4)::

    dsigma/dT = (G_F^2 M / pi) * kin(E, T) * Q^2,   Q = gVp(nu) Z F_Z(|q|) + gVn N F_N(|q|)

with kin = 1 - M T / (2 E^2) (AC22, default) or the exact vector factor 1 - T/E - M T/(2E^2) + T^2/(2E^2).
The weak charge depends on the recoil energy T only (through |q|), the kinematic factor on E and T: this is what
lets the rate engine fold the neutrino spectrum once (spectral moments) and keep any Q^2(T) as a free vector.

Units: E (neutrino energy) and T (nuclear recoil kinetic energy) in MeV; cross sections in cm^2/MeV.
Flavours: the six of :mod:`.flavours`; an antineutrino has the vector couplings of its neutrino.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..parameters import DEFAULT, Parameters
from .flavours import FLAVOURS, lepton
from .form_factors import form_factor
from .nuclei import Nucleus

KINEMATICS = ("ac22", "exact")
COUPLING_SCHEMES = ("radiative", "tree")


def momentum_transfer_mev(recoil_mev: np.ndarray, mass_mev: float) -> np.ndarray:
    """|q| = sqrt(2 M T + T^2) in MeV for recoil ``recoil_mev`` (MeV) of a nucleus of mass ``mass_mev``."""
    t = np.asarray(recoil_mev, dtype=float)
    return np.sqrt(2.0 * mass_mev * t + t * t)


def max_recoil_mev(energy_mev: np.ndarray, mass_mev: float) -> np.ndarray:
    """Kinematic end point T_max = 2 E^2 / (M + 2 E) in MeV."""
    e = np.asarray(energy_mev, dtype=float)
    return 2.0 * e * e / (mass_mev + 2.0 * e)


def min_energy_mev(recoil_mev: np.ndarray, mass_mev: float) -> np.ndarray:
    """Smallest neutrino energy that can give recoil T: E_min = [T + sqrt(T^2 + 2 M T)] / 2, in MeV."""
    t = np.asarray(recoil_mev, dtype=float)
    return 0.5 * (t + np.sqrt(t * t + 2.0 * mass_mev * t))


def sm_couplings(scheme: str = "radiative", params: Parameters = DEFAULT) -> dict[str, tuple[float, float]]:
    """Neutrino-nucleon vector couplings (gVp, gVn) for each of the six flavours.

    ``"radiative"``: Erler-Su radiative corrections (gVp differs for nu_e, nu_mu and nu_tau through the neutrino
    charge radii; an antineutrino has its neutrino's couplings); ``"tree"``: gVp = 1/2 - 2 sin^2(theta_W(0)),
    gVn = -1/2.
    """
    if scheme == "radiative":
        gvn = params["couplings.gVn"]
        gvp = {lep: params[f"couplings.gVp_nu{lep}"] for lep in ("e", "mu", "tau")}
        return {f: (gvp[lepton(f)], gvn) for f in FLAVOURS}
    if scheme == "tree":
        gvp = 0.5 - 2.0 * params["constants.sin2_theta_w_0"]
        return {f: (gvp, -0.5) for f in FLAVOURS}
    raise InputError(f"unknown coupling scheme '{scheme}'; choose one of {', '.join(COUPLING_SCHEMES)}")


def nuclear_form_factors(
    nucleus: Nucleus, recoil_mev: np.ndarray, kind: str = "helm", params: Parameters = DEFAULT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(|q| in MeV, F_Z, F_N) on a recoil grid (MeV)."""
    q = momentum_transfer_mev(recoil_mev, nucleus.mass_mev)
    return q, form_factor(q, nucleus.r_p_fm, kind, params), form_factor(q, nucleus.r_n_fm, kind, params)


def sm_weak_charge(
    nucleus: Nucleus,
    flavour: str,
    recoil_mev: np.ndarray,
    form_factor_kind: str = "helm",
    couplings: str = "radiative",
    params: Parameters = DEFAULT,
) -> np.ndarray:
    """Standard-Model weak charge Q = gVp Z F_Z + gVn N F_N (negative: neutron dominated) at recoil T (MeV)."""
    lepton(flavour)
    gvp, gvn = sm_couplings(couplings, params)[flavour]
    _, fz, fn = nuclear_form_factors(nucleus, recoil_mev, form_factor_kind, params)
    return gvp * nucleus.Z * fz + gvn * nucleus.N * fn


def vector_kinematic_factor(
    energy_mev: np.ndarray, recoil_mev: np.ndarray, mass_mev: float, kinematics: str = "ac22"
) -> np.ndarray:
    """Kinematic factor of the vector cross section, clipped at 0 beyond the end point."""
    e = np.asarray(energy_mev, dtype=float)
    t = np.asarray(recoil_mev, dtype=float)
    if kinematics == "ac22":
        k = 1.0 - mass_mev * t / (2.0 * e * e)
    elif kinematics == "exact":
        k = 1.0 - t / e - mass_mev * t / (2.0 * e * e) + t * t / (2.0 * e * e)
    else:
        raise InputError(f"unknown kinematics '{kinematics}'; choose one of {', '.join(KINEMATICS)}")
    return np.where(t <= max_recoil_mev(e, mass_mev), np.clip(k, 0.0, None), 0.0)


def vector_prefactor_cm2_per_mev(mass_mev: float, params: Parameters = DEFAULT) -> float:
    """G_F^2 M / pi, converted to cm^2/MeV with (hbar c)^2."""
    return params["constants.G_F"] ** 2 * mass_mev / np.pi * params["constants.hbar_c2_cm2"]


def scalar_prefactor_cm2_per_mev(mass_mev: float, params: Parameters = DEFAULT) -> float:
    """M^2 / (4 pi) in cm^2 MeV (multiplies T/E^2 * g^4 (sigma/m)^2 [Z F_Z + N F_N]^2 / (|q|^2 + m_phi^2)^2)."""
    return mass_mev**2 / (4.0 * np.pi) * params["constants.hbar_c2_cm2"]


def scalar_coherence_squared(
    nucleus: Nucleus, recoil_mev: np.ndarray, form_factor_kind: str = "helm", params: Parameters = DEFAULT
) -> np.ndarray:
    """(sigma_piN/m_ud)^2 [Z F_Z + N F_N]^2 of the light-scalar cross section (AC22; physics spec 10.4)."""
    _, fz, fn = nuclear_form_factors(nucleus, recoil_mev, form_factor_kind, params)
    return (params["scalar.sigma_piN_over_mud"] * (nucleus.Z * fz + nucleus.N * fn)) ** 2


def scalar_charge_squared(
    nucleus: Nucleus,
    recoil_mev: np.ndarray,
    mediator_mass_mev: float,
    form_factor_kind: str = "helm",
    params: Parameters = DEFAULT,
) -> np.ndarray:
    """Scalar-exchange strength per g^4 in MeV^-4: coherence^2 / (|q|^2 + m_phi^2)^2.

    dsigma_phi/dT = M^2 T / (4 pi E^2) * g^4 * scalar_charge_squared (added incoherently to the vector part).
    """
    q = momentum_transfer_mev(recoil_mev, nucleus.mass_mev)
    return scalar_coherence_squared(nucleus, recoil_mev, form_factor_kind, params) / (q * q + mediator_mass_mev**2) ** 2


def differential_cross_section(
    energy_mev: np.ndarray,
    recoil_mev: np.ndarray,
    nucleus: Nucleus,
    flavour: str,
    form_factor_kind: str = "helm",
    couplings: str = "radiative",
    kinematics: str = "ac22",
    params: Parameters = DEFAULT,
) -> np.ndarray:
    """Standard-Model dsigma/dT in cm^2/MeV for neutrino energy E and recoil T (MeV), broadcast together."""
    q_w = sm_weak_charge(nucleus, flavour, recoil_mev, form_factor_kind, couplings, params)
    kin = vector_kinematic_factor(energy_mev, recoil_mev, nucleus.mass_mev, kinematics)
    return vector_prefactor_cm2_per_mev(nucleus.mass_mev, params) * kin * q_w**2
