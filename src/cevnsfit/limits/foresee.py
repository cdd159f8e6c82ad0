"""Reader for the plotting lines of FORESEE (F. Kling, S. Trojanowski, arXiv:2105.07077;
``shared/data/limits/FORESEE/Models/<model>/model/lines/*.txt``, see PROVENANCE.md there).

Each file has two whitespace-separated columns, mass in GeV and coupling (epsilon for DarkPhoton, g_{B-L} for
U1B-L, g_B for U1B), sometimes after a DarkCast-style ``#`` header.  Two shapes occur:

* open lines, monotonic in mass: the lower edge of an excluded region, often closed by vertical edges up to a
  large value (1, 10, or off-scale sentinels 1e4-1e7; one BaBar line also has 1e5 gaps inside).  Off-scale rows
  split the line, and a closing vertical edge at either end of a piece is dropped (it is redrawn at the plot's top
  by :meth:`LimitCurve.polygons`);
* closed outlines that double back in mass (beam dumps, most projections): kept in drawing order with
  ``outline=True``; off-scale couplings become ``inf`` (clipped by ``polygons``).

File prefixes: ``bounds_`` existing limits, ``limits_`` projections, ``anomaly_`` theory (anomaly) bounds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.datadir import read_table
from ..io.validate import require_non_negative
from .curves import OFF_SCALE, LimitCurve, join_segments

GEV_TO_MEV = 1e3


def _read_rows(path: Path) -> np.ndarray:
    """(mass GeV, coupling) rows; the shared table reader names the file on any format error."""
    table, lines = read_table(path, ncols=2, min_rows=0, with_lines=True)
    require_non_negative(path, table.min(axis=1), lines, "mass or coupling")
    return table


def _trim_closing_edges(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Indices of a piece without a vertical closing edge (same mass, larger coupling) at either end."""
    idx = np.arange(len(m))
    if len(idx) > 2 and m[0] == m[1] and c[0] > c[1]:
        idx = idx[1:]
    if len(idx) > 2 and m[-1] == m[-2] and c[-1] > c[-2]:
        idx = idx[:-1]
    return idx


def read_foresee(
    path: str | os.PathLike,
    *,
    label: str | None = None,
    reference: str = "FORESEE line, arXiv:2105.07077",
    kind: str | None = None,
    model: str | None = None,
    coupling: str | None = None,
    cl: str = "as published (mostly 90% CL)",
    notes: str = "",
) -> LimitCurve | None:
    """Read one FORESEE line into a :class:`LimitCurve` (masses in MeV), or ``None`` if it has no finite point.

    Defaults: ``kind`` "projection" for ``limits_*`` files, else "bound"; ``model`` the FORESEE model folder
    (``U1B-L``, ``DarkPhoton``, ``U1B``); ``coupling`` "epsilon" for DarkPhoton, else "g"; ``label`` the file
    name without its prefix.
    """
    path = Path(path)
    table = _read_rows(path)
    mass, coup = table[:, 0] * GEV_TO_MEV, table[:, 1]
    nan = np.isnan(mass) | np.isnan(coup)
    real = ~nan & (coup < OFF_SCALE)
    if not real.any():
        return None
    outline = bool(np.any(np.diff(mass[real]) < 0))
    # Outlines break only at NaN rows (their off-scale vertices are part of the shape); lines also at sentinels.
    keep = np.flatnonzero(~nan if outline else real)
    groups = np.split(keep, np.flatnonzero(np.diff(keep) > 1) + 1)
    pieces = []
    for g in groups:
        if not outline:
            g = g[_trim_closing_edges(mass[g], coup[g])]
        pieces.append((mass[g], np.where(coup[g] >= OFF_SCALE, np.inf, coup[g])))
    m, c = join_segments(pieces)

    stem = path.stem
    model = model or (path.parents[2].name if path.parent.parent.name == "model" else "")
    return LimitCurve(
        label=label or stem.split("_", 1)[-1].replace("_", " "),
        reference=reference,
        mass_mev=m,
        lower=c,
        kind=kind or ("projection" if stem.startswith("limits_") else "bound"),
        source_file=str(path),
        model=model,
        coupling=coupling or ("epsilon" if model == "DarkPhoton" else "g"),
        outline=outline,
        cl=cl,
        notes=notes,
    )
