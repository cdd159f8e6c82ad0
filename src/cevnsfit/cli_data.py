"""``cevnsfit data ...``: where the data are, fetching, verifying and listing the registered data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli_format import DataDirOption, DataHomeOption, err, inventory_path, out, print_data_info, print_data_list, progress
from .errors import CevnsfitError, InputError
from .io.datadir import data_folders

data_app = typer.Typer(no_args_is_help=True, help="The public data releases: where they are, fetching and verifying them.")


@data_app.command("info")
def data_info(data_dir: Optional[Path] = DataDirOption, data_home: Optional[Path] = DataHomeOption) -> None:
    """Where the data are looked for (in order), which folder is used, and every expected file: present, parses,
    SHA-256 and whether it equals the registered one."""
    data_dir = data_folders(data_dir, data_home)
    from .analysis import data_info as inventory

    info = inventory(data_dir)
    print_data_info(info)
    bad = [r for r in info["rows"] if not r["ok"]]
    if len(bad) == 1 and bad[0]["message"] not in ("", "missing"):  # one damaged or unreadable file: as `sm` says it
        raise CevnsfitError(bad[0]["message"])
    if bad:
        raise CevnsfitError(f"{len(bad)} data file(s) missing or unreadable under {info['root']}: "
                            + ", ".join(inventory_path(r) for r in bad))


@data_app.command("fetch")
def data_fetch(
    datasets: Optional[list[str]] = typer.Argument(None, help="Data sets to fetch (see `cevnsfit data list`)."),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Data root to fill (default: $CEVNSFIT_DATA_HOME, else "
                                                              "the user data directory)."),
    mirror: list[str] = typer.Option([], "--mirror", help="Base URL laid out like shared/data, tried first (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Download again even when a verified copy is present."),
    no_upstream: bool = typer.Option(False, "--no-upstream", help="Use the --mirror URLs only (no official location, "
                                                                    "no pinned mirror)."),
) -> None:
    """Download the public data sets (official location, then pinned mirrors), each file checked against its
    registered SHA-256 before it becomes visible.  A second run is a no-op."""
    from .io.fetch import fetch
    from .io.registry import expand_names

    for m in mirror:
        if not m.startswith(("http://", "https://", "file://")):
            raise InputError(f"--mirror must be an http(s):// or file:// URL, got '{m}'")
    if no_upstream and not mirror:
        raise InputError("--no-upstream needs at least one --mirror URL")
    chosen = expand_names(datasets or [])
    bar = progress("fetch", transfer=True)

    def report(event: str, value) -> None:
        if event == "start":
            bar.update(total=value)
        elif event == "advance":
            bar.advance(value)
        elif event == "file":
            bar.update(description=f"fetch {Path(value).name[:40]:<40}")

    with bar:
        rep = fetch(dest=dest, mirrors=mirror, force=force, upstream=not no_upstream, progress=report,
                    datasets=chosen)
    out.print(f"{rep.dest}: {len(rep.downloaded)} file(s) downloaded, {len(rep.present)} already present and "
              f"verified ({', '.join(d.name for d in chosen)})", markup=False, soft_wrap=True)


@data_app.command("verify")
def data_verify(
    datasets: Optional[list[str]] = typer.Argument(None, help="Data sets to check (default: those the package reads)."),
    data_dir: Optional[Path] = DataDirOption,
    data_home: Optional[Path] = DataHomeOption,
) -> None:
    """Check every file the package would read against the registry; name each one that differs (exit 2)."""
    data_dir = data_folders(data_dir, data_home)
    from .io.datadir import resolve_collection
    from .io.fetch import verify

    rows = verify(datasets or [], {c: resolve_collection(c, data_dir) for c in (data_dir or {})})
    bad = [r for r in rows if not r["ok"]]
    for r in bad:
        actual = r["actual"] or "missing"
        err.print(f"differs: {r['path']}: expected {r['expected']}, actual {actual}", markup=False, highlight=False,
                  soft_wrap=True)
    if bad:
        raise CevnsfitError(f"{len(bad)} of {len(rows)} file(s) differ from the registry (listed above)")
    out.print(f"{len(rows)} file(s) verified: every SHA-256 equals the registry", markup=False, soft_wrap=True)


@data_app.command("list")
def data_list() -> None:
    """The registered data sets: name, folder under the data root, files, size, whether the package reads it."""
    from .io.registry import DATASETS, dataset_files

    print_data_list(DATASETS.values(), dataset_files)
