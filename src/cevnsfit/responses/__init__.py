"""Detector responses: a registry of named, parameterised models shared by real experiments and projections.

Kinds (each a sub-registry; :data:`CONTRACTS` lists the methods each kind must have):

* ``quenching`` -- nuclear recoil T' (MeV) to electron-equivalent energy (keVee): ``constant``, ``linear`` (LAr),
  ``polynomial`` (the CsI-2021 release form), ``lindhard`` (with k), ``tabulated`` (measured quenching factors);
* ``efficiency`` -- acceptance as a function of a reconstructed quantity (keVee, PE or us): ``constant``,
  ``logistic``, ``tabulated`` (a release's table, linear between its nodes), ``delayed_exponential`` (time);
* ``resolution`` -- the width of a Gaussian smearing in keVee: ``sqrt`` (a sqrt(E)), ``quadrature`` (noise,
  stochastic and constant terms, e.g. a germanium detector's noise and Fano terms);
* ``energy`` -- recoils to reconstructed-energy bins: ``gaussian`` (quenching, Gaussian resolution, efficiency,
  threshold), ``gamma_pe`` (photo-electrons with a Gamma distribution: CsI-2021), ``mono_templates`` (efficiencies of
  mono-energetic recoils on a nuisance grid: XENONnT);
* ``time`` -- arrival-time bins: ``source_timing`` (the source's arrival times, optionally with a time efficiency),
  ``integrated`` (one bin).

:func:`register_response` checks the contract at import -- the kind exists, the class has the kind's methods and a
docstring, every declared unit names a constructor argument, the name is not taken -- so a broken model fails when
the package loads, with its name, never in a user's run.  :func:`make_response` builds a model by name.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Mapping

from ..errors import InputError

__all__ = ["CONTRACTS", "RESPONSES", "ResponseModel", "register_response", "make_response"]

CONTRACTS = {
    "quenching": ("electron_equivalent_kev",),
    "efficiency": ("__call__", "kinks"),
    "resolution": ("sigma_kevee",),
    "energy": ("weighted_matrix", "recoil_grid", "unit", "label"),
    "time": ("fractions",),
}
"""Response kind -> the methods a response model of that kind must have (quenching, efficiency, ...)."""


@dataclass(frozen=True)
class ResponseModel:
    """A registered model: its kind, name, class and the unit of each dimensional constructor argument."""

    kind: str
    name: str
    cls: type
    units: Mapping[str, str]
    doc: str


RESPONSES: dict[str, dict[str, ResponseModel]] = {kind: {} for kind in CONTRACTS}
"""The registered response models: kind -> {name: model}."""


def register_response(kind: str, name: str, units: Mapping[str, str] | None = None):
    """Class decorator registering a response model (module docstring); ``units``: argument -> unit string."""
    units = dict(units or {})

    def decorate(cls):
        where = f"{kind} model '{name}' ({cls.__module__}.{cls.__qualname__})"
        if kind not in RESPONSES:
            raise ValueError(f"{where}: unknown kind; the kinds are {', '.join(RESPONSES)}")
        if name in RESPONSES[kind]:
            raise ValueError(f"{where}: the name is already registered by {RESPONSES[kind][name].cls.__module__}")
        missing = [m for m in CONTRACTS[kind] if not hasattr(cls, m)]
        if missing or not (cls.__doc__ or "").strip():
            raise TypeError(f"{where}: needs a docstring and the methods {', '.join(CONTRACTS[kind])} (missing: "
                            f"{', '.join(missing) or 'the docstring'})")
        accepted = set(inspect.signature(cls).parameters)
        unknown = set(units) - accepted
        if unknown or not all(isinstance(u, str) and u for u in units.values()):
            raise TypeError(f"{where}: units name arguments it does not take ({sorted(unknown)}) or are not strings")
        RESPONSES[kind][name] = ResponseModel(kind, name, cls, units, inspect.cleandoc(cls.__doc__))
        cls.model_name = name
        return cls

    return decorate


def make_response(kind: str, name: str, **arguments):
    """The ``kind`` model ``name`` built from ``arguments`` (InputError naming the known ones otherwise)."""
    if kind not in RESPONSES:
        raise InputError(f"unknown response kind '{kind}'; choose one of {', '.join(RESPONSES)}")
    if name not in RESPONSES[kind]:
        raise InputError(f"unknown {kind} model '{name}'; choose one of {', '.join(RESPONSES[kind])}")
    cls = RESPONSES[kind][name].cls
    try:
        inspect.signature(cls).bind(**arguments)
    except TypeError as exc:
        raise InputError(f"{kind} model '{name}': {exc}") from None
    return cls(**arguments)


# the model modules register themselves on import
from . import efficiency, energy, quenching, resolution, time  # noqa: E402,F401
