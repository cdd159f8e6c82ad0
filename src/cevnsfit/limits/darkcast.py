"""Reader for DarkCast ``.lmt`` limit files.

DarkCast (P. Ilten, Y. Soreq, M. Williams, W. Xue, JHEP 06 (2018) 004, arXiv:1801.04847; C. Baruch et al.,
arXiv:2206.08563; v2.1 as copied to ``shared/data/limits/DS-Decay-Scripts/darkcast``, see PROVENANCE.md there)
stores every limit as whitespace-separated text with the header ``#  mass  lower [upper]``:

* mass in GeV (converted to MeV here);
* ``lower``: lower edge of the excluded coupling; ``upper`` (two-sided limits, e.g. beam dumps): upper edge;
* ``1.0000e+05`` (any value >= :data:`~cevnsfit.limits.curves.OFF_SCALE`) is a sentinel: in ``lower`` it means
  "no limit at this mass" (the curve has a gap there: J/psi vetoes, disjoint mass windows), in ``upper`` that the
  excluded band runs off scale (stored as ``inf``);
* a file with only the header means that the limit cannot constrain the model (returned as ``None``).

The coupling is DarkCast's "global coupling" g multiplying the model charges x_f: for ``dark_photon`` x_f = e Q_f,
so the number is the kinetic mixing epsilon; for ``B-L_boson``, ``Lmu-Ltau_boson``, ``Le-Lmu_boson``,
``Le-Ltau_boson`` and ``B_boson`` the charges are plain numbers and the number is the gauge coupling g.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io.validate import require_non_negative
from .curves import OFF_SCALE, LimitCurve, join_segments

GEV_TO_MEV = 1e3
_HEADERS = (["mass", "lower"], ["mass", "lower", "upper"])
# Native (un-recast) DarkCast limits are set in the dark-photon model, except the nu-e scattering limits that
# DarkCast digitised from Bauer, Foldenauer, Jaeckel, arXiv:1803.05466, which are set in B-L (PROVENANCE.md).
_NATIVE_B_L_SUFFIX = "_Bauer2018onh"


def _read_rows(path: Path) -> tuple[int, np.ndarray]:
    """(number of columns, rows) of a DarkCast table; raises DataError naming the file when it is malformed."""
    if not path.is_file():
        raise DataError(f"missing limit file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text file") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    ncols, rows, lines = None, [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        body, _, comment = line.partition("#")
        if not body.strip():
            names = comment.split()
            if names[:1] == ["mass"]:  # the column header; other comment lines are ignored
                if names not in _HEADERS or rows:
                    raise DataError(f"{path}: line {lineno}: header '#{comment.strip()}' is not 'mass lower [upper]'")
                ncols = len(names)
            continue
        parts = body.split()
        if ncols is None:  # no header: the first data row fixes the layout
            ncols = len(parts)
            if ncols not in (2, 3):
                raise DataError(f"{path}: line {lineno} has {ncols} columns, expected 2 or 3")
        if len(parts) != ncols:
            raise DataError(f"{path}: line {lineno} has {len(parts)} columns, expected {ncols}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise DataError(f"{path}: line {lineno}: non-numeric entry") from None
        lines.append(lineno)
    table = np.array(rows, dtype=float).reshape(-1, ncols or 2)
    with np.errstate(invalid="ignore"):  # NaN rows are gaps (allowed); a negative mass or coupling is damage
        require_non_negative(path, np.fmin(table[:, 0], table[:, 1:].min(axis=1, initial=np.inf)), np.array(lines), "mass or coupling")
    return ncols or 2, table


def default_label(stem: str) -> str:
    """Legend label from a DarkCast file name: ``BaBar_Lees2014xha`` -> ``BaBar (2014)``,
    ``KLOE_Anastasi2018azp_mumu`` -> ``KLOE (2018, mumu)``."""
    m = re.match(r"^([^_]+)_\D*?(\d{4})[a-z]*(?:_(.+))?$", stem)
    if not m:
        return stem.replace("_", " ")
    exp, year, extra = m.groups()
    return f"{exp} ({year}{', ' + extra if extra else ''})"


def model_of(path: Path) -> str:
    """DarkCast model of a file: the folder name under ``recast/limits/``, else the model of the native limit."""
    if path.parent.parent.name == "limits" and path.parent.parent.parent.name == "recast":
        return path.parent.name
    return "B-L_boson" if path.stem.endswith(_NATIVE_B_L_SUFFIX) else "dark_photon"


def read_lmt(
    path: str | os.PathLike,
    *,
    label: str | None = None,
    reference: str = "",
    kind: str = "bound",
    model: str | None = None,
    coupling: str | None = None,
    cl: str = "as published (mostly 90% CL)",
    notes: str = "",
) -> LimitCurve | None:
    """Read one ``.lmt`` file into a :class:`LimitCurve` (masses in MeV), or ``None`` if it holds no limit.

    Segments are split at sentinel/NaN rows and wherever the mass decreases (a few digitised curves step back),
    so a line plot never joins disjoint pieces.  ``model`` defaults to :func:`model_of`, ``coupling`` to
    ``"epsilon"`` for dark_photon and ``"g"`` otherwise, ``label`` to :func:`default_label`.
    """
    path = Path(path)
    ncols, table = _read_rows(path)
    mass = table[:, 0] * GEV_TO_MEV
    lower = table[:, 1]
    upper = table[:, 2] if ncols == 3 else None
    gap = np.isnan(mass) | ~(lower < OFF_SCALE)  # NaN or off-scale lower edge: no limit at this mass
    if upper is not None:
        gap |= np.isnan(upper)
        upper = np.where(upper >= OFF_SCALE, np.inf, upper)
    keep = np.flatnonzero(~gap)
    if keep.size == 0:
        return None
    breaks = (np.diff(keep) > 1) | (np.diff(mass[keep]) < 0)
    groups = np.split(keep, np.flatnonzero(breaks) + 1)
    cols = (mass, lower) if upper is None else (mass, lower, upper)
    joined = join_segments([tuple(c[g] for c in cols) for g in groups])
    model = model or model_of(path)
    return LimitCurve(
        label=label or default_label(path.stem),
        reference=reference,
        mass_mev=joined[0],
        lower=joined[1],
        upper=joined[2] if upper is not None else None,
        kind=kind,
        source_file=str(path),
        model=model,
        coupling=coupling or ("epsilon" if model == "dark_photon" else "g"),
        cl=cl,
        notes=notes,
    )
