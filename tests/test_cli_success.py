"""Every README command's success path, run as a user runs it (a subprocess of the real command line), with its
output checked: JSON values against independent computations or the API, human-readable tables, files produced
and read back, and the boundary values the README allows (g = 4 pi, |Q'| = 100, M = 1e10 MeV for gm2, the scan caps).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from scipy import integrate

from cevnsfit.io.datadir import resolve_data_dir
from cevnsfit.mediators import MediatorAnalysis
from cevnsfit.physics.models import MODELS, model_names

# every test runs the command line as a subprocess: slow lane (fast in-process versions in test_cli_inprocess.py)
pytestmark = pytest.mark.slow

DATA = resolve_data_dir()
M_MU = 105.6583755  # MeV (PDG), written out: the g-2 check below is independent of the package's constants


def cli(*args, cwd=None):
    env = dict(os.environ, COLUMNS="200")  # rich tables: no wrapping of the columns checked below
    env.pop("CEVNSFIT_DATA", None)
    res = subprocess.run([sys.executable, "-m", "cevnsfit.cli", *args], capture_output=True, text=True, env=env,
                         cwd=cwd, timeout=900)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res


def table_rows(text: str) -> list[list[str]]:
    """Cells of the body rows of a rich table (lines drawn with the box character │)."""
    return [[c.strip() for c in line.strip().strip("│").split("│")] for line in text.splitlines()
            if line.strip().startswith("│")]


# ---- models -------------------------------------------------------------------------------------------------
def test_models_table_lists_every_registered_model_with_its_charges():
    rows = {r[0]: r[1:] for r in table_rows(cli("models").stdout)}
    assert list(rows) == model_names()
    for name, cells in rows.items():
        m = MODELS[name]
        if m.kind == "scalar":
            assert cells == ["-"] * 6
            continue
        assert [float(c) for c in cells[:5]] == pytest.approx(m.charges, abs=5e-5)  # printed with 4 digits
        assert cells[5] == ("yes" if m.is_anomaly_free else "no")
    # AC22's table (physics.md 10.2): B-L is anomaly free, the universal coupling is not
    assert rows["B-L"][5] == "yes" and rows["universal"][5] == "no"
    assert [float(c) for c in rows["L_mu-L_tau"][:5]] == [0, 0, 0, 1, -1]


# ---- sm -----------------------------------------------------------------------------------------------------
def test_sm_table_matches_json():
    doc = json.loads(cli("sm", "--json").stdout)
    text = cli("sm").stdout
    for name, r in doc.items():
        if name == "xenonnt":  # its own table: per run, and the 8B flux fit
            assert f"xenonnt: {'+'.join(r['runs'])}, observed {r['observed']} events" in text
            assert f"8B flux best fit {r['b8_flux_best_fit']:.3g} cm^-2 s^-1" in text
            continue
        assert f"{name}: observed {r['observed']} events" in text
        assert re.search(rf"chi2_min\s*=\s*{r['chi2_min']:.2f}\s+for\s+{r['n_bins']}\s+bins", text)
    rows = table_rows(text)
    csi_rows = {r[0]: (float(r[1]), float(r[2])) for r in rows[:5]}
    for z in ("cevns", "brn", "nin", "ss"):
        assert csi_rows[z] == pytest.approx((doc["csi"]["predicted"][z], doc["csi"]["best_fit"][z]), abs=0.051)
    assert csi_rows["total"][0] == pytest.approx(sum(doc["csi"]["predicted"].values()), abs=0.051)


# ---- gm2 ----------------------------------------------------------------------------------------------------
def _delta_a_vector(g: float, mass: float) -> float:
    """One-loop vector contribution (physics.md 11), by quad: g^2/(8 pi^2) int 2x^2(1-x)/(x^2 + (1-x)M^2/m^2)."""
    r = (mass / M_MU) ** 2
    val = integrate.quad(lambda x: 2 * x * x * (1 - x) / (x * x + (1 - x) * r), 0, 1, epsabs=0, epsrel=1e-12)[0]
    return g * g / (8 * math.pi**2) * val


@pytest.mark.parametrize("model, charge", [("B-L", 1.0), ("B-L_e-2L_mu", 2.0)])
def test_gm2_json_and_text(model, charge):
    g, mass = 5e-4, 10.0
    doc = json.loads(cli("gm2", "-m", model, "--mass", str(mass), "--coupling", str(g), "--json").stdout)
    assert doc["delta_a_mu"] == pytest.approx(_delta_a_vector(g * charge, mass), rel=1e-9, abs=0)
    band = doc["band"]
    assert band["epoch"] == "2021" and band["delta_a_mu_measured"] == pytest.approx(251e-11)
    # the band edges are where delta a_mu = 251e-11 -/+ 2 x 59e-11
    assert _delta_a_vector(band["g_low"] * charge, mass) == pytest.approx(133e-11, rel=1e-6, abs=0)
    assert _delta_a_vector(band["g_high"] * charge, mass) == pytest.approx(369e-11, rel=1e-6, abs=0)
    text = cli("gm2", "-m", model, "--mass", str(mass), "--coupling", str(g)).stdout
    assert f"delta a_mu = {doc['delta_a_mu']:.4e}" in text
    assert f"g in [{band['g_low']:.4g}, {band['g_high']:.4g}]" in text


def test_gm2_at_the_allowed_limits():
    # M = 1e10 MeV and g = 4 pi are the largest values the README allows: accepted, and right (heavy-mass limit
    # g^2 m_mu^2 / (12 pi^2 M^2), physics.md 11)
    g = 4 * math.pi
    doc = json.loads(cli("gm2", "-m", "B-L", "--mass", "1e10", "--coupling", repr(g), "--json").stdout)
    assert doc["delta_a_mu"] == pytest.approx(g * g * M_MU**2 / (12 * math.pi**2 * 1e20), rel=1e-6, abs=0)
    doc = json.loads(cli("gm2", "-m", "scalar", "--mass", "1e10", "--coupling", "1e-3", "--json", "--gm2", "2025").stdout)
    heavy = 1e-6 * M_MU**2 / (8 * math.pi**2 * 1e20) * (math.log(1e20 / M_MU**2) - 7 / 6)
    assert doc["delta_a_mu"] == pytest.approx(heavy, rel=1e-6, abs=0)
    assert doc["band"]["g_low"] is None  # 2025: the band reaches g = 0


# ---- limits -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bl_csi_analysis():
    return MediatorAnalysis().analyse("B-L", experiments=("csi",))


def test_limits_one_dof_json_and_table(bl_csi_analysis):
    doc = json.loads(cli("limits", "-m", "B-L", "-d", "csi", "--cl", "1dof", "--json").stdout)
    assert doc["convention"]["cl"] == "1dof" and doc["convention"]["delta_chi2"] == 4.0
    assert "fixed mass" in doc["convention"]["reference_minimum"]
    (row,) = doc["limits"]
    want = bl_csi_analysis.row("csi", "1dof")
    for key in ("g_low_mass", "g_over_M_high_mass", "chi2_sm", "chi2_min"):
        assert row[key] == pytest.approx(want[key], rel=1e-12, abs=0)
    # 1 dof is the stronger convention (threshold 4 < 6.18); docs/validation/mediators.md quotes 4.45e-5 and 0.868e-3 GeV^-1
    two = bl_csi_analysis.row("csi", "2dof")
    assert row["g_low_mass"] < two["g_low_mass"] and row["g_over_M_high_mass"] < two["g_over_M_high_mass"]
    assert row["g_low_mass"] == pytest.approx(4.45e-5, rel=5e-3, abs=0)
    assert row["g_over_M_high_mass"] == pytest.approx(0.868e-3, rel=5e-3, abs=0)
    text = cli("limits", "-m", "B-L", "-d", "csi", "--cl", "1dof").stdout
    assert "Delta chi^2 = 4" in text
    header = next(l for l in text.splitlines() if "model" in l and "data set" in l)
    for col in ("g (M -> 0)", "g/M [GeV^-1] (M -> inf)", "sign-flip islands"):
        assert col in header
    (cells,) = table_rows(text)
    assert cells[:4] == ["B-L", "csi", f"{row['g_low_mass']:.3g}", f"{row['g_over_M_high_mass']:.3g}"]


def test_charges_at_the_allowed_limit_scale_the_coupling():
    # |Q'| = 100 is allowed; a tree-level shift depends on g^2 Q'_l Q'_q only, so 100 x (B-L charges) must give
    # exactly 1/100 of the B-L limit on g (and on g/M): the log grids have 150 points per decade, so 100 is 300
    # grid steps and the refinement sees the same numbers
    scaled = json.loads(cli("limits", "--charges", "100/3,100/3,-100,-100,-100", "-m", "B-L x 100", "-d", "csi",
                            "--json").stdout)["limits"][0]
    plain = json.loads(cli("limits", "-m", "B-L", "-d", "csi", "--json").stdout)["limits"][0]
    assert scaled["g_low_mass"] == pytest.approx(plain["g_low_mass"] / 100, rel=1e-7, abs=0)
    assert scaled["g_over_M_high_mass"] == pytest.approx(plain["g_over_M_high_mass"] / 100, rel=1e-7, abs=0)
    assert scaled["chi2_min"] == pytest.approx(plain["chi2_min"], abs=1e-7)


# ---- scan ---------------------------------------------------------------------------------------------------
SCAN_MASSES = (1.0, 1000.0, 4)
SCAN_COUPLINGS = (1e-4, 1e-2, 25)


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("scan") / "lmu.nc"
    res = cli("scan", "-m", "L_mu-L_tau", "-d", "csi", "--mass-range", *map(str, SCAN_MASSES[:2]),
              "--n-mass", str(SCAN_MASSES[2]), "--coupling-range", *map(str, SCAN_COUPLINGS[:2]),
              "--n-coupling", str(SCAN_COUPLINGS[2]), "--out", str(out))
    assert f"wrote {out}" in res.stdout
    with xr.open_dataset(out, engine="scipy") as ds:
        return ds.load(), res.stdout


def test_scan_axes_units_and_model(scan_file):
    ds, _ = scan_file
    np.testing.assert_allclose(ds["mass_mev"], np.geomspace(*SCAN_MASSES), rtol=1e-12)
    assert ds["mass_mev"].attrs["units"] == "MeV"
    np.testing.assert_allclose(ds["coupling"], np.concatenate([[0.0], np.geomspace(*SCAN_COUPLINGS)]), rtol=1e-12)
    assert ds["coupling"].attrs["units"] == "1"
    assert ds["delta_chi2"].dims == ("mass_mev", "coupling") and ds["chi2"].dims == ("mass_mev", "coupling")
    assert ds.attrs["model"] == "L_mu-L_tau" and ds.attrs["dataset"] == "csi"
    assert [float(c) for c in ds.attrs["charges_u_d_e_mu_tau"].split(",")] == [0, 0, 0, 1, -1]
    assert ds.attrs["contour_cl"] == "2dof" and ds["g_upper"].attrs["cl"] == "2dof"


def test_scan_data_checksums(scan_file):
    ds, _ = scan_file
    sums = json.loads(ds.attrs["data_sha256"])
    assert sums and all(k.startswith("csi2021/") or k.startswith("flux/") for k in sums)
    assert "csi2021/dataBeamOnC.txt" in sums
    for rel, digest in sums.items():
        assert hashlib.sha256((DATA / rel).read_bytes()).hexdigest() == digest


def test_scan_delta_chi2_reference(scan_file):
    """Delta chi^2 is measured from the global minimum of the plane *and* the exact M = 0 and M = inf lines (for
    this destructive model on CsI the minimum lies on the M = inf line, below both the SM and the plane grid)."""
    ds, stdout = scan_file
    chi2, delta = ds["chi2"].values, ds["delta_chi2"].values
    res = MediatorAnalysis().analyse("L_mu-L_tau", np.geomspace(*SCAN_MASSES), np.geomspace(*SCAN_COUPLINGS), ("csi",))
    want_min = res.chi2_min("csi")
    assert ds.attrs["chi2_min"] == pytest.approx(want_min, abs=1e-9)
    assert want_min < chi2.min() - 1e-3 and want_min < ds.attrs["chi2_sm"] - 0.1  # the lines matter here
    np.testing.assert_allclose(delta, chi2 - want_min, rtol=0, atol=1e-9)
    np.testing.assert_allclose(chi2, res.plane.dataset_chi2("csi")[0], rtol=1e-12)
    # g = 0 is the SM at every mass: the chi^2_min of `cevnsfit sm`
    sm = json.loads(cli("sm", "-e", "csi", "--json").stdout)["csi"]["chi2_min"]
    np.testing.assert_allclose(chi2[:, 0], sm, rtol=0, atol=1e-9)
    assert ds.attrs["chi2_sm"] == pytest.approx(sm, abs=1e-9)
    assert f"chi2_min = {want_min:.3f}" in stdout
    # the contour: upper edge of the interval containing 0 at Delta chi^2 = 6.18 (grid-interpolated)
    for i in range(delta.shape[0]):
        gu = float(ds["g_upper"][i])
        below = ds["coupling"].values[delta[i] < 6.18]
        assert 0.0 in below and gu >= below[below <= gu].max()


def test_scan_at_the_largest_allowed_coupling_and_charges(tmp_path):
    # g = 4 pi with |Q'| = 100 and M down to 1e-3 MeV: the most extreme point the README allows still gives a
    # finite chi^2: the signal, ~1e20 times the SM, is profiled to zero at the price of its pull, so that g = 1 and
    # g = 4 pi give the same (saturated) Delta chi^2 > 100
    out = tmp_path / "extreme.nc"
    cli("scan", "--charges", "100,100,100,100,100", "-m", "extreme", "-d", "csi+lar", "--mass-range", "1e-3", "1e4",
        "--n-mass", "2", "--coupling-range", "1", repr(4 * math.pi), "--n-coupling", "2", "--out", str(out))
    with xr.open_dataset(out, engine="scipy") as ds:
        assert float(ds["coupling"][-1]) == 4 * math.pi
        delta = ds["delta_chi2"].values
        assert np.all(np.isfinite(delta)) and np.all(delta[:, 1:] > 100)
        np.testing.assert_allclose(delta[:, 1], delta[:, 2], rtol=0, atol=1e-3)
        assert np.all(delta[:, 0] == delta[0, 0]) and ds.attrs["chi2_min"] <= ds.attrs["chi2_sm"]


@pytest.mark.slow
def test_scan_at_the_mass_cap(tmp_path):
    # 1e4 masses is the largest scan the README allows
    out = tmp_path / "cap.nc"
    cli("scan", "-m", "B-L", "-d", "lar", "--mass-range", "1", "1e4", "--n-mass", "10000", "--coupling-range",
        "1e-5", "1e-4", "--n-coupling", "2", "--out", str(out))
    with xr.open_dataset(out, engine="scipy") as ds:
        assert ds.sizes == {"mass_mev": 10000, "coupling": 3}
        assert float(ds["delta_chi2"].min()) >= 0


# ---- plot spectra -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("experiment, suffix, magic", [("csi", ".png", b"\x89PNG"), ("lar", ".pdf", b"%PDF")])
def test_plot_spectra_writes_the_figure(tmp_path, experiment, suffix, magic):
    out = tmp_path / f"spectra{suffix}"
    res = cli("plot", "spectra", "-e", experiment, "--out", str(out))
    assert f"wrote {out}" in res.stdout
    assert out.read_bytes().startswith(magic) and out.stat().st_size > 10_000
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind
