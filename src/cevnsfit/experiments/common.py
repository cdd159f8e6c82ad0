"""Pieces shared by the experiment modules: recoil grids, event binning, per-bin relative shape deltas."""

from __future__ import annotations

import numpy as np

from ..physics.cross_section import max_recoil_mev


def recoil_grid(mass_mev: float, max_neutrino_energy_mev: float, step_kev: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform recoil grid from 0 to the kinematic end point, and its trapezoid weights (both in MeV)."""
    t_max = float(max_recoil_mev(max_neutrino_energy_mev, mass_mev))
    n = int(np.ceil(t_max / (step_kev * 1e-3))) + 1
    t = np.linspace(0.0, t_max, n)
    w = np.full(n, t[1] - t[0])
    w[0] = w[-1] = 0.5 * (t[1] - t[0])
    return t, w


def bin_events(x: np.ndarray, y: np.ndarray, x_edges, y_edges) -> np.ndarray:
    """2-D histogram with left-closed bins [e_k, e_k+1) on both axes (events outside are dropped)."""
    x_edges, y_edges = np.asarray(x_edges, float), np.asarray(y_edges, float)
    ix = np.searchsorted(x_edges, x, side="right") - 1
    iy = np.searchsorted(y_edges, y, side="right") - 1
    ok = (ix >= 0) & (ix < x_edges.size - 1) & (iy >= 0) & (iy < y_edges.size - 1)
    out = np.zeros((x_edges.size - 1, y_edges.size - 1))
    np.add.at(out, (ix[ok], iy[ok]), 1.0)
    return out


def relative_delta(varied: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """(varied - nominal) / nominal per bin, 0 where the nominal template is empty."""
    safe = np.where(nominal != 0, nominal, 1.0)
    return np.where(nominal != 0, (varied - nominal) / safe, 0.0)
