"""The six neutrino flavours: a closed set that every source, cross section and U(1)' charge treats alike.

Names: ``nue``, ``numu``, ``nutau`` and their antineutrinos ``nuebar``, ``numubar``, ``nutaubar``.  For CEvNS the
antineutrino of a flavour has the vector couplings of the neutrino (the cross section is the same; physics
specification section 1), so every flavour-dependent input is a function of the charged lepton (e, mu, tau) only:
:func:`lepton` maps a flavour to it.  Sources emit some of the six (the SNS: nue, numu, numubar; the Sun after
oscillation: nue, numu, nutau; a reactor: nuebar).
"""

from __future__ import annotations

from ..errors import InputError

FLAVOURS = ("nue", "numu", "nutau", "nuebar", "numubar", "nutaubar")
LEPTONS = ("e", "mu", "tau")
_LEPTON = {"nue": "e", "numu": "mu", "nutau": "tau", "nuebar": "e", "numubar": "mu", "nutaubar": "tau"}


def lepton(flavour: str) -> str:
    """The charged lepton (``"e"``, ``"mu"``, ``"tau"``) of ``flavour``; InputError for an unknown name."""
    try:
        return _LEPTON[flavour]
    except (KeyError, TypeError):
        raise InputError(f"unknown flavour {flavour!r}; choose one of {', '.join(FLAVOURS)}") from None


def is_antineutrino(flavour: str) -> bool:
    """True for ``nuebar``, ``numubar``, ``nutaubar``."""
    lepton(flavour)
    return flavour.endswith("bar")


def flavours_of(leptons) -> tuple[str, ...]:
    """Every flavour (neutrino and antineutrino) whose charged lepton is in ``leptons``, in :data:`FLAVOURS` order."""
    wanted = set(leptons)
    return tuple(f for f in FLAVOURS if _LEPTON[f] in wanted)
