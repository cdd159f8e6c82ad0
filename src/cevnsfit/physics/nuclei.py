"""Target nuclei: charge, neutron number, nuclear mass and point-nucleon rms radii.

Values live in ``data/parameters.yaml`` (section ``nuclei``) with their citations; override them with
``load_parameters({"nuclei.Cs133.R_n": 5.2})``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..parameters import DEFAULT, Parameters


@dataclass(frozen=True)
class Nucleus:
    """A target nucleus.

    Attributes: ``name`` (e.g. ``"Cs133"``), ``Z``, ``N``, ``mass_mev`` (nuclear mass, MeV),
    ``r_p_fm`` and ``r_n_fm`` (rms radii of the point-proton and point-neutron distributions, fm).
    """

    name: str
    Z: int
    N: int
    mass_mev: float
    r_p_fm: float
    r_n_fm: float

    @property
    def A(self) -> int:
        return self.Z + self.N


def get_nucleus(name: str, params: Parameters = DEFAULT) -> Nucleus:
    """The nucleus ``name`` (``Cs133``, ``I127``, ``Ar40``, ``Ar38``, ``Ar36``) with the given parameters."""
    nuclei = params["nuclei"]
    if name not in nuclei:
        raise InputError(f"unknown nucleus '{name}'; known: {', '.join(nuclei)}")
    key = f"nuclei.{name}"
    return Nucleus(
        name=name,
        Z=int(params[f"{key}.Z"]),
        N=int(params[f"{key}.N"]),
        mass_mev=float(params[f"{key}.mass"]),
        r_p_fm=float(params[f"{key}.R_p"]),
        r_n_fm=float(params[f"{key}.R_n"]),
    )
