"""Command line: JSON contract, figures, and one-line errors for bad input (no traceback, nothing written)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from cevnsfit.io.datadir import resolve_data_dir

# every test runs the command line as a subprocess (~2 s each): slow lane; fast in-process versions in test_cli_inprocess.py
pytestmark = pytest.mark.slow

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
    assert set(doc) == {"csi", "lar", "xenonnt", "dresden2"}  # every registered experiment
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


FLUX_GRID = "flux/snsFlux2D_derived_BarbeauGroup/rebin125ns_2D/flux_dict_converted.npz"


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "missing_key"])
def test_damaged_flux_grid(data_copy, damage):
    import numpy as np

    f = data_copy / FLUX_GRID
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[:500])
    elif damage == "empty":
        f.write_bytes(b"")
    elif damage == "garbage":
        f.write_bytes(bytes(range(256)) * 8)
    else:
        with np.load(f) as z:
            arrays = {k: z[k] for k in z.files if k != "nuMu"}
        with open(f, "wb") as fh:
            np.savez(fh, **arrays)
    assert_clean_error(run("sm", "-e", "csi", "--data-dir", str(data_copy)), "flux_dict_converted.npz")
    res = run("data", "info", "--data-dir", str(data_copy))
    assert_clean_error(res, "flux_dict_converted.npz")


def test_negative_event_energy(data_copy):
    f = data_copy / "csi2021" / "dataBeamOnC.txt"
    lines = f.read_text().splitlines()
    k = next(i for i, l in enumerate(lines) if l.strip() and not l.lstrip().startswith("#"))
    lines[k] = "-12.5 " + lines[k].split()[1]
    f.write_text("\n".join(lines) + "\n")
    assert_clean_error(run("sm", "-e", "csi", "--data-dir", str(data_copy)), "dataBeamOnC.txt", "negative")


@pytest.mark.parametrize("args, words", [
    (("scan", "-m", "B-L", "--n-mass", "abc", "--out", "x.nc"), ("--n-mass", "scan --help")),
    (("frobnicate",), ("frobnicate",)),
    (("sm", "--bogus"), ("--bogus",)),
    (("plot", "spectra", "-e", "csi"), ("--out",)),
    (("gm2", "-m", "B-L", "--mass", "abc", "--coupling", "1e-3"), ("--mass",)),
])
def test_usage_errors_are_one_line(args, words):
    assert_clean_error(run(*args), *words)


@pytest.mark.parametrize("args, words", [
    (("scan", "-m", "B-L", "-d", "csi", "--coupling-range", "1e-3", "1e300", "--out", "x.nc"), ("non-perturbative",)),
    (("scan", "-m", "B-L", "-d", "csi", "--n-mass", "1000000000", "--out", "x.nc"), ("too large",)),
    (("scan", "--charges", "1e308,1e308,0,0,0", "-d", "csi", "--out", "x.nc"), ("|Q'|",)),
    (("scan", "-m", "B-L", "--charges", "1,1,0,0,0", "-d", "csi", "--out", "x.nc"), ("registered",)),
    (("limits", "--charges", "1e308,1e308,0,0,0", "-d", "csi", "--json"), ("|Q'|",)),
    (("gm2", "-m", "L_mu-L_tau", "--mass", "10", "--coupling", "1e300"), ("non-perturbative",)),
    (("gm2", "-m", "L_mu-L_tau", "--mass", "1e300", "--coupling", "1e-4"), ("validated range", "MeV")),
])
def test_out_of_range_numbers(tmp_path, args, words):
    assert_clean_error(run(*args, cwd=tmp_path), *words)
    assert not list(tmp_path.iterdir())


def test_sm_xenonnt_json_contract_and_published_sr0_sr1_numbers():
    """XENONnT, PRL 133 (2024) 191002 (SR0+SR1): 37 events, background 26.4 (+1.4/-1.3), 8B flux
    (4.7 +3.6/-2.3)e6 cm^-2 s^-1, background-only rejected at 2.73 sigma -- ours within the quoted uncertainties."""
    res = run("sm", "--experiment", "xenonnt", "--runs", "sr0,sr1", "--json")
    assert res.returncode == 0, res.stderr
    x = json.loads(res.stdout)["xenonnt"]
    assert {"runs", "observed", "expected_background", "expected_signal", "b8_flux_best_fit",
            "b8_flux_interval_1sigma", "significance_sigma", "per_run"} <= set(x)
    assert x["runs"] == ["sr0", "sr1"] and x["observed"] == 37
    assert set(x["per_run"]) == {"sr0", "sr1"} and sum(r["observed"] for r in x["per_run"].values()) == 37
    # symmetric tolerances, the smaller of the quoted errors.  Our flux, 5.91e6, is 26 % above XENONnT's 4.7e6: the
    # documented disagreement (docs/xenonnt.md, strict xfail in test_xenonnt.py); pinned at its printed precision
    # so that the command line's number cannot drift from the document's without a test failing
    assert x["expected_background"] == pytest.approx(26.4, abs=1.3)
    assert x["b8_flux_best_fit"] == pytest.approx(4.7e6, abs=2.3e6)
    assert x["b8_flux_best_fit"] == pytest.approx(5.91e6, abs=0.005e6)
    lo, hi = x["b8_flux_interval_1sigma"]
    assert lo < x["b8_flux_best_fit"] < hi
    assert abs(x["significance_sigma"] - 2.73) < 0.1  # no uncertainty is quoted on the significance itself


def test_sm_runs_only_with_xenonnt():
    assert_clean_error(run("sm", "--experiment", "csi", "--runs", "sr0"), "--runs")
    assert_clean_error(run("sm", "--experiment", "xenonnt", "--runs", "sr7"), "sr7")
