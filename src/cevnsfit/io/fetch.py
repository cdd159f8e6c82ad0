"""``cevnsfit data fetch``: download the public data sets, verified, into the data home.

For every registered file of the requested data sets (:mod:`cevnsfit.io.registry`):

* a file already present with the registered SHA-256 is kept (a second run is a no-op); ``force`` fetches again;
* otherwise the sources are tried in order -- the user's mirrors (``--mirror``: a base URL laid out like
  ``shared/data``), the official location, the pinned mirrors -- and the file is downloaded by :func:`pooch.retrieve`
  into a staging folder, its SHA-256 checked there, and only then renamed into place: a file that differs, a
  dropped connection or a killed run never leaves a partial or wrong file where the readers look;
* a transient failure (dropped connection, time-out, server error) is retried, then the next source is tried; a
  host that cannot be reached at all is not asked again in the same run (one clear failure instead of a wait per
  file); 404 and a wrong hash go straight to the next source;
* the derived flux grids come as they are from a mirror; from upstream they are produced locally from the pinned
  ``flux_dict.pkl`` (its SHA-256 checked first, read by the restricted unpickler of
  :mod:`cevnsfit.io.flux_pickle`), and the result must have the registered SHA-256;
* a data set with an official archive (XENONnT) is downloaded as one ``.tar.gz`` when no mirror served its files;
  members are unpacked with tarfile's ``data`` filter (no links, no absolute paths) and each checked.

A lock file keeps two fetches from writing into the same folder at once (it is removed when the fetch ends).
Failures are collected; the good files are kept and one :class:`FetchError` line names what could not be fetched
and why (:class:`FetchWriteError`, exit 1, when the destination itself failed while being written).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import http.client
import logging
import os
import shutil
import socket
import tarfile
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

from ..errors import CevnsfitError, OutputError
from .datadir import data_home, sha256
from .registry import Dataset, RegistryEntry, dataset_files, expand_names

__all__ = ["FetchError", "FetchReport", "FetchWriteError", "fetch", "verify"]

STAGING = ".cevnsfit-staging"
LOCK = ".cevnsfit-fetch.lock"
USER_AGENT = "cevnsfit-data-fetch"


class FetchError(CevnsfitError):
    """Some files could not be fetched (the message names them), or the destination is unusable."""


class FetchWriteError(FetchError, OutputError):
    """The destination failed while files were being written into it (a full disk, a quota, an I/O error): exit 1."""


class _Unreachable(Exception):
    """The host does not answer at all (refused, unknown name): skip it for the rest of the run."""


class _Transient(Exception):
    """Worth retrying: dropped connection, time-out, server error."""


class _Final(Exception):
    """Not worth retrying at this URL: 404, wrong hash, a refused pickle."""


@dataclass
class FetchReport:
    """What ``cevnsfit data fetch`` did: the destination folder and the files downloaded, already present or
    failed."""

    dest: Path
    downloaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


class _Progress:
    """Adapter between the fetcher and a progress display: ``start(total_bytes)``, ``file(path)``, ``advance(n)``."""

    def __init__(self, callback: Callable[[str, object], None] | None):
        self.callback = callback

    def __call__(self, event: str, value) -> None:
        if self.callback is not None:
            self.callback(event, value)


def _download(url: str, output: str, timeout: float, progress: _Progress, digests: dict) -> None:
    """Stream ``url`` into ``output`` (a pooch downloader); records the SHA-256 of what arrived in ``digests``."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    h = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(output, "wb") as fh:
            expected = resp.headers.get("Content-Length")
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                fh.write(chunk)
                h.update(chunk)
                got += len(chunk)
                progress("advance", len(chunk))
            if expected is not None and got != int(expected):
                raise _Transient(f"connection closed after {got} of {expected} bytes")
    except urllib.error.HTTPError as exc:
        progress("advance", -got)
        raise (_Transient if exc.code >= 500 else _Final)(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        progress("advance", -got)
        reason = exc.reason
        if isinstance(reason, (ConnectionRefusedError, socket.gaierror)) or (
                isinstance(reason, OSError) and reason.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH,
                                                                  errno.ENETUNREACH)):
            raise _Unreachable(str(getattr(reason, "strerror", None) or reason)) from None
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Transient("timed out") from None
        raise _Transient(str(reason)) from None
    except _Transient:
        progress("advance", -got)  # a failed attempt must not count in the bytes done
        raise
    except (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionResetError,
            ConnectionAbortedError, BrokenPipeError) as exc:
        progress("advance", -got)
        raise _Transient(f"connection dropped ({type(exc).__name__})") from None
    except (TimeoutError, socket.timeout):
        progress("advance", -got)
        raise _Transient("timed out") from None
    except OSError as exc:
        progress("advance", -got)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            raise  # the destination, not the source: the caller stops the whole fetch
        raise _Transient(str(exc)) from None
    digests[output] = h.hexdigest()


def _retrieve(url: str, sha: str, staging: Path, name: str, timeout: float, progress: _Progress) -> Path:
    """Download ``url`` into ``staging/name`` through pooch (temporary file, SHA-256 check, rename)."""
    import pooch

    digests: dict = {}

    def downloader(u, output_file, _pooch, check_only=False):
        _download(u, str(output_file), timeout, progress, digests)

    try:
        path = pooch.retrieve(url, known_hash=f"sha256:{sha}" if sha else None, fname=name, path=staging,
                              downloader=downloader)
    except ValueError:
        actual = next(iter(digests.values()), "unknown")
        raise _Final(f"SHA-256 {actual} differs from the registered {sha}") from None
    return Path(path)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@contextmanager
def _locked(dest: Path):
    """Hold ``dest/LOCK`` (``flock``) for the body; a second fetch into ``dest`` meanwhile is refused.  The lock file
    is removed when the fetch ends (the folder then holds data only), while it is still locked: a fetch that opened
    the old file before the removal finds, once it holds the lock, that the path no longer names that file, and
    opens it again (as reproduce's lock)."""
    path = dest / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except BlockingIOError:
            os.close(fd)
            raise FetchError(f"another `cevnsfit data fetch` is writing into {dest}; wait for it to finish") from None
        except FileNotFoundError:  # removed by the fetch that held it, between our open and flock
            same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


def _check_dest(dest: Path) -> Path:
    try:
        dest.mkdir(parents=True, exist_ok=True)
        probe = dest / f".cevnsfit-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FetchError(f"cannot write into {dest}: {exc.strerror or exc}") from None
    return dest


def _install(tmp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Fetcher:
    def __init__(self, dest: Path, mirrors, retries: int, timeout: float, progress: _Progress, upstream: bool):
        self.dest, self.mirrors, self.retries, self.timeout = dest, tuple(mirrors), retries, timeout
        self.progress, self.upstream = progress, upstream
        self.staging = dest / STAGING
        self.dead_hosts: dict[str, str] = {}
        self.counter = 0

    def _name(self, entry_path: str) -> str:
        self.counter += 1
        return f"{self.counter}-{Path(entry_path).name}"

    def _attempt(self, url: str, sha: str, rel: str) -> Path:
        host = _host(url)
        if host in self.dead_hosts:
            raise _Final(f"{host} unreachable ({self.dead_hosts[host]})")
        last = ""
        for _ in range(1 + self.retries):
            try:
                return _retrieve(url, sha, self.staging, self._name(rel), self.timeout, self.progress)
            except _Unreachable as exc:
                self.dead_hosts[host] = str(exc)
                raise _Final(f"{host} unreachable ({exc})") from None
            except _Transient as exc:
                last = str(exc)
        raise _Final(f"{last} (tried {1 + self.retries} times)")

    def one(self, ds: Dataset, entry: RegistryEntry, kinds: tuple[str, ...] | None = None) -> str:
        """Fetch one file into place from the sources of ``kinds`` (default all); returns the URL it came from,
        raises _Final listing every failure."""
        errors = []
        name = entry.path[len(ds.root) + 1:]
        derived = ds.derived.get(name)
        if derived is not None:
            sources = [("mirror", u) for _, u in ds.urls(entry.path, self.mirrors)[:len(self.mirrors)]]
            if self.upstream:
                sources.append(("derived", derived.source_url))
        else:
            sources = [(k, u) for k, u in ds.urls(entry.path, self.mirrors) if self.upstream or k == "mirror"]
        if kinds is not None:
            sources = [(k, u) for k, u in sources if k in kinds]
        for kind, url in sources:
            self.progress("file", entry.path)
            try:
                if kind == "derived":
                    tmp = self._derive(derived, entry)
                else:
                    tmp = self._attempt(url, entry.sha256, entry.path)
            except _Final as exc:
                errors.append(f"{url}: {exc}")
                continue
            _install(tmp, self.dest / entry.path)
            return url
        if not sources:
            errors.append("no source (only --mirror URLs allowed and none given)")
        raise _Final("; ".join(errors))

    def _derive(self, derived, entry: RegistryEntry) -> Path:
        from .flux_pickle import convert_file

        pkl = self._attempt(derived.source_url, derived.source_sha256, entry.path + ".pkl")
        out = self.staging / self._name(entry.path)
        try:
            convert_file(derived.converter, pkl, out)
        except CevnsfitError as exc:
            raise _Final(str(exc)) from None
        finally:
            pkl.unlink(missing_ok=True)
        actual = sha256(out)
        if actual != entry.sha256:
            out.unlink()
            raise _Final(f"converted grid has SHA-256 {actual}, registered {entry.sha256}")
        return out

    def archive(self, ds: Dataset, entries: list[RegistryEntry]) -> tuple[dict[str, str], str | None]:
        """Fetch ``ds.archive`` once and install every wanted member that matches the registry.

        Returns ({path: url} installed, error or None)."""
        try:
            tgz = self._attempt(ds.archive, "", ds.root + ".tar.gz")
        except _Final as exc:
            return {}, f"{ds.archive}: {exc}"
        wanted = {e.path[len(ds.root) + 1:]: e for e in entries}
        unpack = self.staging / self._name(ds.root + "-archive")
        done: dict[str, str] = {}
        bad: list[str] = []
        try:
            with tarfile.open(tgz, "r:gz") as tar:
                for member in tar.getmembers():
                    parts = member.name.split("/", 1)
                    if len(parts) != 2 or parts[1] not in wanted or not member.isfile():
                        continue
                    tar.extract(member, unpack, filter="data")
                    got = unpack / member.name
                    e = wanted[parts[1]]
                    actual = sha256(got)
                    if actual != e.sha256:
                        bad.append(f"{e.path}: SHA-256 {actual} differs from the registered {e.sha256}")
                        got.unlink()
                        continue
                    _install(got, self.dest / e.path)
                    done[e.path] = ds.archive
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise
            return done, f"{ds.archive}: unreadable archive ({exc})"
        finally:
            tgz.unlink(missing_ok=True)
            shutil.rmtree(unpack, ignore_errors=True)
        return done, "; ".join(bad) or None


def fetch(names: Iterable[str] | None = None, dest: str | os.PathLike | None = None, mirrors: Iterable[str] = (),
          force: bool = False, upstream: bool = True, retries: int = 1, timeout: float = 30.0,
          progress: Callable[[str, object], None] | None = None, datasets: list[Dataset] | None = None) -> FetchReport:
    """Fetch the data sets ``names`` (default: those the package reads) into ``dest`` (default: the data home).

    ``mirrors``: base URLs tried first; ``upstream=False`` uses them only.  ``retries``: extra attempts per URL
    after a transient failure.  ``progress(event, value)`` receives ``("start", total_bytes)``, ``("file", path)``
    and ``("advance", bytes)``.  Raises :class:`FetchError` (after installing every file it could) when a file
    could not be fetched from any source; the message names each such file and the reason.
    """
    import pooch

    pooch.get_logger().setLevel(logging.WARNING)  # pooch logs every download at INFO on stderr
    dsets = datasets if datasets is not None else expand_names(list(names or ()))
    dest = _check_dest(Path(dest).expanduser() if dest is not None else data_home())
    report = FetchReport(dest)
    prog = _Progress(progress)
    with _locked(dest):
        fetcher = _Fetcher(dest, mirrors, retries, timeout, prog, upstream)
        shutil.rmtree(fetcher.staging, ignore_errors=True)  # leftovers of a killed run: never trusted, never kept
        try:
            fetcher.staging.mkdir()
            todo: list[tuple[Dataset, RegistryEntry]] = []
            for ds in dsets:
                for e in dataset_files(ds):
                    target = dest / e.path
                    if not force and target.is_file() and target.stat().st_size == e.size and sha256(target) == e.sha256:
                        report.present.append(e.path)
                    else:
                        todo.append((ds, e))
            prog("start", sum(e.size for _, e in todo))
            _run(fetcher, todo, report)
        except OSError as exc:  # while writing (the destination was checked before): exit 1, not bad input
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise FetchWriteError(f"no space left on the device of {dest}: {len(report.downloaded)} file(s) "
                                      "fetched, free some space and run the same command again") from None
            raise FetchWriteError(f"cannot write into {dest}: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(fetcher.staging, ignore_errors=True)
    if report.failed:
        items = list(report.failed.items())
        shown = "; ".join(f"{p} ({why})" for p, why in items[:3])
        more = f"; and {len(items) - 3} more" if len(items) > 3 else ""
        raise FetchError(f"{len(items)} file(s) could not be fetched into {dest}"
                         f" ({len(report.downloaded)} fetched, {len(report.present)} already present): {shown}{more}")
    return report


def _run(fetcher: _Fetcher, todo, report: FetchReport) -> None:
    by_ds: dict[str, tuple[Dataset, list]] = {}
    for ds, e in todo:
        by_ds.setdefault(ds.name, (ds, []))[1].append(e)
    for ds, entries in by_ds.values():
        if not (ds.archive and fetcher.upstream):
            _each(fetcher, ds, entries, report)
            continue
        # the user's mirrors file by file first (a lab's copy is closest), then the one official archive, then the
        # pinned mirrors for whatever is still missing
        failures: dict[str, list[str]] = {}
        remaining = []
        for e in entries:
            if fetcher.mirrors and _each(fetcher, ds, [e], report, ("mirror",), failures):
                continue
            remaining.append(e)
        if remaining:
            done, error = fetcher.archive(ds, remaining)
            report.sources.update(done)
            report.downloaded.extend(done)
            for path in done:
                report.failed.pop(path, None)
            remaining = [e for e in remaining if e.path not in done]
            for e in remaining:
                failures.setdefault(e.path, []).append(error or f"{ds.archive}: not in the archive")
        _each(fetcher, ds, remaining, report, ("pinned mirror",), failures)


def _each(fetcher: _Fetcher, ds: Dataset, entries, report: FetchReport, kinds=None,
          failures: dict[str, list[str]] | None = None) -> bool:
    """Fetch ``entries`` one by one; failures go into ``report.failed`` (with those of earlier stages)."""
    ok = True
    for e in entries:
        try:
            report.sources[e.path] = fetcher.one(ds, e, kinds)
            report.downloaded.append(e.path)
            report.failed.pop(e.path, None)
        except _Final as exc:
            ok = False
            report.failed[e.path] = "; ".join([*(failures or {}).get(e.path, []), str(exc)])
            if failures is not None:
                failures.setdefault(e.path, []).append(str(exc))
    return ok


def verify(names: Iterable[str] | None = None, roots: dict[str, Path] | None = None) -> list[dict]:
    """Check every registered file of the data sets ``names`` (default: those the package reads) where the package
    would read it.  One row per file: ``path`` (absolute), ``rel``, ``expected``, ``actual`` (None when missing),
    ``ok``.  ``roots`` maps a collection to its folder (default: resolved as the readers resolve it)."""
    from .datadir import resolve_collection

    rows = []
    roots = dict(roots or {})
    for ds in expand_names(list(names or ())):
        if ds.collection not in roots:
            roots[ds.collection] = resolve_collection(ds.collection)
        base = roots[ds.collection]
        for e in dataset_files(ds):
            path = base / e.path[len(ds.collection) + 1:]
            actual = sha256(path) if path.is_file() else None
            rows.append({"dataset": ds.name, "rel": e.path, "path": str(path), "expected": e.sha256,
                         "actual": actual, "ok": actual == e.sha256})
    return rows
