"""Cited physics parameters, read from the YAML files of ``cevnsfit/data`` (:data:`PARAMETER_FILES`).

``parameters.yaml`` holds the constants, couplings, nuclei and the COHERENT inputs; ``solar.yaml`` the Sun and the
oscillation parameters, ``xenonnt.yaml`` xenon and the XENONnT release, ``projection.yaml`` planned detectors'
nuclei, compounds and facilities, ``reactor.yaml`` reactors and germanium.  They form one tree (a section present in
several files, ``nuclei``, is merged key by key; the first file to give a key wins).  Every leaf is
``{value, unit, source}``.  :func:`load_parameters` returns a
:class:`Parameters` mapping addressed by dotted keys (``"csi2021.pot"``); overrides replace values (not units or
sources) and are recorded, so that results can say which inputs differ from the cited defaults.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import yaml

from .errors import InputError, finite_float


def package_yaml(filename: str) -> Any:
    """The YAML file ``filename`` of ``cevnsfit/data``, read with libyaml's parser where PyYAML has it: the same
    safe YAML 1.1 loading as ``yaml.safe_load``, ~10x faster (parameters.yaml: 37 ms -> 3 ms, at every start of the
    command line).  Files that users write keep ``yaml.safe_load``, whose errors quote the offending line."""
    text = resources.files("cevnsfit.data").joinpath(filename).read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


PARAMETER_FILES = ("parameters.yaml", "solar.yaml", "xenonnt.yaml", "projection.yaml", "reactor.yaml")


@lru_cache(maxsize=1)
def _default_tree() -> dict:
    tree: dict = {}
    for filename in PARAMETER_FILES:
        for section, content in _coerce_numbers(package_yaml(filename)).items():
            target = tree.setdefault(section, {})
            for key, value in content.items():
                target.setdefault(key, value)
    return tree


def _coerce_numbers(node: Any) -> Any:
    """YAML 1.1 reads ``3.198e23`` (no sign in the exponent) as a string: turn such values into floats."""
    if isinstance(node, dict):
        out = {k: _coerce_numbers(v) for k, v in node.items()}
        if "value" in out and isinstance(out["value"], str):
            out["value"] = float(out["value"])
        return out
    return node


def _is_leaf(node: Any) -> bool:
    return isinstance(node, dict) and "value" in node


@dataclass(frozen=True)
class Parameters:
    """Parameter tree with dotted-key access.  Immutable: use :meth:`with_overrides` to change values."""

    tree: dict
    overrides: Mapping[str, float] = field(default_factory=dict)

    def _node(self, key: str) -> Any:
        node: Any = self.tree
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise InputError(f"unknown parameter '{key}'")
            node = node[part]
        return node

    def __getitem__(self, key: str) -> float:
        """Value of a parameter (or the raw entry for non-leaf keys such as ``nuclei.Cs133.Z``)."""
        node = self._node(key)
        return node["value"] if _is_leaf(node) else node

    def unit(self, key: str) -> str:
        return self._node(key)["unit"]

    def source(self, key: str) -> str:
        return self._node(key)["source"]

    def with_overrides(self, overrides: Mapping[str, float] | None) -> "Parameters":
        if not overrides:
            return self
        tree = copy.deepcopy(self.tree)
        for key, value in overrides.items():
            v = finite_float(value, f"parameter '{key}'")
            node: Any = tree
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(node, dict) or part not in node:
                    raise InputError(f"unknown parameter '{key}'")
                node = node[part]
            if not isinstance(node, dict) or parts[-1] not in node:
                raise InputError(f"unknown parameter '{key}'")
            leaf = node[parts[-1]]
            if _is_leaf(leaf):
                leaf["value"] = v
            else:
                node[parts[-1]] = v
        return Parameters(tree, {**self.overrides, **overrides})

    def citations(self) -> list[tuple[str, float, str, str]]:
        """All leaves as (dotted key, value, unit, source), for reports."""
        out: list[tuple[str, float, str, str]] = []

        def walk(node: Any, prefix: str) -> None:
            if _is_leaf(node):
                out.append((prefix, node["value"], node.get("unit", ""), node.get("source", "")))
            elif isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{prefix}.{k}" if prefix else k)

        walk(self.tree, "")
        return out


def load_parameters(overrides: Mapping[str, float] | None = None) -> Parameters:
    """The cited default parameters, optionally with some values replaced."""
    return Parameters(copy.deepcopy(_default_tree())).with_overrides(overrides)


DEFAULT = load_parameters()
