"""Efficiency models: the acceptance of a reconstructed quantity x (keVee, PE or us, as the response using it says).

Every model is a callable ``eff(x)`` with ``kinks``: the points where it is not smooth (a clipped logistic's zero, a
table's nodes), which the smearing integrals make nodes of, so that a piecewise-linear acceptance is integrated
exactly (:func:`.energy.gaussian_response_matrix`).

* ``constant``: eps(x) = value;
* ``logistic``: eps(x) = a / (1 + exp(-k (x - x0))) + d, clipped to [0, upper] (CsI-2021's ``effCoefficients.txt``
  in PE; a projected detector's acceptance in keVee, upper = 1);
* ``tabulated``: a release's table (x_i, eps_i), linear between its nodes, 0 below the first, ``above`` beyond the
  last (LAr-2020's ``CENNS10AnlAEfficiency.txt``, 0.963 above 39.75 keVee);
* ``delayed_exponential``: eps(t) = 1 before t0, exp(-k (t - t0)) after (CsI-2021's time acceptance, t in us).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import register_response


def logistic_efficiency(x: np.ndarray, plateau: float, k: float, x0: float, offset: float,
                        upper: float | None = None) -> np.ndarray:
    """Acceptance a/(1 + exp(-k (x - x0))) + d, clipped below at 0 (and above at ``upper`` if given); x in the
    unit of x0 and 1/k (PE for CsI-2021's ``effCoefficients.txt``, keVee for a projected detector)."""
    return np.clip(plateau / (1.0 + np.exp(-k * (np.asarray(x, float) - x0))) + offset, 0.0, upper)


@register_response("efficiency", "constant", units={"value": "1"})
class ConstantEfficiency:
    """A constant acceptance in (0, 1]."""

    kinks = ()

    def __init__(self, value: float = 1.0):
        if not 0 < value <= 1:
            raise InputError(f"an efficiency must be in (0, 1], got {value!r}")
        self.value = float(value)

    def __call__(self, x) -> np.ndarray:
        return np.full_like(np.asarray(x, dtype=float), self.value)


@register_response("efficiency", "logistic", units={"plateau": "1", "k": "1/[x]", "x0": "[x]", "offset": "1"})
class LogisticEfficiency:
    """a / (1 + exp(-k (x - x0))) + d, clipped to [0, upper] (x in the unit of the bins it accepts)."""

    def __init__(self, plateau: float, k: float, x0: float, offset: float = 0.0, upper: float | None = None):
        self.plateau, self.k, self.x0, self.offset = float(plateau), float(k), float(x0), float(offset)
        self.upper = None if upper is None else float(upper)
        if not all(np.isfinite([self.plateau, self.k, self.x0, self.offset])):
            raise InputError("logistic efficiency parameters must be finite")

    @property
    def zero(self) -> float:
        """x where a/(1 + exp(-k (x - x0))) + d crosses zero (the kink of the clip at 0), or -inf if never (7.07 PE
        for CsI-2021's nominal set)."""
        a, k, x0, d = self.plateau, self.k, self.x0, self.offset
        if d >= 0 or a + d <= 0:
            return -np.inf
        return float(x0 - np.log(a / (-d) - 1.0) / k)

    @property
    def kinks(self) -> tuple:
        return (self.zero,) if np.isfinite(self.zero) else ()

    def __call__(self, x) -> np.ndarray:
        return logistic_efficiency(x, self.plateau, self.k, self.x0, self.offset, self.upper)


@register_response("efficiency", "tabulated", units={"x": "[x]", "values": "1", "above": "1"})
class TabulatedEfficiency:
    """A table (x_i, eps_i) linear between its nodes, 0 below them, ``above`` beyond the last (a jump after it)."""

    def __init__(self, x, values, above: float | None = None):
        x, v = np.asarray(x, dtype=float), np.asarray(values, dtype=float)
        if x.ndim != 1 or x.shape != v.shape or x.size < 2 or np.any(np.diff(x) <= 0):
            raise InputError("a tabulated efficiency needs increasing nodes and one value per node")
        if np.any(v < 0) or np.any(v > 1) or (above is not None and not 0 <= above <= 1):
            raise InputError("efficiencies must be in [0, 1]")
        above = float(v[-1] if above is None else above)
        # 0 up to the origin, the table, then a jump to `above` just after the last node
        self.nodes = np.concatenate([[-1e3, 0.0], x, [x[-1] + 1e-9, 1e4]])
        self.values = np.concatenate([[0.0, 0.0], v, [above, above]])

    @property
    def kinks(self) -> np.ndarray:
        return self.nodes

    def __call__(self, x) -> np.ndarray:
        return np.interp(x, self.nodes, self.values)


@register_response("efficiency", "delayed_exponential", units={"t0": "us", "decay": "us^-1"})
class DelayedExponentialEfficiency:
    """eps(t) = 1 for t < t0, exp(-k (t - t0)) after (t in us)."""

    def __init__(self, t0: float, decay: float):
        self.t0, self.decay = float(t0), float(decay)

    @property
    def kinks(self) -> tuple:
        return (self.t0,)

    def __call__(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        return np.where(t < self.t0, 1.0, np.exp(-self.decay * (t - self.t0)))
