"""A results folder that whole runs replace as one: a lock, a staging folder, a commit that moves the finished files
into place, and the recovery of what a killed run left (docs/decisions.md, "Faults").

Knows nothing of what a run computes: the caller names the lock file and the owner (for the message that refuses a
second run), gives the record it wants kept beside the results (``run.json``) and says which files the folder holds
when there is no record.

* :class:`RunFolder` takes an exclusive ``flock`` on ``folder/<lock name>`` (released by the kernel even after
  SIGKILL, so a killed run never blocks the next one); a second holder is refused with one line
  (:class:`BusyError`);
* :meth:`RunFolder.stage` is a staging folder ``.staging-<id>/`` for the new results, removed if the run fails;
* :meth:`RunFolder.commit` writes the run record (every staged file with its SHA-256, and the files of the run it
  replaces), renames the staging folder ``.commit-<id>/`` and moves its files into place, the record last.  A run
  that fails, is interrupted or killed before the rename leaves the previous results untouched; one killed during
  the move is completed ("rolled forward") by the next run, which also removes the staging folders and the
  temporary files (:func:`cevnsfit.io.atomic.stale_temporaries`) of killed runs.  The folder never mixes two
  runs once a run has finished, and a folder without its record is between two runs.

Chosen over a symlink swap so that the files stay at their documented paths.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..errors import CevnsfitError, InputError
from ..process import check_interrupted
from .atomic import check_writable_dir, signals_held, stale_temporaries
from .datadir import sha256
from .jsonio import write_json

STAGING_PREFIX = ".staging-"
COMMIT_PREFIX = ".commit-"
RUN_RECORD = "run.json"


class BusyError(CevnsfitError):
    """Another process holds the output folder's lock."""


class RunFolder:
    """``folder`` (created if needed) locked for one run: use as a context manager (the lock is taken, what killed
    runs left is completed or removed, on entry; the lock is released on exit).

    ``lock_name``: the lock file; ``owner``: what holds it, for the refusal ("DIR is in use by another <owner> (pid
    N)"); ``layout(folder)``: the result files the folder holds when it has no run record (relative paths)."""

    def __init__(self, folder, lock_name: str, owner: str, layout: Callable[[Path], list[str]] | None = None):
        self.folder = Path(folder)
        self.lock_path = self.folder / lock_name
        self.owner = owner
        self.layout = layout
        self.lock_fd: int | None = None

    def __enter__(self) -> "RunFolder":
        self.folder = check_writable_dir(self.folder)
        self._lock()
        try:
            self.recover()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._unlock()

    # ---- a run -----------------------------------------------------------------------------------------------
    @contextmanager
    def stage(self) -> Iterator[Path]:
        """A fresh staging folder for the run's results; removed if the body fails."""
        stage = self.folder / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        stage.mkdir()
        try:
            yield stage
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise

    @staticmethod
    def run_id(stage: Path) -> str:
        return stage.name[len(STAGING_PREFIX):]

    def commit(self, stage: Path, record: dict) -> None:
        """Write ``record`` plus ``files`` (every staged file: its SHA-256) and ``previous_files`` as the run record
        into ``stage``, then put the staged run in place of the previous one (see the module docstring)."""
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        record = {**record, "files": {f: sha256(stage / f) for f in files}, "previous_files": self.previous_files()}
        write_json(record, stage / RUN_RECORD)
        commit = self.folder / (COMMIT_PREFIX + self.run_id(stage))
        with signals_held():  # a few renames: a Ctrl-C now is acted on once the folder holds the complete new run
            check_interrupted()  # one a library swallowed earlier: the staged run is not committed
            os.replace(stage, commit)  # from here on the run is complete; a killed move is rolled forward
            _move_into_place(self.folder, commit)

    def previous_files(self) -> list[str]:
        """Result files of the run now in the folder (from its record; without one, ``layout``'s)."""
        try:
            return sorted(json.loads((self.folder / RUN_RECORD).read_text())["files"])
        except (OSError, ValueError, KeyError, TypeError):
            return sorted(self.layout(self.folder)) if self.layout is not None else []

    def recover(self) -> None:
        """With the lock held: finish the move of a committed run that was killed, drop what killed runs left."""
        for commit in sorted(self.folder.glob(COMMIT_PREFIX + "*")):
            if commit.is_dir():
                _move_into_place(self.folder, commit)
        for stage in self.folder.glob(STAGING_PREFIX + "*"):
            shutil.rmtree(stage, ignore_errors=True)
        for tmp in stale_temporaries(self.folder):
            tmp.unlink(missing_ok=True)

    # ---- the lock ----------------------------------------------------------------------------------------------
    def _lock(self) -> None:
        """Exclusive ``flock``; the file is removed on release, so a process that locked a file someone just
        removed sees another inode at the path and tries again (the usual lock-file race)."""
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise BusyError(f"{self.folder} is in use by another {self.owner} (pid {holder}); wait for it "
                                    f"to finish or choose another --out") from None
                raise
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.lock_fd = fd

    def _unlock(self) -> None:
        if self.lock_fd is None:
            return
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            pass
        os.close(self.lock_fd)
        self.lock_fd = None


def _move_into_place(folder: Path, commit: Path) -> None:
    """Move the files of a committed run into ``folder`` (idempotent: resumes a move that was killed)."""
    record_path = commit / RUN_RECORD
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        (folder / RUN_RECORD).unlink(missing_ok=True)  # the folder is between two runs until the new record lands
        for rel in record["files"]:
            src = commit / rel
            if src.is_file():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, folder / rel)
        for rel in set(record.get("previous_files", ())) - set(record["files"]):
            (folder / rel).unlink(missing_ok=True)  # a result of the previous run that this run does not make
        os.replace(record_path, folder / RUN_RECORD)
    shutil.rmtree(commit, ignore_errors=True)


def check_targets(folder: Path, paths, subfolders=()) -> None:
    """Every path a run will write usable, checked before anything is written (a directory where a file goes, a
    file where a folder goes, a read-only folder would otherwise stop the run late)."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write into {folder}: it is not a directory")
    for path in paths:
        if path.is_dir():
            raise InputError(f"cannot write {path}: it is a directory")
        if path.parent.exists() and not path.parent.is_dir():
            raise InputError(f"cannot write {path}: {path.parent} is not a directory")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into {folder}: {existing} is not a writable directory")
    for sub in (folder, *(folder / s for s in subfolders)):
        if sub.is_dir() and not os.access(sub, os.W_OK | os.X_OK):
            raise InputError(f"cannot write into {sub}: it is not writable")
