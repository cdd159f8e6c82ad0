"""Command line of cevnsfit (thin: every command calls the Python API).

Errors in the input (unknown names, missing or malformed data, an output path that cannot be written) end with one
line on stderr and exit code 2, never a traceback; exit codes: :func:`main`, README "Faults".
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

if __name__ == "__main__":  # `python -m cevnsfit.cli`: as the console script (entry.py), before numpy loads
    from .process import one_blas_thread

    one_blas_thread()

import numpy as np  # noqa: E402
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .errors import CevnsfitError, InputError
from .io.atomic import check_output_file
from .process import (EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_OUTPUT_FAILED, GuardedStdout, StdoutError,
                      check_interrupted, discard_stdout, install_signal_handlers, interrupted_message,
                      received_signal, say, stdout_is_closed)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fits of public COHERENT CEvNS data (CsI-2021, LAr-2020): SM and light mediators.")
plot_app = typer.Typer(no_args_is_help=True, help="Figures.")
data_app = typer.Typer(no_args_is_help=True, help="The COHERENT data releases.")
app.add_typer(plot_app, name="plot")
app.add_typer(data_app, name="data")

out = Console()  # writes to sys.stdout at call time: the GuardedStdout that main() installs
err = Console(stderr=True)

# Largest scan: 1e4 masses x 400 couplings peaks at 415 MiB resident (<= 1 GB; benchmarks/bench_memory.py,
# docs/validation.md): the templates are built in blocks of masses (templates.BLOCK_ELEMENTS).
MAX_SCAN_MASSES = 10_000
MAX_SCAN_POINTS = 4_000_000

DataDirOption = typer.Option(None, "--data-dir", help="COHERENT data directory (default: $CEVNSFIT_DATA, else "
                             "../shared/data/coherent beside the clone, else the data fetched by `cevnsfit data fetch`).")


def _print_json(doc, indent: int | None) -> None:
    from .io.jsonio import json_text

    sys.stdout.write(json_text(doc, indent))


def _experiments(choice: str) -> list[str]:
    from .experiments import EXPERIMENTS

    if choice == "all":
        return list(EXPERIMENTS)
    if choice not in EXPERIMENTS:
        raise InputError(f"unknown experiment '{choice}'; choose {', '.join(EXPERIMENTS)} or all")
    return [choice]


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def sm(
    experiment: str = typer.Option("all", "--experiment", "-e", help="csi, lar, xenonnt or all"),
    runs: Optional[str] = typer.Option(None, "--runs", help="XENONnT science runs, e.g. sr0,sr1 (default: all)."),
    data_dir: Optional[Path] = DataDirOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Standard-Model prediction and fit per experiment: counts per component, observed, chi^2_min, bins (COHERENT);
    observed, expected background and 8B signal, 8B flux fit and significance (XENONnT)."""
    from .analysis import sm_report

    names = _experiments(experiment)
    options = {}
    if runs is not None:
        if "xenonnt" not in names:
            raise InputError("--runs applies to --experiment xenonnt (or all)")
        options["xenonnt"] = {"runs": tuple(r.strip() for r in runs.split(",") if r.strip())}
    result = sm_report(names, {"coherent": data_dir} if data_dir is not None else None, options)
    if as_json:
        doc = {n: {k: v for k, v in r["summary"].items() if k != "nuisances"} for n, r in result.items()}
        _print_json(doc, indent=2)
        return
    for name, r in result.items():
        title, cols, rows, foot = r["table"]
        table = Table(title=title)
        for i, c in enumerate(cols):
            table.add_column(c, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        out.print(table)
        out.print(foot, markup=False)


@plot_app.command("spectra")
def plot_spectra(
    experiment: str = typer.Option(..., "--experiment", "-e", help="csi, lar or xenonnt (see `cevnsfit sm`)."),
    out_file: Path = typer.Option(..., "--out", help="Output figure (.png, .pdf or .svg)."),
    per_run: bool = typer.Option(False, "--per-run", help="XENONnT: one row of projections per science run."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Data against the stacked best-fit prediction: energy and time projections (COHERENT), the four binned
    observables' projections (XENONnT)."""
    from .experiments import EXPERIMENTS, load_experiment
    from .plotting.spectra import experiment_figure
    from .plotting.style import FORMATS, save

    if experiment not in EXPERIMENTS:
        raise InputError(f"unknown experiment '{experiment}'; choose one of {', '.join(EXPERIMENTS)}")
    if out_file.suffix.lower() not in FORMATS:
        raise InputError(f"cannot write a figure as '{out_file.suffix or out_file.name}': use one of {', '.join(FORMATS)}")
    check_output_file(out_file)
    exp = load_experiment(experiment, data_dir)
    save(experiment_figure(exp, per_run), out_file)
    out.print(f"wrote {out_file}")


def _model(name: Optional[str], charges: Optional[str]):
    from .physics.models import MODELS, custom_vector_model, get_model, parse_charges

    if charges is not None:
        if name in MODELS:
            raise InputError(f"'{name}' is a registered model with its own charges: give --charges alone, or with "
                             f"--model NEW_NAME to name the new model")
        return custom_vector_model(name or "custom", *parse_charges(charges))
    if name is None:
        raise InputError("give --model NAME or --charges 'Q_u,Q_d,Q_e,Q_mu,Q_tau'")
    return get_model(name)


def _positive(value: float, what: str) -> float:
    import math

    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a positive finite number, got {value}")
    return value


def _progress(total: int | None, description: str, elapsed: bool = False, transfer: bool = False):
    """(rich Progress on stderr, its task id); drawn on a terminal only and removed when done, so that an error
    or a log keeps to its own line.  ``elapsed`` shows the time so far instead of the time remaining; ``transfer``
    counts bytes (size done / total and speed)."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    clock = TimeElapsedColumn() if elapsed else TimeRemainingColumn()
    counts = [DownloadColumn(), TransferSpeedColumn()] if transfer else [TextColumn("{task.completed}/{task.total}")]
    class _Progress(Progress):
        def advance(self, task_id, advance: float = 1) -> None:
            check_interrupted()  # a signal a library swallowed still ends a long loop at its next step
            super().advance(task_id, advance)

    progress = _Progress(TextColumn("{task.description}"), BarColumn(), *counts,
                         clock, console=err, transient=True, disable=not err.is_terminal)
    return progress, progress.add_task(description, total=total)


@app.command()
def scan(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registered model name (see `cevnsfit models`)."),
    charges: Optional[str] = typer.Option(None, "--charges", help="Custom U(1)' charges 'Q_u,Q_d,Q_e,Q_mu,Q_tau'."),
    dataset: str = typer.Option("csi+lar", "--dataset", "-d", help="A registered data set: csi, lar, csi+lar, xenonnt, coherent+xenonnt."),
    mass_range: tuple[float, float] = typer.Option((1e-2, 1e4), "--mass-range", help="Mediator masses LO HI [MeV]."),
    n_mass: int = typer.Option(121, "--n-mass", help="Number of log-spaced masses."),
    coupling_range: tuple[float, float] = typer.Option((1e-7, 10.0), "--coupling-range", help="Couplings LO HI."),
    n_coupling: int = typer.Option(321, "--n-coupling", help="Number of log-spaced couplings (g = 0 is added)."),
    cl: str = typer.Option("2dof", "--cl", help="Contour convention: 2dof (Delta chi^2 = 6.18, plane) or 1dof (raster, 4)."),
    out_file: Path = typer.Option(..., "--out", help="Output NetCDF file (.nc)."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Delta chi^2(M, g) with every nuisance profiled; writes a self-describing NetCDF file."""
    from .io.results import scan_dataset, write_netcdf
    from .mediators import MediatorAnalysis, dataset_members
    from .physics.models import check_couplings
    from .stats.intervals import threshold

    mdl = _model(model, charges)
    names = dataset_members(dataset)
    threshold(cl)
    lo_m, hi_m = (_positive(x, "--mass-range") for x in mass_range)
    lo_g, hi_g = check_couplings([_positive(x, "--coupling-range") for x in coupling_range], "--coupling-range")
    if lo_m >= hi_m or lo_g >= hi_g or n_mass < 2 or n_coupling < 2:
        raise InputError("ranges need LO < HI and at least 2 points")
    if n_mass > MAX_SCAN_MASSES or n_mass * n_coupling > MAX_SCAN_POINTS:
        raise InputError(f"grid too large: at most {MAX_SCAN_MASSES} masses and {MAX_SCAN_POINTS:.0e} points "
                         f"(got {n_mass} x {n_coupling})")
    if out_file.suffix.lower() != ".nc":
        raise InputError(f"scan output must be a NetCDF file (.nc), got '{out_file.name}'")
    check_output_file(out_file)
    an = MediatorAnalysis(data_dir)
    progress, task = _progress(n_mass * len(names), f"scan {mdl.name} [{dataset}]")
    with progress:
        res = an.analyse(mdl, np.geomspace(lo_m, hi_m, n_mass), np.geomspace(lo_g, hi_g, n_coupling), names,
                         lambda k=1: progress.advance(task, k))
    contour = res.contour(dataset, cl)
    ds = scan_dataset(res.plane, dataset, contour, [an.experiment(n) for n in names])
    write_netcdf(ds, out_file)
    out.print(f"wrote {out_file}: {n_mass} masses x {n_coupling + 1} couplings, chi2_min = {res.chi2_min(dataset):.3f}")


@app.command()
def limits(
    model: str = typer.Option("all", "--model", "-m", help="Model name or all."),
    charges: Optional[str] = typer.Option(None, "--charges", help="Custom U(1)' charges 'Q_u,Q_d,Q_e,Q_mu,Q_tau' (instead of --model)."),
    dataset: str = typer.Option("all", "--dataset", "-d", help="csi, lar, csi+lar, xenonnt, coherent+xenonnt or all."),
    cl: str = typer.Option("2dof", "--cl", help="2dof: Delta chi^2 = 6.18 from the plane minimum; 1dof: 4 at fixed M."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """2 sigma limits: g for M -> 0 and g/M [GeV^-1] for M -> inf, with sign-flip islands and contours."""
    from .io.jsonio import NULL_MEANING, nulls_for_nonfinite
    from .mediators import DATASETS, MediatorAnalysis, convention
    from .physics.models import get_model, model_names

    if charges is not None:
        models = [_model(None if model == "all" else model, charges)]
    else:
        models = model_names() if model == "all" else [get_model(model).name]
    datasets = list(DATASETS) if dataset == "all" else [dataset]
    for d in datasets:
        if d not in DATASETS:
            raise InputError(f"unknown data set '{d}'; choose {', '.join(DATASETS)} or all")
    conv = convention(cl)
    an = MediatorAnalysis(data_dir)
    rows = []
    progress, task = _progress(len(models), "limits")
    with progress:
        for m in models:
            res = an.analyse(m, experiments=tuple(sorted({e for d in datasets for e in DATASETS[d]})))
            rows.extend(res.row(d, cl) for d in datasets)
            progress.advance(task)
    rows = nulls_for_nonfinite(rows)  # no finite limit: null in JSON, "none" in the table (docs/decisions.md)
    if as_json:
        doc = {"convention": conv, "units": {"mass": "MeV", "g_over_M": "GeV^-1", "g": "1"}, "limits": rows,
               "null": NULL_MEANING}
        _print_json(doc, indent=1)
        return
    table = Table(title=f"2 sigma limits ({conv['description']})")
    for col in ("model", "data set", "g (M -> 0)", "g/M [GeV^-1] (M -> inf)", "sign-flip islands"):
        table.add_column(col)
    for r in rows:
        edge = lambda x: "inf" if x is None else f"{x:.3g}"  # noqa: E731 - an island open at the grid end
        isl = "; ".join(f"g in [{edge(a)}, {edge(b)}]" for a, b in r["low_mass_islands"])
        isl += "; ".join(f"g/M in [{edge(a)}, {edge(b)}]" for a, b in r["high_mass_islands"])
        fmt = lambda x: "none" if x is None else f"{x:.3g}"  # noqa: E731
        table.add_row(r["model"], r["dataset"], fmt(r["g_low_mass"]), fmt(r["g_over_M_high_mass"]), isl)
    out.print(table)


def _fit_ranges(ranges: list[str]) -> dict:
    """--range NAME=LO:HI (repeatable) -> {name: (lo, hi)}."""
    out = {}
    for text in ranges:
        name, sep, span = text.partition("=")
        lo, sep2, hi = span.partition(":")
        try:
            if not (sep and sep2):
                raise ValueError
            out[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise InputError(f"--range must look like NAME=LO:HI (e.g. sin2_theta_w=0.1:0.4), got '{text}'") from None
    return out


@app.command()
def fit(
    param: list[str] = typer.Option([], "--param", "-p", help="Registered parameter (repeat for a 2-D fit); see "
                                    "docs/parameters.md: sin2_theta_w, r_n.Cs, r_n.I, r_n.CsI, r_n.Ar, mu_nu.e, "
                                    "mu_nu.mu, r2_nu.ee, r2_nu.mumu, q_nu.e, q_nu.mu, eps.u.ee, eps.d.ee, ..."),
    dataset: str = typer.Option("csi+lar", "--dataset", "-d", help="csi, lar or csi+lar"),
    ranges: list[str] = typer.Option([], "--range", help="Scan range NAME=LO:HI (default: the registry's)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Vector mediator whose coupling g joins the fit (with --mass)."),
    mass: Optional[float] = typer.Option(None, "--mass", help="Mediator mass [MeV] for --model (inf: contact limit, g/M in MeV^-1)."),
    points: Optional[int] = typer.Option(None, "--points", help="Grid points per parameter (default 241 for 1-D, 100 for 2-D)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Directory for the figure (Delta chi^2 curve or contour) and fit JSON."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Fit registered physics parameters (weak mixing angle, neutron radii, neutrino EM properties, NSI)."""
    from .io.atomic import check_writable_dir
    from .io.jsonio import write_json
    from .mediators import dataset_members
    from .plotting.poi import fit_figure
    from .plotting.style import save
    from .poifit import PoiFit

    names = tuple(param)
    dataset_members(dataset)
    if (model is None) != (mass is None):
        raise InputError("--model and --mass go together")
    if model is None and not names:
        raise InputError("name at least one parameter (--param NAME) or a mediator (--model NAME --mass MEV)")
    n_fit = len(names) + (model is not None)
    n_max = 5001 if n_fit == 1 else 250  # 250^2 profiled points stay well under 1 GB of work arrays
    if points is not None and not 11 <= points <= n_max:
        raise InputError(f"--points must be between 11 and {n_max} for {n_fit} parameter(s), got {points}")
    fitter = PoiFit(names, dataset, data_dir, ranges=_fit_ranges(ranges),  # validates names and ranges first
                    mediator=None if model is None else (model, mass))
    names = fitter.names
    if out_dir is not None:
        check_writable_dir(out_dir)
    outcome = fitter.run(points)
    doc = outcome.document()
    if out_dir is not None:
        stem = f"fit_{'__'.join(names)}_{dataset}".replace("+", "_")
        save(fit_figure(outcome, fitter.pois), out_dir / f"{stem}.png")
        write_json(doc, out_dir / f"{stem}.json")
    if as_json:
        _print_json(doc, indent=1)
        return
    table = Table(title=f"fit [{dataset}]: chi2_min = {outcome.chi2_min:.3f}, Delta chi2(SM) = {outcome.delta_chi2_sm:.3f}")
    for col in ("parameter", "unit", "SM", "best fit", "1 sigma", "90 %", "2 sigma"):
        table.add_column(col)

    def fmt(ivs):
        return " U ".join(f"[{'-inf' if lo is None else f'{lo:.4g}'}, {'inf' if hi is None else f'{hi:.4g}'}]" for lo, hi in ivs) or "none"

    for n in names:
        iv = doc["intervals"][n]
        table.add_row(n, doc["units"][n], f"{doc['sm'][n]:.4g}", f"{doc['best_fit'][n]:.4g}", fmt(iv["1sigma"]),
                      fmt(iv["90"]), fmt(iv["2sigma"]))
    out.print(table)


@app.command()
def project(
    detector: list[str] = typer.Option(..., "--detector", help="Detector YAML file, or the name of a shipped one "
                                       "(COH-Ar-750, COH-CryoCsI, COH-NaI-2, COH-Ge-1, ESS-CryoCsI); repeatable."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Mediator model: median expected limits with bands."),
    param: Optional[str] = typer.Option(None, "--param", "-p", help="Registered parameter: expected 1/2 sigma intervals."),
    cl: str = typer.Option("2dof", "--cl", help="2dof (Delta chi^2 = 6.18) or 1dof (4), as `cevnsfit limits`."),
    compare: bool = typer.Option(True, "--compare/--no-compare", help="Draw today's COHERENT CsI+LAr limit on the figure."),
    toys: int = typer.Option(0, "--toys", help="Also toy bands (this many replicas) on the M -> 0 and M -> inf lines."),
    seed: int = typer.Option(0, "--seed", help="Seed of the toys."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Directory for the JSON document (and, with --model, the figure)."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Projections for planned detectors: Asimov (SM) data, median expected limits and bands (docs/projections.md)."""
    from .experiments.declaration import declared_summary, load_declaration
    from .io.atomic import check_writable_dir
    from .io.jsonio import write_json
    from .physics.models import get_model
    from .projection import Projection, check_parameter
    from .stats.intervals import threshold

    if (model is None) == (param is None):
        raise InputError("give exactly one of --model NAME or --param NAME")
    threshold(cl)
    mdl = get_model(model) if model is not None else None
    if toys and (mdl is None or not 100 <= toys <= 100_000):
        raise InputError("--toys goes with --model and takes 100 to 100000 replicas")
    from .stats.toys import check_seed

    check_seed(seed)
    # every file, target, source and parameter is validated before anything is computed or written
    experiments = [load_declaration(d) for d in detector]
    for e in experiments:
        if not e.asimov:
            raise InputError(f"{e.declaration}: a projection needs Asimov data (data: {{observed: asimov}})")
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        raise InputError(f"detector named twice: {', '.join(names)}")
    for e in experiments:
        if param is not None:
            check_parameter(e, param)
    if out_dir is not None:
        check_writable_dir(out_dir)
    projections, results = [], []
    for e in experiments:
        pr = Projection(e, cl)
        if mdl is not None:
            res = pr.mediator(mdl, toys=toys, seed=seed)
            projections.append((e.label, res))
            results.append({"detector": declared_summary(pr.experiment), "projection": pr.mediator_document(res)})
        else:
            results.append({"detector": declared_summary(pr.experiment), "projection": pr.parameter(param)})
    doc = {"what": mdl.name if mdl is not None else param, "cl": cl, "results": results}
    if out_dir is not None:
        stem = f"project_{doc['what']}".replace("+", "_").replace("/", "_")
        if mdl is not None:
            from .plotting.projection import projection_figure
            from .plotting.style import save

            today = None
            if compare:
                from .mediators import MediatorAnalysis, dataset_members

                masses = [r.mass_mev for r in projections[0][1]["raster"]]
                an = MediatorAnalysis(data_dir)  # today's COHERENT limit: its experiments only
                cont = an.analyse(mdl, masses_mev=masses, experiments=dataset_members("csi+lar")).contour("csi+lar", cl)
                today = {"mass_mev": cont["mass_mev"], "g_upper": cont["g_upper"], "label": "COHERENT CsI+LAr today (observed)"}
            save(projection_figure(mdl, projections, today, cl), out_dir / f"{stem}.png")
        write_json(doc, out_dir / f"{stem}.json")
    if as_json:
        _print_json(doc, indent=1)
        return
    table = Table(title=f"projection: {doc['what']} ({cl})")
    if mdl is not None:
        for col in ("detector", "CEvNS events", "g (M -> 0): median [-1s, +1s]", "g/M [GeV^-1] (M -> inf): median [-1s, +1s]"):
            table.add_column(col)
        for r in results:
            p = r["projection"]

            def fmt(x):
                return f"{x['median']:.3g} [{x['band_1sigma'][0]:.3g}, {x['band_1sigma'][1]:.3g}]"

            table.add_row(r["detector"]["name"], f"{r['detector']['cevns_events']:.0f}", fmt(p["g_low_mass"]), fmt(p["g_over_M_high_mass"]))
    else:
        for col in ("detector", "CEvNS events", "unit", "SM", "expected 1 sigma", "expected 2 sigma"):
            table.add_column(col)
        for r in results:
            p = r["projection"]
            iv = lambda ivs: " U ".join(f"[{'-inf' if a is None else f'{a:.4g}'}, {'inf' if b is None else f'{b:.4g}'}]" for a, b in ivs)  # noqa: E731
            table.add_row(r["detector"]["name"], f"{r['detector']['cevns_events']:.0f}", p["unit"], f"{p['sm']:.4g}",
                          iv(p["expected_intervals"]["1sigma"]), iv(p["expected_intervals"]["2sigma"]))
    out.print(table)
    if out_dir is not None:
        out.print(f"wrote {out_dir}")


@app.command()
def gm2(
    model: str = typer.Option(..., "--model", "-m", help="Model name (vector U(1)' or scalar)."),
    mass: float = typer.Option(..., "--mass", help="Mediator mass [MeV]."),
    coupling: float = typer.Option(..., "--coupling", help="Coupling g (the muon coupling is g |Q'_mu|)."),
    epoch: str = typer.Option("2021", "--gm2", help="Delta a_mu epoch for the favoured band: 2021, 2023 or 2025."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """One-loop (g-2)_mu contribution delta a_mu of a mediator, and the favoured band at that mass."""
    from .mediators import gm2_kind_and_charge
    from .physics.gm2 import band_has_lower_edge, check_mass, delta_a_mu, favoured_band, get_epoch
    from .physics.models import MAX_COUPLING, check_couplings, get_model

    mdl = get_model(model)
    check_mass(mass)
    check_couplings(_positive(coupling, "--coupling"), "--coupling")
    ep = get_epoch(epoch)
    kind, charge = gm2_kind_and_charge(mdl)
    value = float(delta_a_mu(mass, coupling, kind, charge_mu=charge)) if charge else 0.0
    doc = {"delta_a_mu": value}
    if charge:
        lo, hi = favoured_band(mass, ep.name, kind, charge)
        g_low = float(lo) if band_has_lower_edge(ep.name) else None
        # one loop needs g <= 4 pi: a band above it is no prediction of this model, so it is marked, not printed plainly
        beyond = "entirely" if (g_low or 0.0) > MAX_COUPLING else "partly" if hi > MAX_COUPLING else "no"
        doc["band"] = {"epoch": ep.name, "delta_a_mu_measured": ep.delta, "sigma": ep.sigma, "n_sigma": 2.0,
                       "g_low": g_low, "g_high": float(hi), "perturbative_bound": MAX_COUPLING,
                       "beyond_perturbative_bound": beyond}
    else:
        doc["band"] = None
        doc["note"] = f"{mdl.name} has Q'_mu = 0: no contribution to (g-2)_mu"
    if as_json:
        _print_json(doc, indent=None)
        return
    out.print(f"delta a_mu = {value:.4e}  ({mdl.name}, M = {mass:g} MeV, g = {coupling:g})", markup=False)
    if doc["band"]:
        b = doc["band"]
        low = "0 (no lower edge)" if b["g_low"] is None else f"{b['g_low']:.4g}"
        mark = {"no": "", "partly": f"  [upper part beyond the perturbative bound g <= 4 pi = {MAX_COUPLING:.4g}]",
                "entirely": f"  [NOT PERTURBATIVE: the whole band lies beyond g <= 4 pi = {MAX_COUPLING:.4g}; "
                            "the one-loop result does not apply]"}[b["beyond_perturbative_bound"]]
        out.print(f"{ep.name} favoured 2 sigma band at this mass: g in [{low}, {b['g_high']:.4g}]{mark}", markup=False,
                  soft_wrap=True)
    else:
        out.print(doc["note"])


@app.command()
def reproduce(
    out_dir: Path = typer.Option(Path("cevnsfit-output"), "--out", help="Output directory (created if needed)."),
    gm2: list[str] = typer.Option(["2021", "2025"], "--gm2", help="(g-2)_mu epochs drawn on the figures (repeatable)."),
    cl: str = typer.Option("2dof", "--cl", help="Limits convention: 2dof (6.18, plane minimum) or 1dof (4, fixed M)."),
    with_fc: bool = typer.Option(False, "--fc", help="Also Feldman-Cousins limits (toys) on both asymptotic lines: FC "
                                 "columns in the limits table, FC asymptotes on the figures (slow: see --toys)."),
    toys: int = typer.Option(1000, "--toys", help="With --fc: toys per tested coupling."),
    fc_backend: str = typer.Option("dask", "--fc-backend", help="With --fc: dask (local cluster) or serial."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Limits table (md, tex, csv, json), every figure, the scans and a report, in one directory."""
    from .mediators import convention
    from .physics.gm2 import get_epoch
    from .reproduce import reproduce as run

    for ep in gm2:
        get_epoch(ep)
    convention(cl)
    progress, task = _progress(None, "reproduce", elapsed=True)
    with progress:

        def report(label: str, done: int, total: int) -> None:
            progress.update(task, description=label, completed=done, total=total)

        result = run(out_dir, data_dir, gm2_epochs=tuple(gm2), cl=cl, progress=report,
                     fc_toys=toys if with_fc else None, fc_backend=fc_backend)
    out.print(f"wrote {result['out']} in {result['wall_time_s']:.1f} s: limits.md/.tex/.csv/.json, verdicts.json, "
              f"{len(result['figures'])} figure files, scans/, report.md")


def _fc_progress():
    """Progress of the toy tasks on stderr: tasks done / total and toys per second (terminal only)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("fc"), BarColumn(), TextColumn("{task.completed}/{task.total} tasks"),
                        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err, transient=True,
                        disable=not err.is_terminal)
    return progress, progress.add_task("fc", total=None, rate="")


@app.command()
def fc(
    model: str = typer.Option(..., "--model", "-m", help="Registered model name (see 'cevnsfit models')."),
    dataset: str = typer.Option("csi+lar", "--dataset", "-d", help="csi, lar, csi+lar or all."),
    regime: str = typer.Option("both", "--regime", help="low (M -> 0, bound on g), high (M -> inf, g/M) or both."),
    toys: int = typer.Option(1000, "--toys", help="Toy experiments per tested coupling."),
    seed: int = typer.Option(0, "--seed", help="Master seed (results are bit-identical for a given seed)."),
    cl: str = typer.Option("2sigma", "--cl", help="2sigma (95.45 %) or 90."),
    construction: str = typer.Option("profile", "--nuisances", help="profile: toys at the profiled nuisances, pull "
                                     "centres randomised; fixed: nominal nuisances, centres fixed."),
    backend: str = typer.Option("dask", "--backend", help="dask (local cluster, or --scheduler) or serial."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler (tcp://HOST:PORT)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local cluster size (default: one per core)."),
    block: int = typer.Option(100, "--block", help="Toys per task."),
    per_decade: int = typer.Option(20, "--points-per-decade", help="Tested couplings per decade of the line."),
    with_table: bool = typer.Option(True, "--wilks-table/--no-wilks-table", help="Also compute the limits table's "
                                    "two-parameter Wilks values (one (M, g) plane scan per model)."),
    masses: Optional[str] = typer.Option(None, "--masses", help="Fixed-mass raster instead of the asymptotic lines: "
                                         "M1,M2,... or LO:HI:N (MeV, log-spaced); one data set."),
    figure: bool = typer.Option(True, "--figure/--no-figure", help="With --masses: fc_plane.png, the FC raster on "
                                "the model's (M, g) plane beside the Wilks contour (one plane scan)."),
    out_dir: Path = typer.Option(..., "--out", help="Output directory: fc.json, fc.md, fc.csv and the resumable store/."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Feldman-Cousins (Neyman, toys) limits on the two asymptotic lines (or a fixed-mass raster), beside Wilks;
    resumable, on Dask."""
    import time

    from .fc import REGIMES, parse_masses, run_fc, toy_data_sets, write_reports
    from .mediators import DATASETS, MediatorAnalysis
    from .physics.models import get_model
    from .stats.toys import check_seed, confidence_level

    check_seed(seed)  # before anything is loaded or written (a negative seed would fail at the first toy)
    if dataset != "all" and dataset not in DATASETS:
        raise InputError(f"unknown data set '{dataset}'; choose {', '.join(DATASETS)} or all")
    if regime not in REGIMES:
        raise InputError(f"unknown regime '{regime}'; choose low, high or both")
    if toys < 1 or toys > 10_000_000 or block < 1 or not 2 <= per_decade <= 1000:
        raise InputError("--toys must be in 1..1e7, --block positive, --points-per-decade in 2..1000")
    if workers is not None and workers < 1:
        raise InputError("--workers must be positive")
    if scheduler is not None and backend != "dask":
        raise InputError("--scheduler needs --backend dask")
    mass_list = None if masses is None else parse_masses(masses)
    get_model(model)
    confidence_level(cl)
    # which data sets can have toys is a property of their costs (stats.chi2.ReplicaCost): 'all' loads every
    # experiment once, here; run_fc reuses the analysis and refuses a data set whose costs cannot throw replicas
    an = MediatorAnalysis(data_dir)
    datasets = toy_data_sets(an) if dataset == "all" else [dataset]
    if mass_list is not None and len(datasets) != 1:
        raise InputError(f"--masses makes the raster of one data set: choose one of {', '.join(datasets)}")
    progress, task = _fc_progress()
    state = {"toys": 0, "t0": time.perf_counter()}

    def report(total, n_toys=0):
        if total is not None:
            progress.update(task, total=total)
            state["t0"] = time.perf_counter()
            return
        state["toys"] += n_toys
        rate = state["toys"] / max(time.perf_counter() - state["t0"], 1e-9)
        progress.update(task, advance=1, rate=f"{rate:.0f} toys/s")

    with progress:
        doc = run_fc(model, datasets, REGIMES[regime] if mass_list is None else (), toys, seed, cl, out_dir, backend,
                     scheduler, workers, construction, block, per_decade, data_dir=data_dir, progress=report,
                     with_table=with_table, masses=mass_list, analysis=an)
    write_reports(doc, out_dir)
    out.print(f"wrote {out_dir}/fc.json, fc.md, fc.csv ({toys} toys per point, {doc['cl']})")
    if mass_list is not None and figure:
        from .fc import raster_figure

        path = raster_figure(doc, datasets[0], out_dir / "fc_plane.png", data_dir)
        out.print(f"wrote {path}")


@app.command()
def models() -> None:
    """The registered models with their U(1)' charges and anomaly freedom."""
    from .physics.models import get_model, model_names

    table = Table(title="models")
    for col in ("name", "Q'_u", "Q'_d", "Q'_e", "Q'_mu", "Q'_tau", "anomaly free"):
        table.add_column(col)
    for name in model_names():
        m = get_model(name)
        if getattr(m, "kind", "vector") == "scalar":
            table.add_row(name, "-", "-", "-", "-", "-", "-")
            continue
        table.add_row(name, *(f"{c:.4g}" for c in m.charges), "yes" if m.is_anomaly_free else "no")
    out.print(table)


@data_app.command("info")
def data_info(data_dir: Optional[Path] = DataDirOption) -> None:
    """Where the data are looked for (in order), which folder is used, and every expected file: present, parses,
    SHA-256 and whether it equals the registered one."""
    from .experiments.inventory import data_inventory
    from .io.datacheck import search_report

    for collection, cands in search_report(data_dir).items():
        out.print(f"{collection}: looked for in this order", markup=False)
        used = False
        for c in cands:
            mark = "used" if c.found and not used else ("found" if c.found else "-")
            used = used or c.found
            where = c.path if c.path is not None else ("(none found)" if c.origin.startswith("shared") else "(not set)")
            if c.problem:  # e.g. an unreadable home directory: reported, not fatal (--data-dir does not need it)
                where = f"{c.path or ''} (unusable: {c.problem})".lstrip()
            out.print(f"  [{mark}] {c.origin}: {where}", markup=False, soft_wrap=True)
    root, rows = data_inventory(data_dir)
    out.print(f"data directory: {root}", markup=False)
    table = Table()
    for col in ("experiment", "file (under its data folder)", "status", "SHA-256"):
        table.add_column(col, overflow="fold")
    rel = lambda r: str(Path(r["path"]).relative_to(r["root"])) if r["path"] else r["key"]  # noqa: E731
    for r in rows:
        status = ("ok" if r["ok"] else Text(r["message"], style="red"))
        digest = r["sha256"] or ""
        if r.get("registered") is False:
            digest = Text(digest + " (not the registered file)", style="yellow")
        table.add_row(r["experiment"], rel(r), status, digest)
    out.print(table)
    bad = [r for r in rows if not r["ok"]]
    if len(bad) == 1 and bad[0]["message"] not in ("", "missing"):  # one damaged or unreadable file: as `sm` says it
        raise CevnsfitError(bad[0]["message"])
    if bad:
        raise CevnsfitError(f"{len(bad)} data file(s) missing or unreadable under {root}: "
                            + ", ".join(rel(r) for r in bad))


def _dataset_help() -> str:
    from .io.registry import DATASETS, GROUPS

    names = ", ".join(f"{d.name}{'' if d.read else ' (not read yet)'}" for d in DATASETS.values())
    return f"Data sets: {names}; groups: {', '.join(GROUPS)}. Default: every data set the package reads."


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
    progress, task = _progress(None, "fetch", transfer=True)
    files = {"n": 0}

    def report(event: str, value) -> None:
        if event == "start":
            progress.update(task, total=value)
        elif event == "advance":
            progress.advance(task, value)
        elif event == "file":
            files["n"] += 1
            progress.update(task, description=f"fetch {Path(value).name[:40]:<40}")

    with progress:
        rep = fetch(dest=dest, mirrors=mirror, force=force, upstream=not no_upstream, progress=report,
                    datasets=chosen)
    out.print(f"{rep.dest}: {len(rep.downloaded)} file(s) downloaded, {len(rep.present)} already present and "
              f"verified ({', '.join(d.name for d in chosen)})", markup=False, soft_wrap=True)


@data_app.command("verify")
def data_verify(
    datasets: Optional[list[str]] = typer.Argument(None, help="Data sets to check (default: those the package reads)."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Check every file the package would read against the registry; name each one that differs (exit 2)."""
    from .io.datadir import resolve_collection
    from .io.fetch import verify

    roots = {"coherent": resolve_collection("coherent", data_dir)}
    rows = verify(datasets or [], roots)
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

    table = Table(title="data sets")
    for col in ("name", "folder", "files", "size [MB]", "read by cevnsfit", "source"):
        table.add_column(col, overflow="fold")
    for d in DATASETS.values():
        files = dataset_files(d)
        table.add_row(d.name, d.root, str(len(files)), f"{sum(f.size for f in files) / 1e6:.2f}",
                      "yes" if d.read else "no", d.citation)
    out.print(table)


# typer's (vendored or external) click base classes, found without importing click itself: BadParameter derives
# from UsageError (bad option values, unknown options and commands), which derives from ClickException.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ABORT = typer.Abort


def _fail(message: str, code: int = 2) -> None:
    say(f"error: {message}")
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; every way it can end is one line on stderr at most, never a traceback.

    Exit codes (README, "Faults"): 0 success; 2 bad input or data (``error: ...``), including an output path refused
    before anything is written; 1 an output that could not be written once writing began (standard output full or
    closed, a full disk, an I/O error) or the memory ran out (``error: out of memory while running ...``); 130
    interrupted by SIGINT or SIGTERM; 141 (128 + SIGPIPE) the reader of a pipe went away, silently, as for Unix
    tools (``cevnsfit models | head -c 10``).
    """
    install_signal_handlers()
    if stdout_is_closed():
        _fail(str(StdoutError(None)), EXIT_OUTPUT_FAILED)
    if not isinstance(sys.stdout, GuardedStdout):
        sys.stdout = GuardedStdout(sys.stdout)
    if received_signal() is not None:  # arrived during the imports and was swallowed there: stop before any work
        _interrupted()
    out_of_memory = False
    try:
        try:
            code = app(argv, standalone_mode=False, prog_name="cevnsfit")
        finally:
            if received_signal() is None:
                sys.stdout.flush()  # buffered output fails here, inside the handlers below, not at interpreter exit
    except MemoryError:  # numpy's too: its _ArrayMemoryError derives from MemoryError
        out_of_memory = True  # reported below, once this block has dropped the frames that held the memory
    except StdoutError as exc:
        discard_stdout()
        if exc.broken_pipe:
            raise SystemExit(EXIT_BROKEN_PIPE) from None
        _fail(str(exc), EXIT_OUTPUT_FAILED)
    except CevnsfitError as exc:
        _fail(str(exc), exc.exit_code)
    except _USAGE_ERROR as exc:
        message = exc.format_message()
        if not message:  # no arguments: click has printed the help already
            raise SystemExit(2) from None
        where = exc.ctx.command_path if exc.ctx is not None else "cevnsfit"
        _fail(f"{message} (see '{where} --help')")
    except (KeyboardInterrupt, _ABORT):
        _interrupted()
    except OSError as exc:  # the environment, not the input: a full disk or a vanished folder while writing a file
        where = f" ({exc.filename})" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}", EXIT_OUTPUT_FAILED)
    if out_of_memory:  # temporaries of atomic writes are gone already (removed on any exception)
        _fail(f"out of memory while running `{_command_name(argv)}`", EXIT_OUTPUT_FAILED)
    if received_signal() is not None or code == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into 130 silently
        _interrupted()
    raise SystemExit(code if isinstance(code, int) else 0)


def _command_name(argv: list[str] | None) -> str:
    """``cevnsfit COMMAND`` (``cevnsfit data fetch`` for a command of a group) from the arguments."""
    words = ["cevnsfit"]
    for arg in sys.argv[1:] if argv is None else argv:
        if arg.startswith("-"):
            break
        words.append(arg)
        if arg not in ("data", "plot"):  # the groups (data_app, plot_app)
            break
    return " ".join(words)


def _interrupted() -> None:
    say(interrupted_message(received_signal()))
    raise SystemExit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
