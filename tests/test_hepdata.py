"""The limits as a HEPData submission (cevnsfit.io.hepdata; `cevnsfit limits --hepdata DIR`, `reproduce`'s
hepdata/): valid for hepdata-validator, one table per model and data set with units, CL and method qualifiers,
written atomically, and a bad folder refused with one line before any work."""

from __future__ import annotations

import json
import os
import stat

import pytest
import yaml
from hepdata_validator.data_file_validator import DataFileValidator
from hepdata_validator.full_submission_validator import FullSubmissionValidator

from cevnsfit import cli
from cevnsfit.analysis import hepdata_labels, limits_document, write_hepdata
from cevnsfit.errors import InputError, OutputError
from cevnsfit.io import hepdata
from cevnsfit.mediators import convention


def rows(fc: bool = False) -> list[dict]:
    """Two models on one data set, as `cevnsfit limits --json` gives them (nulls where there is no finite value)."""
    out = []
    for model, g, gm, islands in (("B-L", 4.5e-5, 1.03e-3, []), ("L_mu-L_tau", None, 2.1e-2, [[3e-3, None]])):
        r = {"model": model, "kind": "vector", "dataset": "csi+lar", "g_low_mass": g, "g_over_M_high_mass": gm,
             "low_mass_islands": islands, "high_mass_islands": [], "chi2_sm": 211.1, "chi2_min": 210.5,
             "contour": {"mass_mev": [0.01, 1.0, 100.0], "g_upper": [4.5e-5, 5e-5, None],
                         "islands": [[], [[2e-4, 3e-4]], [[1e-3, None], [2e-3, 4e-3]]], "cl": "2dof"}}
        if fc:
            r["fc"] = {"g_low_mass": {"wilks_1par": 4.0e-5, "fc": 4.2e-5, "toy_error": 1e-7},
                       "g_over_M_high_mass": {"wilks_1par": 1.0e-3, "fc": None, "toy_error": None}}
        out.append(r)
    return out


def valid(folder) -> bool:
    validator = FullSubmissionValidator(autoload_remote_schemas=False)
    ok = validator.validate(directory=str(folder))
    assert ok, validator.get_messages()
    return ok


def tables(folder) -> dict:
    docs = list(yaml.safe_load_all((folder / "submission.yaml").read_text()))
    return {d["name"]: (d, yaml.safe_load((folder / d["data_file"]).read_text())) for d in docs[1:]}


def qualifiers(var) -> dict:
    return {q["name"]: q["value"] for q in var.get("qualifiers", [])}


def test_submission_is_valid_with_units_cl_and_method(tmp_path):
    path = write_hepdata({"limits": rows(), "convention": convention("2dof")}, tmp_path / "hd")
    assert valid(path)
    got = tables(path)
    assert set(got) == {"Limits CsI+LAr", "Contour B-L CsI+LAr", "Contour L_mu-L_tau CsI+LAr"}
    _, limits = got["Limits CsI+LAr"]
    assert [v["value"] for v in limits["independent_variables"][0]["values"]] == ["B-L", "L_mu-L_tau"]
    deps = {d["header"]["name"]: d for d in limits["dependent_variables"]}
    g, gm = deps["g upper limit (M -> 0)"], deps["g/M upper limit (M -> inf)"]
    assert [v["value"] for v in g["values"]] == [4.5e-5, "-"]  # no finite limit: '-'
    assert [v["value"] for v in gm["values"]] == [1.03e-3, 2.1e-2]
    assert gm["header"]["units"] == "GeV^-1" and "units" not in g["header"]
    assert qualifiers(g) == {"CL": "2 sigma", "data set": "CsI+LAr",
                             "method": "Wilks, 2 dof: Delta chi^2 = 6.18 from the global minimum over the (M, g) plane"}
    assert [v["value"] for v in deps["allowed islands of g (M -> 0)"]["values"]] == ["-", "[0.003, open]"]
    # the contour: mass in MeV, the upper limit on g, the islands' edges per mass
    _, contour = got["Contour B-L CsI+LAr"]
    mass = contour["independent_variables"][0]
    assert mass["header"] == {"name": "M", "units": "MeV"} and [v["value"] for v in mass["values"]] == [0.01, 1.0, 100.0]
    deps = {d["header"]["name"]: [v["value"] for v in d["values"]] for d in contour["dependent_variables"]}
    assert deps == {"g upper limit": [4.5e-5, 5e-5, "-"], "island 1 lower edge g": ["-", 2e-4, 1e-3],
                    "island 1 upper edge g": ["-", 3e-4, "-"], "island 2 lower edge g": ["-", "-", 2e-3],
                    "island 2 upper edge g": ["-", "-", 4e-3]}
    assert qualifiers(contour["dependent_variables"][0])["model"] == "B-L"
    # each data file also passes the data schema on its own
    for name in os.listdir(path):
        if name != "submission.yaml":
            assert DataFileValidator().validate(file_path=str(path / name)), name
    assert stat.S_IMODE(path.stat().st_mode) & 0o055  # readable by others like any folder the user makes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_one_dof_and_feldman_cousins_qualifiers(tmp_path):
    path = write_hepdata({"limits": rows(fc=True), "convention": convention("1dof")}, tmp_path / "hd", fc_toys=500)
    assert valid(path)
    _, limits = tables(path)["Limits CsI+LAr"]
    deps = {d["header"]["name"]: d for d in limits["dependent_variables"]}
    assert qualifiers(deps["g upper limit (M -> 0)"])["method"].startswith("Wilks, 1 dof: Delta chi^2 = 4")
    fc = deps["g upper limit (M -> 0), FC"]
    assert qualifiers(fc)["method"].startswith("Feldman-Cousins (Neyman construction, 500 toys")
    assert qualifiers(fc)["CL"] == "2 sigma"
    assert fc["values"][0] == {"value": 4.2e-5, "errors": [{"symerror": 1e-7, "label": "toy statistics"}]}
    assert [v["value"] for v in deps["g/M upper limit (M -> inf), FC"]["values"]] == ["-", "-"]
    assert [v["value"] for v in deps["g upper limit (M -> 0), Wilks 1 dof"]["values"]] == [4.0e-5, 4.0e-5]


def test_a_previous_submission_is_replaced_whole_and_kept_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "hd"
    write_hepdata({"limits": rows(), "convention": convention("2dof")}, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    one = [r for r in rows() if r["model"] == "B-L"]
    write_hepdata({"limits": one, "convention": convention("2dof")}, target)
    assert "contour_l_mu-l_tau_csi+lar.yaml" not in os.listdir(target) and valid(target)

    def broken(self, outdir):  # a failure after the first table was written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("hepdata_lib.Table.write_output", broken)
    with pytest.raises(OSError):
        write_hepdata({"limits": rows(), "convention": convention("2dof")}, target)
    assert "contour_l_mu-l_tau_csi+lar.yaml" not in os.listdir(target) and valid(target)  # the second, intact
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert before  # (the first submission had its files)


def test_an_invalid_submission_is_not_put_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(hepdata, "validate", lambda folder: ["limits_csi+lar.yaml: broken on purpose"])
    with pytest.raises(OutputError, match="not valid: limits_csi"):
        write_hepdata({"limits": rows(), "convention": convention("2dof")}, tmp_path / "hd")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make, words", [
    (lambda t: t / "missing" / "hd", "does not exist"),
    (lambda t: (t / "file").write_text("x") and t / "file", "not a folder"),
    (lambda t: (t / "full").mkdir() or (t / "full" / "notes.txt").write_text("x") and t / "full", "other files"),
])
def test_bad_folder_is_one_error_line_before_any_work(tmp_path, capsys, monkeypatch, make, words):
    target = make(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.setattr("cevnsfit.mediators.MediatorAnalysis.analyse", lambda *a, **k: pytest.fail("work began"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["limits", "--model", "B-L", "--dataset", "csi", "--hepdata", str(target)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert words in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_parent_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match="not writable"):
            hepdata.check_hepdata_dir(ro / "hd")
    finally:
        ro.chmod(0o755)


def test_missing_hepdata_lib_is_one_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_lib(name, *a, **k):
        if name == "hepdata_lib":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_lib)
    with pytest.raises(InputError, match="pip install hepdata-lib"):
        hepdata.check_hepdata_dir("hd")


def test_file_names_are_known_before_the_work(tmp_path):
    path = write_hepdata({"limits": rows(), "convention": convention("2dof")}, tmp_path / "hd")
    assert sorted(os.listdir(path)) == sorted(hepdata.submission_files(["B-L", "L_mu-L_tau"], ["csi+lar"],
                                                                       hepdata_labels()))


@pytest.mark.slow
def test_limits_command_writes_the_numbers_it_prints(tmp_path, capsys, csi):
    """`cevnsfit limits --hepdata` on real data: the tables hold the numbers of `--json` (6 significant digits)."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["limits", "--model", "L_mu-L_tau", "--dataset", "csi", "--json", "--hepdata", str(tmp_path / "hd")])
    assert exc.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert valid(tmp_path / "hd")
    got = tables(tmp_path / "hd")
    row = doc["limits"][0]
    _, limits = got["Limits CsI"]
    deps = {d["header"]["name"]: d["values"][0]["value"] for d in limits["dependent_variables"]}
    assert deps["g upper limit (M -> 0)"] == pytest.approx(row["g_low_mass"], rel=1e-5)
    assert deps["g/M upper limit (M -> inf)"] == pytest.approx(row["g_over_M_high_mass"], rel=1e-5)
    _, contour = got["Contour L_mu-L_tau CsI"]
    g = [v["value"] for v in contour["dependent_variables"][0]["values"]]
    assert len(g) == len(row["contour"]["mass_mev"]) == 121
    assert all(x == "-" if y is None else x == pytest.approx(y, rel=1e-5) for x, y in zip(g, row["contour"]["g_upper"]))


def test_limits_document_checks_the_folder_first(tmp_path, monkeypatch):
    monkeypatch.setattr("cevnsfit.mediators.MediatorAnalysis.analyse", lambda *a, **k: pytest.fail("work began"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError):
        limits_document("B-L", dataset="csi", hepdata=tmp_path / "f")
