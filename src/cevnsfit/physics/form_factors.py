"""Nuclear form factors F(|q|), normalised to F(0) = 1.

The same function serves the proton (radius R_p) and neutron (radius R_n) distributions.  ``q_mev`` is the
momentum transfer |q| in MeV; radii and the shape parameters are in fm; the conversion uses hbar*c.
Three shapes (physics specification section 5.1):

* ``helm`` (default): 3 j1(q R0)/(q R0) exp(-q^2 s^2/2), R0^2 = 5/3 (R^2 - 3 s^2), s = 0.9 fm;
* ``fermi``: symmetrized Fermi with diffuseness a = 0.52 fm, <r^2> = 3/5 c^2 + 7/5 (pi a)^2;
* ``klein_nystrand``: 3 j1(q R_A)/(q R_A) / (1 + a_k^2 q^2), <r^2> = 3/5 R_A^2 + 6 a_k^2, a_k = 0.7 fm (COHERENT).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..parameters import DEFAULT, Parameters

FORM_FACTORS = ("helm", "fermi", "klein_nystrand")


def _j1_over_x(x: np.ndarray) -> np.ndarray:
    """3 j1(x)/x, with its Taylor series below x = 1e-2 where the closed form loses digits."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-2
    xs = np.where(small, 1.0, x)
    exact = 3.0 * (np.sin(xs) - xs * np.cos(xs)) / xs**3
    x2 = x * x
    series = 1.0 - x2 / 10.0 + x2 * x2 / 280.0
    return np.where(small, series, exact)


def helm(q_fm: np.ndarray, r_rms_fm: float, s_fm: float = 0.9) -> np.ndarray:
    """Helm form factor at momentum transfer ``q_fm`` (fm^-1) for an rms radius ``r_rms_fm`` (fm)."""
    r0_sq = 5.0 / 3.0 * (r_rms_fm**2 - 3.0 * s_fm**2)
    if r0_sq <= 0:
        raise InputError(f"Helm form factor needs R > sqrt(3) s; got R = {r_rms_fm} fm, s = {s_fm} fm")
    q = np.asarray(q_fm, dtype=float)
    return _j1_over_x(q * np.sqrt(r0_sq)) * np.exp(-0.5 * (q * s_fm) ** 2)


def symmetrized_fermi(q_fm: np.ndarray, r_rms_fm: float, a_fm: float = 0.52) -> np.ndarray:
    """Symmetrized-Fermi form factor (analytic Fourier transform) for rms radius ``r_rms_fm`` (fm)."""
    c_sq = 5.0 / 3.0 * (r_rms_fm**2 - 7.0 / 5.0 * (np.pi * a_fm) ** 2)
    if c_sq <= 0:
        raise InputError(f"symmetrized Fermi needs a larger radius than {r_rms_fm} fm for a = {a_fm} fm")
    c = np.sqrt(c_sq)
    q = np.asarray(q_fm, dtype=float)
    # the closed form cancels to O((qc)^3) at small q: use the moment expansion there,
    # F = 1 - q^2 <r^2>/6 + q^4 <r^4>/120 with <r^4> = 3/7 c^4 + 18/7 (pi a)^2 c^2 + 31/7 (pi a)^4
    small = q * c < 0.05
    qs = np.where(small, 1.0, q)
    pqa = np.pi * qs * a_fm
    qc = qs * c
    pref = 3.0 / (qc * (qc**2 + pqa**2)) * pqa / np.sinh(pqa)
    exact = pref * (pqa / np.tanh(pqa) * np.sin(qc) - qc * np.cos(qc))
    pa2 = (np.pi * a_fm) ** 2
    r2 = 0.6 * c_sq + 1.4 * pa2
    r4 = 3.0 / 7.0 * c_sq**2 + 18.0 / 7.0 * pa2 * c_sq + 31.0 / 7.0 * pa2**2
    series = 1.0 - q * q * r2 / 6.0 + q**4 * r4 / 120.0
    return np.where(small, series, exact)


def klein_nystrand(q_fm: np.ndarray, r_rms_fm: float, a_k_fm: float = 0.7) -> np.ndarray:
    """Klein-Nystrand form factor (hard sphere folded with a Yukawa of range ``a_k_fm``)."""
    ra_sq = 5.0 / 3.0 * (r_rms_fm**2 - 6.0 * a_k_fm**2)
    if ra_sq <= 0:
        raise InputError(f"Klein-Nystrand needs R > sqrt(6) a_k; got R = {r_rms_fm} fm")
    q = np.asarray(q_fm, dtype=float)
    return _j1_over_x(q * np.sqrt(ra_sq)) / (1.0 + (a_k_fm * q) ** 2)


def form_factor(q_mev: np.ndarray, r_rms_fm: float, kind: str = "helm", params: Parameters = DEFAULT) -> np.ndarray:
    """Form factor ``kind`` (one of :data:`FORM_FACTORS`) at |q| = ``q_mev`` (MeV) for rms radius ``r_rms_fm``."""
    q_fm = np.asarray(q_mev, dtype=float) / params["constants.hbar_c"]
    if kind == "helm":
        return helm(q_fm, r_rms_fm, params["form_factor.helm_s"])
    if kind == "fermi":
        return symmetrized_fermi(q_fm, r_rms_fm, params["form_factor.fermi_a"])
    if kind == "klein_nystrand":
        return klein_nystrand(q_fm, r_rms_fm, params["form_factor.kn_a"])
    raise InputError(f"unknown form factor '{kind}'; choose one of {', '.join(FORM_FACTORS)}")
