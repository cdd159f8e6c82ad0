"""The SNS pi-DAR neutrino source as seen by one detector: spectra, fluence and arrival times."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..parameters import DEFAULT, Parameters
from .spectra import pion_dar_spectra

FLAVOURS = ("nue", "numu", "numubar")


def fluence_per_cm2(pot: float, nu_per_flavour_per_pot: float, baseline_m: float) -> float:
    """Time-integrated neutrinos per flavour per cm^2 at the detector: r N_POT / (4 pi L^2)."""
    return nu_per_flavour_per_pot * pot / (4.0 * np.pi * (baseline_m * 100.0) ** 2)


@dataclass(frozen=True)
class SNSSource:
    """Per-flavour fluence (nu/cm^2) and normalised energy spectra for one exposure."""

    fluence_per_cm2: float
    spectra: dict = field(default_factory=dict)

    @classmethod
    def for_experiment(cls, section: str, params: Parameters = DEFAULT) -> "SNSSource":
        """Source for the exposure of ``section`` (``csi2021`` or ``lar2020``) of the parameter file."""
        phi = fluence_per_cm2(
            params[f"{section}.pot"], params[f"{section}.nu_per_flavour_per_pot"], params[f"{section}.baseline"]
        )
        return cls(phi, pion_dar_spectra(params))
