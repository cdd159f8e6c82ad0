"""(g-2) command, verdicts against the paper's conclusions, and the one-command reproduction."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import cevnsfit.mediators as mediators
from cevnsfit.mediators import DATASETS, MediatorAnalysis, gm2_verdict
from cevnsfit.physics.models import get_model, model_names
from cevnsfit.reproduce import planned_outputs, reproduce

# subprocess runs and whole-model analyses: slow lane
pytestmark = pytest.mark.slow


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cevnsfit.cli", *args], capture_output=True, text=True, timeout=600)


def test_gm2_cli_light_and_heavy_limits():
    m_mu = 105.6583755
    light = json.loads(cli("gm2", "--model", "L_mu-L_tau", "--mass", "1e-3", "--coupling", "1e-3", "--json").stdout)
    assert light["delta_a_mu"] == pytest.approx(1e-6 / (8 * math.pi**2), rel=1e-4, abs=0)
    heavy = json.loads(cli("gm2", "--model", "B-3L_mu", "--mass", "1e5", "--coupling", "1e-2", "--json").stdout)
    g_mu = 3 * 1e-2  # |Q'_mu| = 3
    assert heavy["delta_a_mu"] == pytest.approx(g_mu**2 * m_mu**2 / (12 * math.pi**2 * 1e10), rel=1e-3, abs=0)
    none = json.loads(cli("gm2", "--model", "B-3L_e", "--mass", "10", "--coupling", "1e-3", "--json").stdout)
    assert none["delta_a_mu"] == 0.0 and none["band"] is None
    late = json.loads(cli("gm2", "--model", "B-L", "--mass", "10", "--coupling", "1e-3", "--gm2", "2025", "--json").stdout)
    assert late["band"]["g_low"] is None and late["band"]["g_high"] > 0


@pytest.mark.parametrize("args", [
    ("--mass", "nan", "--coupling", "1e-3"), ("--mass", "inf", "--coupling", "1e-3"), ("--mass", "-5", "--coupling", "1e-3"),
    ("--mass", "0", "--coupling", "1e-3"), ("--mass", "10", "--coupling", "0"), ("--mass", "10", "--coupling", "nan"),
    ("--mass", "10", "--coupling", "-1e-3"), ("--mass", "10", "--coupling", "inf"),
])
def test_gm2_cli_bad_numbers(args):
    res = cli("gm2", "--model", "B-L", *args)
    assert res.returncode == 2 and res.stderr.startswith("error:") and "Traceback" not in res.stderr


def test_gm2_cli_bad_names():
    for args in (("--model", "Z-prime"), ("--model", "B-L", "--gm2", "2019")):
        res = cli("gm2", *args, "--mass", "1", "--coupling", "1e-3")
        assert res.returncode == 2 and res.stderr.startswith("error:") and "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def all_models(csi, lar):
    an = MediatorAnalysis()
    an._experiments = {"csi": csi, "lar": lar}
    coarse_m, coarse_g = np.geomspace(1e-2, 1e4, 61), np.geomspace(1e-7, 10, 121)
    # COHERENT only (the verdicts tested here are CsI+LAr's): XENONnT would add ~1 s per model
    return {m: an.analyse(m, coarse_m, coarse_g, ("csi", "lar")) for m in model_names()}


# AC22's conclusion: COHERENT CsI+LAr excludes the (g-2)_mu explanation for the models with tree-level quark and
# muon couplings (and the scalar); L_e-L_mu and L_mu-L_tau, whose quark couplings arise at one loop, survive;
# B-3L_e and L_e-L_tau have Q'_mu = 0 and no band (the physics specification's open point b).
EXPECTED_2021 = {"universal": "excluded", "B-L": "excluded", "B_y+L_mu+L_tau": "excluded", "B-3L_e": "no band",
                 "B-3L_mu": "excluded", "B-2L_e-L_mu": "excluded", "B-L_e-2L_mu": "excluded", "L_e-L_mu": "allowed",
                 "L_e-L_tau": "no band", "L_mu-L_tau": "allowed", "scalar": "excluded"}


def test_gm2_verdicts(all_models):
    got = {m: gm2_verdict(res, "csi+lar", "2021")["verdict"] for m, res in all_models.items()}
    assert got == EXPECTED_2021
    for m, res in all_models.items():
        v25 = gm2_verdict(res, "csi+lar", "2025")["verdict"]
        assert v25 == ("no band" if EXPECTED_2021[m] == "no band" else "no anomaly")
    # the surviving models keep the band over the whole scanned mass range
    v = gm2_verdict(all_models["L_mu-L_tau"], "csi+lar", "2021")
    assert v["allowed_mass_ranges_mev"] == [[1e-2, 1e4]]


def test_reproduce_subset_and_resume(tmp_path, monkeypatch, csi, lar):
    out = tmp_path / "repro"
    real_init = MediatorAnalysis.__init__

    def reuse(self, *a, **k):  # share the session's experiments (kernels) to keep the test short
        real_init(self, *a, **k)
        self._experiments = {"csi": csi, "lar": lar}

    monkeypatch.setattr(MediatorAnalysis, "__init__", reuse)
    summary = reproduce(out, models=["B-L", "L_mu-L_tau"])
    for name in ("limits.md", "limits.tex", "limits.csv", "limits.json", "verdicts.json", "report.md"):
        assert (out / name).stat().st_size > 100, name
    doc = json.loads((out / "limits.json").read_text())
    assert len(doc["limits"]) == 2 * len(DATASETS) and doc["convention"]["cl"] == "2dof"
    assert len(list((out / "scans").glob("*.nc"))) == 2 * len(DATASETS)
    pngs = list((out / "figures").glob("*.png"))
    assert {p.stem for p in pngs} >= {"plane_B-L", "plane_L_mu-L_tau", "summary_csi+lar", "spectra_csi", "spectra_lar"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    report = (out / "report.md").read_text()
    assert "wall time" in report and "SHA-256" in report and "Hoferichter" in report
    assert summary["wall_time_s"] > 0
    # the paths checked before the run are exactly those written
    written = {p for p in out.rglob("*") if p.is_file()}
    assert written == set(planned_outputs(out, [get_model("B-L"), get_model("L_mu-L_tau")]))
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no lock, staging folder or temporary left
    # the limits and contours as a HEPData submission: valid, one limits table per data set, a contour per model
    from hepdata_validator.full_submission_validator import FullSubmissionValidator

    validator = FullSubmissionValidator(autoload_remote_schemas=False)
    assert validator.validate(directory=str(out / "hepdata")), validator.get_messages()
    assert len(list((out / "hepdata").glob("contour_*.yaml"))) == 2 * len(DATASETS)
    # a rerun takes the chi^2 grids from the cache: analyse() must not be called again
    monkeypatch.setattr(mediators.MediatorAnalysis, "analyse", lambda *a, **k: pytest.fail("grid recomputed"))
    drawn_by_workers = {p.name: p.read_bytes() for p in pngs}
    reproduce(out, models=["B-L", "L_mu-L_tau"], figure_workers=0)  # every figure drawn in this process
    assert json.loads((out / "limits.json").read_text()) == doc
    assert {p.name: p.read_bytes() for p in pngs} == drawn_by_workers  # the same pixels whoever draws them


def test_reproduce_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = cli("reproduce", "--out", str(blocker / "sub"))
    assert res.returncode == 2 and "error:" in res.stderr and "Traceback" not in res.stderr
    assert blocker.read_text() == "x"


def assert_one_line_error(res, *words):
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_reproduce_bad_input_fails_before_writing(tmp_path):
    out = tmp_path / "repro"
    assert_one_line_error(cli("reproduce", "--out", str(out), "--cl", "3dof"), "3dof")
    assert_one_line_error(cli("reproduce", "--out", str(out), "--data-dir", str(tmp_path)), "empty")
    assert not out.exists()
    (out / "limits.csv").mkdir(parents=True)  # a directory where a file goes: refused at once, nothing written
    assert_one_line_error(cli("reproduce", "--out", str(out)), "limits.csv", "directory")
    assert [p.name for p in out.iterdir()] == ["limits.csv"]
