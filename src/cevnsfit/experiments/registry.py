"""The registries of experiments and of the analysis data sets built from them.

Every list of experiment or data-set names elsewhere (CLI choices and help texts, data checks, table columns and
their order, figure styles, the mediator analysis, what ``reproduce`` runs) derives from :data:`EXPERIMENTS` and
:data:`DATA_SETS`.  An experiment registers itself where it is defined -- a module's ``load`` function decorated with
:func:`register_experiment`, or a declaration file (:mod:`.declaration`) -- and the data sets are declared, with
their labels, figure styles and run options, in ``data/datasets.yaml``.

:func:`register_experiment` checks the contract at import: a documented loader ``load(data_dir, params, **options)``
returning an :class:`~.base.Experiment`, a known data collection and fetchable data sets, file paths as strings,
and a name not yet taken; :func:`register_data_set` checks that its members are registered experiments.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..errors import InputError

__all__ = ["ExperimentEntry", "DataSetSpec", "EXPERIMENTS", "DATA_SETS", "register_experiment", "register_data_set",
           "load_experiment", "data_set_members"]


@dataclass(frozen=True)
class ExperimentEntry:
    """A registered experiment: its loader, table label, data collection, files (key -> path below the collection's
    folder), the fetchable data sets it reads (:mod:`cevnsfit.io.registry`) and its citation."""

    name: str
    load: Callable
    label: str
    collection: str
    files: Mapping[str, str]
    fetch: tuple[str, ...]
    citation: str
    module: str
    options: type | None = None  # the loader's options (a dataclass): what a user may set, e.g. XENONnT's runs


@dataclass(frozen=True)
class DataSetSpec:
    """An analysis data set: one experiment or a combination (chi^2 summed), with the label of its table columns and
    free-form sections read by the figures (``plot``) and by ``cevnsfit reproduce`` (``reproduce``)."""

    name: str
    members: tuple[str, ...]
    label: str
    legend: str
    plot: Mapping = field(default_factory=dict)
    reproduce: Mapping = field(default_factory=dict)


EXPERIMENTS: dict[str, ExperimentEntry] = {}
"""The registered experiments: name -> :class:`ExperimentEntry` (built-in modules and declarations)."""
DATA_SETS: dict[str, DataSetSpec] = {}  # in table order
"""The registered data sets: name -> :class:`DataSetSpec` (data/datasets.yaml, then one per declared
experiment), in table order."""


def register_experiment(name: str, *, label: str, collection: str, files: Mapping[str, str], fetch=(),
                        citation: str = "", options: type | None = None):
    """Decorator registering ``load(data_dir=None, params=DEFAULT, **options) -> Experiment`` under ``name``."""
    from ..io.registry import COLLECTIONS, DATASETS

    def decorate(load):
        where = f"experiment '{name}' ({getattr(load, '__module__', '?')}.{getattr(load, '__name__', '?')})"
        if name in EXPERIMENTS:
            raise ValueError(f"{where}: the name is already registered by {EXPERIMENTS[name].module}")
        if not name or any(c in name for c in "+ /"):
            raise ValueError(f"{where}: an experiment name is one word without '+', '/' or spaces")
        if not callable(load) or not (load.__doc__ or "").strip():
            raise TypeError(f"{where}: the loader must be a documented callable")
        params = list(inspect.signature(load).parameters)
        if params[:2] != ["data_dir", "params"]:
            raise TypeError(f"{where}: the loader's first arguments must be (data_dir, params)")
        if collection and collection not in COLLECTIONS:
            raise ValueError(f"{where}: unknown data collection '{collection}'; known: {', '.join(COLLECTIONS)}")
        unknown = [f for f in fetch if f not in DATASETS]
        if unknown:
            raise ValueError(f"{where}: unknown fetchable data set(s) {unknown}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise TypeError(f"{where}: files must map keys to relative paths (strings)")
        EXPERIMENTS[name] = ExperimentEntry(name, load, label, collection, dict(files), tuple(fetch), citation,
                                            getattr(load, "__module__", ""), options)
        return load

    return decorate


def register_data_set(spec: DataSetSpec) -> DataSetSpec:
    """Add an analysis data set (its members must be registered experiments; a name is registered once)."""
    unknown = [m for m in spec.members if m not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"data set {spec.name} uses unregistered experiment(s) {unknown}")
    if spec.name in DATA_SETS:
        raise ValueError(f"data set {spec.name} is already registered")
    if not spec.members:
        raise ValueError(f"data set {spec.name} has no members")
    DATA_SETS[spec.name] = spec
    return spec


def load_experiment(name: str, data_dir=None, params=None, **options):
    """The experiment ``name`` (a key of :data:`EXPERIMENTS`) with its data read from ``data_dir``: the folder of
    its collection, or a mapping collection -> folder (``{"coherent": ...}``, what ``--data-dir`` gives); None or a
    missing key searches as :mod:`cevnsfit.io.datadir` describes (a loader passes the mapping on to every
    collection it reads: XENONnT's release and the solar spectrum)."""
    from ..parameters import DEFAULT

    if name not in EXPERIMENTS:
        raise InputError(f"unknown experiment '{name}'; choose one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name].load(data_dir, params or DEFAULT, **options)


def data_set_members(name: str) -> tuple[str, ...]:
    """The experiments of the analysis data set ``name``."""
    if name not in DATA_SETS:
        raise InputError(f"unknown data set '{name}'; choose one of {', '.join(DATA_SETS)}")
    return DATA_SETS[name].members
