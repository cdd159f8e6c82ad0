"""The Python API behind the command line: one function per command that computes (Standard-Model fits, scans,
limits tables, (g-2)_mu contributions, the data inventory); the command line parses its options, calls one of
these and prints the result (:mod:`cevnsfit.cli_format`).

```python
from cevnsfit.analysis import sm_documents
sm_documents("csi")["csi"]["summary"]["chi2_min"]   # the CsI chi^2 at the SM, nuisances profiled
```
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from .errors import CevnsfitError, InputError
from .experiments import DEFAULT_DATA_SET, resolve_data_set
from .experiments.base import sm_summary  # noqa: F401  (the SM document of an experiment, re-exported)
from .experiments.inventory import data_inventory

__all__ = ["sm_documents", "scan_file", "limits_document", "write_hepdata", "gm2_document", "data_info", "run_fit",
           "project", "resolve_model", "MAX_SCAN_MASSES", "MAX_SCAN_POINTS"]

# Largest scan: 1e4 masses x 400 couplings peaks at 415 MiB resident (<= 1 GB; benchmarks/bench_memory.py,
# docs/validation/speed.md): the templates are built in blocks of masses (templates.BLOCK_ELEMENTS).
MAX_SCAN_MASSES = 10_000
"""The most masses a scan (``cevnsfit scan``) may have."""
MAX_SCAN_POINTS = 4_000_000
"""The most (mass, coupling) points a scan may have (memory stays under 1 GB)."""

# progress(done, total): called as work is done (``total`` known from the first call)
Progress = Callable[[int, int], None]


def sm_documents(experiment: str = "all", runs: str | None = None, data_dir=None) -> dict:
    """``cevnsfit sm``: {name: {"summary": the experiment's SM document, "table": (title, columns, rows, footer)}}
    for one experiment (a registered name, or a declaration file) or ``all``; ``runs`` "sr0,sr1": the science runs
    of the experiments that have them; ``data_dir`` the COHERENT folder (or a mapping collection -> folder)."""
    from dataclasses import fields

    from .experiments import EXPERIMENTS, experiment_or_declaration

    if experiment == "all":
        names = list(EXPERIMENTS)
    else:
        names = [experiment]
    options = {}
    if runs is not None:
        with_runs = [n for n in names if n in EXPERIMENTS and EXPERIMENTS[n].options is not None
                     and "runs" in {f.name for f in fields(EXPERIMENTS[n].options)}]
        if not with_runs:
            raise InputError(f"--runs applies to an experiment with science runs "
                             f"({', '.join(n for n, e in EXPERIMENTS.items() if e.options is not None and 'runs' in {f.name for f in fields(e.options)})})")
        options = {n: {"runs": tuple(r.strip() for r in runs.split(",") if r.strip())} for n in with_runs}
    roots = {"coherent": data_dir} if data_dir is not None and not isinstance(data_dir, dict) else data_dir
    out = {}
    for name in names:
        exp = experiment_or_declaration(name, roots, **options.get(name, {}))
        summary = exp.sm_summary()
        out[exp.name] = {"summary": summary, "table": exp.sm_table(summary)}
    return out


def resolve_model(name: str | None, charges: str | None):
    """The registered model ``name``, or a vector model with the ``charges`` 'Q_u,Q_d,Q_e,Q_mu,Q_tau' (named
    ``name``, default "custom")."""
    from .physics.models import MODELS, custom_vector_model, get_model, parse_charges

    if charges is not None:
        if name in MODELS:
            raise InputError(f"'{name}' is a registered model with its own charges: give --charges alone, or with "
                             f"--model NEW_NAME to name the new model")
        return custom_vector_model(name or "custom", *parse_charges(charges))
    if name is None:
        raise InputError("give --model NAME or --charges 'Q_u,Q_d,Q_e,Q_mu,Q_tau'")
    return get_model(name)


def positive(value: float, what: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a positive finite number, got {value}")
    return value


def scan_file(out_file, model: str | None = None, charges: str | None = None, dataset: str = DEFAULT_DATA_SET,
              mass_range=(1e-2, 1e4), n_mass: int = 121, coupling_range=(1e-7, 10.0), n_coupling: int = 321,
              cl: str = "2dof", data_dir=None, progress: Progress | None = None) -> dict:
    """``cevnsfit scan``: Delta chi^2(M, g) of a model on log-spaced masses (MeV) and couplings (g = 0 added), every
    nuisance profiled, written as NetCDF to ``out_file``.  Returns {out, n_mass, n_coupling, chi2_min}."""
    import numpy as np

    from .io.atomic import check_output_file
    from .io.results import scan_dataset, write_netcdf
    from .mediators import MediatorAnalysis, dataset_members
    from .physics.models import check_couplings
    from .stats.intervals import threshold

    mdl = resolve_model(model, charges)
    dataset = resolve_data_set(dataset)
    names = dataset_members(dataset)
    threshold(cl)
    lo_m, hi_m = (positive(x, "--mass-range") for x in mass_range)
    lo_g, hi_g = check_couplings([positive(x, "--coupling-range") for x in coupling_range], "--coupling-range")
    if lo_m >= hi_m or lo_g >= hi_g or n_mass < 2 or n_coupling < 2:
        raise InputError("ranges need LO < HI and at least 2 points")
    if n_mass > MAX_SCAN_MASSES or n_mass * n_coupling > MAX_SCAN_POINTS:
        raise InputError(f"grid too large: at most {MAX_SCAN_MASSES} masses and {MAX_SCAN_POINTS:.0e} points "
                         f"(got {n_mass} x {n_coupling})")
    out_file = Path(out_file)
    if out_file.suffix.lower() != ".nc":
        raise InputError(f"scan output must be a NetCDF file (.nc), got '{out_file.name}'")
    check_output_file(out_file)
    an = MediatorAnalysis(data_dir)
    total, done = (n_mass + 2) * len(names), [0]  # the plane's mass rows and the two asymptotic lines

    def step(k: int = 1) -> None:
        done[0] += k
        progress(done[0], total)

    if progress is not None:
        progress(0, total)
    res = an.analyse(mdl, np.geomspace(lo_m, hi_m, n_mass), np.geomspace(lo_g, hi_g, n_coupling), names,
                     step if progress is not None else None)
    contour = res.contour(dataset, cl)
    write_netcdf(scan_dataset(res.plane, dataset, contour, [an.experiment(n) for n in names]), out_file)
    return {"out": str(out_file), "n_mass": n_mass, "n_coupling": n_coupling, "chi2_min": res.chi2_min(dataset)}


def limits_document(model: str = "all", charges: str | None = None, dataset: str = "all", cl: str = "2dof",
                    data_dir=None, progress: Progress | None = None, hepdata=None) -> dict:
    """``cevnsfit limits``: 2 sigma limits (g for M -> 0, g/M in GeV^-1 for M -> inf, sign-flip islands, contours)
    of one model (or ``all``, or the ``charges`` of a custom one) on one data set or ``all``; non-finite numbers
    are null (docs/decisions.md).  ``hepdata``: a folder to write the limits and contours to as a HEPData
    submission (:func:`write_hepdata`), checked before anything is computed."""
    from .io.jsonio import NULL_MEANING, nulls_for_nonfinite
    from .mediators import DATASETS, MediatorAnalysis, convention
    from .physics.models import get_model, model_names

    if hepdata is not None:
        from .io.hepdata import check_hepdata_dir

        check_hepdata_dir(hepdata)
    if charges is not None:
        models = [resolve_model(None if model == "all" else model, charges)]
    else:
        models = model_names() if model == "all" else [get_model(model).name]
    datasets = list(DATASETS) if dataset == "all" else [resolve_data_set(dataset)]
    conv = convention(cl)
    an = MediatorAnalysis(data_dir)
    rows = []
    if progress is not None:
        progress(0, len(models))
    for i, m in enumerate(models):
        res = an.analyse(m, experiments=tuple(sorted({e for d in datasets for e in DATASETS[d]})))
        rows.extend(res.row(d, cl) for d in datasets)
        if progress is not None:
            progress(i + 1, len(models))
    rows = nulls_for_nonfinite(rows)  # no finite limit: null in JSON, "none" in the table (docs/decisions.md)
    doc = {"convention": conv, "units": {"mass": "MeV", "g_over_M": "GeV^-1", "g": "1"}, "limits": rows,
           "null": NULL_MEANING}
    if hepdata is not None:
        write_hepdata(doc, hepdata)
    return doc


def write_hepdata(doc: dict, folder, fc_toys: int | None = None) -> Path:
    """Write a limits document (:func:`limits_document`, or the rows of ``cevnsfit reproduce`` with their ``fc``
    entries and ``fc_toys``) to ``folder`` as a HEPData submission (:mod:`cevnsfit.io.hepdata`): a table of the
    asymptotic limits per data set (g for M -> 0, g/M in GeV^-1 for M -> inf), a contour table per model and data
    set (upper limit on g against the mass in MeV), validated, written atomically.  Returns the folder."""
    from .io.hepdata import write_submission

    return write_submission(folder, doc["limits"], doc["convention"], hepdata_labels(), hepdata_comment(doc),
                            fc_toys)


def hepdata_labels() -> dict[str, str]:
    """Data set -> the name its tables carry in a HEPData submission (the registry's label)."""
    from .experiments import DATA_SETS

    return {name: spec.label for name, spec in DATA_SETS.items()}


def hepdata_comment(doc: dict) -> str:
    """The submission's comment: what made the numbers and with which convention."""
    from . import __version__

    models = sorted({r["model"] for r in doc["limits"]})
    return (f"Limits on light mediators from coherent elastic neutrino-nucleus scattering (CEvNS), computed by "
            f"cevnsfit {__version__} from public data; models: {', '.join(models)}. Convention: "
            f"{doc['convention']['description']}. Method of AC22 (M. Atzori Corona et al., JHEP 05 (2022) 109, "
            f"arXiv:2202.11002).")


def gm2_document(model: str, mass: float, coupling: float, epoch: str = "2021") -> dict:
    """``cevnsfit gm2``: the one-loop (g-2)_mu contribution delta a_mu of a mediator (mass in MeV, coupling g) and
    the favoured 2 sigma band of ``epoch`` at that mass, marked where it lies beyond the perturbative bound."""
    from .mediators import gm2_kind_and_charge
    from .physics.gm2 import band_has_lower_edge, check_mass, delta_a_mu, favoured_band, get_epoch
    from .physics.models import MAX_COUPLING, check_couplings, get_model

    mdl = get_model(model)
    check_mass(mass)
    check_couplings(positive(coupling, "--coupling"), "--coupling")
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
    return doc


def data_info(data_dir=None) -> dict:
    """``cevnsfit data info``: {"search": {collection: the places searched, in order}, "root": the COHERENT folder,
    "rows": one per expected file of every registered experiment (:func:`data_inventory`), "error": None}; when no
    COHERENT folder is found, root and rows are None and "error" is the :class:`CevnsfitError` that says so (the
    search is worth showing before it)."""
    from .io.datacheck import search_report

    search = search_report(data_dir)
    try:
        root, rows = data_inventory(data_dir)
    except CevnsfitError as exc:
        return {"search": search, "root": None, "rows": None, "error": exc}
    return {"search": search, "root": root, "rows": rows, "error": None}


def run_fit(params=(), dataset: str = DEFAULT_DATA_SET, ranges: dict | None = None, model: str | None = None,
            mass: float | None = None, points: int | None = None, out_dir=None, data_dir=None) -> dict:
    """``cevnsfit fit``: fit the registered parameters ``params`` (and, with ``model`` and ``mass`` in MeV, a vector
    mediator's coupling) to ``dataset``; ``ranges`` {name: (lo, hi)}; ``points`` per parameter.  With ``out_dir``
    the figure (Delta chi^2 curve or contour) and the JSON document are written there.  Returns the document."""
    from .io.atomic import check_writable_dir
    from .io.jsonio import write_json
    from .mediators import dataset_members
    from .plotting.poi import fit_figure
    from .plotting.style import save
    from .poifit import PoiFit

    names = tuple(params)
    dataset = resolve_data_set(dataset)
    if (model is None) != (mass is None):
        raise InputError("--model and --mass go together")
    if model is None and not names:
        raise InputError("name at least one parameter (--param NAME) or a mediator (--model NAME --mass MEV)")
    n_fit = len(names) + (model is not None)
    n_max = 5001 if n_fit == 1 else 250  # 250^2 profiled points stay well under 1 GB of work arrays
    if points is not None and not 11 <= points <= n_max:
        raise InputError(f"--points must be between 11 and {n_max} for {n_fit} parameter(s), got {points}")
    fitter = PoiFit(names, dataset, data_dir, ranges=ranges,  # validates names and ranges first
                    mediator=None if model is None else (model, mass))
    names = fitter.names
    if out_dir is not None:
        check_writable_dir(out_dir)
    outcome = fitter.run(points)
    doc = outcome.document()
    if out_dir is not None:
        stem = f"fit_{'__'.join(names)}_{dataset}".replace("+", "_")
        save(fit_figure(outcome, fitter.pois), Path(out_dir) / f"{stem}.png")
        write_json(doc, Path(out_dir) / f"{stem}.json")
    return doc


def project(detectors, model: str | None = None, param: str | None = None, cl: str = "2dof", compare: bool = True,
            toys: int = 0, seed: int = 0, out_dir=None, data_dir=None) -> dict:
    """``cevnsfit project``: the expected sensitivity of each planned detector (a YAML file or the name of a shipped
    one) to a mediator ``model`` (median expected limits with bands; ``toys`` > 0 adds toy bands on the asymptotic
    lines) or to a registered ``param`` (expected intervals).  Every file, target, source and parameter is validated
    before anything is computed or written.  With ``out_dir`` the document (and, for a model, the figure against
    today's COHERENT CsI+LAr limit unless ``compare`` is False; ``data_dir``: its COHERENT folder) is written there.

    Returns {"what": model or parameter, "cl", "results": [{"detector": summary, "projection": document}, ...]}."""
    from .experiments.declaration import declared_summary, load_declaration
    from .io.atomic import check_writable_dir
    from .io.jsonio import write_json
    from .physics.models import get_model
    from .projection import Projection, check_parameter
    from .stats.intervals import threshold
    from .stats.toys import check_seed

    if (model is None) == (param is None):
        raise InputError("give exactly one of --model NAME or --param NAME")
    threshold(cl)
    mdl = get_model(model) if model is not None else None
    if toys and (mdl is None or not 100 <= toys <= 100_000):
        raise InputError("--toys goes with --model and takes 100 to 100000 replicas")
    check_seed(seed)
    experiments = [load_declaration(d) for d in detectors]
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
            _projection_figure(mdl, projections, cl, compare, data_dir, Path(out_dir) / f"{stem}.png")
        write_json(doc, Path(out_dir) / f"{stem}.json")
    return doc


def _projection_figure(model, projections: list, cl: str, compare: bool, data_dir, path: Path) -> None:
    """The projections' median limits and bands per mass, beside today's limit of the default data set
    (``compare``: AC22's COHERENT CsI+LAr)."""
    from .experiments import DATA_SETS, DEFAULT_DATA_SET
    from .plotting.projection import projection_figure
    from .plotting.style import save

    today = None
    if compare:
        from .mediators import MediatorAnalysis, dataset_members

        masses = [r.mass_mev for r in projections[0][1]["raster"]]
        an = MediatorAnalysis(data_dir)  # today's limit: the default data set's experiments only
        cont = an.analyse(model, masses_mev=masses,
                          experiments=dataset_members(DEFAULT_DATA_SET)).contour(DEFAULT_DATA_SET, cl)
        today = {"mass_mev": cont["mass_mev"], "g_upper": cont["g_upper"],
                 "label": f"{DATA_SETS[DEFAULT_DATA_SET].legend} today (observed)"}
    save(projection_figure(model, projections, today, cl), path)
