"""`cevnsfit reproduce --out DIR`, run once as a user runs it (a subprocess of the real command line, the whole
job: ~1.5 CPU-minutes), and every promised output read back: limits (md, tex, csv, json), (g-2) verdicts,
per-model (M, g) figures (PNG, PDF), summary and spectra figures, NetCDF scans and the report.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from cevnsfit.experiments import DATA_SETS
from cevnsfit.physics.models import model_names

pytestmark = pytest.mark.slow

DATASETS = tuple(DATA_SETS)  # every registered data set is in the reproduction
# docs/validation/mediators.md, "(g-2)_mu verdicts" (CsI+LAr, 2 sigma, 2021)
VERDICTS_2021 = {
    "universal": "excluded", "B-L": "excluded", "B_y+L_mu+L_tau": "excluded", "B-3L_mu": "excluded",
    "B-2L_e-L_mu": "excluded", "B-L_e-2L_mu": "excluded", "scalar": "excluded",
    "L_e-L_mu": "allowed", "L_mu-L_tau": "allowed", "B-3L_e": "no band", "L_e-L_tau": "no band",
}


def _slug(name: str) -> str:
    return name.replace("+", "p")


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro") / "out"
    env = dict(os.environ)
    env.pop("CEVNSFIT_DATA", None)
    res = subprocess.run([sys.executable, "-m", "cevnsfit.cli", "reproduce", "--out", str(out)], capture_output=True,
                         text=True, env=env, timeout=1800)
    assert res.returncode == 0, res.stderr
    assert f"wrote {out}" in res.stdout
    return out


def test_limits_table_in_every_format(repro):
    doc = json.loads((repro / "limits.json").read_text())
    assert doc["convention"]["cl"] == "2dof" and doc["convention"]["delta_chi2"] == 6.18
    rows = {(r["model"], r["dataset"]): r for r in doc["limits"]}
    assert set(rows) == {(m, d) for m in model_names() for d in DATASETS}
    with open(repro / "limits.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows)
    for r in table:
        want = rows[(r["model"], r["dataset"])]
        for key, column in (("g_low_mass", "g_low_mass"), ("g_over_M_high_mass", "g_over_M_high_mass_GeV^-1")):
            if want[key] is None:  # no finite limit (Dresden-II on a model without an electron-flavour charge)
                assert r[column] in ("", "—")
            else:
                assert float(r[column]) == pytest.approx(want[key], rel=1e-5, abs=0)
        assert float(r["chi2_min"]) == pytest.approx(want["chi2_min"], abs=1e-4)
        assert want["chi2_min"] <= want["chi2_sm"]
    md, tex = (repro / "limits.md").read_text(), (repro / "limits.tex").read_text()
    for m in model_names():
        assert f"| {m} |" in md
    body = [l for l in tex.splitlines() if l.rstrip().endswith(r"\\") and "times10" in l]
    assert len(body) == len(model_names()) and all(l.count("&") == 2 * len(DATASETS) for l in body)
    bl = rows[("B-L", "csi")]
    assert f"{bl['g_low_mass']:.3g}" in md


def test_scans_share_the_tables_minimum(repro):
    """Each NetCDF scan measures Delta chi^2 from the same global minimum as the limits table reports."""
    rows = {(r["model"], r["dataset"]): r for r in json.loads((repro / "limits.json").read_text())["limits"]}
    files = sorted((repro / "scans").glob("*.nc"))
    assert len(files) == len(rows)
    for model in ("B-L", "L_mu-L_tau", "scalar"):
        for d in DATASETS:
            with xr.open_dataset(repro / "scans" / f"{model}_{_slug(d)}.nc", engine="scipy") as ds:
                assert ds.attrs["model"] == model and ds.attrs["dataset"] == d
                assert ds.attrs["chi2_min"] == pytest.approx(rows[(model, d)]["chi2_min"], abs=1e-9)
                np.testing.assert_allclose(ds["delta_chi2"], ds["chi2"] - rows[(model, d)]["chi2_min"], atol=1e-9)
                assert float(ds["delta_chi2"].min()) >= -1e-9
                assert ds["mass_mev"].attrs["units"] == "MeV" and json.loads(ds.attrs["data_sha256"])


def test_verdicts(repro):
    verdicts = json.loads((repro / "verdicts.json").read_text())
    got = {v["model"]: v["verdict"] for v in verdicts if v["epoch"] == "2021" and v["dataset"] == "csi+lar"}
    assert got == VERDICTS_2021
    late = {v["model"]: v["verdict"] for v in verdicts if v["epoch"] == "2025"}
    assert all(late[m] == ("no band" if VERDICTS_2021[m] == "no band" else "no anomaly") for m in late)


def test_figures_and_report(repro):
    fig = repro / "figures"
    names = [f"plane_{_slug(m)}" for m in model_names()] + ["summary_csi+lar", "spectra_csi", "spectra_lar"]
    for n in names:
        assert (fig / f"{n}.png").read_bytes().startswith(b"\x89PNG"), n
        assert (fig / f"{n}.pdf").read_bytes().startswith(b"%PDF"), n
    report = (repro / "report.md").read_text()
    assert "## Standard Model" in report and "## 2 sigma limits" in report
    assert "| csi | cevns | 316.2 |" in report  # the SM prediction (docs/validation/sm.md)
