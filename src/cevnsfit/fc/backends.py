"""Where the toy tasks of an FC run are computed: here, one after the other (``serial``), or on Dask (``dask``: a
local cluster of single-threaded worker processes, or a running scheduler).  Both give the same numbers bit for
bit: a task's numbers depend on its spec alone (:func:`cevnsfit.fc.construction.run_task`).
"""

from __future__ import annotations

from ..errors import InputError
from ..process import usable_cores
from .construction import run_task

BACKENDS = ("dask", "serial")
"""Where the toys run: ``dask`` (a local cluster, or ``--scheduler``) or ``serial``."""


def serial(tasks, on_result):
    """Run every task here; ``on_result(spec, point, block, t)`` as each finishes."""
    for spec, point, block, n in tasks:
        on_result(spec, point, block, run_task(spec, point, block, n))


class DaskSession:
    """One Dask client for one or several :func:`~cevnsfit.fc.run_fc` calls (``cevnsfit reproduce --fc``: every model), started
    by the first call that has toys to run, so a run whose toys are all stored starts no cluster.

    ``scheduler``: address of a running scheduler (tcp://HOST:PORT), else a local cluster of ``workers``
    single-threaded processes (default one per core).  ``close()`` (or leaving a ``with`` block) closes the
    client and the local cluster."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        self.scheduler, self.workers = scheduler, workers
        self._client = self._cluster = None
        self.started = 0  # clusters (or connections) made: at most one

    def client(self):
        if self._client is None:
            self._client, self._cluster = _connect(self.scheduler, self.workers)
            self.started += 1
        return self._client

    def close(self) -> None:
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(scheduler: str | None, workers: int | None):
    """(client, local cluster or None)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a dependency
        raise InputError("the dask backend needs dask.distributed: pip install 'dask[distributed]'") from None
    if scheduler:
        try:
            return Client(scheduler), None  # waits distributed.comm.timeouts.connect (Dask configuration)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    n = workers or usable_cores()
    # one single-threaded process per core: the toy fits are numpy-bound and hold the GIL
    # no dashboard; the scheduler still serves HTTP (health checks) and would take port 8787, warning on stderr
    # ("Port 8787 is already in use") when another cluster has it -- a free port instead: stderr carries at most
    # the one line `error: ...` (README, "Faults")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def dask(tasks, on_result, client):
    """Run every task on the Dask ``client``; ``on_result`` as each finishes (in the order they finish)."""
    from dask.distributed import as_completed

    futures = {client.submit(run_task, spec, p, b, n, pure=False): (spec, p, b) for spec, p, b, n in tasks}
    for fut in as_completed(futures):
        spec, p, b = futures[fut]
        on_result(spec, p, b, fut.result())


