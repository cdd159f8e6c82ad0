"""Command line: JSON contract, figures, and one-line errors for bad input (no traceback, nothing written)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from cevnsfit.io.datadir import resolve_data_dir

DATA = resolve_data_dir()


def run(*args, env=None, cwd=None):
    e = dict(os.environ)
    e.pop("CEVNSFIT_DATA", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "cevnsfit.cli", *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=300)


def assert_clean_error(res, *words):
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    for w in words:
        assert w in lines[0]


def test_sm_json_contract():
    res = run("sm", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) == {"csi", "lar"}
    assert set(doc["csi"]["predicted"]) == {"cevns", "brn", "nin", "ss"}
    assert set(doc["lar"]["best_fit"]) == {"cevns", "ss", "pbrn", "dbrn"}
    assert doc["csi"]["n_bins"] == 99 and doc["lar"]["n_bins"] == 120
    assert doc["csi"]["observed"] == 1578 and doc["lar"]["observed"] == 3752
    assert 300 < doc["csi"]["predicted"]["cevns"] < 340


def test_sm_single_experiment_and_env_var(tmp_path):
    res = run("sm", "--experiment", "lar", "--json", env={"CEVNSFIT_DATA": str(DATA)}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert set(json.loads(res.stdout)) == {"lar"}


def test_unknown_experiment():
    assert_clean_error(run("sm", "--experiment", "xenon"), "xenon")


def test_empty_and_missing_data_dir(tmp_path):
    assert_clean_error(run("sm", "--data-dir", str(tmp_path)), "empty")
    assert_clean_error(run("sm", "--data-dir", str(tmp_path / "nope")), "does not exist")


@pytest.fixture
def data_copy(tmp_path):
    dst = tmp_path / "coherent"
    shutil.copytree(DATA, dst, ignore=shutil.ignore_patterns("*.root", "csi2017"))
    return dst


def test_truncated_and_malformed_files(data_copy):
    f = data_copy / "lar2020" / "brnpdf.txt"
    f.write_text("\n".join(f.read_text().splitlines()[:100]) + "\n")
    assert_clean_error(run("sm", "-e", "lar", "--data-dir", str(data_copy)), "brnpdf.txt")
    g = data_copy / "csi2021" / "effCoefficients.txt"
    g.write_text(g.read_text().replace("1.32045", "one"))
    assert_clean_error(run("sm", "-e", "csi", "--data-dir", str(data_copy)), "effCoefficients.txt")
    (data_copy / "csi2021" / "dataBeamOnC.txt").unlink()
    assert_clean_error(run("sm", "-e", "csi", "--data-dir", str(data_copy)), "dataBeamOnC.txt")
    res = run("data", "info", "--data-dir", str(data_copy))
    assert res.returncode == 2 and "missing" in res.stdout and "Traceback" not in res.stderr


def test_data_info_ok():
    res = run("data", "info")
    assert res.returncode == 0, res.stderr
    assert "data directory" in res.stdout


def test_plot_spectra(tmp_path):
    out = tmp_path / "csi.png"
    res = run("plot", "spectra", "--experiment", "csi", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"


def test_plot_bad_output(tmp_path):
    assert_clean_error(run("plot", "spectra", "-e", "lar", "--out", str(tmp_path / "missing" / "x.png")), "does not exist")
    assert_clean_error(run("plot", "spectra", "-e", "lar", "--out", str(tmp_path / "x.txt")), ".txt")
    assert not list(tmp_path.iterdir())
