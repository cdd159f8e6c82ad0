"""Quenching models: the electron-equivalent energy E_ee (keVee) of a nuclear recoil T' (given in MeV).

Each model has ``electron_equivalent_kev(recoil_mev, nucleus)``; the nucleus (Z, A) matters for Lindhard's model.

* ``constant``: E_ee = q T' (q in keVee/keVnr);
* ``linear``: E_ee = (a + b T') T', T' in keVnr (COHERENT LAr-2020, LArParametersAnlA.yaml);
* ``polynomial``: E_ee [MeVee] = sum_i c_i T'^(i+1), T' in MeVnr (COHERENT CsI-2021, scintRespCoefficients.txt);
* ``lindhard``: Q = k g / (1 + k g), g = 3 eps^0.15 + 0.7 eps^0.6 + eps, eps = 11.5 Z^(-7/3) T'[keV] (J. Lindhard,
  V. Nielsen, M. Scharff, P.V. Thomsen, Mat. Fys. Medd. Dan. Vid. Selsk. 33 (1963) 10); k = 0.133 Z^(2/3) A^(-1/2)
  unless given (k is a nuisance of germanium fits: 0.157 is the usual Ge value);
* ``tabulated``: a measured quenching factor Q(T') at points T'_i (keVnr), linear between them and held at the end
  values outside (Dresden-II's germanium models, Collar et al., PRD 103 (2021) 122003).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from . import register_response

MAX_COEFFICIENTS = 20  # of a polynomial quenching (the CsI-2021 release has 4)


def linear_quenching_kevee(recoil_kevnr: np.ndarray, a: float, b: float) -> np.ndarray:
    """E_ee = (a + b T') T' in keVee for a recoil T' in keVnr (the COHERENT LAr-2020 form, LArParametersAnlA.yaml)."""
    t = np.asarray(recoil_kevnr, dtype=float)
    return (a + b * t) * t


def polynomial_quenching_kevee(recoil_mev: np.ndarray, coefficients) -> np.ndarray:
    """E_ee [keVee] = 1e3 sum_i c_i x^(i+1), x = T' in MeVnr, E_ee sum in MeVee (the COHERENT CsI-2021 release
    form, ``scintRespCoefficients.txt``)."""
    x = np.asarray(recoil_mev, dtype=float)
    return 1e3 * sum(c * x ** (i + 1) for i, c in enumerate(coefficients))


def lindhard_factor(recoil_kev: np.ndarray, z: int, a: int, k: float | None = None) -> np.ndarray:
    """Lindhard's quenching factor Q(T') (module docstring) at recoils T' in keVnr; k = 0.133 Z^(2/3) A^(-1/2) if
    not given."""
    k = 0.133 * z ** (2.0 / 3.0) / math.sqrt(a) if k is None else k
    eps = 11.5 * z ** (-7.0 / 3.0) * np.clip(np.asarray(recoil_kev, dtype=float), 0.0, None)
    g = 3.0 * eps**0.15 + 0.7 * eps**0.6 + eps
    return k * g / (1.0 + k * g)


@register_response("quenching", "constant", units={"value": "1"})
class ConstantQuenching:
    """E_ee = q T' with a constant quenching factor q in (0, 1]."""

    def __init__(self, value: float):
        if not 0 < value <= 1:
            raise InputError(f"a constant quenching factor must be in (0, 1], got {value!r}")
        self.value = float(value)

    def electron_equivalent_kev(self, recoil_mev, nucleus=None) -> np.ndarray:
        return self.value * (np.asarray(recoil_mev, dtype=float) * 1e3)


@register_response("quenching", "linear", units={"a": "1", "b": "keVnr^-1"})
class LinearQuenching:
    """E_ee = (a + b T') T', T' in keVnr (quenching factor linear in the recoil energy)."""

    def __init__(self, a: float, b: float):
        if not a > 0 or b < 0:
            raise InputError(f"linear quenching needs a > 0 and b >= 0, got a = {a!r}, b = {b!r}")
        self.a, self.b = float(a), float(b)

    def electron_equivalent_kev(self, recoil_mev, nucleus=None) -> np.ndarray:
        return linear_quenching_kevee(np.asarray(recoil_mev, dtype=float) * 1e3, self.a, self.b)


@register_response("quenching", "polynomial", units={})
class PolynomialQuenching:
    """E_ee [MeVee] = sum_i c_i T'^(i+1), T' in MeVnr (the COHERENT CsI-2021 release form)."""

    def __init__(self, coefficients):
        c = tuple(float(x) for x in coefficients)
        if not c or not all(math.isfinite(x) for x in c):
            raise InputError("polynomial quenching needs a non-empty list of finite coefficients")
        if len(c) > MAX_COEFFICIENTS:
            raise InputError(f"polynomial quenching: {len(c)} coefficients given, at most {MAX_COEFFICIENTS} coefficients")
        self.coefficients = c

    def electron_equivalent_kev(self, recoil_mev, nucleus=None) -> np.ndarray:
        return polynomial_quenching_kevee(recoil_mev, self.coefficients)


@register_response("quenching", "lindhard", units={"k": "1"})
class LindhardQuenching:
    """Lindhard's quenching factor (module docstring), with k given or from Z and A."""

    def __init__(self, k: float | None = None):
        if k is not None and not k > 0:
            raise InputError(f"Lindhard k must be positive, got {k!r}")
        self.k = None if k is None else float(k)

    def electron_equivalent_kev(self, recoil_mev, nucleus) -> np.ndarray:
        t = np.asarray(recoil_mev, dtype=float) * 1e3
        return lindhard_factor(t, nucleus.Z, nucleus.A, self.k) * t


@register_response("quenching", "tabulated", units={"recoil": "keVnr", "factor": "1"})
class TabulatedQuenching:
    """A measured quenching factor Q(T'), linear between the points T'_i (keVnr), held at the end values."""

    def __init__(self, recoil, factor):
        t, q = np.asarray(recoil, dtype=float), np.asarray(factor, dtype=float)
        if t.ndim != 1 or t.shape != q.shape or t.size < 2 or np.any(np.diff(t) <= 0) or np.any(t < 0) \
                or not np.all(np.isfinite(q)) or np.any(q <= 0) or np.any(q > 1):
            raise InputError("a tabulated quenching factor needs increasing recoils >= 0 keVnr and factors in (0, 1]")
        self.recoil_kev, self.factor = t, q

    def electron_equivalent_kev(self, recoil_mev, nucleus=None) -> np.ndarray:
        t = np.asarray(recoil_mev, dtype=float) * 1e3
        return np.interp(t, self.recoil_kev, self.factor) * t
