"""The experiments cevnsfit fits, and the analysis data sets built from them (:mod:`.registry`).

An experiment is a composition of a source, a target, responses and a likelihood (:mod:`.base`).  Each registers
itself: the modules below on import (:func:`~.registry.register_experiment`), the declaration files of
``data/experiments/`` through :mod:`.declaration`.  The data sets are declared in ``data/datasets.yaml``.

* ``csi`` -- COHERENT CsI[Na], 2021 release (:mod:`.csi2021`)
* ``lar`` -- COHERENT CENNS-10 LAr, 2020 release (:mod:`.lar2020`)
* ``xenonnt`` -- XENONnT solar 8B CEvNS, SR0+SR1+SR2 release (:mod:`.xenonnt`)
"""

from __future__ import annotations

from ..errors import InputError
from ..parameters import package_yaml
from . import csi2021, lar2020, registry, xenonnt  # noqa: F401  (each registers itself)
from .base import Experiment, PhysicsOptions
from .registry import (DATA_SETS, EXPERIMENTS, DataSetSpec, ExperimentEntry, data_set_members, load_experiment,
                       register_data_set, register_experiment)

__all__ = ["Experiment", "PhysicsOptions", "ExperimentEntry", "DataSetSpec", "EXPERIMENTS", "DATA_SETS",
           "DEFAULT_DATA_SET", "register_experiment", "register_data_set", "load_experiment", "data_set_members",
           "plane_data_sets", "compared_data_sets", "experiment_or_declaration"]


def _declared_data_sets() -> str:
    doc = package_yaml("datasets.yaml")
    for name, entry in doc["data_sets"].items():
        register_data_set(DataSetSpec(name, tuple(entry["members"]), entry["label"], entry["legend"],
                                      entry.get("plot", {}), entry.get("reproduce", {})))
    if doc["default"] not in DATA_SETS:
        raise ValueError(f"data/datasets.yaml: the default data set {doc['default']} is not declared")
    return doc["default"]


# the data set a command fits when none is named: AC22's combination of the COHERENT data (data/datasets.yaml)
DEFAULT_DATA_SET = _declared_data_sets()


def experiment_or_declaration(name: str, data_dir=None, **options):
    """The registered experiment ``name``, or the experiment a declaration file (a path ending in .yaml, or the
    name of a shipped declaration) declares (:mod:`.declaration`)."""
    from .declaration import load_declaration, shipped_declarations

    if name in EXPERIMENTS:
        return load_experiment(name, data_dir, **options)
    if str(name).endswith((".yaml", ".yml")) or name in shipped_declarations():
        if options:
            raise InputError(f"options {', '.join(options)} apply to registered experiments, not to {name}")
        return load_declaration(name, data_dir)
    raise InputError(f"unknown experiment '{name}'; choose one of {', '.join(EXPERIMENTS)}, or a declaration FILE.yaml")


def plane_data_sets() -> tuple[str, ...]:
    """The data sets the per-model (M, g) plane figures draw by default, in drawing order (``plot.plane_order``)."""
    sets = registry.DATA_SETS
    drawn = [d for d, s in sets.items() if s.plot.get("plane_order") is not None]
    return tuple(sorted(drawn, key=lambda d: sets[d].plot["plane_order"]))


def compared_data_sets() -> tuple[str, ...]:
    """The data sets of the accelerator-vs-solar comparison figure (``plot.compared``), in registry order."""
    return tuple(d for d, s in registry.DATA_SETS.items() if s.plot.get("compared"))
