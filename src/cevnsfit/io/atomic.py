"""Atomic file writes: write to a temporary name in the target folder, then rename (never a half-written file)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError


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


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``, on error removed."""
    target = check_output_file(target)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would have
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text)
