"""What the command-line process does with signals and with a standard output it cannot write.

Standard library only: :mod:`cevnsfit.entry` installs this before the heavy imports (numpy, typer), so that a
Ctrl-C during start-up is handled like one later on.

* SIGINT (Ctrl-C) and SIGTERM raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so every
  ``with``/``finally`` unwinds: temporary files are removed (:func:`cevnsfit.io.atomic.atomic_path`), locks are
  released.  A second signal while unwinding is ignored, so that a repeated Ctrl-C cannot cut the clean-up short.
* :class:`GuardedStdout` replaces ``sys.stdout``: a failed write raises :class:`StdoutError` instead of
  ``OSError``, which typer would swallow (closed pipe) or report with a traceback (full disk).
"""

from __future__ import annotations

import errno
import os
import signal
import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's code for a Ctrl-C; used for SIGTERM too (one "interrupted" code)
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what `yes | head` reports for `yes`
EXIT_OUTPUT_FAILED = 1  # standard output could not be written (full disk, closed descriptor): not an input error

_received: int | None = None


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum, frame) -> None:
    global _received
    if _received is not None:  # already unwinding after the first signal: let the clean-up finish
        return
    _received = signum
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM -> :class:`Interrupted` (main thread only; a no-op elsewhere)."""
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _handler)
    except ValueError:  # not the main thread of the main interpreter
        pass


def received_signal() -> int | None:
    """The signal number that interrupted the process, or None."""
    return _received


def check_interrupted() -> None:
    """Raise :class:`Interrupted` again if a signal has arrived.

    The handler raises once, wherever the main thread happens to be; a library that catches every exception (a
    bare ``except:`` around an optional import, say) can swallow it and let the run go on.  Points that commit
    something (renaming a finished file into place) or that mark progress call this, so that a swallowed
    interrupt still stops the run before any output becomes visible.
    """
    if _received is not None:
        raise Interrupted(_received)


def interrupted_message(signum: int | None) -> str:
    name = signal.Signals(signum).name if signum else "SIGINT"
    return f"error: interrupted ({name})"


class StdoutError(Exception):
    """Standard output cannot be written (``errno`` from the failed write)."""

    def __init__(self, err: OSError | None):
        self.errno = getattr(err, "errno", None)
        reason = (err.strerror or str(err)) if err is not None else "it is closed"
        super().__init__(f"cannot write to standard output: {reason}")

    @property
    def broken_pipe(self) -> bool:
        return self.errno == errno.EPIPE


class GuardedStdout:
    """A text stream in front of the real ``sys.stdout``: OSError on write or flush becomes :class:`StdoutError`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise StdoutError(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise StdoutError(exc) from None

    def __getattr__(self, name):  # encoding, isatty, fileno, ... of the real stream
        return getattr(self._stream, name)


def stdout_is_closed() -> bool:
    """True when the process started with descriptor 1 closed (``cmd >&-``): Python then sets sys.stdout to None."""
    if sys.stdout is None:
        return True
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return False  # an in-memory stream (a test's capture, a notebook): nothing to check at the descriptor level
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def discard_stdout() -> None:
    """Point descriptor 1 at /dev/null and drop buffered output, so that the interpreter's final flush of a broken
    or full stdout neither fails again nor prints 'Exception ignored ...'."""
    real = sys.stdout._stream if isinstance(sys.stdout, GuardedStdout) else sys.stdout
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, real.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass
    sys.stdout = None  # nothing more is written; the old stream's buffer now flushes into /dev/null


def say(line: str) -> None:
    """One line on stderr, best effort (stderr may be closed or full too; the exit code still tells)."""
    try:
        if sys.stderr is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a batch job's allocation, a container's cpuset), >= 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # no sched_getaffinity (macOS)
        return os.cpu_count() or 1


def one_blas_thread() -> None:
    """One BLAS/OpenMP thread unless the user set a number: the command line's work is many small batched products
    (a profiled chi^2 per grid point), where OpenBLAS's threads only spin against each other -- `cevnsfit limits
    --dataset all` took 169 s of CPU with the default threads and 54 s with one on the 2-core test machine
    (benchmarks/bench_xenonnt.py).  Effective only before numpy is first imported (OpenBLAS reads it then)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


# ---- worker processes ------------------------------------------------------------------------------------------
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerLost(OSError):
    """A worker process ended by a signal (the out-of-memory killer, say) instead of finishing its job: the
    environment's failure (an ``OSError``: the command line reports it with exit code 1), not the input's."""


class ForkedWorkers:
    """A :class:`concurrent.futures.ProcessPoolExecutor` of ``workers`` processes forked from this one, with the
    command line's fault behaviour (docs/decisions.md, "Faults").  Use as a context manager; :attr:`executor` is
    the executor, or None when there is none (``workers`` < 1, no ``fork`` on this platform, or no process to be
    had): the caller then runs its jobs in place.

    A worker is a fork of this process as it was when the context was entered (the executor forks every worker at
    its first submit, made there), so its jobs read what this process had computed by then -- a job pickles a small
    key, not the data -- and the modules imported here are not imported again.  ``initializer(*initargs)`` runs
    in each worker after the set-up below; with the ``fork`` start method ``initargs`` are inherited, not pickled.

    * every worker restores the default SIGINT and SIGTERM actions (a Ctrl-C at the terminal ends it at once; the
      parent reports the interrupt: the signals are blocked from before the fork until then), gets fresh standard
      streams (a thread of the parent, a progress bar, may have held their locks at the fork), closes
      ``close_fds`` (a lock held by the parent stays the parent's: an ``flock`` lasts while any process holds its
      descriptor), puts the inherited objects out of the garbage collector's reach (``gc.freeze``: a collection
      walking them would copy the parent's heap page by page) and, on Linux, dies with the parent
      (``PR_SET_PDEATHSIG``: a SIGKILL of the parent leaves no worker writing);
    * leaving the context by an exception (a failure, Ctrl-C, SIGTERM) kills and reaps the workers before the
      exception goes on, so nothing writes into an output folder after the caller has removed it; leaving normally
      waits for every job (:meth:`~concurrent.futures.Executor.shutdown`);
    * :meth:`result` is ``future.result()`` with a lost worker (the executor's ``BrokenProcessPool``) reported as
      :class:`WorkerLost`, naming the signal.
    """

    def __init__(self, workers: int, initializer=None, initargs: tuple = (), close_fds: tuple[int, ...] = ()):
        self.workers = int(workers)
        self.initializer, self.initargs, self.close_fds = initializer, tuple(initargs), tuple(close_fds)
        self.executor = None
        self._processes: list = []

    def __enter__(self) -> "ForkedWorkers":
        import multiprocessing as mp

        if self.workers < 1 or "fork" not in mp.get_all_start_methods():
            return self
        from concurrent.futures import ProcessPoolExecutor

        before = set(mp.active_children())
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            executor = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("fork"), initializer=_start_worker,
                                           initargs=(os.getpid(), held, self.close_fds, self.initializer,
                                                     self.initargs))
            try:
                executor.submit(int)  # with 'fork' the executor starts every worker at its first submit: now
            except OSError:  # no process to be had (a PID or memory limit): the caller's jobs run in place
                self._processes = [p for p in mp.active_children() if p not in before]
                self._kill()
                executor.shutdown(wait=False, cancel_futures=True)
                return self
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        self._processes = [p for p in mp.active_children() if p not in before]
        self.executor = executor
        return self

    def __exit__(self, kind, exc, tb) -> None:
        executor, self.executor = self.executor, None
        if executor is None:
            return
        if kind is None:
            executor.shutdown(wait=True)
            return
        self._kill()
        executor.shutdown(wait=True, cancel_futures=True)

    def result(self, future):
        """``future.result()``; a worker that was lost raises :class:`WorkerLost`."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool:
            check_interrupted()  # a Ctrl-C at the terminal ended the workers too: the run reports the interrupt
            raise WorkerLost(self._loss()) from None

    def _kill(self) -> None:
        for p in self._processes:
            try:
                p.kill()
            except (OSError, ValueError):  # already reaped
                pass
        for p in self._processes:
            p.join()

    def _loss(self) -> str:
        """Which signal ended a worker (the executor terminates the others with SIGTERM once one is lost)."""
        import time

        # the executor's own thread reaps the workers too: a status it took is seen here once it has stored it
        deadline = time.monotonic() + 5
        while any(p.exitcode is None for p in self._processes) and time.monotonic() < deadline:
            for p in self._processes:
                p.join(timeout=0.05)
        codes = [-p.exitcode for p in self._processes if p.exitcode is not None and p.exitcode < 0]
        culprit = next((c for c in codes if c != signal.SIGTERM), codes[0] if codes else None)
        if culprit is None:
            return "a worker process ended unexpectedly"
        why = " (out of memory?)" if culprit == signal.SIGKILL else ""
        return f"a worker process was killed by {signal.Signals(culprit).name}{why}"


def _start_worker(parent: int, held, close_fds: tuple[int, ...], initializer, initargs: tuple) -> None:
    """The set-up of a worker of :class:`ForkedWorkers`, in the worker, before its first job."""
    import gc

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, held)  # from here a Ctrl-C ends this process at once
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    for fd in close_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    gc.freeze()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request: end now
        os._exit(1)
    if initializer is not None:
        initializer(*initargs)


def run_reported(fn, *args):
    """``fn(*args)`` in a worker, its exception made safe to send back: one that cannot be pickled and rebuilt (with
    whatever it carries: a library such as tblib pickles the chained exceptions too) is reported by its text, as a
    ``RuntimeError`` without a chain, so that the caller always gets an exception, never a pickling failure."""
    import pickle

    try:
        return fn(*args)
    except BaseException as exc:  # noqa: BLE001 - re-raised, as itself or by its text
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001
            text = f"{type(exc).__name__}: {exc}"
        else:
            raise
    raise RuntimeError(text)  # outside the handler: no chained exception to pickle
