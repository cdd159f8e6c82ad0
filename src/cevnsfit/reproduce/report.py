"""The reproduction's results as files: the limits table (Markdown, LaTeX, CSV, JSON), the (g-2) verdicts and the
report (report.md).  Formatting only: the numbers come from :mod:`cevnsfit.reproduce.pipeline`.

Table columns: model, then per data set the 2 sigma limit on g (M -> 0) and on g/M in GeV^-1 (M -> inf).
"""

from __future__ import annotations

import csv
import io
import math
import platform
from pathlib import Path

from .. import __version__
from ..experiments import DATA_SETS
from ..io.atomic import write_text
from ..io.jsonio import NULL_MEANING, nulls_for_nonfinite, write_json
from ..mediators import convention

# AC22 2 sigma table rows available to this project (g, g/M in GeV^-1), per data set in data/datasets.yaml
# (reproduce.ac22); the other nine models' rows are not
AC22_REFERENCE = {(model, d): tuple(map(float, v)) for d, spec in DATA_SETS.items()
                  for model, v in spec.reproduce.get("ac22", {}).items() if model != "source"}
RESULT_FILES = ("limits.md", "limits.tex", "limits.csv", "limits.json", "verdicts.json", "report.md")

DATASET_ORDER = tuple(DATA_SETS)  # the registry's order
DATASET_LABEL = {name: spec.label for name, spec in DATA_SETS.items()}


def _by_model(rows: list[dict]) -> dict:
    table: dict = {}
    for r in rows:
        table.setdefault(r["model"], {})[r["dataset"]] = r
    return table


def _fmt(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"


def markdown(rows: list[dict], caption: str = "") -> str:
    cols = [f"{DATASET_LABEL[d]} {q}" for d in DATASET_ORDER for q in ("g", "g/M [GeV⁻¹]")]
    lines = ([caption, ""] if caption else []) + ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for model, per in _by_model(rows).items():
        vals = []
        for d in DATASET_ORDER:
            r = per.get(d)
            vals += [_fmt(r["g_low_mass"]) if r else "—", _fmt(r["g_over_M_high_mass"]) if r else "—"]
        lines.append(f"| {model} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def _tex_model(name: str) -> str:
    name = name.replace("_mu", r"_\mu").replace("_tau", r"_\tau").replace("_y", "_y")
    return f"${name}$" if name != "universal" and name != "scalar" else name


def latex(rows: list[dict], caption: str = "") -> str:
    head = " & ".join(f"\\multicolumn{{2}}{{c}}{{{DATASET_LABEL[d]}}}" for d in DATASET_ORDER)
    sub = " & ".join(["$g$", "$g/M$ [GeV$^{-1}$]"] * len(DATASET_ORDER))
    out = ["\\begin{table}", "\\centering", f"\\caption{{{caption}}}" if caption else "", "\\begin{tabular}{l" + "rr" * len(DATASET_ORDER) + "}",
           "\\hline", f"model & {head} \\\\", f" & {sub} \\\\", "\\hline"]
    for model, per in _by_model(rows).items():
        vals = []
        for d in DATASET_ORDER:
            r = per.get(d)
            for key in ("g_low_mass", "g_over_M_high_mass"):
                v = r[key] if r else None
                vals.append("--" if v is None or not math.isfinite(v) else _sci(v))
        out.append(f"{_tex_model(model)} & " + " & ".join(vals) + " \\\\")
    out += ["\\hline", "\\end{tabular}", "\\end{table}"]
    return "\n".join(line for line in out if line) + "\n"


def _sci(v: float) -> str:
    mant, exp = f"{v:.2e}".split("e")
    return f"${mant}\\times10^{{{int(exp)}}}$"


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "dataset", "g_low_mass", "g_over_M_high_mass_GeV^-1", "chi2_sm", "chi2_min"])
    for r in rows:
        # no finite limit: "—", as in limits.md and .tex (docs/decisions.md; it was written "inf")
        limit = lambda x: "—" if x is None or not math.isfinite(x) else f"{x:.6g}"  # noqa: E731
        w.writerow([r["model"], r["dataset"], limit(r["g_low_mass"]), limit(r["g_over_M_high_mass"]),
                    f"{r['chi2_sm']:.4f}", f"{r['chi2_min']:.4f}"])
    return buf.getvalue()


def write_tables(folder: Path, rows: list, rows_1dof: list, verdicts: list, cl: str, fc_toys: int | None) -> None:
    """limits.md, .tex, .csv, .json and verdicts.json into ``folder`` (``fc_toys``: the FC columns too)."""
    caption = f"2 sigma limits ({convention(cl)['description']}); g for M -> 0, g/M in GeV^-1 for M -> inf"
    write_text(folder / "limits.md", markdown(rows, caption) + fc_markdown(rows, fc_toys))
    write_text(folder / "limits.tex", latex(rows, caption))
    write_text(folder / "limits.csv", csv_text(rows))
    write_json(nulls_for_nonfinite({"convention": convention(cl), "units": {"mass": "MeV", "g_over_M": "GeV^-1", "g": "1"},
                                    "limits": rows, "limits_1dof": rows_1dof, "null": NULL_MEANING}), folder / "limits.json")
    write_json(verdicts, folder / "verdicts.json")


def fc_markdown(rows: list, fc_toys: int | None) -> str:
    """The FC columns' table (empty without FC)."""
    if fc_toys is None:
        return ""
    from ..fc import fc_columns_markdown

    return "\n" + fc_columns_markdown(rows, fc_toys)


def report_markdown(sm, rows, verdicts, figures, checksums, cl, gm2_epochs, verdict_epochs, wall, params,
           fc_toys: int | None = None) -> str:
    """report.md: software, conventions, the Standard-Model fits, the limits against AC22, the (g-2) verdicts per
    data set (``verdict_epochs``), the figures, the inputs with their citations and the data checksums."""
    by = {(r["model"], r["dataset"]): r for r in rows}
    lines = ["# cevnsfit reproduction of Atzori Corona et al., JHEP 05 (2022) 109 (arXiv:2202.11002)", "",
             f"- software: cevnsfit {__version__}, Python {platform.python_version()}, {platform.platform()}",
             f"- wall time: {wall:.1f} s", f"- limits convention: {convention(cl)['description']}; "
             f"reference minimum: {convention(cl)['reference_minimum']}",
             f"- (g-2)_mu bands drawn: {', '.join(gm2_epochs)} (2 sigma); verdicts computed for {', '.join(verdict_epochs)}", "",
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
    per = {}
    for v in verdicts:
        per.setdefault(v["dataset"], {}).setdefault(v["model"], {})[v["epoch"]] = v["verdict"]
    for d, by_model in per.items():
        lines += ["", f"## (g-2)_mu verdicts ({DATA_SETS[d].label})", "", "| model | " + " | ".join(verdict_epochs) + " |",
                  "|---" * 4 + "|"]
        for m, eps in by_model.items():
            lines.append(f"| {m} | " + " | ".join(eps.get(e, "") for e in verdict_epochs) + " |")
    lines += ["", "AC22 concludes that COHERENT excludes the (g-2)_mu explanation for the models with tree-level quark and",
              "muon couplings; its conclusion also names B-3L_e, which has Q'_mu = 0 and hence no band (see the physics",
              "specification, open point b): we report 'no band' for it.", "",
              "## Figures", ""] + [f"- {p}" for p in figures if p.endswith(".png")]
    lines += ["", "## Inputs and citations", "", "| parameter | value | unit | source |", "|---|---|---|---|"]
    for key, value, unit, source in params.citations():
        shown = (f"{len(value)} values, {min(value):g} to {max(value):g}" if isinstance(value, (list, tuple))
                 else f"{value:g}")  # a table (a reactor spectrum) in one cell
        lines.append(f"| {key} | {shown} | {unit} | {source} |")
    lines += ["", "## Data files (SHA-256)", ""] + [f"- `{k}`: `{v}`" for k, v in checksums.items()]
    return "\n".join(lines) + "\n" + fc_markdown(rows, fc_toys)
