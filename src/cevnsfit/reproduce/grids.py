"""The chi^2 grids of one model in the reproduction: which experiments get the full (M, g) plane, which the coarse one.

The experiments whose run options (data/datasets.yaml, ``reproduce.plane_step``) ask for the full (121 x 322) plane
are profiled on it; data sets with any other (a step of (3, 2): 41 x 162 points incl. g = 0, for a profiled chi^2
that costs ~20x a COHERENT one, benchmarks/bench_xenonnt.py) are profiled on the coarser step, with the full M = 0 and M = inf lines, so every
tabulated limit keeps the full resolution and only the contours, verdicts and figures of those data sets are
coarser.  A model's grids are held in *parts*: ``"full"`` (the full-plane experiments) and, when some experiment is
not one of them, ``"coarse"`` (every experiment on the coarse plane).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..experiments import EXPERIMENTS
from ..mediators import DATASETS, MediatorAnalysis, ModelAnalysis, analysis_axes, data_set_experiments
from ..parameters import package_yaml

RUN_OPTIONS = package_yaml("datasets.yaml")["reproduce"]  # the run's schedule per experiment (data/datasets.yaml)
PLANE_STEP = {n: tuple(RUN_OPTIONS["plane_step"].get(n, (1, 1))) for n in EXPERIMENTS}
FULL_PLANE_EXPERIMENTS = tuple(n for n, step in PLANE_STEP.items() if step == (1, 1))
COARSE_STEP = tuple(max(s) for s in zip(*PLANE_STEP.values()))  # (masses, couplings)


def parts() -> dict:
    """"full": the experiments on the full plane; "coarse": every experiment, on the coarse plane (if any other)."""
    full = tuple(n for n in data_set_experiments() if n in FULL_PLANE_EXPERIMENTS)
    out = {"full": full}
    if len(full) < len(data_set_experiments()):
        out["coarse"] = data_set_experiments()
    return out


def part_of(dataset: str) -> str:
    return "full" if set(DATASETS[dataset]) <= set(FULL_PLANE_EXPERIMENTS) else "coarse"


def comparison_part() -> str | None:
    """The plane part that holds every data set of the COHERENT-vs-XENONnT figure; None when one is not registered."""
    from ..plotting.compare import COMPARED

    if not set(COMPARED) <= set(DATASETS):
        return None
    return "coarse" if any(part_of(d) == "coarse" for d in COMPARED) else "full"


def analyse(an: MediatorAnalysis, model, masses: np.ndarray, couplings: np.ndarray) -> dict:
    """The model's grids: the full plane for FULL_PLANE_EXPERIMENTS; for the data sets with other experiments, a
    plane of every COARSE_STEP-th mass and coupling (a subset of the full one: the full-plane experiments' chi^2 is
    taken from their full grid, not recomputed) and the full M = 0 and M = inf lines."""
    split = parts()
    if "coarse" not in split:
        return {"full": an.analyse(model, masses, couplings, split["full"])}
    others = tuple(n for n in split["coarse"] if n not in split["full"])
    (m_plane, g_plane), *line_axes = analysis_axes(masses, couplings)
    im = np.arange(0, m_plane.size, COARSE_STEP[0])
    ig = np.concatenate([[0], np.arange(1, g_plane.size, COARSE_STEP[1])])  # g = 0 kept

    def coarse():
        return [an.grid(model, m_plane[im], g_plane[ig], others)] + [an.grid(model, *ax, others) for ax in line_axes]

    # the full plane (COHERENT) and the coarse grids (XENONnT) are independent: in two threads when the kernels
    # release the GIL
    if an.workers(tuple(split["full"]) + others) > 1:
        with ThreadPoolExecutor(1, thread_name_prefix="cevnsfit-coarse") as pool:
            other = pool.submit(coarse)
            full = an.analyse(model, masses, couplings, split["full"])
            plane, *lines = other.result()
    else:
        full = an.analyse(model, masses, couplings, split["full"])
        plane, *lines = coarse()
    for grid, src in zip((plane, *lines), (full.plane, full.low, full.high)):
        sub = (lambda a: a[np.ix_(im, ig)]) if grid is plane else (lambda a: a)
        grid.chi2.update({n: sub(src.chi2[n]) for n in split["full"]})
        grid.chi2_sm.update({n: src.chi2_sm[n] for n in split["full"]})
    return {"full": full, "coarse": ModelAnalysis(an, full.model, plane, *lines)}
