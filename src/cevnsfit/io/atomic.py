"""Atomic file writes: write to a temporary name in the target folder, then rename (never a half-written file)."""

from __future__ import annotations

import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError, OutputError
from ..process import check_interrupted


def check_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check it is a writable directory (clear error otherwise)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory {path}: {exc.strerror or exc}") from None
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise InputError(f"output directory {path} is not writable")
    return path


def check_output_file(target: str | os.PathLike) -> Path:
    """Fail early (before a long computation) when ``target`` cannot be written."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {target}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {target}: folder {folder} is not writable")
    if target.is_dir():
        raise InputError(f"cannot write {target}: it is a directory")
    return target


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


# Temporary files are named ".<target name>.part-<random><suffix>" so that a later run can recognise (and remove)
# those left by a process killed with SIGKILL, which runs no clean-up (see stale_temporaries).
PART_MARK = ".part-"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``, on error removed.

    SIGINT/SIGTERM are held back while the temporary file is created, so an interrupt arrives either before it
    exists or inside the ``try`` that removes it (cevnsfit.process turns both signals into an exception).

    Commands check their outputs with :func:`check_output_file` before the work (bad input, exit 2); a target
    that fails the same check here, when the file is written (its folder removed meanwhile, say), is an
    :class:`OutputError` (exit 1), as any other failure to write.
    """
    try:
        target = check_output_file(target)
    except InputError as exc:
        raise OutputError(str(exc)) from None
    folder = target.parent if str(target.parent) else Path(".")
    held = _block_signals()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}{PART_MARK}", suffix=target.suffix, dir=folder)
    except BaseException:
        _unblock_signals(held)
        raise
    try:
        _unblock_signals(held)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would have
        yield Path(tmp)
        check_interrupted()  # an interrupt swallowed by a library while the file was made: do not commit it
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _block_signals():
    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    except (AttributeError, ValueError, OSError):  # no pthread_sigmask on this platform
        return None


def _unblock_signals(held) -> None:
    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextmanager
def signals_held():
    """Hold SIGINT/SIGTERM back for the body (a few renames that must not stop half-way); a signal that arrives
    meanwhile is delivered when the body ends (cevnsfit.process then raises it as an exception).  The mask is the
    calling thread's (pthread_sigmask): a signal sent to the process can still be taken by another thread that
    does not block it, so commit from the thread that runs the command."""
    held = _block_signals()
    try:
        yield
    finally:
        _unblock_signals(held)


def is_temporary(path: str | os.PathLike) -> bool:
    """True for a file name made by :func:`atomic_path` (".<name>.part-<random><suffix>")."""
    name = Path(path).name
    return name.startswith(".") and PART_MARK in name


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporary files of :func:`atomic_path` under ``folder`` (recursively): left there only by a killed process
    when no other process writes into ``folder`` (callers hold a lock)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob(f".*{PART_MARK}*") if p.is_file() and is_temporary(p))


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text)
