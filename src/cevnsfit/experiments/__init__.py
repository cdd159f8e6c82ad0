"""The experiments cevnsfit fits, and the analysis data sets built from them: one registry each.

Every list of experiment or data-set names elsewhere (CLI choices, data checks, table columns and their order,
figure styles, the mediator analysis) derives from :data:`EXPERIMENTS` and :data:`DATA_SETS`: adding an
experiment is one :func:`register_experiment` line beside its module, plus the data sets that use it.

* ``csi`` -- COHERENT CsI[Na], 2021 release (:mod:`.csi2021`)
* ``lar`` -- COHERENT CENNS-10 LAr, 2020 release (:mod:`.lar2020`)
* ``xenonnt`` -- XENONnT solar 8B CEvNS, SR0+SR1+SR2 release (:mod:`.xenonnt`)

Data sets: ``lar``, ``csi``, ``csi+lar`` (COHERENT), ``xenonnt``, ``coherent+xenonnt`` (all three experiments).

Every experiment class provides: ``name``, ``label``, ``files`` (key -> path below its collection's folder),
``check_inputs()`` (read every input now), ``observed``, ``sm_prediction()``, ``signal()``, ``kernel``, ``cost()``,
``sm_summary()`` (the ``cevnsfit sm`` document) and ``sm_table()`` (its human-readable table).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from ..errors import InputError

__all__ = ["ExperimentSpec", "DataSetSpec", "EXPERIMENTS", "DATA_SETS", "register_experiment", "register_data_set",
           "load_experiment", "experiment_class", "data_set_members", "plane_data_sets", "compared_data_sets"]


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment: its registry name, where its class lives, labels, and the data sets it reads."""

    name: str
    module: str  # module below cevnsfit.experiments
    cls: str
    label: str  # short label for tables ("CsI")
    fetch: tuple[str, ...]  # data sets of cevnsfit.io.registry it reads
    collection: str = "coherent"  # top folder of the data root holding its files (cevnsfit.io.registry)
    # `cevnsfit reproduce` profiles data sets with this experiment on every (n_mass, n_coupling)-th point of the
    # full plane: (1, 1) = the full plane; larger for a costly chi^2 (XENONnT's morphed profile, ~20x a COHERENT one)
    plane_step: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class DataSetSpec:
    """An analysis data set: one experiment or a combination (chi^2 summed, independent nuisances), with the
    label of its table columns and the style of its region on the figures."""

    name: str
    members: tuple[str, ...]
    label: str  # table label
    legend: str  # figure legend
    colour: str
    fill_alpha: float
    line_width: float
    gm2_verdict: bool = False  # `cevnsfit reproduce` writes its (g-2)_mu verdicts
    # position of its region on the per-model (M, g) plane figures by default (drawing and legend order, so not
    # the table order); None: not drawn there unless asked for
    plane_order: int | None = None
    compared: bool = False  # a curve of the COHERENT-vs-XENONnT figure (registry order, the last one dashed)


EXPERIMENTS: dict[str, ExperimentSpec] = {}
DATA_SETS: dict[str, DataSetSpec] = {}  # in table order


def register_experiment(spec: ExperimentSpec) -> ExperimentSpec:
    EXPERIMENTS[spec.name] = spec
    return spec


def register_data_set(spec: DataSetSpec) -> DataSetSpec:
    unknown = [m for m in spec.members if m not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"data set {spec.name} uses unregistered experiment(s) {unknown}")
    DATA_SETS[spec.name] = spec
    return spec


register_experiment(ExperimentSpec("csi", "csi2021", "CsI2021", "CsI", ("csi2021", "flux")))
register_experiment(ExperimentSpec("lar", "lar2020", "LAr2020", "LAr", ("lar2020", "flux")))
register_experiment(ExperimentSpec("xenonnt", "xenonnt", "XenonNT", "XENONnT", ("xenonnt",), "xenonnt_cevns", (3, 2)))
# table order: LAr, CsI, combined (AC22 Table 2)
# (the plane figures draw CsI, LAr, then their combination on top: AC22's figures)
register_data_set(DataSetSpec("lar", ("lar",), "LAr", "COHERENT LAr (2020)", "#0571b0", 0.06, 1.1, plane_order=1))
register_data_set(DataSetSpec("csi", ("csi",), "CsI", "COHERENT CsI (2021)", "#e66101", 0.06, 1.1, plane_order=0))
register_data_set(DataSetSpec("csi+lar", ("csi", "lar"), "CsI+LAr", "COHERENT CsI + LAr", "#7b3294", 0.22, 1.8,
                              gm2_verdict=True, plane_order=2, compared=True))
# solar 8B on xenon alone, and with COHERENT (chi^2 summed: independent nuisances, the fluxes have no common part)
register_data_set(DataSetSpec("xenonnt", ("xenonnt",), "XENONnT", "XENONnT 8B (SR0-SR2)", "#1a9641", 0.06, 1.1,
                              compared=True))
register_data_set(DataSetSpec("coherent+xenonnt", ("csi", "lar", "xenonnt"), "COHERENT+XENONnT",
                              "COHERENT + XENONnT", "#252525", 0.0, 1.8, gm2_verdict=True, compared=True))


def plane_data_sets() -> tuple[str, ...]:
    """The data sets the per-model (M, g) plane figures draw by default, in drawing order (``plane_order``)."""
    return tuple(sorted((d for d, s in DATA_SETS.items() if s.plane_order is not None),
                        key=lambda d: DATA_SETS[d].plane_order))


def compared_data_sets() -> tuple[str, ...]:
    """The data sets of the COHERENT-vs-XENONnT figure (``compared``), in registry order."""
    return tuple(d for d, s in DATA_SETS.items() if s.compared)


def experiment_class(name: str):
    """The class of the registered experiment ``name`` (imported on first use)."""
    if name not in EXPERIMENTS:
        raise InputError(f"unknown experiment '{name}'; choose one of {', '.join(EXPERIMENTS)}")
    spec = EXPERIMENTS[name]
    return getattr(import_module(f"{__name__}.{spec.module}"), spec.cls)


def load_experiment(name: str, data_dir=None, params=None, **options):
    """The experiment ``name`` (a key of :data:`EXPERIMENTS`) with its data read from ``data_dir``: the folder of
    its collection, or a mapping collection -> folder (``{"coherent": ...}``, what ``--data-dir`` gives); None or a
    missing key searches as :mod:`cevnsfit.io.datadir` describes."""
    from collections.abc import Mapping

    from ..parameters import DEFAULT

    cls = experiment_class(name)
    if isinstance(data_dir, Mapping):
        data_dir = data_dir.get(EXPERIMENTS[name].collection)
    return cls(data_dir, params or DEFAULT, **options)


def data_set_members(name: str) -> tuple[str, ...]:
    """The experiments of the analysis data set ``name``."""
    if name not in DATA_SETS:
        raise InputError(f"unknown data set '{name}'; choose one of {', '.join(DATA_SETS)}")
    return DATA_SETS[name].members
