"""Likelihood kinds: how an experiment's data, backgrounds and nuisances become a profiled cost (:mod:`cevnsfit.stats`).

A likelihood names its components (``"cevns"`` first, then the backgrounds) and the prior of each normalisation
nuisance as a *parameter key* (``csi2021.sigma_cevns``: value and citation from the parameter files, overridable),
None for a free normalisation; the cost's nuisance names follow the statistics package (``norm_<component>``,
``shape_<systematic>``, the morph nuisances by name).

* ``poisson`` -- :class:`~cevnsfit.stats.chi2.PoissonChi2` (CsI-2021, projections, reactors);
* ``gaussian`` -- :class:`~cevnsfit.stats.chi2.GaussianChi2` with per-bin statistical sigma and shape systematics
  (LAr-2020, Dresden-II);
* ``morphed_poisson`` -- :class:`~cevnsfit.stats.morphing.MorphedPoissonChi2`, templates on a grid of two shape
  nuisances (XENONnT).

A Poisson or Gaussian likelihood may profile one background's nonlinear parameter on a grid (:class:`GridNuisance`,
:mod:`cevnsfit.stats.gridprofile`): Dresden-II's exponential decay length.

:func:`register_likelihood` checks the contract (``cost``, ``prediction``, a docstring, a new name) at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..errors import InputError
from ..stats.chi2 import GaussianChi2, PoissonChi2
from ..stats.gridprofile import GridProfiledCost
from ..stats.morphing import MorphedPoissonChi2

__all__ = ["LIKELIHOODS", "register_likelihood", "Likelihood", "PoissonLikelihood", "GaussianLikelihood",
           "MorphedPoissonLikelihood", "GridNuisance"]

LIKELIHOODS: dict[str, type] = {}
"""The registered likelihoods of the declarations: name -> cost class (poisson, gaussian, ...)."""


def register_likelihood(name: str):
    """Class decorator registering a likelihood kind (module docstring)."""

    def decorate(cls):
        where = f"likelihood kind '{name}' ({cls.__module__}.{cls.__qualname__})"
        if name in LIKELIHOODS:
            raise ValueError(f"{where}: the name is already registered")
        missing = [m for m in ("cost", "prediction", "sigmas", "nuisances") if not hasattr(cls, m)]
        if missing or not (cls.__doc__ or "").strip():
            raise TypeError(f"{where}: needs a docstring and cost, prediction, sigmas, nuisances (missing {missing})")
        LIKELIHOODS[name] = cls
        cls.kind = name
        return cls

    return decorate


class Likelihood:
    """Components and the priors of their normalisations: ``pulls`` maps each component to a parameter key (its
    relative prior width), a tuple of keys (independent factors of the normalisation: their widths added in
    quadrature), a number, or None (free)."""

    grid = None  # a GridNuisance: one background's nonlinear parameter, profiled on a grid (stats/gridprofile.py)

    def __init__(self, components, pulls: Mapping):
        self.components = tuple(components)
        if not self.components or self.components[0] != "cevns" or len(set(self.components)) != len(self.components):
            raise InputError(f"likelihood components must start with 'cevns' and be distinct, got {self.components}")
        missing = [z for z in self.components if z not in pulls]
        if missing:
            raise InputError(f"no prior given for the normalisation of {', '.join(missing)}")
        self.pulls = dict(pulls)

    @staticmethod
    def _width(params, p):
        if isinstance(p, str):
            return params[p]
        if isinstance(p, tuple):
            return float(sum(params[k] ** 2 for k in p) ** 0.5)
        return p

    def sigmas(self, params) -> dict:
        """{component: relative prior width, or None for a free normalisation}."""
        return {z: self._width(params, self.pulls[z]) for z in self.components}

    def nuisances(self, params) -> dict:
        """{nuisance name: (prior centre, prior width or None, citation)}."""
        out = {}
        for z in self.components:
            p = self.pulls[z]
            keys = (p,) if isinstance(p, str) else p if isinstance(p, tuple) else ()
            cite = "; ".join(f"{k}: {params.source(k)}" for k in keys) if keys else "declared"
            out[f"norm_{z}"] = (0.0, self._width(params, p), cite)
        return out

    def prediction(self, experiment, signal: np.ndarray) -> dict:
        """Counts per component at the nominal nuisances: the signal template beside the backgrounds."""
        return {"cevns": signal, **{z: experiment.backgrounds[z] for z in self.components[1:]}}

    def _profiled(self, experiment, build: Callable):
        """``build(backgrounds)``, the cost of these background templates -- or, with a :attr:`grid`, the
        :class:`~cevnsfit.stats.gridprofile.GridProfiledCost` of the costs along the grid parameter."""
        bkg = {z: experiment.backgrounds[z] for z in self.components[1:]}
        g = self.grid
        if g is None:
            return build(bkg)
        return GridProfiledCost(g.parameter, g.values, lambda v: build({**bkg, g.component: g.template(v)}), g.unit)

    def _sigmas(self, experiment, free_signal: bool) -> dict:
        sig = self.sigmas(experiment.params)
        if free_signal:
            sig["cevns"] = None
        return sig


@dataclass(frozen=True)
class GridNuisance:
    """A background's nonlinear parameter profiled on a grid: ``template(value)`` is the ``component``'s template
    at that value (``unit``), ``values`` the grid."""

    parameter: str
    component: str
    values: tuple
    template: Callable
    unit: str = ""


@register_likelihood("poisson")
class PoissonLikelihood(Likelihood):
    """Poisson chi^2 of binned counts with Gaussian pulls on the normalisations (the CsI-2021 form of AC22)."""

    def cost(self, experiment, free_signal: bool = False) -> PoissonChi2:
        sig = self._sigmas(experiment, free_signal)
        return self._profiled(experiment, lambda bkg: PoissonChi2(experiment.name, experiment.observed, bkg, sig))


@register_likelihood("gaussian")
class GaussianLikelihood(Likelihood):
    """Gaussian chi^2 with a per-bin statistical sigma and shape systematics (the LAr-2020 form of AC22).

    ``stat_sigma(experiment) -> sigma`` per bin; ``shape_deltas``: {systematic: (component, relative +1 sigma
    variation, relative -1 sigma variation or None for a one-sided one)}, each with a unit Gaussian prior.
    """

    def __init__(self, components, pulls: Mapping, stat_sigma: Callable, shape_deltas: Mapping):
        super().__init__(components, pulls)
        self.stat_sigma, self.shape_deltas = stat_sigma, dict(shape_deltas)

    def nuisances(self, params) -> dict:
        out = super().nuisances(params)
        for s, (comp, _, minus) in self.shape_deltas.items():
            out[f"shape_{s}"] = (0.0, 1.0, f"the release's {'+-' if minus is not None else '+'}1 sigma {comp} template")
        return out

    def cost(self, experiment, free_signal: bool = False) -> GaussianChi2:
        sig, stat = self._sigmas(experiment, free_signal), self.stat_sigma(experiment)
        return self._profiled(experiment, lambda bkg: GaussianChi2(experiment.name, experiment.observed, bkg, sig, stat,
                                                                   self.shape_deltas))


@register_likelihood("morphed_poisson")
class MorphedPoissonLikelihood(Likelihood):
    """Extended binned Poisson chi^2 whose signal and some backgrounds are templates on a grid of two shape
    nuisances (``grid``: the two axes' nodes, ``shape_names``), morphed by cardinal splines (XENONnT)."""

    def __init__(self, components, pulls: Mapping, grid, shape_names=("x", "y")):
        super().__init__(components, pulls)
        self.grid, self.shape_names = tuple(tuple(float(v) for v in axis) for axis in grid), tuple(shape_names)
        if any(0.0 not in axis for axis in self.grid):
            raise InputError("a morphing grid must contain the nominal point 0 on both axes")

    @property
    def nominal_index(self) -> int:
        """Grid index (row-major) of the nominal shape nuisances (0, 0)."""
        x, y = self.grid
        return x.index(0.0) * len(y) + y.index(0.0)

    def nuisances(self, params) -> dict:
        out = super().nuisances(params)
        out.update({s: (0.0, 1.0, "unit Gaussian (the grid's axes are in sigma)") for s in self.shape_names})
        return out

    def prediction(self, experiment, signal: np.ndarray) -> dict:
        g = self.nominal_index
        out = {"cevns": np.asarray(signal)[g]}
        for z in self.components[1:]:
            t = np.asarray(experiment.backgrounds[z])
            out[z] = t[g] if t.ndim == 2 else t
        return out

    def cost(self, experiment, free_signal: bool = False, fixed_signal: bool = False) -> MorphedPoissonChi2:
        sig = self._sigmas(experiment, free_signal)
        if fixed_signal:
            sig["cevns"] = 0
        return MorphedPoissonChi2(experiment.name, experiment.observed, experiment.backgrounds, sig, self.grid,
                                  self.shape_names)
