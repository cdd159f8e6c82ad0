"""The limits table in Markdown, LaTeX and CSV (JSON is written by io.jsonio.write_json).

Columns: model, then per data set the 2 sigma limit on g (M -> 0) and on g/M in GeV^-1 (M -> inf).  The data sets
and their column labels are given by the caller (``columns``: {data set: label}, in table order; by default the data
sets of the rows, in their order, labelled by name): io/ knows nothing of the experiments.
"""

from __future__ import annotations

import csv
import io
import math



def _columns(rows: list[dict], columns: dict | None) -> dict:
    return dict(columns) if columns is not None else {r["dataset"]: r["dataset"] for r in rows}


def _by_model(rows: list[dict]) -> dict:
    table: dict = {}
    for r in rows:
        table.setdefault(r["model"], {})[r["dataset"]] = r
    return table


def _fmt(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"


def markdown(rows: list[dict], caption: str = "", columns: dict | None = None) -> str:
    labels = _columns(rows, columns)
    cols = [f"{labels[d]} {q}" for d in labels for q in ("g", "g/M [GeV⁻¹]")]
    lines = ([caption, ""] if caption else []) + ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for model, per in _by_model(rows).items():
        vals = []
        for d in labels:
            r = per.get(d)
            vals += [_fmt(r["g_low_mass"]) if r else "—", _fmt(r["g_over_M_high_mass"]) if r else "—"]
        lines.append(f"| {model} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def _tex_model(name: str) -> str:
    name = name.replace("_mu", r"_\mu").replace("_tau", r"_\tau").replace("_y", "_y")
    return f"${name}$" if name != "universal" and name != "scalar" else name


def latex(rows: list[dict], caption: str = "", columns: dict | None = None) -> str:
    labels = _columns(rows, columns)
    head = " & ".join(f"\\multicolumn{{2}}{{c}}{{{labels[d]}}}" for d in labels)
    sub = " & ".join(["$g$", "$g/M$ [GeV$^{-1}$]"] * len(labels))
    out = ["\\begin{table}", "\\centering", f"\\caption{{{caption}}}" if caption else "", "\\begin{tabular}{l" + "rr" * len(labels) + "}",
           "\\hline", f"model & {head} \\\\", f" & {sub} \\\\", "\\hline"]
    for model, per in _by_model(rows).items():
        vals = []
        for d in labels:
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
        w.writerow([r["model"], r["dataset"], f"{r['g_low_mass']:.6g}", f"{r['g_over_M_high_mass']:.6g}",
                    f"{r['chi2_sm']:.4f}", f"{r['chi2_min']:.4f}"])
    return buf.getvalue()
