"""Units of declared quantities: the few families a declaration file may use, and conversion within a family.

Every dimensional number a user writes is ``{value, unit, source}``; the model or source that takes it declares the
unit it works in (MeV inside the package; keVee/keVnr, kg, m, days... at the edges), and :func:`convert` turns the
given unit into the declared one when both belong to one family below, or refuses with the units it accepts.
Electron-equivalent and nuclear-recoil energies are different families (a quenching model converts between them).
"""

from __future__ import annotations

from .errors import InputError

__all__ = ["FAMILIES", "convert", "family"]

_DAY = 86400.0
FAMILIES: dict[str, dict[str, float]] = {
    "mass": {"kg": 1.0, "t": 1e3, "g": 1e-3},
    "length": {"m": 1.0, "cm": 1e-2, "km": 1e3},
    "time": {"s": 1.0, "h": 3600.0, "days": _DAY, "years": 365.25 * _DAY, "us": 1e-6, "ns": 1e-9},
    "power": {"W": 1.0, "MW": 1e6, "GW": 1e9},
    "energy": {"eV": 1e-6, "keV": 1e-3, "MeV": 1.0, "GeV": 1e3},
    "energy_ee": {"eVee": 1e-3, "keVee": 1.0, "MeVee": 1e3},
    "energy_nr": {"eVnr": 1e-3, "keVnr": 1.0, "MeVnr": 1e3},
    "fraction": {"1": 1.0, "%": 1e-2},
}
"""Unit families of the declaration files: family -> {unit name: factor to the family's SI unit} (kg, m, s, ...)."""
_FAMILY = {u: f for f, units in FAMILIES.items() for u in units}


def family(unit: str) -> str | None:
    """The family of ``unit`` (``"mass"``, ``"time"``...), or None for a unit outside the table."""
    return _FAMILY.get(unit)


def convert(value: float, unit: str, wanted: str, what: str = "value") -> float:
    """``value`` given in ``unit`` expressed in ``wanted`` (the same unit, or one of its family); InputError
    naming ``what`` and the accepted units otherwise."""
    if unit == wanted:
        return value
    f = family(unit)
    if f is None or f != family(wanted):
        accepted = FAMILIES[family(wanted)] if family(wanted) else [wanted]
        raise InputError(f"{what} has unit '{unit}'; use {' or '.join(accepted)}")
    return value * FAMILIES[f][unit] / FAMILIES[f][wanted]
