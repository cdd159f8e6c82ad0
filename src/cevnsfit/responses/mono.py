"""Mono-energetic recoil templates: the ``mono_templates`` energy response (XENONnT's release).

A release may give, instead of a quenching and resolution model, the detection efficiency of mono-energetic nuclear
recoils at nodes E_j (XENONnT: 0.5, 0.6, ..., 5.0 keV) for every analysis bin -- and, where the response has shape
nuisances, at every point of their grid.  Any recoil spectrum is then folded through the efficiencies
*linearly interpolated between the nodes* (hat functions), zero below the first node and above the last (no template
there: the analysis threshold, conservatively, and the end of the release).

The folding is one matrix per nucleus: rows (``rows``: grid point x run x bin, each times its exposure) x the recoil
grid, kept factorised as rows @ hats @ diag(weights) (:class:`FoldedMatrix`), so that an 11 907-row response costs a
46-node product in the rate engine and the mediator templates.  The recoil grid is on multiples of ``step_kev`` so
that every node is a grid point.  Units: recoils in MeV (keV in the names that say so).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..physics.cross_section import max_recoil_mev
from . import register_response


class FoldedMatrix:
    """Matrix ``left @ right @ diag(d)`` kept factorised (rows x nodes, nodes x recoils): what the kernel needs.

    ``M * v`` scales the columns (the rate engine multiplies the detector response by cross-section factors on the
    recoil grid); ``M @ x`` is evaluated right to left, so a many-row response costs a node-sized product.
    """

    def __init__(self, left: np.ndarray, right: np.ndarray, diag: np.ndarray | None = None):
        self.left, self.right = left, right
        self.diag = np.ones(right.shape[1]) if diag is None else np.asarray(diag, float)

    @property
    def shape(self) -> tuple[int, int]:
        return self.left.shape[0], self.right.shape[1]

    def __mul__(self, v):
        v = np.asarray(v, dtype=float)
        if v.ndim > 1:
            raise InputError("a folded response can only be scaled per recoil column")
        return FoldedMatrix(self.left, self.right, self.diag * v)

    __rmul__ = __mul__

    def __matmul__(self, x):
        return self.left @ self.right_product(x)

    def right_product(self, x) -> np.ndarray:
        """``right @ diag(d) @ x``: the product without its left factor (rows = the nodes)."""
        x = np.asarray(x, dtype=float)
        return self.right @ (self.diag * x if x.ndim == 1 else self.diag[:, None] * x)

    def toarray(self) -> np.ndarray:
        return (self.left @ self.right) * self.diag


def hat_weights(recoil_kev: np.ndarray, nodes_kev) -> np.ndarray:
    """(n_nodes, n_recoil) linear-interpolation weights of the efficiency nodes; zero outside [first, last] node."""
    nodes = np.asarray(nodes_kev, dtype=float)
    t = np.asarray(recoil_kev, dtype=float)
    out = np.zeros((nodes.size, t.size))
    inside = (t >= nodes[0] - 1e-9) & (t <= nodes[-1] + 1e-9)
    ti = np.clip(t[inside], nodes[0], nodes[-1])
    k = np.clip(np.searchsorted(nodes, ti, side="right") - 1, 0, nodes.size - 2)
    frac = (ti - nodes[k]) / (nodes[k + 1] - nodes[k])
    cols = np.flatnonzero(inside)
    out[k, cols] = 1.0 - frac
    out[k + 1, cols] += frac
    return out


@register_response("energy", "mono_templates", units={"nodes": "keV", "rows": "events per recoil"})
class MonoTemplateResponse:
    """Efficiencies of mono-energetic recoils at ``nodes`` (keV), one row per analysis row (module docstring)."""

    unit = "bin"
    label = "bin"

    def __init__(self, rows, nodes):
        self.rows = np.ascontiguousarray(rows, dtype=float)
        self.nodes = np.asarray(nodes, dtype=float)
        if self.rows.ndim != 2 or self.rows.shape[1] != self.nodes.size or np.any(np.diff(self.nodes) <= 0):
            raise InputError("mono templates need a (rows, nodes) efficiency matrix and increasing nodes")
        self.edges = np.arange(self.rows.shape[0] + 1, dtype=float)

    def recoil_grid(self, nucleus, e_max_mev: float, lines_mev=(), step_kev: float = 0.01):
        """Recoil nodes at multiples of ``step_kev`` (so that the template nodes are grid points) up to the end
        point, MeV, and their trapezoid weights."""
        t_max_kev = float(max_recoil_mev(e_max_mev, nucleus.mass_mev)) * 1e3
        n = int(np.ceil(t_max_kev / step_kev - 1e-9)) + 1
        t = np.arange(n) * step_kev * 1e-3
        w = np.full(t.size, t[1] - t[0])
        w[0] = w[-1] = 0.5 * (t[1] - t[0])
        return t, w

    def weighted_matrix(self, nucleus, recoil_mev, weights) -> FoldedMatrix:
        return FoldedMatrix(self.rows, hat_weights(np.asarray(recoil_mev) * 1e3, self.nodes) * np.asarray(weights)[None, :])
