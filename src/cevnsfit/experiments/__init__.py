"""COHERENT data sets, one module each: ``csi2021`` (CsI[Na], 2021 release) and ``lar2020`` (CENNS-10, 2020)."""

from __future__ import annotations

from ..errors import InputError

EXPERIMENTS = ("csi", "lar")


def load_experiment(name: str, data_dir=None, params=None, **options):
    """The experiment ``name`` (``"csi"`` or ``"lar"``) with its data read from ``data_dir``."""
    from ..parameters import DEFAULT

    params = params or DEFAULT
    if name == "csi":
        from .csi2021 import CsI2021

        return CsI2021(data_dir, params, **options)
    if name == "lar":
        from .lar2020 import LAr2020

        return LAr2020(data_dir, params, **options)
    raise InputError(f"unknown experiment '{name}'; choose one of {', '.join(EXPERIMENTS)}")
