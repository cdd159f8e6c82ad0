"""The reproduction's figures: each built once and saved as PNG and PDF, by worker processes while the run computes
on, or in the run's own process.

The workers are a :class:`concurrent.futures.ProcessPoolExecutor` (:class:`cevnsfit.process.ForkedWorkers`)
forked once the experiments are loaded, before the first model's grids: a job is a small key (:class:`Job`: the
figure, the model, its cache key) and a worker reads the model's grids back from the grid cache that the run has
just written (:mod:`cevnsfit.reproduce.cache`), the experiments and the other experiments' limit curves from what
it inherited at the fork (:class:`FigureState`).  The spectra and the per-model planes are drawn by the workers;
the two figures of all models (the summary and the 12-panel comparison, the costliest) by the run's own process
once its tables are written, while the workers finish the planes.  Each figure is drawn from the same numbers
whoever draws it (the PNGs are byte-identical: tests/test_reproduce.py).

A failed figure is raised at the next :meth:`Figures.submit` or at :meth:`Figures.join`; a worker killed by a
signal raises :class:`cevnsfit.process.WorkerLost`.
"""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, wait
from dataclasses import dataclass, field
from pathlib import Path

from ..experiments import DEFAULT_DATA_SET
from ..mediators import MediatorAnalysis, data_set_experiments
from ..process import ForkedWorkers, run_reported
from . import cache
from .grids import comparison_part


@dataclass
class FigureState:
    """What every figure reads besides its job: set before the workers are forked (they inherit it)."""

    folder: Path  # where the figures go (the run's staging folder/figures)
    analysis: MediatorAnalysis
    cache_dir: Path
    gm2_epochs: tuple
    cl: str
    curves: dict  # model name -> the other experiments' limit curves
    results: dict = field(default_factory=dict)  # model name -> grid parts, as computed by this process

    def parts(self, model: str, key: str) -> dict:
        """The grid parts of ``model``: this process's own, else (in a worker) read back from the cache."""
        if model not in self.results:
            from ..physics.models import get_model

            path = self.cache_dir / f"{slug(model)}.npz"
            self.results[model] = cache.load(path, self.analysis, get_model(model), key)
            if self.results[model] is None:
                raise RuntimeError(f"the grids of {model} are missing from {self.cache_dir}")
        return self.results[model]


@dataclass(frozen=True)
class Job:
    """One figure: ``kind`` "spectra" (``name``: an experiment), "plane" (``name``: a model, with ``keys``
    ((model, cache key),) and, with FC, ``fc_row``: the CsI+LAr FC row whose asymptotes are drawn), "summary" or
    "comparison" (no name; ``keys``: every model's cache key)."""

    kind: str
    name: str
    keys: tuple = ()  # ((model, cache key), ...)
    fc_row: dict | None = None

    @property
    def stem(self) -> str:
        return {"spectra": f"spectra_{self.name}", "plane": f"plane_{slug(self.name)}", "summary": "summary_csi+lar",
                "comparison": "coherent_vs_xenonnt"}[self.kind]


def draw(state: FigureState, job: Job) -> None:
    """Build the figure of ``job`` and save it as PNG and PDF into ``state.folder``."""
    from ..plotting import compare, planes, spectra
    from ..plotting.style import plt, save

    results = {m: state.parts(m, k) for m, k in job.keys}
    if job.kind == "spectra":
        fig = spectra.experiment_figure(state.analysis.experiment(job.name))
    elif job.kind == "plane":
        overlay = None
        if job.fc_row is not None:
            from ..plotting.fc import asymptote_overlay

            overlay = asymptote_overlay(job.fc_row)
        fig = planes.plane_figure(results[job.name]["full"], gm2_epochs=state.gm2_epochs, curves=state.curves[job.name],
                                  cl=state.cl, overlay=overlay)
    elif job.kind == "summary":
        vectors = {n: p["full"] for n, p in results.items() if getattr(p["full"].model, "kind", "vector") == "vector"}
        fig = planes.summary_figure(vectors, DEFAULT_DATA_SET, state.cl)
    else:
        part = comparison_part()
        fig = compare.comparison_figure({n: p[part] for n, p in results.items()}, state.cl)
    try:
        for suffix in (".png", ".pdf"):
            save(fig, state.folder / f"{job.stem}{suffix}", close=False)
    finally:
        plt.close(fig)


_STATE: FigureState | None = None  # a worker's, set by _init_worker


def _init_worker(state: FigureState) -> None:
    global _STATE
    _STATE = state


def _draw_in_worker(job: Job) -> None:
    draw(_STATE, job)


def workers(state: FigureState, n: int, close_fds=()) -> ForkedWorkers:
    """``n`` figure workers (0: none, every figure is drawn in place), each inheriting ``state``."""
    # imported here, before the fork, so that the workers share these modules: the plotting and the compiled
    # kernels (a figure's contours refine the line minima with them; numba's import is ~0.4 s per process)
    from ..plotting import compare, planes, spectra, style  # noqa: F401
    from ..stats import compiled

    compiled.load()
    return ForkedWorkers(n, initializer=_init_worker, initargs=(state,), close_fds=close_fds)


class Figures:
    """The run's figures: :meth:`submit` hands a figure to the workers (or draws it here when there are none);
    :meth:`draw_here` draws one in this process.  :meth:`paths` lists them in the report's order -- the planes in
    model order, the summaries, the spectra -- whatever order they were drawn in."""

    def __init__(self, state: FigureState, pool: ForkedWorkers):
        self.state, self.pool = state, pool
        self._futures: list = []
        self._stems: dict[str, list[str]] = {"plane": [], "summary": [], "spectra": []}

    def _note(self, job: Job) -> None:
        self._stems["summary" if job.kind == "comparison" else job.kind].append(job.stem)

    def submit(self, job: Job) -> None:
        """Draw ``job`` in a worker (here, without workers); raises a finished job's failure first."""
        self._note(job)
        if self.pool.executor is None:
            draw(self.state, job)
            return
        self._raise_failures()
        self._futures.append(self.pool.executor.submit(run_reported, _draw_in_worker, job))

    def alongside(self, fn, *args) -> None:
        """Run ``fn(*args)`` on a worker beside the figures (here, without workers), joined and checked with them:
        other output of the run that does not need this process (the HEPData tables)."""
        if self.pool.executor is None:
            fn(*args)
            return
        self._raise_failures()
        self._futures.append(self.pool.executor.submit(run_reported, fn, *args))

    def draw_here(self, job: Job) -> None:
        self._note(job)
        draw(self.state, job)

    def spectra(self) -> None:
        for name in data_set_experiments():
            self.submit(Job("spectra", name))

    def plane(self, model: str, key: str, fc_row: dict | None = None) -> None:
        self.submit(Job("plane", model, ((model, key),), fc_row))

    def summaries(self, keys: dict, models) -> None:
        """The figures of all models, drawn here (the run has nothing else left to do) while the workers finish."""
        keys = tuple(keys.items())
        if any(getattr(m, "kind", "vector") == "vector" for m in models):
            self.draw_here(Job("summary", "", keys))
        if comparison_part() is not None:
            self.draw_here(Job("comparison", "", keys))

    def join(self) -> None:
        """Wait for every figure; raises the first failure."""
        if self._futures:
            wait(self._futures, return_when=FIRST_EXCEPTION)
        self._raise_failures()

    def _raise_failures(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                self.pool.result(future)  # raises it (a lost worker as WorkerLost)

    def paths(self) -> list[str]:
        stems = self._stems["plane"] + self._stems["summary"] + self._stems["spectra"]
        return [str(self.state.folder / f"{stem}{suffix}") for stem in stems for suffix in (".png", ".pdf")]


def slug(name: str) -> str:
    return name.replace("+", "p").replace("/", "_")
