"""One-loop contribution of a light vector or scalar boson to the muon anomalous magnetic moment a_mu = (g-2)/2.

A boson B of mass M coupling to the muon with strength g_B adds (Brodsky & de Rafael, Phys. Rev. 168 (1968) 1620;
AC22 = Atzori Corona et al., JHEP 05 (2022) 109, arXiv:2202.11002)::

    delta_a_mu = g_B^2/(8 pi^2) * L(r),   L(r) = int_0^1 dx Q(x) / (x^2 + (1 - x) r),   r = M^2/m_mu^2,
    Q_S(x) = x^2 (2 - x)   (scalar),      Q_V(x) = 2 x^2 (1 - x)   (vector).

g_B = g |Q'_mu| for a vector boson of a U(1)' with muon charge Q'_mu (``charge_mu``), g_B = g~_phi for the scalar
(AC22's universal scalar coupling).  Limits: L -> 1 (V), 3/2 (S) for M << m_mu; L -> 2/(3r) (V),
[ln r - 7/6]/r (S) for M >> m_mu.

The measured anomaly Delta a_mu = a_exp - a_SM for each "epoch" (2021 = AC22's input, 2023, 2025) is read from
``cevnsfit/data/gm2.yaml``; :func:`favoured_band` turns Delta a_mu +- n sigma into the band of couplings that
explain it.

Units: masses in MeV; couplings and charges dimensionless; delta_a_mu, Delta a_mu and sigma are plain numbers
(NOT in units of 1e-11 -- the YAML file is, and is converted on loading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import DataError, InputError
from ..parameters import DEFAULT, Parameters, package_yaml

__all__ = ["delta_a_mu", "delta_a_mu_per_g2", "coupling_for_delta_a_mu", "favoured_band", "band_has_lower_edge",
           "Gm2Epoch", "get_epoch", "epoch_names", "loop_function", "check_mass", "MAX_MASS_MEV"]

KINDS = ("vector", "scalar")

#: Unit of the numbers in gm2.yaml.
_YAML_UNIT = 1e-11


# ---------------------------------------------------------------------------------------------------------------
# Loop function
# ---------------------------------------------------------------------------------------------------------------
#
# The integrand has a narrow feature at one end of [0, 1] in either limit: for r << 1 it rises from 0 to Q(x)/x^2
# over x ~ sqrt(r) near x = 0; for r >> 1 it is ~Q/(r (1 - x)) except within 1 - x ~ 1/r, where the denominator
# saturates at x^2 (this region gives the scalar's ln r).  A composite Gauss-Legendre rule on panels that shrink
# geometrically towards both ends (a log change of variable, done piecewise) resolves either feature at any scale
# between 1e-20 and 1, with the same nodes for every mass, so the rule vectorises over mass arrays.  Near x = 1 the
# nodes are generated in u = 1 - x, so u is exact there (computing 1 - x would lose digits for u ~ 1e-16).
# Closed forms exist but cancel catastrophically for r >> 1 (O(1) terms leaving an O(1/r) result).
# Accuracy: agrees with adaptive quadrature (in ln x) to ~1e-13 relative for 1e-8 <= M <= 1e10 MeV; tests/test_gm2.py
# checks 1e-4 <= M <= 1e6 MeV.  Beyond ~1e11 MeV (1/r < 1e-20) the innermost panel no longer resolves x ~ 1.

# Nodes per panel.  The integrand's pole lies just off the panel's near end in the worst case; on [a, 10a] that
# bounds the Gauss-Legendre error by ~1.92^(-2n) ~ 3e-14 for n = 24.
_GL_ORDER = 24
_SMALLEST_PANEL_EDGE = -20  # log10 of the innermost panel edge at each end


@lru_cache(maxsize=1)
def _quadrature_nodes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (x, u = 1 - x) and weights of the composite rule on [0, 1]."""
    t, w = np.polynomial.legendre.leggauss(_GL_ORDER)
    # Panel edges on [0, 1/2]: 0, 1e-20, 1e-19, ..., 0.1, 0.5 -- used for x near 0 and, mirrored, for u near 0.
    edges = np.concatenate(([0.0], np.logspace(_SMALLEST_PANEL_EDGE, -1, -_SMALLEST_PANEL_EDGE), [0.5]))
    lo, hi = edges[:-1, None], edges[1:, None]
    near = (0.5 * (hi - lo) * t + 0.5 * (hi + lo)).ravel()  # distance from the nearer end of [0, 1]
    weights = (0.5 * (hi - lo) * w).ravel()
    x = np.concatenate((near, 1.0 - near))
    u = np.concatenate((1.0 - near, near))
    return x, u, np.concatenate((weights, weights))


def _numerator(kind: str, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Q(x) of the Feynman-parameter integral, written with u = 1 - x (2 - x = 1 + u)."""
    if kind == "vector":
        return 2.0 * x * x * u
    return x * x * (1.0 + u)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"unknown mediator kind {kind!r} for g-2; expected one of {', '.join(KINDS)}")
    return kind


def _finite_array(value, what: str) -> np.ndarray:
    """``value`` as a float array; InputError if it is not numeric or not finite."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number or array of numbers, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} must be finite, got {value!r}")
    return arr


MAX_MASS_MEV = 1e10  # the quadrature is accurate to 1e-13 up to here (see the loop-function notes above)
"""Largest mediator mass [MeV] of the one-loop integral (accurate to 1e-13 up to here)."""


def check_mass(mass_mev) -> np.ndarray:
    """``mass_mev`` as a float array, checked finite, positive and <= MAX_MASS_MEV (InputError otherwise)."""
    mass = _finite_array(mass_mev, "mediator mass (MeV)")
    if np.any(mass <= 0.0):
        raise InputError(f"mediator mass must be positive (MeV), got {mass_mev!r}")
    if np.any(mass > MAX_MASS_MEV):
        raise InputError(f"mediator mass above {MAX_MASS_MEV:g} MeV is outside the validated range, got {mass_mev!r}")
    return mass


def _finite_scalar(value, what: str) -> float:
    arr = _finite_array(value, what)
    if arr.ndim != 0:
        raise InputError(f"{what} must be a single number, got {value!r}")
    return float(arr)


def _output(arr: np.ndarray):
    """Plain float for scalar input, array otherwise (numpy's own convention)."""
    return arr[()]


def loop_function(mass_mev, kind: str = "vector", params: Parameters = DEFAULT):
    """L(r) = int_0^1 Q(x)/(x^2 + (1 - x) r) dx with r = (M/m_mu)^2; dimensionless, shape of ``mass_mev``.

    m_mu (MeV) is ``params["constants.m_mu"]``.
    """
    _check_kind(kind)
    mass = check_mass(mass_mev)
    m_mu = params["constants.m_mu"]
    r = (mass / m_mu) ** 2
    x, u, w = _quadrature_nodes()
    wq = w * _numerator(kind, x, u)
    x2 = x * x
    flat = r.ravel()
    out = np.empty_like(flat)
    # Chunks bound the (masses x nodes) work array to a few MB for large mass grids.
    step = max(1, 2**18 // x.size)
    for i in range(0, flat.size, step):
        ri = flat[i : i + step, None]
        out[i : i + step] = (wq / (x2 + u * ri)).sum(axis=1)
    return _output(out.reshape(r.shape))


def delta_a_mu_per_g2(mass_mev, kind: str = "vector", params: Parameters = DEFAULT):
    """delta_a_mu / g_B^2 = L(r)/(8 pi^2) for a boson of mass ``mass_mev`` (MeV); dimensionless."""
    return loop_function(mass_mev, kind, params) / (8.0 * math.pi**2)


def delta_a_mu(mass_mev, coupling, kind: str = "vector", charge_mu: float = 1.0, params: Parameters = DEFAULT):
    """One-loop delta_a_mu (dimensionless, not in 1e-11) from a boson of mass ``mass_mev`` (MeV).

    The muon coupling is g_B = ``coupling`` * ``charge_mu``: pass the U(1)' gauge coupling g and the muon's charge
    Q'_mu for a vector (only |Q'_mu| matters), or g~_phi with charge_mu = 1 for the scalar.  ``mass_mev`` and
    ``coupling`` broadcast against each other.
    """
    g = _finite_array(coupling, "coupling")
    q = _finite_scalar(charge_mu, "muon charge")
    return _output(np.asarray((g * q) ** 2 * delta_a_mu_per_g2(mass_mev, kind, params)))


def coupling_for_delta_a_mu(mass_mev, target, kind: str = "vector", charge_mu: float = 1.0,
                            params: Parameters = DEFAULT):
    """Coupling g >= 0 for which :func:`delta_a_mu` equals ``target`` (dimensionless); 0 where target <= 0.

    delta_a_mu is positive for both kinds and grows as g^2, so g = sqrt(target / (Q'_mu^2 delta_a_mu_per_g2)).
    """
    q = _finite_scalar(charge_mu, "muon charge")
    if q == 0.0:
        raise InputError("model has no coupling to the muon (charge_mu = 0): no g-2 contribution to compare with")
    target_arr = _finite_array(target, "target delta_a_mu")
    per_g2 = delta_a_mu_per_g2(mass_mev, kind, params)
    return _output(np.asarray(np.sqrt(np.clip(target_arr, 0.0, None) / per_g2) / abs(q)))


# ---------------------------------------------------------------------------------------------------------------
# Measured anomaly per epoch
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gm2Epoch:
    """Delta a_mu = a_exp - a_SM at one epoch.  All values are plain numbers (the YAML's 1e-11 converted)."""

    name: str
    delta: float  # Delta a_mu
    sigma: float  # its 1-sigma uncertainty
    source: str  # citation for delta and sigma
    a_exp: float
    sigma_exp: float
    source_exp: str
    a_sm: float
    sigma_sm: float
    source_sm: str

    @property
    def significance(self) -> float:
        """Delta a_mu / sigma: the discrepancy in standard deviations."""
        return self.delta / self.sigma

    def delta_range(self, n_sigma: float = 2.0) -> tuple[float, float]:
        """(Delta - n sigma, Delta + n sigma); the lower end may be <= 0 (no lower bound on new physics)."""
        n = _finite_scalar(n_sigma, "n_sigma")
        if n <= 0.0:
            raise InputError(f"n_sigma must be positive, got {n_sigma!r}")
        return self.delta - n * self.sigma, self.delta + n * self.sigma


def _read_leaf(node: dict, key: str, epoch: str) -> tuple[float, float, str]:
    try:
        leaf = node[key]
        if str(leaf["unit"]) != "1e-11":
            raise DataError(f"gm2.yaml: epoch {epoch} {key} must be in units of 1e-11, got {leaf['unit']!r}")
        return float(leaf["value"]) * _YAML_UNIT, float(leaf["sigma"]) * _YAML_UNIT, str(leaf["source"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"gm2.yaml: epoch {epoch} needs {key}: {{value, sigma, unit, source}}") from None


@lru_cache(maxsize=1)
def _epochs() -> dict[str, Gm2Epoch]:
    tree = package_yaml("gm2.yaml")
    if not isinstance(tree, dict) or not isinstance(tree.get("epochs"), dict):
        raise DataError("gm2.yaml: missing top-level 'epochs' mapping")
    out = {}
    for name, node in tree["epochs"].items():
        name = str(name)
        delta, sigma, source = _read_leaf(node, "delta_a_mu", name)
        a_exp, s_exp, src_exp = _read_leaf(node, "a_exp", name)
        a_sm, s_sm, src_sm = _read_leaf(node, "a_sm", name)
        out[name] = Gm2Epoch(name, delta, sigma, source, a_exp, s_exp, src_exp, a_sm, s_sm, src_sm)
    return out


def epoch_names() -> tuple[str, ...]:
    """Names of the tabulated epochs ("2021", "2023", "2025")."""
    return tuple(_epochs())


def get_epoch(name: str | int | Gm2Epoch = "2021") -> Gm2Epoch:
    """The Delta a_mu of epoch ``name`` ("2021" is AC22's input); a Gm2Epoch is returned unchanged."""
    if isinstance(name, Gm2Epoch):
        return name
    key = str(name) if isinstance(name, (str, int)) and not isinstance(name, bool) else None
    epochs = _epochs()
    if key not in epochs:
        raise InputError(f"unknown g-2 epoch {name!r}; expected one of {', '.join(epochs)}")
    return epochs[key]


def band_has_lower_edge(epoch: str | int | Gm2Epoch = "2021", n_sigma: float = 2.0) -> bool:
    """Whether Delta a_mu - n sigma > 0, i.e. the favoured band has a lower curve (False for 2025 at 2 sigma)."""
    return get_epoch(epoch).delta_range(n_sigma)[0] > 0.0


def favoured_band(mass_mev, epoch: str | int | Gm2Epoch = "2021", kind: str = "vector", charge_mu: float = 1.0,
                  n_sigma: float = 2.0, params: Parameters = DEFAULT):
    """Couplings (g_low, g_high) for which delta_a_mu = Delta a_mu - n sigma and Delta a_mu + n sigma.

    Each has the shape of ``mass_mev`` (MeV).  Where Delta a_mu - n sigma <= 0 (2025) g_low is 0: the data then
    only bound new physics from above -- see :func:`band_has_lower_edge`.  ``charge_mu`` = Q'_mu as in
    :func:`delta_a_mu`; a model with Q'_mu = 0 has no band (InputError).
    """
    low, high = get_epoch(epoch).delta_range(n_sigma)
    return (coupling_for_delta_a_mu(mass_mev, low, kind, charge_mu, params),
            coupling_for_delta_a_mu(mass_mev, high, kind, charge_mu, params))
