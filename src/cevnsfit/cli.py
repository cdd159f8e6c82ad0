"""Command line of cevnsfit (thin: every command calls the Python API).

Errors in the input (unknown names, missing or malformed data, unwritable outputs) end with one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import CevnsfitError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fits of public COHERENT CEvNS data (CsI-2021, LAr-2020): SM and light mediators.")
plot_app = typer.Typer(no_args_is_help=True, help="Figures.")
data_app = typer.Typer(no_args_is_help=True, help="The COHERENT data releases.")
app.add_typer(plot_app, name="plot")
app.add_typer(data_app, name="data")

out = Console()
err = Console(stderr=True)

DataDirOption = typer.Option(None, "--data-dir", help="COHERENT data directory (default: $CEVNSFIT_DATA, else ../shared/data/coherent).")


def _experiments(choice: str) -> list[str]:
    choices = {"csi": ["csi"], "lar": ["lar"], "all": ["csi", "lar"]}
    if choice not in choices:
        raise InputError(f"unknown experiment '{choice}'; choose csi, lar or all")
    return choices[choice]


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def sm(
    experiment: str = typer.Option("all", "--experiment", "-e", help="csi, lar or all"),
    data_dir: Optional[Path] = DataDirOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Standard-Model prediction and profiled fit: counts per component, observed, chi^2_min, bins."""
    from .analysis import sm_summaries

    names = _experiments(experiment)
    result = sm_summaries(names, data_dir)
    if as_json:
        doc = {n: {k: v for k, v in r.items() if k != "nuisances"} for n, r in result.items()}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    for name, r in result.items():
        table = Table(title=f"{name}: observed {r['observed']} events, chi2_min = {r['chi2_min']:.2f} for {r['n_bins']} bins")
        table.add_column("component")
        table.add_column("predicted [events]", justify="right")
        table.add_column("best fit [events]", justify="right")
        for z in r["predicted"]:
            table.add_row(z, f"{r['predicted'][z]:.1f}", f"{r['best_fit'][z]:.1f}")
        table.add_row("total", f"{sum(r['predicted'].values()):.1f}", f"{sum(r['best_fit'].values()):.1f}")
        out.print(table)
        out.print("nuisances: " + ", ".join(f"{k} = {v:+.3f}" for k, v in r["nuisances"].items()))


@plot_app.command("spectra")
def plot_spectra(
    experiment: str = typer.Option(..., "--experiment", "-e", help="csi or lar"),
    out_file: Path = typer.Option(..., "--out", help="Output figure (.png, .pdf or .svg)."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Data against the stacked best-fit prediction, energy and time projections."""
    from .experiments import load_experiment
    from .plotting.spectra import spectra_figure
    from .plotting.style import FORMATS, save

    if experiment not in ("csi", "lar"):
        raise InputError(f"unknown experiment '{experiment}'; choose csi or lar")
    if out_file.suffix.lower() not in FORMATS:
        raise InputError(f"cannot write a figure as '{out_file.suffix or out_file.name}': use one of {', '.join(FORMATS)}")
    exp = load_experiment(experiment, data_dir)
    pred = exp.sm_prediction()
    fit = exp.cost().fit(pred["cevns"])
    save(spectra_figure(exp, fit, pred), out_file)
    out.print(f"wrote {out_file}")


@data_app.command("info")
def data_info(data_dir: Optional[Path] = DataDirOption) -> None:
    """Resolved data directory; checks every expected file is there and parses."""
    from .io.datacheck import data_inventory

    root, rows = data_inventory(data_dir)
    out.print(f"data directory: {root}")
    table = Table()
    for col in ("experiment", "file", "status"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["experiment"], r["path"] or r["key"], "ok" if r["ok"] else f"[red]{r['message']}[/red]")
    out.print(table)
    bad = [r for r in rows if not r["ok"]]
    if bad:
        raise CevnsfitError(f"{len(bad)} data file(s) missing or unreadable under {root}")


def main() -> None:
    """Entry point: run the app, turning user-facing errors into one line and exit code 2."""
    try:
        app()
    except CevnsfitError as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
