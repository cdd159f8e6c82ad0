"""Background shapes on a declared experiment's energy bins (``{shape: NAME, ...}`` in a declaration).

A shape is a template whose normalisation is a nuisance of the likelihood; its parameters are fixed in the
declaration.  Energies are reconstructed (keVee), integrated over each bin:

* ``constant``: flat in energy, ``rate`` events per keVee;
* ``exponential``: ``amplitude`` exp(-E / ``decay``) events per keVee;
* ``lines``: Gaussian peaks at ``energies`` with relative ``ratios`` (the first 1) and ``amplitude`` events in the
  first, each as wide as the detector's resolution there (``resolution``: a resolution model) -- the electron-capture
  lines of an activated germanium crystal, with the L/K and M/L ratios fixed.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from .readers import register_reader


def _edges(ctx, key: str):
    return ctx.energy_edges


def _column(values: np.ndarray, shape: tuple) -> np.ndarray:
    out = np.zeros(shape)
    out[:, 0] = values
    return out


@register_reader("constant")
def constant(ctx, node, key, shape):
    """``rate`` events per keVee, flat over every bin."""
    rate = ctx.value(node.get("rate"), f"{key}.rate", "events/keVee")
    edges = _edges(ctx, key)
    return _column(rate * np.diff(edges), shape)


@register_reader("exponential")
def exponential(ctx, node, key, shape):
    """``amplitude`` exp(-E/``decay``) events per keVee (E in keVee), integrated over each bin."""
    a = ctx.value(node.get("amplitude"), f"{key}.amplitude", "events/keVee")
    decay = ctx.value(node.get("decay"), f"{key}.decay", "keVee")
    if not decay > 0:
        ctx.fail(f"{key}.decay", f"must be positive, got {decay:g} keVee")
    e = _edges(ctx, key)
    return _column(a * decay * (np.exp(-e[:-1] / decay) - np.exp(-e[1:] / decay)), shape)


@register_reader("lines")
def lines(ctx, node, key, shape):
    """Gaussian lines at ``energies`` (keVee) with ``ratios`` to the first, ``amplitude`` events in the first,
    widths from ``sigma`` (keVee) or ``resolution`` (a resolution model)."""
    from .declaration import _model

    energies = np.atleast_1d(np.asarray(ctx.value(node.get("energies"), f"{key}.energies", "keVee"), float))
    ratios = np.atleast_1d(np.asarray(ctx.value(node.get("ratios", [1.0] * energies.size), f"{key}.ratios", "1"), float))
    if ratios.shape != energies.shape:
        ctx.fail(f"{key}.ratios", f"one ratio per line ({energies.size})")
    amplitude = ctx.value(node.get("amplitude", 1.0), f"{key}.amplitude", "events")
    if "sigma" in node:
        sigma = np.full(energies.shape, ctx.value(node["sigma"], f"{key}.sigma", "keVee"))
    else:
        sigma = _model(ctx, "resolution", node.get("resolution"), f"{key}.resolution").sigma_kevee(energies)
    e = _edges(ctx, key)
    z = (e[:, None] - energies[None, :]) / sigma[None, :]
    per_line = np.diff(ndtr(z), axis=0)  # (bins, lines): the share of each line in each bin
    return _column(amplitude * per_line @ ratios, shape)
