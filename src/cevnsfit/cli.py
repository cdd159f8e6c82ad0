"""Command line of cevnsfit: a thin shell over the Python API.  Each command parses its options, makes one call
into the API (:mod:`cevnsfit.analysis`, :mod:`cevnsfit.projection`, :mod:`cevnsfit.fc`, :mod:`cevnsfit.reproduce`,
...) and hands the result to a printer of :mod:`cevnsfit.cli_format`; the ``data`` sub-commands are in
:mod:`cevnsfit.cli_data`.

Errors in the input (unknown names, missing or malformed data, unwritable outputs) end with one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

if __name__ == "__main__":  # `python -m cevnsfit.cli`: as the console script (entry.py), before numpy loads
    from .process import one_blas_thread

    one_blas_thread()

import typer  # noqa: E402

from . import __version__  # noqa: E402
from .analysis import MAX_SCAN_MASSES, MAX_SCAN_POINTS  # noqa: E402,F401 - the scan limits (benchmarks/bench_memory.py)
from .cli_data import data_app  # noqa: E402
from .cli_format import (DataDirOption, DataHomeOption, FcProgress, out, print_fit, print_gm2, print_limits, print_models,  # noqa: E402
                         print_projection, print_sm, progress)
from .errors import CevnsfitError, InputError
from .io.datadir import data_folders  # noqa: E402
from .experiments import DATA_SETS, DEFAULT_DATA_SET, EXPERIMENTS  # noqa: E402
from .process import (EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_OUTPUT_FAILED, GuardedStdout, StdoutError,  # noqa: E402
                      discard_stdout, install_signal_handlers, interrupted_message, received_signal, say,
                      stdout_is_closed)

# the names in the help come from the registries (data/datasets.yaml, the experiment modules), never from literals
_EXPERIMENT_NAMES = ", ".join(EXPERIMENTS)
_DATA_SET_NAMES = ", ".join(DATA_SETS)
_DATASET_HELP = f"A registered data set ({_DATA_SET_NAMES}) or a declaration FILE.yaml."

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fits of public CEvNS data (accelerator, solar, reactor): the Standard Model, light mediators, "
                  "neutrino properties and projections.")
plot_app = typer.Typer(no_args_is_help=True, help="Figures.")
app.add_typer(plot_app, name="plot")
app.add_typer(data_app, name="data")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def sm(
    experiment: str = typer.Option("all", "--experiment", "-e", help=f"{_EXPERIMENT_NAMES}, all, or a declaration FILE.yaml."),
    runs: Optional[str] = typer.Option(None, "--runs", help="XENONnT science runs, e.g. sr0,sr1 (default: all)."),
    data_dir: Optional[Path] = DataDirOption,
    data_home: Optional[Path] = DataHomeOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Standard-Model prediction and fit per experiment: counts per component, observed, chi^2_min, bins (COHERENT);
    observed, expected background and 8B signal, 8B flux fit and significance (XENONnT)."""
    data_dir = data_folders(data_dir, data_home)
    from .analysis import sm_documents

    print_sm(sm_documents(experiment, runs, data_dir), as_json)


@plot_app.command("spectra")
def plot_spectra(
    experiment: str = typer.Option(..., "--experiment", "-e", help=f"{_EXPERIMENT_NAMES} (see `cevnsfit sm`), or a declaration FILE.yaml."),
    out_file: Path = typer.Option(..., "--out", help="Output figure (.png, .pdf or .svg)."),
    per_run: bool = typer.Option(False, "--per-run", help="XENONnT: one row of projections per science run."),
    data_dir: Optional[Path] = DataDirOption,
    data_home: Optional[Path] = DataHomeOption,
) -> None:
    """Data against the stacked best-fit prediction: energy and time projections (COHERENT), the four binned
    observables' projections (XENONnT)."""
    data_dir = data_folders(data_dir, data_home)
    from .plotting.spectra import spectra_file

    spectra_file(experiment, out_file, per_run, data_dir)
    out.print(f"wrote {out_file}")


@app.command()
def scan(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registered model name (see `cevnsfit models`)."),
    charges: Optional[str] = typer.Option(None, "--charges", help="Custom U(1)' charges 'Q_u,Q_d,Q_e,Q_mu,Q_tau'."),
    dataset: str = typer.Option(DEFAULT_DATA_SET, "--dataset", "-d", help=_DATASET_HELP),
    mass_range: tuple[float, float] = typer.Option((1e-2, 1e4), "--mass-range", help="Mediator masses LO HI [MeV]."),
    n_mass: int = typer.Option(121, "--n-mass", help="Number of log-spaced masses."),
    coupling_range: tuple[float, float] = typer.Option((1e-7, 10.0), "--coupling-range", help="Couplings LO HI."),
    n_coupling: int = typer.Option(321, "--n-coupling", help="Number of log-spaced couplings (g = 0 is added)."),
    cl: str = typer.Option("2dof", "--cl", help="Contour convention: 2dof (Delta chi^2 = 6.18, plane) or 1dof (raster, 4)."),
    out_file: Path = typer.Option(..., "--out", help="Output NetCDF file (.nc)."),
    data_dir: Optional[Path] = DataDirOption,
    data_home: Optional[Path] = DataHomeOption,
) -> None:
    """Delta chi^2(M, g) with every nuisance profiled; writes a self-describing NetCDF file."""
    data_dir = data_folders(data_dir, data_home)
    from .analysis import scan_file

    with progress(f"scan {model or 'custom'} [{dataset}]") as bar:
        res = scan_file(out_file, model, charges, dataset, mass_range, n_mass, coupling_range, n_coupling, cl,
                        data_dir, bar.counts)
    out.print(f"wrote {out_file}: {res['n_mass']} masses x {res['n_coupling'] + 1} couplings, chi2_min = "
              f"{res['chi2_min']:.3f}")


@app.command()
def limits(
    model: str = typer.Option("all", "--model", "-m", help="Model name or all."),
    charges: Optional[str] = typer.Option(None, "--charges", help="Custom U(1)' charges 'Q_u,Q_d,Q_e,Q_mu,Q_tau' (instead of --model)."),
    dataset: str = typer.Option("all", "--dataset", "-d", help=f"{_DATA_SET_NAMES}, all, or a declaration FILE.yaml."),
    cl: str = typer.Option("2dof", "--cl", help="2dof: Delta chi^2 = 6.18 from the plane minimum; 1dof: 4 at fixed M."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    hepdata: Optional[Path] = typer.Option(None, "--hepdata", help="Also write the limits and contours as a HEPData "
                                           "submission into this folder (a new, empty or former submission folder)."),
    data_dir: Optional[Path] = DataDirOption,
    data_home: Optional[Path] = DataHomeOption,
) -> None:
    """2 sigma limits: g for M -> 0 and g/M [GeV^-1] for M -> inf, with sign-flip islands and contours."""
    data_dir = data_folders(data_dir, data_home)
    from .analysis import limits_document

    with progress("limits") as bar:
        doc = limits_document(model, charges, dataset, cl, data_dir, bar.counts, hepdata)
    print_limits(doc, as_json)
    if hepdata is not None and not as_json:
        out.print(f"wrote the HEPData submission {hepdata}")


def _fit_ranges(ranges: list[str]) -> dict:
    """--range NAME=LO:HI (repeatable) -> {name: (lo, hi)}."""
    parsed = {}
    for text in ranges:
        name, sep, span = text.partition("=")
        lo, sep2, hi = span.partition(":")
        try:
            if not (sep and sep2):
                raise ValueError
            parsed[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise InputError(f"--range must look like NAME=LO:HI (e.g. sin2_theta_w=0.1:0.4), got '{text}'") from None
    return parsed


@app.command()
def fit(
    param: list[str] = typer.Option([], "--param", "-p", help="Registered parameter (repeat for a 2-D fit); see "
                                    "docs/parameters.md: sin2_theta_w, r_n.Cs, r_n.I, r_n.CsI, r_n.Ar, mu_nu.e, "
                                    "mu_nu.mu, r2_nu.ee, r2_nu.mumu, q_nu.e, q_nu.mu, eps.u.ee, eps.d.ee, ..."),
    dataset: str = typer.Option(DEFAULT_DATA_SET, "--dataset", "-d", help=_DATASET_HELP),
    ranges: list[str] = typer.Option([], "--range", help="Scan range NAME=LO:HI (default: the registry's)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Vector mediator whose coupling g joins the fit (with --mass)."),
    mass: Optional[float] = typer.Option(None, "--mass", help="Mediator mass [MeV] for --model (inf: contact limit, g/M in MeV^-1)."),
    points: Optional[int] = typer.Option(None, "--points", help="Grid points per parameter (default 241 for 1-D, 100 for 2-D)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Directory for the figure (Delta chi^2 curve or contour) and fit JSON."),
    data_dir: Optional[Path] = DataDirOption,
    data_home: Optional[Path] = DataHomeOption,
) -> None:
    """Fit registered physics parameters (weak mixing angle, neutron radii, neutrino EM properties, NSI)."""
    data_dir = data_folders(data_dir, data_home)
    from .analysis import run_fit

    print_fit(run_fit(param, dataset, _fit_ranges(ranges), model, mass, points, out_dir, data_dir), as_json)


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
    data_home: Optional[Path] = DataHomeOption,
) -> None:
    """Projections for planned detectors: Asimov (SM) data, median expected limits and bands (docs/projections.md)."""
    data_dir = data_folders(data_dir, data_home)
    from .analysis import project as run

    doc = run(detector, model, param, cl, compare, toys, seed, out_dir, data_dir)
    print_projection(doc, as_json, mediator=model is not None)
    if out_dir is not None and not as_json:
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
    from .analysis import gm2_document

    print_gm2(gm2_document(model, mass, coupling, epoch), as_json, model, mass, coupling)


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
    data_home: Optional[Path] = DataHomeOption,
) -> None:
    """Limits table (md, tex, csv, json), every figure, the scans and a report, in one directory."""
    data_dir = data_folders(data_dir, data_home)
    from .reproduce import reproduce as run

    with progress("reproduce", elapsed=True) as bar:
        result = run(out_dir, data_dir, gm2_epochs=tuple(gm2), cl=cl,
                     progress=lambda label, done, total: bar.update(description=label, completed=done, total=total),
                     fc_toys=toys if with_fc else None, fc_backend=fc_backend)
    out.print(f"wrote {result['out']} in {result['wall_time_s']:.1f} s: limits.md/.tex/.csv/.json, verdicts.json, "
              f"{len(result['figures'])} figure files, scans/, report.md")


@app.command()
def fc(
    model: str = typer.Option(..., "--model", "-m", help="Registered model name (see 'cevnsfit models')."),
    dataset: str = typer.Option(DEFAULT_DATA_SET, "--dataset", "-d", help=f"{_DATA_SET_NAMES} or all."),
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
    data_home: Optional[Path] = DataHomeOption,
) -> None:
    """Feldman-Cousins (Neyman, toys) limits on the two asymptotic lines (or a fixed-mass raster), beside Wilks;
    resumable, on Dask."""
    data_dir = data_folders(data_dir, data_home)
    from .fc import raster_figure, run_fc_to_folder

    with FcProgress() as bar:
        doc = run_fc_to_folder(model, out_dir, dataset, regime, toys, seed, cl, construction, backend, scheduler,
                               workers, block, per_decade, with_table, masses, data_dir, bar.report)
    out.print(f"wrote {out_dir}/fc.json, fc.md, fc.csv ({toys} toys per point, {doc['cl']})")
    if masses is not None and figure:  # a second product, after the reports are written and announced
        raster = next(iter(doc["raster"]["datasets"]))
        out.print(f"wrote {raster_figure(doc, raster, out_dir / 'fc_plane.png', data_dir)}")


@app.command()
def models() -> None:
    """The registered models with their U(1)' charges and anomaly freedom."""
    from .physics.models import get_model, model_names

    print_models(get_model(name) for name in model_names())


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
    from .stats import compiled

    compiled.announce_with(say)  # a first run compiles the likelihood kernels (~30 s): say so on stderr, once
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
