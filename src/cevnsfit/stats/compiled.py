"""The compiled kernels (numba) of the profiles, and their first-run compilation.

Every profile of :class:`~cevnsfit.stats.poisson.PoissonChi2`, :class:`~cevnsfit.stats.gaussian.GaussianChi2` and
:class:`~cevnsfit.stats.morphing.MorphedPoissonChi2` -- one template, a batch, replicated data sets -- runs in the
kernels of :mod:`cevnsfit.stats.kernels` (``poisson``, ``gaussian``, ``morph``; shared pieces in ``common``): the
cost classes pack what their kernel needs once, at construction, and call it themselves.  The kernels run the
mathematics row by row in compiled code (the reasons per kernel are in their docstrings); tests/reference_costs.py
keeps the former numpy profiles as independent references, and tests/test_compiled.py compares the two.

numba is imported on the first profile, not with the package: a command that fits nothing does not pay its
~0.5 s import.  Compiled functions are cached on disk (numba ``cache=True``: ``__pycache__`` beside the kernels,
or ``$NUMBA_CACHE_DIR``), so only the first run after an install compiles them (~30 s on 2 cores):
:func:`kernels_cached` tells whether that cache is there, :func:`load` fills or reads it, telling a caller's
``progress`` once when it has to compile.  It is thread-safe: threads that ask for a kernel while another loads
them wait for it (``cevnsfit limits`` loads them in its grid threads, beside the experiments' templates).

Timings (``python benchmarks/bench_profiles.py``, before and after in one run: before = the code whose costs
profiled batches below 64 rows in numpy unless an analysis set them to the kernels; after = every profile in the
kernels; 2-core Intel Xeon shared with other jobs, load average 2.7; best of 5):

========================================================  ========  ========
us per call (single points) or per row (1000-row batches)    before     after
csi single point, ``experiment.cost()`` (``sm``, ``fit``)      501.5      21.4
csi single point, ``MediatorAnalysis.cost``                     27.1      21.4
xenonnt single point, ``experiment.cost()``                   1169.2      79.6
xenonnt single point, ``MediatorAnalysis.cost``                 82.3      84.8
csi 1000-row batch (B-L at M = 0, g = 1e-6 .. 1e-3)              2.7       2.7
lar 1000-row batch                                               2.8       2.7
xenonnt 1000-row batch                                         122.1     101.5
========================================================  ========  ========

First run after an install (empty numba cache): ``load()`` compiles every kernel in 27 s; then
``kernels_cached()`` takes 0.36 s (numba's import) and ``load()`` 0.55 s in a fresh process.
"""

from __future__ import annotations

import importlib
import threading
from typing import Callable

__all__ = ["KERNELS", "PROGRESS_MESSAGE", "kernels_cached", "load", "Kernels", "announce_with"]

# the kernels' entry points, per module of cevnsfit.stats.kernels: what the costs call
KERNELS = {"poisson": ("poisson_profile", "poisson_grid"), "gaussian": ("gaussian_profile", "gaussian_grid"),
           "morph": ("morphed_profile", "morphed_point")}
"""The compiled kernels' entry points, per module of :mod:`cevnsfit.stats.kernels` (what the costs call)."""
PROGRESS_MESSAGE = "compiling the likelihood kernels (first run, ~30 s)..."
"""The line the command line prints on stderr while a first run compiles the kernels."""


def _dispatchers() -> list:
    return [getattr(importlib.import_module(f"{__package__}.kernels.{mod}"), name)
            for mod, names in KERNELS.items() for name in names]


def _cached(dispatcher) -> bool:
    """True when numba's on-disk cache holds machine code of ``dispatcher`` for this numba version, source file
    and CPU.  Reads numba's cache index (``Dispatcher._cache``; not a public API): anything unexpected there
    counts as not cached, so that :func:`load` at worst announces a compilation that turns out to be a load."""
    try:
        cache = dispatcher._cache
        index = cache._cache_file._load_index()  # {} when absent, stale (source changed) or of another numba
        magic = dispatcher.targetctx.codegen().magic_tuple()  # the CPU and its features
        return any(key[1] == magic for key in index)
    except Exception:  # noqa: BLE001 -- numba internals moved: report "not cached"
        return False


def kernels_cached() -> bool:
    """True when every kernel's machine code is in numba's on-disk cache for this machine (so :func:`load` and
    the first profile take ~0.5 s, not a compilation).  Imports numba (~0.5 s), compiles nothing."""
    return all(_cached(d) for d in _dispatchers())


def load(progress: Callable[[str], None] | None = None) -> bool:
    """Make every kernel ready now -- from numba's cache, or compiled (and cached) when :func:`kernels_cached` is
    False, after calling ``progress(PROGRESS_MESSAGE)`` once (default: the callback of :func:`announce_with`) --
    e.g. before a command's work starts or before threads call the kernels.  Returns True when it compiled.  The
    costs call it before their first profile (:class:`Kernels`), so a first run always announces itself.

    Readiness is per argument types: each kernel is called once on a tiny problem through the cost classes, with
    the types that the costs always pass (C-contiguous float64/int64/bool arrays), so that later calls find it.
    Once done in a process, a call returns False at once (the machine code is in memory: nothing to check)."""
    global _READY, _LOADING
    if _READY:
        return False
    with _LOCK:  # threads that need the kernels while one loads them wait for it
        if _READY or _LOADING:  # _LOADING: the warm-up's own costs call back here (the lock is re-entrant)
            return False
        _LOADING = True
        try:
            cached = kernels_cached()
            report = progress or _ANNOUNCE
            if not cached and report is not None:
                report(PROGRESS_MESSAGE)
            _warm_up()
            _READY = True
        finally:
            _LOADING = False
    return not cached


def announce_with(callback: Callable[[str], None] | None) -> None:
    """The callback :func:`load` tells when it has to compile and no ``progress`` is given (the CLI: one line on
    standard error)."""
    global _ANNOUNCE
    _ANNOUNCE = callback


class Kernels:
    """The kernel module ``name`` of :data:`KERNELS` (``cevnsfit.stats.kernels.<name>``), imported and every kernel
    made ready (:func:`load`) on the first attribute asked for: what a cost calls its kernels through."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attr: str):
        load()
        value = getattr(importlib.import_module(f"{__package__}.kernels.{self.name}"), attr)
        if _READY:  # kept: later calls skip this method (~4 us a call; the cost of a small profile)
            setattr(self, attr, value)
        return value


_READY = False  # load() has run in this process
_LOADING = False  # load() is running (its warm-up builds costs, which call load() again)
_LOCK = threading.RLock()  # one load() at a time; the loading thread re-enters it from its warm-up
_ANNOUNCE: Callable[[str], None] | None = None


def _warm_up() -> None:
    """Call every kernel entry point once, through the costs (single points, batches, replicas, grids)."""
    import numpy as np

    from .gaussian import GaussianChi2
    from .morphing import MorphedPoissonChi2
    from .poisson import PoissonChi2

    obs = np.array([[4.0, 0.0], [3.0, 2.0]])
    bkg = np.array([[1.0, 0.5], [0.5, 1.0]])
    sig = np.array([[2.0, 1.0], [1.0, 0.5]])
    two = np.stack([sig, 2.0 * sig])
    d = np.array([[3.0, 1.0, 2.0, 2.0]])
    costs = [PoissonChi2("p", obs, {"b": bkg}, {"cevns": 0.1, "b": 0.2}),
             GaussianChi2("g", obs, {"b": bkg}, {"cevns": 0.1, "b": 0.2}, np.full((2, 2), 1.5),
                          {"s": ("b", np.full((2, 2), 0.1), np.full((2, 2), 0.2))})]
    for cost in costs:
        cost(sig)
        cost.replicas(two, np.repeat(d, 2, axis=0))
        cost.replicas_grid(two, d)
    nodes = np.array([-1.5, -0.5, 0.5, 1.5])
    grid_sig = np.repeat(np.array([[2.0, 1.0, 0.5]]), 16, axis=0)
    morphed = MorphedPoissonChi2("m", np.array([3.0, 0.0, 1.0]), {"b": np.array([1.0, 0.5, 0.5])},
                                 {"cevns": 0.1, "b": 0.2}, (nodes, nodes))
    morphed(grid_sig)
    morphed.profile_linear(np.ones((1, 1)), grid_sig[None])
    morphed.replicas(grid_sig[None], np.array([[2.0, 1.0, 0.0]]))
    morphed.derivatives(grid_sig, np.array([1.0, 1.0, 0.0, 0.0]))
