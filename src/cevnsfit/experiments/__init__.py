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
           "plane_data_sets", "compared_data_sets", "experiment_or_declaration", "resolve_data_set"]


def _register_shipped_experiments() -> tuple[str, ...]:
    """The declarations of ``data/experiments/`` (data sets with their data, e.g. a reactor's release): their
    experiments now (``data/datasets.yaml`` may combine them), their one-member data sets after those of the file."""
    from .declaration import register_declaration, shipped_declarations

    return tuple(register_declaration(name, data_set=False) for name in shipped_declarations("experiments"))


_SHIPPED = _register_shipped_experiments()


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
"""The data set a command fits when none is named: AC22's COHERENT CsI+LAr (data/datasets.yaml)."""
for _name in _SHIPPED:
    if _name not in DATA_SETS:
        register_data_set(DataSetSpec(_name, (_name,), EXPERIMENTS[_name].label, EXPERIMENTS[_name].label))


def _is_declaration(text: str) -> bool:
    from .declaration import shipped_declarations

    return str(text).endswith((".yaml", ".yml")) or str(text) in shipped_declarations()


def experiment_or_declaration(name: str, data_dir=None, **options):
    """The registered experiment ``name``, or the experiment a declaration file (a path ending in .yaml, or the
    name of a shipped declaration) declares, registered first (:func:`.declaration.register_declaration`)."""
    from .declaration import register_declaration

    if name not in EXPERIMENTS and _is_declaration(name):
        name = register_declaration(name)
    if name in EXPERIMENTS:
        return load_experiment(name, data_dir, **options)
    raise InputError(f"unknown experiment '{name}'; choose one of {', '.join(EXPERIMENTS)}, or a declaration FILE.yaml")


def resolve_data_set(text: str) -> str:
    """The name of the data set ``text`` names: a registered one; a declaration file (registered on the way, as a
    one-member data set of the declaration's name); or a combination ``A+B+...`` of registered data sets and
    experiments (registered on the way: the union of their experiments, chi^2 summed, nuisances independent)."""
    from .declaration import register_declaration

    if text in DATA_SETS:
        return text
    if _is_declaration(text):
        return register_declaration(text)
    parts = [p.strip() for p in str(text).split("+")]
    if len(parts) > 1 and all(p in DATA_SETS or p in EXPERIMENTS for p in parts):
        members = tuple(dict.fromkeys(m for p in parts for m in (DATA_SETS[p].members if p in DATA_SETS else (p,))))
        same = next((d for d, spec in DATA_SETS.items() if set(spec.members) == set(members)), None)
        if same is not None:  # an existing data set of these experiments: its name (csi+lar for lar+csi)
            return same
        label = " + ".join(DATA_SETS[p].label if p in DATA_SETS else EXPERIMENTS[p].label for p in parts)
        register_data_set(DataSetSpec("+".join(parts), members, label, label))
        return "+".join(parts)
    raise InputError(f"unknown data set '{text}'; choose one of {', '.join(DATA_SETS)}, a combination of them "
                     f"joined by '+', or a declaration FILE.yaml")


def plane_data_sets() -> tuple[str, ...]:
    """The data sets the per-model (M, g) plane figures draw by default, in drawing order (``plot.plane_order``)."""
    sets = registry.DATA_SETS
    drawn = [d for d, s in sets.items() if s.plot.get("plane_order") is not None]
    return tuple(sorted(drawn, key=lambda d: sets[d].plot["plane_order"]))


def compared_data_sets() -> tuple[str, ...]:
    """The data sets of the accelerator-vs-solar comparison figure (``plot.compared``), in registry order."""
    return tuple(d for d, s in registry.DATA_SETS.items() if s.plot.get("compared"))
