"""Shared matplotlib set-up: non-interactive backend, a clean publication style, atomic saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..errors import InputError  # noqa: E402
from ..io.atomic import atomic_path  # noqa: E402

STYLE = {
    "font.size": 10,
    "axes.labelsize": 11,
    "axes.titlesize": 11,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "figure.dpi": 150,
    "savefig.bbox": "tight",
}
FORMATS = (".png", ".pdf", ".svg")
# other experiments' limits: grey fill, outline and label text
OTHER_FACE, OTHER_EDGE, OTHER_TEXT = "0.85", "0.62", "0.25"


def save(fig, out: str | Path, close: bool = True) -> Path:
    """Save atomically; the suffix decides the format (png, pdf or svg).  ``close=False`` keeps the figure open
    (to save it again in another format: building it once is most of the cost)."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"cannot write a figure as '{out.suffix or out.name}': use one of {', '.join(FORMATS)}")
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=out.suffix.lower()[1:])
    finally:
        if close:
            plt.close(fig)
    return out


def dataset_style(name: str) -> tuple:
    """(colour, fill alpha, line width, legend) of a data set: its ``plot`` section of data/datasets.yaml, else
    black lines (a declaration or a combination registered at run time)."""
    from ..experiments import DATA_SETS

    spec = DATA_SETS.get(name)
    if spec is None:
        return ("k", 0.1, 1.0, name)
    p = spec.plot
    return (p.get("colour", "k"), p.get("fill_alpha", 0.1), p.get("line_width", 1.0), spec.legend)
