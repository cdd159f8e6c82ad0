"""Fast-lane versions of the command-line checks (the subprocess ones are in the slow lane): the CLI entry point
called in-process, and the scan file's contents built through the same API calls as `cevnsfit scan`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cevnsfit import cli
from cevnsfit.io.results import read_netcdf, scan_dataset, write_netcdf
from cevnsfit.mediators import MediatorAnalysis


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        cli.main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_models_and_gm2_in_process(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "L_mu-L_tau" in out and "anomaly free" in out
    code, out, _ = run(capsys, "gm2", "-m", "B-L", "--mass", "1e10", "--coupling", repr(4 * math.pi), "--json")
    m_mu = 105.6583755
    assert code == 0
    assert json.loads(out)["delta_a_mu"] == pytest.approx((4 * math.pi) ** 2 * m_mu**2 / (12 * math.pi**2 * 1e20),
                                                          rel=1e-6, abs=0)


@pytest.mark.parametrize("args, words", [
    (("gm2", "-m", "B-L", "--mass", "1.0000001e10", "--coupling", "1e-3"), ("MeV",)),
    (("gm2", "-m", "B-L", "--mass", "10", "--coupling", repr(math.nextafter(4 * math.pi, math.inf))), ("4 pi",)),
    (("limits", "--charges", "100.0001,0,0,0,0", "-d", "csi"), ("|Q'|",)),
    (("scan", "-m", "B-L", "-d", "csi", "--n-mass", "10001", "--out", "x.nc"), ("too large",)),
    (("scan", "-m", "B-L", "-d", "csi", "--n-mass", "2", "--n-coupling", "2000001", "--out", "x.nc"), ("too large",)),
])
def test_just_beyond_the_allowed_limits_is_one_line_error(capsys, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *args)
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert all(w in err for w in words), err
    assert not list(tmp_path.iterdir())


def test_scan_file_delta_chi2_reference(tmp_path, csi):
    """What `cevnsfit scan` writes (same calls), read back: Delta chi^2 from the global minimum of the plane and the
    M = 0 and M = inf lines.  L_mu-L_tau on CsI has that minimum on the M = inf line, below the plane and the SM."""
    an = MediatorAnalysis()
    an._experiments = {"csi": csi}
    res = an.analyse("L_mu-L_tau", np.geomspace(1.0, 1e3, 3), np.geomspace(1e-4, 1e-2, 12), ("csi",))
    path = write_netcdf(scan_dataset(res.plane, "csi", res.contour("csi"), [csi]), tmp_path / "s.nc")
    ds = read_netcdf(path)
    chi2 = ds["chi2"].values
    global_min = min(float(g.dataset_chi2("csi")[0].min()) for g in (res.plane, res.low, res.high))
    assert ds.attrs["chi2_min"] <= global_min + 1e-12  # refined lines: at most the grid minima
    assert ds.attrs["chi2_min"] < chi2.min() - 1e-3 and ds.attrs["chi2_min"] < ds.attrs["chi2_sm"] - 0.1
    np.testing.assert_allclose(ds["delta_chi2"].values, chi2 - ds.attrs["chi2_min"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(chi2[:, 0], csi.cost()(csi.kernel.sm_counts()), rtol=0, atol=1e-9)


def test_data_home_gives_every_collection(capsys, tmp_path):
    """--data-home ROOT: each collection with a folder under ROOT is read from there (the XENONnT release and the
    solar spectrum here), the others searched as usual; a root without any is one error line."""
    from cevnsfit.io.datadir import data_folders, resolve_collection

    root = resolve_collection("coherent").parent  # shared/data of the development set-up
    folders = data_folders(None, root)
    assert {"coherent", "xenonnt_cevns", "solar"} <= set(folders)
    assert folders["coherent"] == root / "coherent"
    assert data_folders(tmp_path, root)["coherent"] == tmp_path  # --data-dir wins for COHERENT
    code, out, err = run(capsys, "sm", "-e", "xenonnt", "--runs", "sr0,sr1", "--json", "--data-home", str(root))
    assert code == 0, err
    assert json.loads(out)["xenonnt"]["observed"] == 37  # XENONnT, PRL 133 (2024) 191002: 37 events in SR0+SR1
    code, out, err = run(capsys, "sm", "-e", "csi", "--data-home", str(tmp_path))
    assert code == 2 and err.startswith("error:") and "holds none of the collections" in err
    assert len(err.strip().splitlines()) == 1
