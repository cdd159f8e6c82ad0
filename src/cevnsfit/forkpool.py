"""Jobs run in forked child processes beside the parent's own work: ``cevnsfit reproduce`` draws each model's
figure while it computes the next model.

A child is a fork of the parent as it was at :meth:`ForkPool.submit`, so a job is a closure over objects the
parent has finished computing: nothing is pickled on the way in, and the plotting modules the parent imported are
not imported again.  What a job produces it writes to files; on the way out a child reports only its exception
(pickled through a pipe), which the parent raises as its own -- an ``OSError`` keeps its errno and file name, so the
command line reports a full disk in a child as it would in the parent.  Standard library only.

Faults:

* a failed job is raised in the parent at the next :meth:`~ForkPool.submit` or at :meth:`~ForkPool.join`; a child
  killed by a signal (the out-of-memory killer, say) raises :class:`WorkerLost`;
* the parent leaving the pool by an exception (a failure, Ctrl-C, SIGTERM) kills and reaps the children still
  running before the exception goes on: nothing writes into an output folder after the parent has removed it;
* on Linux a child dies with its parent (``PR_SET_PDEATHSIG``): a SIGKILL of the parent leaves no child writing;
* a child restores the default SIGINT and SIGTERM actions (a Ctrl-C at the terminal ends it at once; the parent
  reports the interrupt) and closes the descriptors it is given (a lock held by the parent stays the parent's: a
  ``flock`` lasts while any process holds its descriptor);
* a child gives every regular file the parent has open for reading a file description of its own (reopened, at the
  same offset, onto the same descriptor number).  A forked descriptor shares its offset with the parent and the
  siblings, and libraries read lazily through theirs: matplotlib's fonts load glyphs by seek + read on the font
  file, so two children drawing at once read each other's positions (seen as FreeType's "too many hints" error, or
  silently wrong glyphs).  This needs the process's descriptor table (``/proc/self/fd``, Linux).

Where ``/proc/self/fd`` is missing (macOS, the BSDs), or with ``workers=0``, or when no process can be forked
(a PID or memory limit), each job runs in the
parent when submitted.

``warm_up=True`` runs the first job in a thread of the parent, beside the parent's own work: what it leaves in the
process's caches (matplotlib's fonts and parsed math text) every later child inherits.  While that thread runs, no
child is forked (a fork copies only the forking thread, and would copy the drawing's state half-way): the jobs
submitted meanwhile wait, and start at the first :meth:`~ForkPool.submit`, :meth:`~ForkPool.poll` or
:meth:`~ForkPool.join` after it has ended.  Its failure is raised there too.
"""

from __future__ import annotations

import fcntl
import gc
import os
import pickle
import select
import signal
import stat
import sys
import threading
from typing import Callable

__all__ = ["ForkPool", "WorkerLost"]


class WorkerLost(OSError):
    """A child process ended by a signal, not by finishing its job or raising: the environment's failure (an
    ``OSError``: the command line reports it as such, exit 1), not the input's."""


class ForkPool:
    """At most ``workers`` children at once; further jobs wait for a free slot (started at the next submit, poll
    or join, in the order submitted unless submitted ``first``).  Use as a context manager; :meth:`join` waits for every job."""

    def __init__(self, workers: int, close_fds: tuple[int, ...] = (), warm_up: bool = False):
        self.workers = int(workers) if hasattr(os, "fork") and os.path.isdir(_FD_TABLE) else 0
        self.close_fds = tuple(close_fds)
        self._running: dict[int, int] = {}  # pid -> read end of its error pipe
        self._waiting: list[Callable[[], None]] = []
        self._parent = os.getpid()
        self._warm_up = warm_up and self.workers > 0  # the next job runs in a thread here (module doc)
        self._warming: threading.Thread | None = None
        self._warm_error: BaseException | None = None

    def __enter__(self) -> "ForkPool":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.join()
        else:
            self.terminate()

    def submit(self, job: Callable[[], None], first: bool = False) -> None:
        """Run ``job()`` in a child (or here, without workers); raises a finished child's error first.  ``first``:
        ahead of the jobs still waiting (a long job submitted last would otherwise end the run alone)."""
        if self.workers <= 0:
            job()
            return
        if self._warm_up:
            self._warm_up = False
            thread = threading.Thread(target=self._warm, args=(job,), name="cevnsfit-warm-up", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (a thread limit): the warm-up runs here, now
                job()
                return
            self._warming = thread
            return
        if first:
            self._waiting.insert(0, job)
        else:
            self._waiting.append(job)
        self.poll()

    def poll(self) -> None:
        """Start the waiting jobs that have a free slot now (a child may have finished since the last submit);
        raises a finished child's error.  Call it where no other thread runs (a fork copies only this one)."""
        if self.workers > 0:
            self._reap(block=False)
            self._start()

    def join(self) -> None:
        """Wait for every job; raises the first failure (the other children are killed then)."""
        try:
            self._warmed(block=True)
            while self._running or self._waiting:
                self._start()
                if self._running:  # none when no process could be forked: _start ran the jobs here
                    self._reap(block=True)
        except BaseException:
            self.terminate()
            raise

    def terminate(self) -> None:
        """Kill and reap every child still running; forget the jobs not started; wait for the warm-up thread (a
        thread cannot be killed: it ends its job, whose failure is dropped -- another is on its way)."""
        self._waiting.clear()
        for pid, fd in list(self._running.items()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _wait(pid)
            os.close(fd)
            del self._running[pid]
        if self._warming is not None:
            self._warming.join()
            self._warming = None
            self._warm_error = None

    # ---- internals ------------------------------------------------------------------------------------------
    def _warm(self, job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - raised in the calling thread by _warmed
            self._warm_error = exc

    def _warmed(self, block: bool) -> bool:
        """True when no warm-up thread runs (waiting for it with ``block``); raises its failure."""
        if self._warming is None:
            return True
        if not block and self._warming.is_alive():
            return False
        self._warming.join()
        self._warming = None
        error, self._warm_error = self._warm_error, None
        if error is not None:
            raise error
        return True

    def _start(self) -> None:
        if not self._warmed(block=False):  # no fork while the warm-up thread runs (module doc)
            return
        while self._waiting and len(self._running) < self.workers:
            job = self._waiting.pop(0)
            read, write = os.pipe()
            # SIGINT and SIGTERM held from the fork until the child is registered (in the parent: a signal there
            # would leave a child that terminate() does not know) or has its default handlers (in the child)
            held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                pid = os.fork()
            except OSError:  # no process to be had (a PID or memory limit): this job runs here
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
                os.close(read)
                os.close(write)
                job()
                continue
            if pid == 0:  # the child: never returns into the parent's code
                _child(job, read, write, self.close_fds, self._parent, held)
            try:
                os.close(write)
                self._running[pid] = read
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _reap(self, block: bool) -> None:
        """Collect finished children; with ``block``, wait until one finishes.  Raises the first failure found."""
        statuses = {}
        if block:  # a child's pipe reaches end-of-file when it exits (or reports): wait for any of them
            poller = select.poll()
            for fd in self._running.values():
                poller.register(fd, select.POLLIN | select.POLLHUP)
            ready = {fd for fd, _ in poller.poll()}
            finished = [pid for pid, fd in self._running.items() if fd in ready]
        else:
            for pid in self._running:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    statuses[pid] = status
            finished = list(statuses)
        reports = []
        for pid in finished:  # every finished child reaped and forgotten first (its pid may be reused), then raise
            fd = self._running.pop(pid)
            try:
                report = _read_all(fd)  # before waiting: a large report must not block the child's exit
            finally:
                os.close(fd)
            reports.append((statuses[pid] if pid in statuses else _wait(pid), report))
        for status, report in reports:
            _raise_failure(status, report)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _child(job: Callable[[], None], read: int, write: int, close_fds: tuple[int, ...], parent: int, held) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # from here a Ctrl-C ends this process at once
        # fresh standard streams: a thread of the parent (a progress bar) may have held their locks at the fork
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.close(read)
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        # the inherited objects out of the collector's reach: a collection that walked them would write to every
        # one, copying the parent's whole heap page by page (measured: a figure took 1.6 s in a child, 0.9 s here)
        gc.freeze()
        _die_with(parent)
        _private_read_offsets(keep={write})
        job()
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent, nothing escapes the child
        code = 1
        try:
            payload = pickle.dumps(exc)
            pickle.loads(payload)  # an exception that cannot be rebuilt is reported by its text
        except Exception:  # noqa: BLE001
            payload = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(write, view):]
        except OSError:
            pass
    finally:
        os._exit(code)  # no atexit handlers, no flush of buffers inherited from the parent


_FD_TABLE = "/proc/self/fd"


def _private_read_offsets(keep: set[int]) -> None:
    """Reopen every regular file open read-only (but ``keep``) onto its descriptor number, at the same offset, so
    that this process's reads no longer move the offset its parent and siblings share.  Before this child reads
    anything the shared offset is the parent's: the parent forks only after its own drawing."""
    for name in os.listdir(_FD_TABLE):
        fd = int(name)
        if fd in keep:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY:
                continue
            fresh = os.open(os.readlink(f"{_FD_TABLE}/{fd}"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # gone (the listing's own descriptor), or a file deleted or replaced meanwhile
            continue
        try:
            if (os.fstat(fresh).st_dev, os.fstat(fresh).st_ino) == (st.st_dev, st.st_ino):
                os.lseek(fresh, os.lseek(fd, 0, os.SEEK_CUR), os.SEEK_SET)
                os.dup2(fresh, fd, inheritable=os.get_inheritable(fd))
        finally:
            os.close(fresh)


def _die_with(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _wait(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue


def _raise_failure(status: int, report: bytes) -> None:
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        why = " (out of memory?)" if os.WTERMSIG(status) == signal.SIGKILL else ""
        raise WorkerLost(f"a worker process was killed by {name}{why}")
    if os.waitstatus_to_exitcode(status) != 0:
        if report:
            raise pickle.loads(report)
        raise WorkerLost(f"a worker process exited with status {os.waitstatus_to_exitcode(status)}")
