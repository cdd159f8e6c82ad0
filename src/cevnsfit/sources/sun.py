"""The Sun as a CEvNS source: 8B neutrinos at Earth, per flavour after adiabatic MSW-LMA conversion.

**Spectrum.**  By default the standard 8B spectrum, the table of W.T. Winter, S.J. Freedman, K.E. Rehm, J.P.
Schiffer, PRC 73 (2006) 025503 (0-20 MeV in 0.1 MeV steps, with its published 1 sigma band; the spectrum that
XENONnT, PandaX-4T, LZ and SNO use; mean energy 6.770 MeV), read from the fetched data set ``b8_winter``
(collection ``solar``; never bundled) and interpolated linearly between its nodes.  ``shape_shift`` moves it by that
many sigma of the published band (f + s df): the band integrates to zero, so it changes the shape, not the flux
(a nuisance of the 8B fits).

The documented alternative (``spectrum="analytic"``) is an *analytic approximation of the same physics*: the allowed
beta+ decay 8B -> 8Be* e+ nu_e into the broad 2+ state of 8Be (E_x = 3.03 MeV, Gamma = 1.51 MeV, TUNL), i.e.::

    f(E) ~ int dE_x BW(E_x) E^2 p W F(Z=4, W),   W = Q_EC - E_x - m_e - E,  p = sqrt(W^2 - m_e^2)

with a Breit-Wigner BW over E_x >= -91.8 keV (the 2-alpha threshold) whose width follows the l = 2 alpha-alpha
penetrability (Gamow factor times (kR)^4), and the non-relativistic Fermi function of a positron.  Known limit:
its mean energy is 7.12 MeV against Winter's 6.770 MeV (the real 8Be final-state distribution has more strength at
high E_x), so it overweights the high-energy tail that XENONnT sees: +24 % signal in XENONnT (docs/xenonnt.md).
This is the construction of J.N. Bahcall, E. Lisi et al., PRC 54 (1996) 411 with the measured alpha spectrum
replaced by a Breit-Wigner; its mean energy is checked against Bahcall's measured-spectrum mean (6.735 MeV) in the
tests.  It is tabulated on a fine grid and normalised to 1.

**Flux.**  ``solar.flux_sno`` (SNO, measured) or ``solar.flux_ssm`` (B16-GS98 model), data/solar.yaml.

**Flavour at Earth.**  Adiabatic MSW-LMA with three-flavour theta13 (e.g. Gonzalez-Garcia & Nir, RMP 75 (2003)
345; Bahcall & Pena-Garay, NJP 6 (2004) 63)::

    P_ee = cos^4 th13 (1/2 + 1/2 cos 2th12 cos 2th12^m) + sin^4 th13,
    cos 2th12^m = (cos 2th12 - beta) / sqrt((cos 2th12 - beta)^2 + sin^2 2th12),
    beta = 2 sqrt(2) G_F n_e cos^2 th13 E / dm2_21

averaged over the production region: P_ee is averaged over electron densities uniform in
``ne_production (1 +- ne_production_spread)`` (8-point Gauss-Legendre).  The converted neutrinos split by th23:
P_emu = (1 - P_ee) cos^2 th23, P_etau = (1 - P_ee) sin^2 th23 (the th13-delta_CP interference term, O(sin th13),
is neglected).  Day-night regeneration in the Earth (~3 % at these energies) is neglected.

Energies in MeV; flux in cm^-2 s^-1.  Every input is a parameter of data/solar.yaml (overridable).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from pathlib import Path

from ..errors import DataError, InputError
from ..parameters import DEFAULT, Parameters
from .base import Source, register_source
from .spectra import TabulatedSpectrum

SOLAR_FLAVOURS = ("nue", "numu", "nutau")
SPECTRA = ("winter", "analytic")
WINTER_FILE = "8B_shape_Winter_et_al.csv"  # in the data collection "solar" (data set b8_winter)
ALPHA_MASS_MEV = 3727.379  # CODATA 2018 alpha-particle mass
FLUX_CHOICES = ("sno", "ssm")


# ---- spectrum ---------------------------------------------------------------------------------------------
def _fermi_positron(w: np.ndarray, p: np.ndarray, z_daughter: int, alpha: float) -> np.ndarray:
    """Non-relativistic Fermi function 2 pi eta / (1 - exp(-2 pi eta)), eta = -Z alpha W / p (positron)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = -2.0 * np.pi * z_daughter * alpha * w / np.where(p > 0, p, 1.0)
        f = x / (1.0 - np.exp(-x))
    return np.where(p > 0, f, 0.0)


def b8_spectrum(params: Parameters = DEFAULT, n_energy: int = 3401, n_states: int = 1200) -> TabulatedSpectrum:
    """Normalised 8B neutrino spectrum (module docstring), density per MeV on a uniform grid to the end point."""
    key = tuple(params[f"solar.{k}"] for k in ("q_ec_8b", "be8_2plus_energy", "be8_2plus_width", "be8_alpha_threshold"))
    return _b8_cached(key, params["constants.m_e"], params["constants.alpha"], n_energy, n_states)


@lru_cache(maxsize=8)
def _b8_cached(key, m_e, alpha, n_energy, n_states) -> TabulatedSpectrum:
    q_ec, e_r, gamma, e_thr = key
    # E_x from the 2-alpha threshold to where the positron can no longer be emitted
    e_x_max = q_ec - 2.0 * m_e
    ex = np.linspace(e_thr, e_x_max, n_states + 1)[1:]
    dex = ex[1] - ex[0]
    # energy-dependent width of the alpha-alpha decay: Gamow factor exp(-2 pi eta) times the l = 2 barrier (kR)^4,
    # relative to the resonance; eta = Z1 Z2 alpha sqrt(mu / 2E) with mu = m_alpha / 2 (E above the 2-alpha
    # threshold).  A constant width overfills the low-E_x tail (mean neutrino energy 7.38 MeV instead of 6.74).
    e_rel, e_res = ex - e_thr, e_r - e_thr
    eta_k = 4.0 * alpha * np.sqrt(0.5 * ALPHA_MASS_MEV / 2.0)
    width = gamma * np.exp(-2.0 * np.pi * eta_k * (1.0 / np.sqrt(e_rel) - 1.0 / np.sqrt(e_res))) * (e_rel / e_res) ** 2
    bw = width / ((ex - e_r) ** 2 + 0.25 * width**2)
    e_end = q_ec - 2.0 * m_e - e_thr  # largest neutrino energy
    e = np.linspace(0.0, e_end, n_energy)
    w = (q_ec - ex[:, None] - m_e) - e[None, :]  # positron total energy
    p = np.sqrt(np.clip(w * w - m_e * m_e, 0.0, None))
    shape = e[None, :] ** 2 * p * w * _fermi_positron(w, p, 4, alpha)
    dens = (bw[:, None] * np.where(w > m_e, shape, 0.0)).sum(axis=0) * dex
    dens /= np.trapezoid(dens, e)
    return TabulatedSpectrum(e, dens)


# ---- oscillations -----------------------------------------------------------------------------------------
def matter_potential_ev(ne_na_per_cm3, params: Parameters = DEFAULT) -> np.ndarray:
    """sqrt(2) G_F n_e in eV for an electron density in units of N_A cm^-3."""
    g_f_ev = params["constants.G_F"] * 1e-12  # MeV^-2 -> eV^-2
    hbar_c_ev_cm = params["constants.hbar_c"] * 1e-7  # MeV fm -> eV cm
    ne = np.asarray(ne_na_per_cm3, dtype=float) * params["constants.N_A"]
    return np.sqrt(2.0) * g_f_ev * ne * hbar_c_ev_cm**3


def survival_probability(energy_mev, params: Parameters = DEFAULT, ne_na_per_cm3=None) -> np.ndarray:
    """Adiabatic MSW-LMA P(nu_e -> nu_e) at Earth (module docstring) for neutrino energies in MeV.

    Without ``ne_na_per_cm3`` the probability is averaged over the production-region densities of solar.yaml;
    with it, evaluated at that single density (N_A cm^-3).
    """
    e_ev = np.asarray(energy_mev, dtype=float) * 1e6
    s12, s13 = params["oscillation.sin2_theta12"], params["oscillation.sin2_theta13"]
    dm2 = params["oscillation.dm2_21"]
    if not (0 <= s12 <= 1 and 0 <= s13 <= 1 and dm2 > 0):
        raise InputError("oscillation parameters need 0 <= sin^2 theta <= 1 and dm2_21 > 0")
    c13sq = 1.0 - s13
    cos2 = 1.0 - 2.0 * s12
    sin2sq = 1.0 - cos2 * cos2
    if ne_na_per_cm3 is None:
        n0, spread = params["solar.ne_production"], params["solar.ne_production_spread"]
        x, wts = np.polynomial.legendre.leggauss(8)
        densities, weights = n0 * (1.0 + spread * x), 0.5 * wts
    else:
        densities, weights = np.atleast_1d(np.asarray(ne_na_per_cm3, float)), np.array([1.0])
    out = 0.0
    for ne, wt in zip(densities, weights):
        beta = 2.0 * matter_potential_ev(ne, params) * c13sq * e_ev / dm2
        cos2m = (cos2 - beta) / np.sqrt((cos2 - beta) ** 2 + sin2sq)
        out = out + wt * (c13sq**2 * (0.5 + 0.5 * cos2 * cos2m) + s13 * s13)
    return np.asarray(out)


def flavour_probabilities(energy_mev, params: Parameters = DEFAULT) -> dict:
    """P(nu_e -> nu_alpha) at Earth for alpha = e, mu, tau (sum 1): the non-electron part split by theta23."""
    pee = survival_probability(energy_mev, params)
    s23 = params["oscillation.sin2_theta23"]
    return {"nue": pee, "numu": (1.0 - pee) * (1.0 - s23), "nutau": (1.0 - pee) * s23}


# ---- source -----------------------------------------------------------------------------------------------
def b8_flux(choice: str | float = "sno", params: Parameters = DEFAULT) -> float:
    """Total 8B flux in cm^-2 s^-1: ``"sno"`` (measured), ``"ssm"`` (B16-GS98) or a number."""
    if isinstance(choice, str):
        if choice not in FLUX_CHOICES:
            raise InputError(f"8B flux '{choice}' is not one of {', '.join(FLUX_CHOICES)} or a number")
        return float(params[f"solar.flux_{choice}"])
    value = float(choice)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"8B flux must be a positive number of cm^-2 s^-1, got {choice!r}")
    return value


def read_winter_table(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E in MeV, density per MeV, its 1 sigma shift) of the Winter et al. table (comma-separated, ``#`` comments);
    :class:`DataError` naming the file and line for a malformed one."""
    path = Path(path)
    rows = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"missing 8B spectrum table: {path} (run `cevnsfit data fetch b8_winter`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    for i, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            row = [float(x) for x in text.split(",")]
        except ValueError:
            raise DataError(f"{path}: line {i} is not three comma-separated numbers") from None
        if len(row) != 3 or not all(np.isfinite(row)):
            raise DataError(f"{path}: line {i} is not three finite comma-separated numbers")
        rows.append(row)
    table = np.array(rows).reshape(-1, 3)
    e, f, d = table.T
    if e.size < 10 or np.any(np.diff(e) <= 0) or np.any(f < 0) or f.sum() <= 0:
        raise DataError(f"{path}: needs increasing energies and a non-negative density (at least 10 rows)")
    return e, f, d


@lru_cache(maxsize=4)
def _winter(path: str, shape_shift: float) -> TabulatedSpectrum:
    e, f, d = read_winter_table(path)
    density = f + shape_shift * d
    if np.any(density < 0):
        raise InputError(f"the 8B shape shift {shape_shift:g} sigma makes the spectrum negative")
    return TabulatedSpectrum.from_table(e, density)


def winter_spectrum(table=None, shape_shift: float = 0.0, data_dir=None) -> TabulatedSpectrum:
    """The Winter et al. 8B spectrum (normalised to 1, per MeV) from ``table`` (the CSV's path; default: the
    ``solar`` data collection, searched as :mod:`cevnsfit.io.datadir` says, or found in ``data_dir``, a mapping
    collection -> folder), shifted by ``shape_shift`` sigma of its published band."""
    if table is None:
        from collections.abc import Mapping

        from ..io.datadir import resolve_collection

        table = resolve_collection("solar", data_dir if isinstance(data_dir, Mapping) else None) / WINTER_FILE
    return _winter(str(table), float(shape_shift))


@register_source("solar_8b", units={"flux": "cm^-2 s^-1", "shape_shift": "1"})
def solar_8b(params: Parameters, *, flux: str | float = "sno", spectrum: str = "winter", shape_shift: float = 0.0,
             table=None, data_dir=None) -> Source:
    """8B neutrinos at Earth per flavour (module docstring): the spectra's integrals sum to 1 over the flavours, the
    fluence is the flux (``"sno"``, ``"ssm"`` or a number in cm^-2 s^-1) times one year (``solar.seconds_per_year``),
    so that an exposure in t yr multiplies it through the detector response.  ``spectrum``: ``"winter"`` (default;
    ``table`` its CSV, else the fetched one) or ``"analytic"``; ``shape_shift``: sigma of Winter's band."""
    if spectrum not in SPECTRA:
        raise InputError(f"8B spectrum '{spectrum}' is not one of {', '.join(SPECTRA)}")
    phi = b8_flux(flux, params)
    if spectrum == "analytic":
        if shape_shift:
            raise InputError("the analytic 8B spectrum has no shape band: shape_shift needs spectrum 'winter'")
        spec = b8_spectrum(params)
    else:
        spec = winter_spectrum(table, shape_shift, data_dir)
    probs = flavour_probabilities(spec.energy_mev, params)
    return Source("solar_8b", phi * params["solar.seconds_per_year"],
                  {f: spec.scaled(probs[f]) for f in SOLAR_FLAVOURS}, None, phi)
