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
