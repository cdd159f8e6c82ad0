"""``cevnsfit reproduce``: the paper's tables, figures, scans and a report from one call.

Output folder layout::

    limits.{md,tex,csv,json}   2 sigma limits (g for M -> 0, g/M in GeV^-1 for M -> inf), all models and data sets
    verdicts.json              does CsI+LAr exclude the (g-2)_mu band? (2021, 2023, 2025 values of Delta a_mu)
    scans/<model>_<dataset>.nc (M, g) Delta chi^2 grids (NetCDF)
    figures/*.png, *.pdf       one (M, g) figure per model, the summary figure, the CsI and LAr spectra
    report.md                  inputs and citations, conventions, numbers vs references, checksums, wall time

Every file is written atomically.  A rerun reuses the chi^2 grids cached in ``cache/`` when the software
version, the grid and the data checksums are unchanged (resume after an interruption).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .analysis import sm_summary
from .errors import InputError
from .io.atomic import atomic_path, check_writable_dir, write_text
from .io.jsonio import write_json
from .io.results import data_checksums, scan_dataset, write_netcdf
from .io.tables import csv_text, latex, markdown
from .mediators import (DATASETS, Grid, MediatorAnalysis, ModelAnalysis, convention, default_couplings,
                        default_masses, gm2_verdict)
from .parameters import DEFAULT
from .physics.models import get_model, model_names

# AC22 2 sigma table rows available to this project (g, g/M in GeV^-1); the other nine models' rows are not.
AC22_REFERENCE = {
    ("B-L", "lar"): (5.35e-5, 1.67e-3), ("B-L", "csi"): (5.27e-5, 1.00e-3), ("B-L", "csi+lar"): (4.42e-5, 0.99e-3),
    ("L_mu-L_tau", "lar"): (234e-5, 80.9e-3), ("L_mu-L_tau", "csi"): (116e-5, 26.6e-3),
    ("L_mu-L_tau", "csi+lar"): (103e-5, 24.2e-3),
}
GM2_EPOCHS = ("2021", "2023", "2025")


def _fingerprint(checksums: dict, masses: np.ndarray, couplings: np.ndarray, model) -> str:
    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(json.dumps(checksums, sort_keys=True).encode())
    h.update(np.asarray(masses).tobytes() + np.asarray(couplings).tobytes())
    h.update(repr(getattr(model, "charges", model.name)).encode())
    return h.hexdigest()[:16]


def _save_cache(path: Path, res: ModelAnalysis, fp: str) -> None:
    arrays = {"fingerprint": np.array(fp)}
    for tag, grid in (("plane", res.plane), ("low", res.low), ("high", res.high)):
        arrays[f"{tag}_masses"] = grid.masses_mev
        arrays[f"{tag}_couplings"] = grid.couplings
        for name, chi in grid.chi2.items():
            arrays[f"{tag}_chi2_{name}"] = chi
            arrays[f"{tag}_sm_{name}"] = np.array(grid.chi2_sm[name])
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load_cache(path: Path, an: MediatorAnalysis, model, fp: str) -> ModelAnalysis | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fp:
                return None
            grids = {}
            for tag in ("plane", "low", "high"):
                chi = {n: z[f"{tag}_chi2_{n}"] for n in ("csi", "lar")}
                sm = {n: float(z[f"{tag}_sm_{n}"]) for n in ("csi", "lar")}
                grids[tag] = Grid(model, z[f"{tag}_masses"], z[f"{tag}_couplings"], chi, sm)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # an unreadable cache is recomputed, never trusted
    return ModelAnalysis(an, model, grids["plane"], grids["low"], grids["high"])


def reproduce(out_dir, data_dir=None, models=None, gm2_epochs=("2021", "2025"), cl: str = "2dof",
              progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run the whole analysis into ``out_dir``; returns a summary dict (paths, timing, verdicts)."""
    t_start = time.perf_counter()
    # Everything that can fail on the input is checked before the first folder is made: names, convention, data,
    # and every output path (a directory where a file goes would otherwise stop the run late, after some writes).
    models = [get_model(m) for m in (models or model_names())]
    convention(cl)
    an = MediatorAnalysis(data_dir)
    exps = [an.experiment("csi"), an.experiment("lar")]
    out = Path(out_dir)
    for path in _planned_outputs(out, models):
        if path.is_dir():
            raise InputError(f"cannot write {path}: it is a directory")
    out = check_writable_dir(out)
    for sub in ("scans", "figures", "cache"):
        check_writable_dir(out / sub)
    checksums = data_checksums(exps)
    masses, couplings = default_masses(), default_couplings()
    steps = len(models) + 2
    step = 0

    def tick(label: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(label, step, steps)

    # Standard Model
    sm = {name: sm_summary(an.experiment(name)) for name in ("csi", "lar")}
    tick("Standard-Model fits")

    results, rows, rows_1dof, verdicts = {}, [], [], []
    for model in models:
        fp = _fingerprint(checksums, masses, couplings, model)
        cache = out / "cache" / f"{_slug(model.name)}.npz"
        res = _load_cache(cache, an, model, fp)
        if res is None:
            res = an.analyse(model, masses, couplings)
            _save_cache(cache, res, fp)
        results[model.name] = res
        for d in DATASETS:
            rows.append(res.row(d, cl))
            rows_1dof.append({k: v for k, v in res.row(d, "1dof").items() if k != "contour"})
            ds = scan_dataset(res.plane, d, res.contour(d, cl), exps)
            write_netcdf(ds, out / "scans" / f"{_slug(model.name)}_{_slug(d)}.nc")
        for ep in GM2_EPOCHS:
            verdicts.append(gm2_verdict(res, "csi+lar", ep, cl))
        tick(f"model {model.name}")

    # tables
    caption = f"2 sigma limits ({convention(cl)['description']}); g for M -> 0, g/M in GeV^-1 for M -> inf"
    write_text(out / "limits.md", markdown(rows, caption))
    write_text(out / "limits.tex", latex(rows, caption))
    write_text(out / "limits.csv", csv_text(rows))
    write_json({"convention": convention(cl), "units": {"mass": "MeV", "g_over_M": "GeV^-1", "g": "1"},
                "limits": rows, "limits_1dof": rows_1dof}, out / "limits.json")
    write_json(verdicts, out / "verdicts.json")

    figures = _figures(out / "figures", results, an, gm2_epochs, cl)
    tick("figures")
    wall = time.perf_counter() - t_start
    report = _report(sm, rows, rows_1dof, verdicts, figures, checksums, cl, gm2_epochs, wall, models)
    write_text(out / "report.md", report)
    return {"out": str(out), "wall_time_s": wall, "figures": figures, "verdicts": verdicts}


def _planned_outputs(out: Path, models) -> list[Path]:
    """Every file :func:`reproduce` writes into ``out``."""
    paths = [out / f for f in ("limits.md", "limits.tex", "limits.csv", "limits.json", "verdicts.json", "report.md")]
    stems = [f"plane_{_slug(m.name)}" for m in models] + ["summary_csi+lar", "spectra_csi", "spectra_lar"]
    paths += [out / "figures" / f"{stem}{suffix}" for stem in stems for suffix in (".png", ".pdf")]
    for m in models:
        paths.append(out / "cache" / f"{_slug(m.name)}.npz")
        paths += [out / "scans" / f"{_slug(m.name)}_{_slug(d)}.nc" for d in DATASETS]
    return paths


def _slug(name: str) -> str:
    return name.replace("+", "p").replace("/", "_")


def _figures(folder: Path, results: dict, an: MediatorAnalysis, gm2_epochs, cl: str) -> list[str]:
    from .limits.catalog import curves_for_model
    from .plotting.planes import plane_figure, summary_figure
    from .plotting.spectra import spectra_figure
    from .plotting.style import save

    paths = []

    def both(fig_fn, stem):
        for suffix in (".png", ".pdf"):
            save(fig_fn(), folder / f"{stem}{suffix}")
            paths.append(str(folder / f"{stem}{suffix}"))

    for name, res in results.items():
        curves = curves_for_model(name)
        both(lambda: plane_figure(res, gm2_epochs=gm2_epochs, curves=curves, cl=cl), f"plane_{_slug(name)}")
    vectors = {n: r for n, r in results.items() if getattr(r.model, "kind", "vector") == "vector"}
    if vectors:
        both(lambda: summary_figure(vectors, "csi+lar", cl), "summary_csi+lar")
    for exp_name in ("csi", "lar"):
        exp = an.experiment(exp_name)
        pred = exp.sm_prediction()
        fit = exp.cost().fit(pred["cevns"])
        both(lambda: spectra_figure(exp, fit, pred), f"spectra_{exp_name}")
    return paths


def _report(sm, rows, rows_1dof, verdicts, figures, checksums, cl, gm2_epochs, wall, models) -> str:
    by = {(r["model"], r["dataset"]): r for r in rows}
    lines = ["# cevnsfit reproduction of Atzori Corona et al., JHEP 05 (2022) 109 (arXiv:2202.11002)", "",
             f"- software: cevnsfit {__version__}, Python {platform.python_version()}, {platform.platform()}",
             f"- wall time: {wall:.1f} s", f"- limits convention: {convention(cl)['description']}; "
             f"reference minimum: {convention(cl)['reference_minimum']}",
             f"- (g-2)_mu bands drawn: {', '.join(gm2_epochs)} (2 sigma); verdicts computed for {', '.join(GM2_EPOCHS)}", "",
             "## Standard Model", "", "| data set | component | predicted | best fit | observed | chi2_min / bins |", "|---|---|---|---|---|---|"]
    for name, r in sm.items():
        for z in r["predicted"]:
            lines.append(f"| {name} | {z} | {r['predicted'][z]:.1f} | {r['best_fit'][z]:.1f} | {r['observed']} | "
                         f"{r['chi2_min']:.2f} / {r['n_bins']} |")
    lines += ["", "## 2 sigma limits", "", markdown(rows), "", "### Against the AC22 rows available to us", "",
              "| model | data set | g (ours / AC22) | g/M [GeV^-1] (ours / AC22) |", "|---|---|---|---|"]
    for (m, d), (g_ref, gm_ref) in AC22_REFERENCE.items():
        r = by.get((m, d))
        if r is None:
            continue
        lines.append(f"| {m} | {d} | {r['g_low_mass']:.3g} / {g_ref:.3g} ({100 * (r['g_low_mass'] / g_ref - 1):+.1f} %) | "
                     f"{r['g_over_M_high_mass']:.3g} / {gm_ref:.3g} ({100 * (r['g_over_M_high_mass'] / gm_ref - 1):+.1f} %) |")
    islands = [r for r in rows if r["low_mass_islands"] or r["high_mass_islands"]]
    if islands:
        lines += ["", "Sign-flip (destructive interference) allowed islands above the tabulated limit:", ""]
        for r in islands:
            parts = [f"g in [{a:.3g}, {b:.3g}]" for a, b in r["low_mass_islands"]]
            parts += [f"g/M in [{a:.3g}, {b:.3g}] GeV^-1" for a, b in r["high_mass_islands"]]
            lines.append(f"- {r['model']} ({r['dataset']}): " + "; ".join(parts))
    lines += ["", "## (g-2)_mu verdicts (CsI+LAr)", "", "| model | " + " | ".join(GM2_EPOCHS) + " |", "|---" * 4 + "|"]
    per = {}
    for v in verdicts:
        per.setdefault(v["model"], {})[v["epoch"]] = v["verdict"]
    for m, eps in per.items():
        lines.append(f"| {m} | " + " | ".join(eps.get(e, "") for e in GM2_EPOCHS) + " |")
    lines += ["", "AC22 concludes that COHERENT excludes the (g-2)_mu explanation for the models with tree-level quark and",
              "muon couplings; its conclusion also names B-3L_e, which has Q'_mu = 0 and hence no band (see the physics",
              "specification, open point b): we report 'no band' for it.", "",
              "## Figures", ""] + [f"- {p}" for p in figures if p.endswith(".png")]
    lines += ["", "## Inputs and citations", "", "| parameter | value | unit | source |", "|---|---|---|---|"]
    for key, value, unit, source in DEFAULT.citations():
        lines.append(f"| {key} | {value:g} | {unit} | {source} |")
    lines += ["", "## Data files (SHA-256)", ""] + [f"- `{k}`: `{v}`" for k, v in checksums.items()]
    return "\n".join(lines) + "\n"
