"""Light-mediator models: the U(1)' vector models and the scalar of AC22, vector NSI, and the one-loop mixing.

AC22 = Atzori Corona et al., JHEP 05 (2022) 109, arXiv:2202.11002; section numbers refer to docs/physics.md.

A vector model is one row of U(1)' charges (Q'_u, Q'_d, Q'_e, Q'_mu, Q'_tau) read from ``cevnsfit/data/models.yaml``
(§10.2); :func:`custom_vector_model` makes a new row without new code.  With coupling g and mass M the neutrino
weak charge becomes (§10.2, §10.3, §12.4)::

    Q_l = Q_l,SM + g^2 C_l(|q|) / (|q|^2 + M^2)

and :func:`vector_shift_numerator` returns C_l(|q|):

* tree level (Q'_u or Q'_d non-zero; AC22 adds no loop term to these models)::

      C_l = Q'_l / (sqrt2 G_F) * [(2Q'_u + Q'_d) Z F_Z + (Q'_u + 2Q'_d) N F_N]

* leptophilic (Q'_u = Q'_d = 0): the Z' reaches the proton only through one-loop gamma-Z' kinetic mixing::

      C_l = sqrt2 alpha / (pi G_F) * Q'_l * E(|q|) * Z F_Z,
      E(|q|) = -sum_f Q'_f int_0^1 x(1-x) ln(m_f^2 + x(1-x)|q|^2) dx

  Derivation: a loop of charged lepton f (electric charge -1, U(1)' charge Q'_f) mixes the photon and the Z' in
  proportion to -Q'_f int x(1-x) ln[(m_f^2 + x(1-x)|q|^2)/mu^2] dx.  Neutrinos are neutral and give nothing; the
  mixed Z' couples to the proton's electric charge (Z F_Z) and not to the neutron.  The renormalisation scale mu
  drops out -- the mixing is finite and calculable -- only if sum_f Q'_f = 0 (q_e + q_mu + q_tau = 0), which
  :class:`VectorModel` therefore requires of leptophilic models.  Then E = sum_f Q'_f eps_tau,f(|q|) with
  eps_tau,tau = 0.  For L_alpha - L_beta (Q'_alpha = 1, Q'_beta = -1) this is E = eps_beta,alpha, so C carries
  Q'_l E = delta_l,alpha eps_beta,alpha + delta_l,beta eps_alpha,beta: AC22's formula (§10.3) with its sign and
  normalisation, which fix those of the general form.

"Interference" is the sign of the shift relative to Q_SM, which is negative (neutron dominated, §1): a positive
shift reduces |Q| (destructive, with a sign-flip band, §12.3), a negative one enlarges it (constructive).

Units: MeV for |q| and masses, G_F in MeV^-2, so C is in MeV^2 and g^2 C/(|q|^2 + M^2) is dimensionless.
Flavours: the six of :mod:`.flavours`; a flavour couples through its charged lepton's U(1)' charge (an antineutrino
as its neutrino: the vector interference with the SM has the same sign, §1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Mapping

import numpy as np

from ..errors import InputError, finite_float
from ..parameters import DEFAULT, Parameters, package_yaml
from .flavours import LEPTONS
from .flavours import lepton as _lepton

__all__ = ["VectorModel", "ScalarModel", "MODELS", "model_names", "get_model", "custom_vector_model",
           "parse_charges", "check_couplings", "loop_mixing", "nsi_weak_charge_squared", "MAX_COUPLING", "MAX_CHARGE"]


# Input bounds.  Beyond g ~ 4 pi a coupling is non-perturbative and the tree-level and one-loop formulas used here
# mean nothing.  U(1)' charges are O(1) numbers -- an overall factor belongs in g -- so |Q'| <= 100 loses no model
# and keeps every product g Q' far from floating-point overflow.
MAX_COUPLING = 4.0 * math.pi
"""Largest coupling g accepted: 4 pi, the perturbative bound the formulas need."""
MAX_CHARGE = 100.0
"""Largest |Q'| accepted for a U(1)' charge (an overall factor belongs in g)."""


def check_couplings(couplings, what: str = "coupling") -> np.ndarray:
    """``couplings`` as a float array, checked finite and within [0, :data:`MAX_COUPLING`] (InputError otherwise)."""
    try:
        g = np.asarray(couplings, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number or array of numbers, got {couplings!r}") from None
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise InputError(f"{what} must be finite and non-negative, got {couplings!r}")
    if np.any(g > MAX_COUPLING):
        raise InputError(f"{what} above 4 pi = {MAX_COUPLING:.4g} is non-perturbative (got max {np.max(g):g})")
    return g


def _number(value, what: str) -> float:
    """A finite real number from a number or an exact-fraction string ("1/3", "-1", "0.5")."""
    if isinstance(value, str):
        text = value.strip().replace("\u2212", "-")  # accept the typographic minus sign
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{what}: {value!r} is not a number or fraction like 1/3") from None
    return finite_float(value, what)


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorModel:
    """A U(1)' vector mediator defined by its charges (§10.2).

    ``baryon_sum`` is c1 + c2 + c3 of G = c1 B1 + c2 B2 + c3 B3 - c_e L_e - c_mu L_mu - c_tau L_tau; None means
    generation-universal baryon charges (c1 = c2 = c3 = 3 Q'_u).  It only enters :attr:`is_anomaly_free`.
    """

    name: str
    q_u: float
    q_d: float
    q_e: float
    q_mu: float
    q_tau: float
    description: str = ""
    source: str = ""
    baryon_sum: float | None = None

    kind = "vector"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("a model needs a non-empty name")
        for attr in ("q_u", "q_d", "q_e", "q_mu", "q_tau"):
            object.__setattr__(self, attr, _number(getattr(self, attr), f"model '{self.name}': charge {attr}"))
        if self.baryon_sum is not None:
            object.__setattr__(self, "baryon_sum", _number(self.baryon_sum, f"model '{self.name}': baryon_sum"))
        charges = self.charges
        if max(map(abs, charges)) > MAX_CHARGE:
            raise InputError(f"model '{self.name}': charges must satisfy |Q'| <= {MAX_CHARGE:g} (an overall factor "
                             f"belongs in the coupling g), got {charges}")
        if not any(charges):
            raise InputError(f"model '{self.name}': all charges are zero, the mediator couples to nothing")
        leptons = self.q_e + self.q_mu + self.q_tau
        if self.is_leptophilic and abs(leptons) > 1e-12 * max(map(abs, charges)):
            # Otherwise the one-loop gamma-Z' mixing depends on the renormalisation scale (a free parameter).
            raise InputError(
                f"model '{self.name}': a model without quark charges needs q_e + q_mu + q_tau = 0 "
                f"(got {leptons:g}) for a finite one-loop gamma-Z' mixing"
            )

    @property
    def charges(self) -> tuple[float, float, float, float, float]:
        """(Q'_u, Q'_d, Q'_e, Q'_mu, Q'_tau)."""
        return (self.q_u, self.q_d, self.q_e, self.q_mu, self.q_tau)

    @property
    def is_leptophilic(self) -> bool:
        """No quark charges: the Z' couples to quarks only through one-loop gamma-Z' kinetic mixing (§10.3)."""
        return self.q_u == 0.0 and self.q_d == 0.0

    def lepton_charge(self, flavour: str) -> float:
        """U(1)' charge of the neutrino ``flavour`` (= that of the charged lepton of the same flavour)."""
        return {"e": self.q_e, "mu": self.q_mu, "tau": self.q_tau}[_lepton(flavour)]

    @property
    def is_anomaly_free(self) -> bool:
        """AC22's condition c1 + c2 + c3 - c_e - c_mu - c_tau = 0, i.e. baryon_sum + Q'_e + Q'_mu + Q'_tau = 0.

        Baryon number gives Q'_u = Q'_d = c1/3, so charges with Q'_u != Q'_d are not of AC22's form and are
        reported as not anomaly free (with the SM fermions plus right-handed neutrinos).  Without ``baryon_sum`` the
        baryon charges are assumed generation-universal: c1 + c2 + c3 = 9 Q'_u.
        """
        if self.q_u != self.q_d:
            return False
        baryon = 9.0 * self.q_u if self.baryon_sum is None else self.baryon_sum
        return math.isclose(baryon + self.q_e + self.q_mu + self.q_tau, 0.0, abs_tol=1e-9)

    def interference(self, flavour: str, Z: float | None = None, N: float | None = None) -> str:
        """"destructive" / "constructive" / "none": sign of the shift relative to the negative Q_SM (§10.2-10.3).

        Evaluated with F_Z = F_N = 1 (form factors are positive below their first zero, |q| >~ 180 MeV for Cs,
        beyond COHERENT's |q| <~ 105 MeV) at |q| from 0 to 300 MeV.  Without Z and N the proton and neutron terms
        must agree in sign (true for every AC22 model); otherwise pass the nucleus's Z and N.
        """
        if (Z is None) != (N is None):
            raise InputError("pass both Z and N, or neither")
        q = np.array([0.0, 1.0, 10.0, 30.0, 60.0, 100.0, 150.0, 300.0])
        ones = np.ones_like(q)
        weights = [(1.0, 0.0), (0.0, 1.0)] if Z is None else [(Z, N)]
        signs: set[float] = set()
        for z, n in weights:
            c = vector_shift_numerator(self, flavour, q, z, n, ones, ones)
            signs |= set(np.sign(c[c != 0.0]).tolist())
        if len(signs) > 1:
            where = "with |q|" if Z is not None else "on the nucleus: pass Z and N"
            raise InputError(f"model '{self.name}', {flavour}: the sign of the shift depends {where}")
        if not signs:
            return "none"
        return "destructive" if signs.pop() > 0 else "constructive"


@dataclass(frozen=True)
class ScalarModel:
    """AC22's light scalar (§10.4): universal coupling, added incoherently to the vector cross section."""

    name: str = "scalar"
    description: str = ""
    source: str = ""

    kind = "scalar"

    def interference(self, flavour: str, Z: float | None = None, N: float | None = None) -> str:
        _lepton(flavour)
        return "none"


Model = VectorModel | ScalarModel


@lru_cache(maxsize=1)
def _load_registry() -> dict[str, Model]:
    out: dict[str, Model] = {}
    for name, entry in package_yaml("models.yaml")["models"].items():
        if entry["kind"] == "scalar":
            out[name] = ScalarModel(name, entry["description"], entry["source"])
        else:
            c = entry["charges"]
            out[name] = VectorModel(name, c["u"], c["d"], c["e"], c["mu"], c["tau"], entry["description"],
                                    entry["source"], entry.get("baryon_sum"))
    return out


MODELS: dict[str, Model] = dict(_load_registry())
"""The registered models (data/models.yaml): name -> :class:`VectorModel` or :class:`ScalarModel`."""


def model_names(kind: str | None = None) -> list[str]:
    """Registered model names in table order; ``kind`` = "vector" or "scalar" selects one kind."""
    if kind not in (None, "vector", "scalar"):
        raise InputError(f"unknown model kind {kind!r}; choose vector or scalar")
    return [name for name, m in MODELS.items() if kind is None or m.kind == kind]


def get_model(name: str | Model) -> Model:
    """The registered model ``name`` (a model instance is returned unchanged)."""
    if isinstance(name, (VectorModel, ScalarModel)):
        return name
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def custom_vector_model(name: str, q_u, q_d, q_e, q_mu, q_tau) -> VectorModel:
    """A vector model with user charges (numbers or fraction strings); generation-universal baryon charges."""
    return VectorModel(name, q_u, q_d, q_e, q_mu, q_tau, "user-defined charges", "user")


def parse_charges(text: str) -> tuple[float, float, float, float, float]:
    """Charges "Q'_u,Q'_d,Q'_e,Q'_mu,Q'_tau" from the CLI ``--charges`` option, e.g. "1/3,1/3,-1,-1,-1"."""
    if not isinstance(text, str):
        raise InputError(f"--charges must be a string like 1/3,1/3,-1,-1,-1, got {text!r}")
    parts = text.split(",")
    if len(parts) != 5:
        raise InputError(f"--charges needs 5 comma-separated values q_u,q_d,q_e,q_mu,q_tau, got {len(parts)}: {text!r}")
    names = ("q_u", "q_d", "q_e", "q_mu", "q_tau")
    return tuple(_number(p, f"--charges {n}") for n, p in zip(names, parts))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------------------
# One-loop gamma-Z' mixing (§10.3)
# ---------------------------------------------------------------------------------------------------------------
#
# eps_ba(|q|) = (1/3) ln(m_b/m_a) + I(|q|^2/m_b^2) - I(|q|^2/m_a^2),  I(s) = int_0^1 y ln(1 + y s) dx,  y = x(1-x).
# log1p keeps I exact at small s, so eps(0) is exactly (1/3) ln(m_b/m_a).  The integrand is symmetric about x = 1/2;
# for a light lepton (s up to ~1e5 for the electron at 150 MeV) it has a log branch point at x ~ -1/s, just outside
# [0, 1], which a single 64-point Gauss-Legendre rule on [0, 1] resolves only to ~3e-8.  So [0, 1/2] is split into
# panels 0, 1e-12, 1e-11, ..., 0.1, 1/2 with 16 nodes each: on [a, 10a] a branch point at x <= 0 is >= 1.2
# half-widths from the panel centre, so each panel converges like 1.92^(-32) ~ 1e-9 relative to its (already small)
# share, and the sum agrees with adaptive quadrature to ~1e-14 for 1e-3 <= |q| <= 1e5 MeV (tests/test_models.py).
# The closed form (1/6)[-5/3 + 4/s + (1 - 2/s) b ln((b+1)/(b-1))], b = sqrt(1 + 4/s), cancels badly at both ends.

_GL_ORDER = 16


@lru_cache(maxsize=1)
def _half_interval_rule() -> tuple[np.ndarray, np.ndarray]:
    """y = x(1-x) at the nodes, and weights doubled for the mirror half [1/2, 1]."""
    t, w = np.polynomial.legendre.leggauss(_GL_ORDER)
    edges = np.concatenate(([0.0], np.logspace(-12, -1, 12), [0.5]))
    lo, hi = edges[:-1, None], edges[1:, None]
    x = (0.5 * (hi - lo) * t + 0.5 * (hi + lo)).ravel()
    return x * (1.0 - x), ((hi - lo) * w).ravel()  # 2 * (hi - lo)/2 * w


def _vacuum_integral(s: np.ndarray) -> np.ndarray:
    """I(s) = int_0^1 x(1-x) ln(1 + x(1-x) s) dx, accumulated node by node (memory ~ size of s)."""
    y, w = _half_interval_rule()
    out = np.zeros_like(s)
    for yi, wi in zip(y, w):
        out += wi * yi * np.log1p(yi * s)
    return out


def _momentum(q_mev) -> np.ndarray:
    q = np.asarray(q_mev, dtype=float)
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        raise InputError("|q| must be finite and >= 0 (MeV)")
    return q


def loop_mixing(m_beta_mev: float, m_alpha_mev: float, q_mev) -> np.ndarray:
    """eps_beta,alpha(|q|) = int_0^1 x(1-x) ln[(m_b^2 + x(1-x)q^2)/(m_a^2 + x(1-x)q^2)] dx (AC22, §10.3).

    Vectorised over ``q_mev`` (|q| in MeV; same shape returned, a float for a scalar); masses in MeV, > 0.
    eps_ab = -eps_ba, eps(0) = (1/3) ln(m_b/m_a).  Absolute accuracy ~1e-14.
    """
    mb = _number(m_beta_mev, "m_beta_mev")
    ma = _number(m_alpha_mev, "m_alpha_mev")
    if mb <= 0 or ma <= 0:
        raise InputError("loop_mixing: lepton masses must be > 0 MeV")
    q2 = _momentum(q_mev) ** 2
    out = math.log(mb / ma) / 3.0 + _vacuum_integral(q2 / mb**2) - _vacuum_integral(q2 / ma**2)
    return out if out.ndim else float(out)


def _lepton_masses(params: Parameters) -> dict[str, float]:
    return {f: params[f"constants.m_{f}"] for f in LEPTONS}


def loop_charge_sum(model: VectorModel, q_mev, params: Parameters = DEFAULT) -> np.ndarray:
    """E(|q|) = -sum_f Q'_f int x(1-x) ln(m_f^2 + x(1-x)|q|^2) dx = sum_f Q'_f eps_tau,f(|q|) (module docstring).

    Uses sum_f Q'_f = 0 (enforced for leptophilic models).  E = eps_beta,alpha for L_alpha - L_beta.
    """
    q = _momentum(q_mev)
    m = _lepton_masses(params)
    out = np.zeros_like(q)
    for f, charge in zip(LEPTONS, (model.q_e, model.q_mu, model.q_tau)):
        if charge != 0.0 and f != "tau":
            out = out + charge * np.asarray(loop_mixing(m["tau"], m[f], q))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Weak-charge shifts
# ---------------------------------------------------------------------------------------------------------------


def _vector(model) -> VectorModel:
    model = get_model(model)
    if not isinstance(model, VectorModel):
        raise InputError(f"model '{model.name}' is not a vector model")
    return model


# C_l(|q|) is linear in a few model-independent functions of |q| (the shift bases): C_l = sum_b w_b B_b(|q|), with
# weights w_b that depend on the model and the flavour only.  The tree-level form is Q'_l/(sqrt2 G_F) times
# (2Q'_u + Q'_d) Z F_Z + (Q'_u + 2Q'_d) N F_N: bases "proton" and "neutron"; the one-loop form carries
# E = Q'_e eps_tau,e + Q'_mu eps_tau,mu (loop_charge_sum; eps_tau,tau = 0): bases "loop_e" and "loop_mu".  The
# templates fold each basis (and each product of two) with the response once and reuse it for every model
# (templates.TemplateBasis).
SHIFT_BASES = ("proton", "neutron", "loop_e", "loop_mu")


def vector_shift_weights(model: VectorModel | str, flavour: str) -> dict[str, float]:
    """{basis: w_b} with C_l = sum_b w_b :func:`vector_shift_basis` (b) for the lepton l of ``flavour``
    (dimensionless; bases with w_b = 0 are left out, so a flavour without U(1)' charge gives {})."""
    model = _vector(model)
    charge = model.lepton_charge(flavour)
    if model.is_leptophilic:
        weights = {"loop_e": charge * model.q_e, "loop_mu": charge * model.q_mu}
    else:
        weights = {"proton": charge * (2.0 * model.q_u + model.q_d),  # quark content uud
                   "neutron": charge * (model.q_u + 2.0 * model.q_d)}  # udd
    return {b: w for b, w in weights.items() if w != 0.0}


def vector_shift_basis(basis: str, q_mev, Z: float, N: float, FZ, FN, params: Parameters = DEFAULT) -> np.ndarray:
    """B_b(|q|) in MeV^2 (module docstring; b in :data:`SHIFT_BASES`), broadcast over ``q_mev``, ``FZ``, ``FN``:

    * ``proton`` = Z F_Z / (sqrt2 G_F), ``neutron`` = N F_N / (sqrt2 G_F) (tree level);
    * ``loop_e``, ``loop_mu`` = sqrt2 alpha / (pi G_F) eps_tau,l(|q|) Z F_Z (one-loop gamma-Z' mixing, §10.3).
    """
    q = _momentum(q_mev)
    FZ, FN = np.asarray(FZ, dtype=float), np.asarray(FN, dtype=float)
    ones = np.ones(np.broadcast_shapes(q.shape, FZ.shape, FN.shape))
    g_f = params["constants.G_F"]
    if basis == "proton":
        return Z * FZ / (math.sqrt(2.0) * g_f) * ones
    if basis == "neutron":
        return N * FN / (math.sqrt(2.0) * g_f) * ones
    if basis in ("loop_e", "loop_mu"):
        m = _lepton_masses(params)
        eps = np.asarray(loop_mixing(m["tau"], m[basis[5:]], q))
        return math.sqrt(2.0) * params["constants.alpha"] / (math.pi * g_f) * eps * Z * FZ * ones
    raise InputError(f"unknown shift basis {basis!r}; choose one of {', '.join(SHIFT_BASES)}")


def vector_shift_numerator(model: VectorModel | str, flavour: str, q_mev, Z: float, N: float, FZ, FN,
                           params: Parameters = DEFAULT) -> np.ndarray:
    """C_l(|q|) in MeV^2 such that Q_l = Q_l,SM + g^2 C_l / (|q|^2 + M^2) (formulas in the module docstring).

    ``q_mev`` is |q| in MeV; ``FZ``, ``FN`` the proton/neutron form factors at |q| (broadcastable to it).
    """
    weights = vector_shift_weights(model, flavour)
    q = _momentum(q_mev)
    c = np.zeros(np.broadcast_shapes(q.shape, np.shape(FZ), np.shape(FN)))
    for basis, w in weights.items():
        c = c + w * vector_shift_basis(basis, q, Z, N, FZ, FN, params)
    return c


def vector_shift(model: VectorModel | str, flavour: str, q_mev, mass_mev: float, g: float, Z: float, N: float,
                 FZ, FN, params: Parameters = DEFAULT) -> np.ndarray:
    """Weak-charge shift g^2 C_l(|q|) / (|q|^2 + M^2) (dimensionless); M = ``mass_mev`` >= 0 may be 0."""
    mass = _number(mass_mev, "mass_mev")
    coupling = _number(g, "g")
    if mass < 0:
        raise InputError(f"mass_mev must be >= 0, got {mass_mev!r}")
    q = _momentum(q_mev)
    denominator = q * q + mass * mass
    if np.any(denominator == 0.0):
        raise InputError("|q|^2 + M^2 = 0: a massless mediator diverges at |q| = 0")
    return coupling**2 * vector_shift_numerator(model, flavour, q, Z, N, FZ, FN, params) / denominator


# ---------------------------------------------------------------------------------------------------------------
# Vector NSI (§10.1)
# ---------------------------------------------------------------------------------------------------------------

_NSI_KEY = re.compile(r"^([ud])V_(e|mu|tau)(e|mu|tau)$")


def _nsi_table(eps: Mapping[str, float]) -> dict[tuple[str, str, str], np.ndarray]:
    """{(quark, a, b): eps} with a <= b in LEPTONS order, so eps_ab and eps_ba are one entry."""
    order = {f: i for i, f in enumerate(LEPTONS)}
    table: dict[tuple[str, str, str], np.ndarray] = {}
    for key, value in eps.items():
        match = _NSI_KEY.match(key) if isinstance(key, str) else None
        if match is None:
            raise InputError(f"unknown NSI key {key!r}; use e.g. uV_ee, dV_mumu, uV_emu (quark u|d, leptons e|mu|tau)")
        quark, a, b = match.groups()
        pair = (quark, *sorted((a, b), key=order.get))
        if pair in table:
            pair_key = f"{pair[0]}V_{pair[1]}{pair[2]}"
            raise InputError(f"NSI key {key!r} repeats {pair_key} (eps_ab = eps_ba is one parameter)")
        v = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(v)):
            raise InputError(f"NSI {key} must be finite, got {value!r}")
        table[pair] = v
    return table


def nsi_weak_charge_squared(flavour: str, eps: Mapping[str, float], gVp: float, gVn: float, Z: float, N: float,
                            FZ, FN) -> np.ndarray:
    """Q_alpha^2 with vector NSI (§10.1, AC22)::

        Q_a^2 = [(gVp + 2e^u_aa + e^d_aa) Z F_Z + (gVn + e^u_aa + 2e^d_aa) N F_N]^2
              + sum_{b != a} [(2e^u_ab + e^d_ab) Z F_Z + (e^u_ab + 2e^d_ab) N F_N]^2

    ``eps`` keys are "{q}V_{ab}": q in {u, d}, a and b in {e, mu, tau} -- diagonal "uV_ee", "dV_mumu",
    "uV_tautau"; off-diagonal "uV_emu", "dV_etau", "uV_mutau" (or the reversed order, "uV_mue": eps_ab = eps_ba
    is real and one parameter, so give each pair once).  Missing keys are 0.  alpha = e for "nue", mu for
    "numu"/"numubar".  gVp, gVn are the SM couplings of that flavour; FZ, FN the form factors (arrays).
    """
    a = _lepton(flavour)
    table = _nsi_table(eps)
    order = {f: i for i, f in enumerate(LEPTONS)}
    zf = Z * np.asarray(FZ, dtype=float)
    nf = N * np.asarray(FN, dtype=float)

    def coupling(b: str) -> tuple[np.ndarray, np.ndarray]:
        pair = tuple(sorted((a, b), key=order.get))
        u = table.get(("u", *pair), 0.0)
        d = table.get(("d", *pair), 0.0)
        return 2.0 * u + d, u + 2.0 * d  # (proton, neutron) = (uud, udd)

    p, n = coupling(a)
    out = ((gVp + p) * zf + (gVn + n) * nf) ** 2
    for b in LEPTONS:
        if b != a:
            p, n = coupling(b)
            out = out + (p * zf + n * nf) ** 2
    return out
