"""The results of an FC run as files: fc.json (the document's rows and raster), fc.md, fc.csv, the raster figure
fc_plane.png, and the FC columns that ``cevnsfit reproduce --fc`` adds to its limits table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path, check_writable_dir
from ..io.jsonio import json_text
from ..mediators import DATASETS, MEV_PER_GEV


def raster_section(model: str, datasets, masses, lines: dict) -> dict:
    """The fixed-mass raster: per data set and mass, the FC allowed set in g (islands included) beside Wilks."""
    out = {"model": model, "units": {"mass": "MeV", "g": "1"}, "masses_MeV": [float(m) for m in masses],
           "convention": "per mass: t(g) = chi2(g, M) - min_{g' >= 0} chi2(g', M); Wilks with one parameter",
           "datasets": {}}
    for d in datasets:
        entries = []
        for m in masses:
            s = lines[(d, "fixed_mass", m)]
            entries.append({
                "mass_MeV": float(m), "g": _num(s["limit"]), "toy_error_g": _num(s["toy_error"]),
                "allowed_g": [[float(a), _num(b)] for a, b in s["intervals"]],
                "islands_g": [{"interval": i["interval"], "p_value": i["p_value"], "significance": _num(i["significance"])}
                              for i in s["islands"]],
                "wilks_g": _num(s["wilks"]), "wilks_islands_g": [[float(a), float(b)] for a, b in s["wilks_islands"]],
                "coupling": [float(x) for x in s["tested"]], "t_obs": [float(x) for x in s["t_obs"]],
                "t_c": [float(x) for x in s["t_c"]], "p_value": [float(x) for x in s["p_value"]],
            })
        out["datasets"][d] = entries
    return out



def _num(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def document_row(model: str, dataset: str, regimes, lines: dict, table: dict | None) -> dict:
    """One fc.json row: the keys of ``limits --json`` plus the Wilks values, the toy errors and the lines."""
    unit = {"low_mass": 1.0, "high_mass": MEV_PER_GEV}
    key = {"low_mass": "g_low_mass", "high_mass": "g_over_M_high_mass"}
    row = {"model": model, "dataset": dataset, "wilks": {}, "toy_error": {}, "wilks_table": {}, "lines": {}}
    for r in ("low_mass", "high_mass"):
        s = lines.get((dataset, r, None))
        if s is None:
            row[key[r]] = None
            row[f"{r}_islands"] = []
            continue
        u = unit[r]
        if table:
            row["wilks_table"][key[r]] = _num(table[key[r]])
        row[key[r]] = _num(s["limit"] * u)
        row[f"{r}_islands"] = [[a * u, b * u] for a, b in (i["interval"] for i in s["islands"])]
        row["wilks"][key[r]] = _num(s["wilks"] * u)
        row["toy_error"][key[r]] = _num(None if s["toy_error"] is None else s["toy_error"] * u)
        row["lines"][r] = {
            "coupling_unit": "1" if r == "low_mass" else "GeV^-1",
            "coupling": [float(x * u) for x in s["tested"]],
            "t_obs": [float(x) for x in s["t_obs"]], "t_c": [float(x) for x in s["t_c"]],
            "t_c_band": [[float(a), float(b)] for a, b in s["t_c_band"]],
            "p_value": [float(x) for x in s["p_value"]], "chi2_min": float(s["chi2_min"]),
            "islands": [{"interval": [a * u, b * u], "p_value": i["p_value"], "significance": _num(i["significance"])}
                        for i, (a, b) in ((i, i["interval"]) for i in s["islands"])],
            "wilks_islands": [[a * u, b * u] for a, b in s["wilks_islands"]],
        }
    return row


def markdown(doc: dict) -> str:
    """``fc.md``: the FC limits beside the Wilks values (g, g/M in GeV^-1), one row per model and data set."""
    lines = [f"# Feldman-Cousins limits ({doc['cl']}: CL = {doc['cl_value']:.4f}, {doc['n_toys']} toys per point, "
             f"seed {doc['seed']}, {doc['construction']} construction)", "",
             "| model | data set | g (M -> 0) FC | Wilks | table (6.18) | g/M [GeV^-1] (M -> inf) FC | Wilks | table (6.18) | islands (FC) |",
             "|---|---|---|---|---|---|---|---|---|"]
    f = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
    if not doc["limits"]:  # a raster only
        lines = lines[:1]
    for r in doc["limits"]:
        cells = []
        for k in ("g_low_mass", "g_over_M_high_mass"):
            err = r["toy_error"].get(k)
            cells += [f(r[k]) + ("" if err is None else f" ± {err:.2g}"), f(r["wilks"].get(k)), f(r["wilks_table"].get(k))]
        isl = "; ".join(f"[{a:.3g}, {b:.3g}] (p = {i['p_value']:.3g})" for reg in r["lines"].values()
                        for i in reg["islands"] for a, b in [i["interval"]])
        lines.append(f"| {r['model']} | {r['dataset']} | " + " | ".join(cells) + f" | {isl or '-'} |")
    if "raster" in doc:
        ras = doc["raster"]
        lines += ["", f"## Fixed-mass raster ({ras['model']}): upper limit on g at each mass", "",
                  "| data set | M [MeV] | g FC | Wilks (1 parameter) | FC islands |", "|---|---|---|---|---|"]
        for d, entries in ras["datasets"].items():
            for e in entries:
                err = "" if e["toy_error_g"] is None else f" ± {e['toy_error_g']:.2g}"
                isl = "; ".join(f"[{i['interval'][0]:.3g}, {i['interval'][1]:.3g}]" for i in e["islands_g"])
                lines.append(f"| {d} | {e['mass_MeV']:.4g} | {f(e['g'])}{err} | {f(e['wilks_g'])} | {isl or '-'} |")
    return "\n".join(lines) + "\n"


def csv_text(doc: dict) -> str:
    """``fc.csv``: one row per model, data set and line (FC limit, toy error, Wilks values, unit)."""
    head = "model,dataset,regime,fc,toy_error,wilks,wilks_table,unit"
    out = [head]
    for r in doc["limits"]:
        for reg, k, unit in (("low_mass", "g_low_mass", "1"), ("high_mass", "g_over_M_high_mass", "GeV^-1")):
            if reg not in r["lines"]:
                continue
            vals = [r[k], r["toy_error"].get(k), r["wilks"].get(k), r["wilks_table"].get(k)]
            out.append(",".join([r["model"], r["dataset"], reg] + ["" if v is None else f"{v:.6g}" for v in vals] + [unit]))
    for d, entries in doc.get("raster", {}).get("datasets", {}).items():
        for e in entries:  # regime "fixed_mass_<M>MeV": the upper limit on g at that mass
            vals = [e["g"], e["toy_error_g"], e["wilks_g"], None]
            out.append(",".join([doc["raster"]["model"], d, f"fixed_mass_{e['mass_MeV']:.6g}MeV"]
                                + ["" if v is None else f"{v:.6g}" for v in vals] + ["1"]))
    return "\n".join(out) + "\n"


FC_KEYS = (("g_low_mass", "g (M -> 0)"), ("g_over_M_high_mass", "g/M [GeV^-1] (M -> inf)"))
"""(row key, column label) of the two asymptotic limits in the FC tables: g (M -> 0), g/M [GeV^-1] (M -> inf)."""


def with_fc_columns(rows: list, fc_rows: dict) -> list:
    """Limits-table rows (``limits --json`` keys) with an ``fc`` entry per number: the one-parameter Wilks
    limit on the line, the FC limit and its toy error (same units as the row: g, g/M in GeV^-1)."""
    out = []
    for r in rows:
        f = fc_rows.get((r["model"], r["dataset"]))
        extra = {} if f is None else {"fc": {k: {"wilks_1par": f["wilks"].get(k), "fc": f.get(k),
                                                 "toy_error": f["toy_error"].get(k)} for k, _ in FC_KEYS}}
        out.append({**r, **extra})
    return out


def fc_columns_markdown(rows: list, toys: int) -> str:
    """The limits table with its FC columns: table value | Wilks (1 parameter) | FC | toy error."""
    fmt = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
    head = " | ".join(f"{label}: table | Wilks 1 par. | FC | toy error" for _, label in FC_KEYS)
    lines = [f"## Feldman-Cousins ({toys} toys per tested coupling, 2 sigma = 95.45 %, one parameter per line)", "",
             f"| model | data set | {head} |", "|---|---|" + "---|---|---|---|" * len(FC_KEYS)]
    for r in rows:
        if "fc" not in r:
            continue
        cells = []
        for k, _ in FC_KEYS:
            c = r["fc"][k]
            cells += [fmt(r.get(k)), fmt(c["wilks_1par"]), fmt(c["fc"]), fmt(c["toy_error"])]
        lines.append(f"| {r['model']} | {r['dataset']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def raster_figure(doc: dict, dataset: str, path: Path, data_dir=None) -> Path:
    """The raster's FC and Wilks limits per mass over the model's (M, g) plane (Wilks contour, 1 parameter:
    Delta chi^2 from the minimum at each mass, the raster's convention), saved to ``path``."""
    from ..plotting.fc import raster_overlay
    from ..plotting.planes import plane_figure
    from ..plotting.style import save

    from ..io.datadir import data_key
    from .construction import _analysis

    an = _analysis(data_key(data_dir))
    res = an.analyse(doc["raster"]["model"], experiments=DATASETS[dataset])
    fig = plane_figure(res, gm2_epochs=(), curves=[], datasets=(dataset,), cl="1dof",
                       overlay=raster_overlay(doc["raster"], dataset))
    return save(fig, path)


def write_reports(doc: dict, out: Path) -> list[Path]:
    """Write ``fc.json``, ``fc.md`` and ``fc.csv`` of the FC document ``doc`` into the folder ``out`` (atomically);
    returns their paths."""
    out = check_writable_dir(Path(out))
    paths = []
    for name, text in (("fc.json", json_text(doc, 1)), ("fc.md", markdown(doc)), ("fc.csv", csv_text(doc))):
        with atomic_path(out / name) as tmp:
            Path(tmp).write_text(text)
        paths.append(out / name)
    return paths
