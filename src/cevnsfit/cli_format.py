"""What the command line prints: the consoles, JSON documents, progress bars on stderr and one table printer per
result document of the Python API (:mod:`cevnsfit.analysis`, :mod:`cevnsfit.projection`, ...).  Formatting only:
nothing here computes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .process import check_interrupted

out = Console()  # writes to sys.stdout at call time: the GuardedStdout that cli.main() installs
err = Console(stderr=True)

DataDirOption = typer.Option(None, "--data-dir", help="COHERENT data directory (default: $CEVNSFIT_DATA, else "
                             "../shared/data/coherent beside the clone, else the data fetched by `cevnsfit data fetch`).")
DataHomeOption = typer.Option(None, "--data-home", help="Data root laid out like shared/data (coherent/, "
                              "xenonnt_cevns/, solar/, reactor/, limits/): each collection with a folder there is "
                              "read from it; the others are searched as usual (README, 'Data').")


def print_json(doc, indent: int | None) -> None:
    from .io.jsonio import json_text

    sys.stdout.write(json_text(doc, indent))


def table(title: str | None, columns, rows, **column_options) -> Table:
    t = Table(title=title) if title is not None else Table()
    for c in columns:
        t.add_column(c, **column_options)
    for r in rows:
        t.add_row(*r)
    return t


# ---- progress on stderr ------------------------------------------------------------------------------------------
class _Progress:
    """A rich progress bar on stderr: drawn on a terminal only and removed when done, so that an error or a log keeps
    to its own line.  Every update first checks for a signal a library swallowed: a long loop still ends at its next
    step."""

    def __init__(self, *columns, description: str = "", total: int | None = None):
        from rich.progress import Progress

        self.bar = Progress(*columns, console=err, transient=True, disable=not err.is_terminal)
        self.task = self.bar.add_task(description, total=total)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def update(self, **fields) -> None:
        check_interrupted()
        self.bar.update(self.task, **fields)

    def advance(self, k: float = 1) -> None:
        check_interrupted()
        self.bar.advance(self.task, k)

    def counts(self, done: int, total: int) -> None:
        """The ``progress(done, total)`` callback of the analysis API."""
        self.update(completed=done, total=total)


def progress(description: str, total: int | None = None, elapsed: bool = False, transfer: bool = False) -> _Progress:
    """A bar ``description``: done/total and the time remaining; ``elapsed`` shows the time so far instead,
    ``transfer`` counts bytes (size done / total and speed)."""
    from rich.progress import (BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    clock = TimeElapsedColumn() if elapsed else TimeRemainingColumn()
    counts = [DownloadColumn(), TransferSpeedColumn()] if transfer else [TextColumn("{task.completed}/{task.total}")]
    return _Progress(TextColumn("{task.description}"), BarColumn(), *counts, clock, description=description,
                     total=total)


class FcProgress(_Progress):
    """Progress of the toy tasks: tasks done / total and toys per second; :meth:`report` is the ``progress``
    callback of :func:`cevnsfit.fc.run_fc` (``(total)`` once, then ``(None, toys)`` per finished task)."""

    def __init__(self):
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

        super().__init__(TextColumn("fc"), BarColumn(), TextColumn("{task.completed}/{task.total} tasks"),
                         TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), description="fc")
        self.bar.update(self.task, rate="")
        self.toys, self.t0 = 0, time.perf_counter()

    def report(self, total, n_toys: int = 0) -> None:
        if total is not None:
            self.update(total=total)
            self.t0 = time.perf_counter()
            return
        self.toys += n_toys
        rate = self.toys / max(time.perf_counter() - self.t0, 1e-9)
        self.update(advance=1, rate=f"{rate:.0f} toys/s")


# ---- one printer per result document --------------------------------------------------------------------------------
def print_sm(result: dict, as_json: bool) -> None:
    """``cevnsfit sm``: {experiment: {"summary": SM document, "table": its human-readable table}}."""
    if as_json:
        print_json({n: {k: v for k, v in r["summary"].items() if k != "nuisances"} for n, r in result.items()}, indent=2)
        return
    for name, r in result.items():
        title, cols, rows, foot = r["table"]
        t = Table(title=title)
        for i, c in enumerate(cols):
            t.add_column(c, justify="left" if i == 0 else "right")
        for row in rows:
            t.add_row(*row)
        out.print(t)
        out.print(foot, markup=False)


def _num(x) -> str:
    return "none" if x is None else f"{x:.3g}"


def _edge(x) -> str:
    return "inf" if x is None else f"{x:.3g}"  # an island open at the grid end


def print_limits(doc: dict, as_json: bool) -> None:
    """``cevnsfit limits``: the limits document."""
    if as_json:
        print_json(doc, indent=1)
        return
    rows = []
    for r in doc["limits"]:
        isl = "; ".join(f"g in [{_edge(a)}, {_edge(b)}]" for a, b in r["low_mass_islands"])
        isl += "; ".join(f"g/M in [{_edge(a)}, {_edge(b)}]" for a, b in r["high_mass_islands"])
        rows.append((r["model"], r["dataset"], _num(r["g_low_mass"]), _num(r["g_over_M_high_mass"]), isl))
    out.print(table(f"2 sigma limits ({doc['convention']['description']})",
                    ("model", "data set", "g (M -> 0)", "g/M [GeV^-1] (M -> inf)", "sign-flip islands"), rows))


def intervals_text(ivs) -> str:
    """[lo, hi] U [lo, hi] (None: open, -inf or inf)."""
    return " U ".join(f"[{'-inf' if lo is None else f'{lo:.4g}'}, {'inf' if hi is None else f'{hi:.4g}'}]"
                      for lo, hi in ivs)


def print_fit(doc: dict, as_json: bool) -> None:
    """``cevnsfit fit``: the fit document."""
    if as_json:
        print_json(doc, indent=1)
        return
    rows = []
    for n in doc["params"]:
        iv = doc["intervals"][n]
        rows.append((n, doc["units"][n], f"{doc['sm'][n]:.4g}", f"{doc['best_fit'][n]:.4g}",
                     *(intervals_text(iv[k]) or "none" for k in ("1sigma", "90", "2sigma"))))
    out.print(table(f"fit [{doc['dataset']}]: chi2_min = {doc['chi2_min']:.3f}, Delta chi2(SM) = "
                    f"{doc['delta_chi2_sm']:.3f}", ("parameter", "unit", "SM", "best fit", "1 sigma", "90 %", "2 sigma"),
                    rows))


def print_projection(doc: dict, as_json: bool, mediator: bool) -> None:
    """``cevnsfit project``: the projection document (``mediator``: of a model, else of a parameter)."""
    if as_json:
        print_json(doc, indent=1)
        return
    if mediator:
        def fmt(x):
            return f"{x['median']:.3g} [{x['band_1sigma'][0]:.3g}, {x['band_1sigma'][1]:.3g}]"

        cols = ("detector", "CEvNS events", "g (M -> 0): median [-1s, +1s]",
                "g/M [GeV^-1] (M -> inf): median [-1s, +1s]")
        rows = [(r["detector"]["name"], f"{r['detector']['cevns_events']:.0f}", fmt(r["projection"]["g_low_mass"]),
                 fmt(r["projection"]["g_over_M_high_mass"])) for r in doc["results"]]
    else:
        cols = ("detector", "CEvNS events", "unit", "SM", "expected 1 sigma", "expected 2 sigma")
        rows = []
        for r in doc["results"]:
            p = r["projection"]
            rows.append((r["detector"]["name"], f"{r['detector']['cevns_events']:.0f}", p["unit"], f"{p['sm']:.4g}",
                         intervals_text(p["expected_intervals"]["1sigma"]),
                         intervals_text(p["expected_intervals"]["2sigma"])))
    out.print(table(f"projection: {doc['what']} ({doc['cl']})", cols, rows))


def print_gm2(doc: dict, as_json: bool, model: str, mass: float, coupling: float) -> None:
    """``cevnsfit gm2``: delta a_mu and the favoured band at that mass."""
    if as_json:
        print_json(doc, indent=None)
        return
    from .physics.models import MAX_COUPLING

    out.print(f"delta a_mu = {doc['delta_a_mu']:.4e}  ({model}, M = {mass:g} MeV, g = {coupling:g})", markup=False)
    b = doc["band"]
    if not b:
        out.print(doc["note"])
        return
    low = "0 (no lower edge)" if b["g_low"] is None else f"{b['g_low']:.4g}"
    mark = {"no": "", "partly": f"  [upper part beyond the perturbative bound g <= 4 pi = {MAX_COUPLING:.4g}]",
            "entirely": f"  [NOT PERTURBATIVE: the whole band lies beyond g <= 4 pi = {MAX_COUPLING:.4g}; "
                        "the one-loop result does not apply]"}[b["beyond_perturbative_bound"]]
    out.print(f"{b['epoch']} favoured 2 sigma band at this mass: g in [{low}, {b['g_high']:.4g}]{mark}", markup=False,
              soft_wrap=True)


def print_models(models) -> None:
    """``cevnsfit models``: name, charges and anomaly freedom of each model."""
    rows = []
    for m in models:
        if getattr(m, "kind", "vector") == "scalar":
            rows.append((m.name, "-", "-", "-", "-", "-", "-"))
        else:
            rows.append((m.name, *(f"{c:.4g}" for c in m.charges), "yes" if m.is_anomaly_free else "no"))
    out.print(table("models", ("name", "Q'_u", "Q'_d", "Q'_e", "Q'_mu", "Q'_tau", "anomaly free"), rows))


def print_data_info(info: dict) -> None:
    """``cevnsfit data info``: the search, then every expected file (status, SHA-256)."""
    for collection, cands in info["search"].items():
        out.print(f"{collection}: looked for in this order", markup=False)
        used = False
        for c in cands:
            mark = "used" if c.found and not used else ("found" if c.found else "-")
            used = used or c.found
            where = c.path if c.path is not None else ("(none found)" if c.origin.startswith("shared") else "(not set)")
            if c.problem:  # e.g. an unreadable home directory: reported, not fatal (--data-dir does not need it)
                where = f"{c.path or ''} (unusable: {c.problem})".lstrip()
            out.print(f"  [{mark}] {c.origin}: {where}", markup=False, soft_wrap=True)
    if info["error"] is not None:
        raise info["error"]
    out.print(f"data directory: {info['root']}", markup=False)
    rows = []
    for r in info["rows"]:
        status = ("ok" if r["ok"] else Text(r["message"], style="red"))
        digest = r["sha256"] or ""
        if r.get("registered") is False:
            digest = Text(digest + " (not the registered file)", style="yellow")
        rows.append((r["experiment"], inventory_path(r), status, digest))
    out.print(table(None, ("experiment", "file (under its data folder)", "status", "SHA-256"), rows, overflow="fold"))


def inventory_path(row: dict) -> str:
    return str(Path(row["path"]).relative_to(row["root"])) if row["path"] else row["key"]


def print_data_list(datasets, files_of) -> None:
    """``cevnsfit data list``: name, folder, files, size, whether the package reads it, source."""
    rows = []
    for d in datasets:
        files = files_of(d)
        rows.append((d.name, d.root, str(len(files)), f"{sum(f.size for f in files) / 1e6:.2f}",
                     "yes" if d.read else "no", d.citation))
    out.print(table("data sets", ("name", "folder", "files", "size [MB]", "read by cevnsfit", "source"), rows,
                    overflow="fold"))
