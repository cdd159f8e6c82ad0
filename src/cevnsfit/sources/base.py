"""The Source protocol and the registry of source kinds.

A source is what a detector sees of a neutrino emitter: per-flavour energy spectra, the fluence they are normalised
to, and -- for a pulsed source -- the arrival-time model.  Whatever the emitter (a spallation source's stopped pions,
the Sun, a reactor), the rate engine (:mod:`cevnsfit.kernel`) needs only:

* ``spectra[flavour].moment(k, e_min)``: int_{E_min} E^k f(E) dE for k = 0, -1, -2 (MeV^k per unit of spectrum);
* ``fluence_per_cm2``: the spectra's integrals times this are neutrinos per cm^2 over the exposure;
* ``max_energy_mev`` (the recoil grid ends at the kinematic end point of the largest energy), and the energies of
  monochromatic lines (``line_energies_mev``: the recoil grid brackets their end points, where the rate jumps);
* ``timing``: an arrival-time model (:mod:`.timing`) with ``bin_fractions(flavour, edges_us, efficiency)``, or None
  for a steady source.

Each *kind* of source is a factory registered by name with :func:`register_source`, which checks the contract at
import (a documented callable, the unit of every dimensional argument, a name not yet taken): ``pion_dar``
(:mod:`.pion_dar`), ``solar_8b`` (:mod:`.sun`), ``reactor`` (:mod:`.reactor`).  :func:`make_source` builds one from
its arguments; an experiment declaration names the kind and gives the arguments with their units.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from ..errors import InputError
from ..physics.flavours import FLAVOURS
from .spectra import LineSpectrum

__all__ = ["Source", "SourceKind", "SOURCES", "register_source", "make_source"]


@dataclass(frozen=True)
class Source:
    """Per-flavour spectra (each ``moment``-able, MeV), their fluence (cm^-2 over the exposure) and arrival times.

    ``flux_per_cm2_s``: the total flux of a steady source (cm^-2 s^-1), where it has a meaning (the Sun's 8B
    reference flux); None otherwise.
    """

    name: str
    fluence_per_cm2: float
    spectra: Mapping = field(default_factory=dict)
    timing: object | None = None
    flux_per_cm2_s: float | None = None

    def __post_init__(self) -> None:
        unknown = [f for f in self.spectra if f not in FLAVOURS]
        if unknown:
            raise InputError(f"source {self.name}: unknown flavour(s) {unknown}; the flavours are {', '.join(FLAVOURS)}")
        if not (np.isfinite(self.fluence_per_cm2) and self.fluence_per_cm2 > 0):
            raise InputError(f"source {self.name}: the fluence must be a positive number of cm^-2")

    @property
    def flavours(self) -> tuple[str, ...]:
        """The flavours this source emits (its spectra's keys, in their order)."""
        return tuple(self.spectra)

    @property
    def max_energy_mev(self) -> float:
        """The largest neutrino energy of any flavour (MeV)."""
        return max(s.max_energy_mev for s in self.spectra.values())

    @property
    def line_energies_mev(self) -> tuple[float, ...]:
        """Energies (MeV) of the monochromatic lines among the spectra (the prompt nu_mu of pion decay at rest)."""
        return tuple(s.energy_mev for s in self.spectra.values() if isinstance(s, LineSpectrum))


@dataclass(frozen=True)
class SourceKind:
    """A registered kind of source: ``build(params, **arguments) -> Source`` and the unit of each dimensional
    argument (what an experiment declaration must state)."""

    name: str
    build: Callable
    units: Mapping[str, str]
    doc: str


SOURCES: dict[str, SourceKind] = {}
"""The registered neutrino sources: name -> :class:`SourceKind` (pion_dar, solar_8b, reactor, ...)."""


def register_source(name: str, units: Mapping[str, str] | None = None):
    """Decorator registering a source factory ``f(params, **arguments) -> Source`` under ``name``.

    The contract is checked here, at import: a callable with a docstring whose first parameter is the parameter set,
    ``units`` naming keyword arguments it accepts (argument -> unit string), and a name not taken -- a violation is a
    ``TypeError``/``ValueError`` naming the factory, so that a broken kind never reaches a user's run.
    """
    units = dict(units or {})

    def decorate(factory):
        where = f"source kind '{name}' ({getattr(factory, '__module__', '?')}.{getattr(factory, '__name__', '?')})"
        if name in SOURCES:
            raise ValueError(f"{where}: the name is already registered by {SOURCES[name].build.__module__}")
        if not callable(factory) or not (factory.__doc__ or "").strip():
            raise TypeError(f"{where}: a source kind is a documented callable")
        sig = inspect.signature(factory)
        params = list(sig.parameters.values())
        if not params or params[0].name != "params":
            raise TypeError(f"{where}: the first argument must be 'params' (the parameter set)")
        accepted = {p.name for p in params[1:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        unknown = set(units) - accepted
        if unknown or not all(isinstance(u, str) and u for u in units.values()):
            raise TypeError(f"{where}: units name arguments it does not take ({sorted(unknown)}) or are not strings")
        SOURCES[name] = SourceKind(name, factory, units, inspect.cleandoc(factory.__doc__))
        return factory

    return decorate


def make_source(kind: str, params, **arguments) -> Source:
    """The source of the registered ``kind`` built from ``arguments`` (InputError for an unknown kind or argument)."""
    if kind not in SOURCES:
        raise InputError(f"unknown source kind '{kind}'; choose one of {', '.join(SOURCES)}")
    entry = SOURCES[kind]
    sig = inspect.signature(entry.build)
    accepted = [p for p in list(sig.parameters)[1:]]
    unknown = [a for a in arguments if a not in accepted]
    if unknown:
        raise InputError(f"source kind '{kind}' takes no argument {', '.join(unknown)}; it takes {', '.join(accepted)}")
    try:
        sig.bind(params, **arguments)
    except TypeError as exc:
        raise InputError(f"source kind '{kind}': {exc}") from None
    return entry.build(params, **arguments)
