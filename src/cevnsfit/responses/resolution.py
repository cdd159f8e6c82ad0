"""Resolution models: the width sigma (keVee) of a Gaussian smearing of the electron-equivalent energy E (keVee).

* ``sqrt``: sigma = a sqrt(E), floored at 1e-6 keVee so that E = 0 is no step function (LAr-2020, a = 0.58 keVee^0.5);
* ``quadrature``: sigma^2 = noise^2 + stochastic^2 E + (constant E)^2 (a projected detector; a germanium diode's
  electronic noise and Fano term, stochastic^2 = F eta with eta the energy per electron-hole pair).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import register_response


@register_response("resolution", "sqrt", units={"a": "keVee^0.5"})
class SqrtResolution:
    """sigma = a sqrt(E), floored at 1e-6 keVee."""

    def __init__(self, a: float):
        if not a > 0:
            raise InputError(f"resolution a must be positive, got {a!r}")
        self.a = float(a)

    def sigma_kevee(self, e_kevee) -> np.ndarray:
        return np.maximum(self.a * np.sqrt(np.maximum(np.asarray(e_kevee, float), 0.0)), 1e-6)


@register_response("resolution", "quadrature", units={"noise": "keVee", "stochastic": "keVee^0.5", "constant": "1"})
class QuadratureResolution:
    """sigma^2 = noise^2 + stochastic^2 E + (constant E)^2 (E, sigma in keVee); all zero is perfect resolution."""

    def __init__(self, noise: float = 0.0, stochastic: float = 0.0, constant: float = 0.0):
        if min(noise, stochastic, constant) < 0:
            raise InputError("resolution terms must not be negative")
        self.noise, self.stochastic, self.constant = float(noise), float(stochastic), float(constant)

    def sigma_kevee(self, e_kevee) -> np.ndarray:
        e = np.clip(np.asarray(e_kevee, dtype=float), 0.0, None)
        return np.sqrt(self.noise**2 + self.stochastic**2 * e + (self.constant * e) ** 2)
