"""Tests of cevnsfit.limits: DarkCast/FORESEE readers, the model catalogue and coupling conversions.

Reference numbers are read off the data files in ../shared/data/limits (PROVENANCE.md there) and its g-2 check:
at 1 MeV the (g-2)_mu band lower edge is epsilon = 1.06e-3 (dark_photon) and g' = 3.21e-4 = e*epsilon (B-L).
"""

import math
from pathlib import Path

import numpy as np
import pytest

from cevnsfit.errors import DataError, InputError
from cevnsfit.limits import catalog
from cevnsfit.limits.curves import OFF_SCALE, LimitCurve
from cevnsfit.limits.darkcast import read_lmt
from cevnsfit.limits.foresee import read_foresee
from cevnsfit.physics import gm2

ROOT = catalog.resolve_limits_dir()
DC = ROOT / "DS-Decay-Scripts" / "darkcast"
RECAST = DC / "recast" / "limits"
FS_BL = ROOT / "FORESEE" / "Models" / "U1B-L" / "model" / "lines"
E_CHARGE = math.sqrt(4 * math.pi / 137.036)


def stems(curves):
    return {Path(c.source_file).stem for c in curves}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- units and known points ---------------------------------------------------------------------------------------
def test_darkcast_mass_converted_from_gev():
    # file: "2.0042e-02 1.0000e+05" (sentinel) then "2.0241e-02 1.0585e-03"
    c = read_lmt(RECAST / "B-L_boson" / "BaBar_Lees2014xha.lmt")
    assert c.mass_mev[0] == pytest.approx(20.241)
    assert c.lower[0] == pytest.approx(1.0585e-3)
    assert c.model == "B-L_boson" and c.coupling == "g" and c.upper is None


def test_foresee_mass_converted_from_gev():
    c = read_foresee(FS_BL / "bounds_NA64_inv_new.txt")
    assert c.mass_mev[0] == pytest.approx(1.0365152491278205e-3)
    assert c.lower[0] == pytest.approx(2.072123056858077e-6)
    assert c.model == "U1B-L" and c.coupling == "g" and c.outline  # it doubles back to 1e-6 GeV


def test_native_dark_photon_reads_as_epsilon():
    c = read_lmt(DC / "limits" / "BaBar_Lees2014xha.lmt")
    assert c.model == "dark_photon" and c.coupling == "epsilon"
    assert read_lmt(DC / "limits" / "Borexino_Bauer2018onh.lmt").model == "B-L_boson"


# -- g-2 band check of PROVENANCE.md ---------------------------------------------------------------------------
def test_gm2_band_files_epsilon_vs_g():
    eps = read_lmt(DC / "recast" / "limits" / "dark_photon" / "AMMmu_Bodas2021fsy_2l.lmt")
    g_bl = read_lmt(RECAST / "B-L_boson" / "AMMmu_Bodas2021fsy_2l.lmt")
    assert eps.mass_mev[0] == pytest.approx(1.0)
    assert eps.lower[0] == pytest.approx(1.06e-3, rel=5e-3, abs=0)
    assert g_bl.lower[0] == pytest.approx(3.21e-4, rel=5e-3, abs=0)
    np.testing.assert_allclose(g_bl.lower, E_CHARGE * eps.lower, rtol=1e-3)  # g = e*epsilon at every mass


def test_gm2_band_accessor_converts_to_our_g():
    band = catalog.gm2_band_darkcast("B-L")
    assert band.kind == "band" and band.coupling == "g"
    assert band.mass_mev[0] == pytest.approx(1.0)
    assert band.lower[0] == pytest.approx(3.21e-4, rel=5e-3, abs=0)
    assert np.all(band.upper > band.lower)
    # g_mu = g |Q'_mu|: B-L_e-2L_mu (|Q'_mu| = 2) needs half the coupling
    np.testing.assert_allclose(catalog.gm2_band_darkcast("B-L_e-2L_mu").lower, band.lower / 2)
    for model in ("B-3L_e", "L_e-L_tau", "scalar"):  # Q'_mu = 0, or not a vector loop
        assert catalog.gm2_band_darkcast(model) is None


def test_gm2_band_agrees_with_in_package_band():
    # docs/physics.md section 11: DarkCast's lower edge within ~2 %, upper edge 8-11 % higher (1-100 MeV)
    band = catalog.gm2_band_darkcast("B-L")
    sel = (band.mass_mev >= 1) & (band.mass_mev <= 100)
    low, high = gm2.favoured_band(band.mass_mev[sel], epoch="2021", kind="vector", charge_mu=1.0)
    assert np.all(np.abs(band.lower[sel] / low - 1) < 0.03)
    assert np.all((band.upper[sel] / high > 1.05) & (band.upper[sel] / high < 1.12))


def test_gm2_band_files_not_in_experiment_lists():
    for model in catalog.DARKCAST_RECAST:
        assert not any(s.startswith("AMMmu_") for s in stems(catalog.curves_for_model(model)))


# -- empty files and sentinels -------------------------------------------------------------------------------------
def test_header_only_files_are_skipped():
    assert read_lmt(RECAST / "Lmu-Ltau_boson" / "Texono_Bauer2018onh.lmt") is None
    assert read_lmt(RECAST / "B-L_boson" / "KLOE_Anastasi2016ktq.lmt") is None
    assert "Texono_Bauer2018onh" not in stems(catalog.curves_for_model("L_mu-L_tau"))
    assert "KLOE_Anastasi2016ktq" not in stems(catalog.curves_for_model("B-L"))
    assert "CHARMII_Bauer2018onh" not in stems(catalog.curves_for_model("L_e-L_tau"))


def test_all_sentinel_file_is_no_curve():
    # every row of the B-L recast of NA62 mu mu is "1.0000e+05 1.0000e+05": no limit at any mass
    assert read_lmt(RECAST / "B-L_boson" / "NA62_Dobrich2023dkm.lmt") is None


def test_darkcast_sentinels_split_segments_without_vertices():
    c = read_lmt(RECAST / "B-L_boson" / "BaBar_Lees2014xha.lmt")
    finite = c.lower[np.isfinite(c.lower)]
    assert finite.max() < 1e-2
    assert len(c.segments()) == 7  # six interior runs of 1e5 (J/psi, psi(2S), Upsilon vetoes ...)
    for poly in c.polygons(top=1.0):
        assert np.all(np.isfinite(poly)) and poly[:, 1].max() <= 1.0
        assert not np.any(np.isclose(poly, 1e5))


def test_foresee_sentinels_and_closing_edges_dropped():
    c = read_foresee(FS_BL / "bounds_Borexino.txt")  # starts at 1e7, ends at 1e6
    assert not c.outline and np.nanmax(c.lower) < OFF_SCALE
    k = read_foresee(FS_BL / "bounds_KLOE_combined.txt")  # vertical edges up to coupling 1 at both ends
    assert k.lower[0] == pytest.approx(5.2071e-4) and k.lower[-1] == pytest.approx(4.4368e-3)


def test_two_sided_offscale_upper_and_polygons(tmp_path):
    path = write(tmp_path, "X_Test2020ab.lmt",
                 "#      mass       lower       upper\n"
                 " 1.0e-03  1.0e-05  1.0e-03\n 2.0e-03  2.0e-05  1.0e+05\n"
                 " 3.0e-03  1.0e+05  1.0e+05\n 4.0e-03  3.0e-05  2.0e-04\n 5.0e-03  4.0e-05  1.0e-04\n")
    c = read_lmt(path)
    assert c.label == "X (2020)"
    assert len(c.segments()) == 2
    assert np.isinf(c.upper[1])  # off-scale upper edge: excluded to the top of the plot
    first, second = c.polygons(top=0.5)
    np.testing.assert_allclose(first, [[1, 1e-5], [2, 2e-5], [2, 0.5], [1, 1e-3]])
    np.testing.assert_allclose(second, [[4, 3e-5], [5, 4e-5], [5, 1e-4], [4, 2e-4]])


def test_one_sided_polygon_closes_at_top_and_nan_rows_split(tmp_path):
    path = write(tmp_path, "Y_Test2021ab.lmt",
                 "# a comment\n#  mass  lower\n 1e-3 1e-4\n 2e-3 2e-4\n nan nan\n 3e-3 3e-4\n 4e-3 4e-4 # note\n")
    c = read_lmt(path)
    assert len(c.segments()) == 2 and np.isnan(c.mass_mev[2])
    np.testing.assert_allclose(c.polygons(top=1.0)[0], [[1, 1e-4], [2, 2e-4], [2, 1], [1, 1]])


def test_decreasing_mass_starts_new_segment(tmp_path):
    path = write(tmp_path, "Z_Test2022ab.lmt", "#  mass  lower\n 1e-3 1e-4\n 3e-3 2e-4\n 2e-3 3e-4\n 4e-3 4e-4\n")
    assert [len(s[0]) for s in read_lmt(path).segments()] == [2, 2]
    # a real digitised curve that steps back once (native ATLAS file)
    assert len(read_lmt(DC / "limits" / "ATLAS_Aad2015sms_br20.lmt").segments()) == 2


def test_foresee_outline_kept_in_drawing_order():
    c = read_foresee(FS_BL / "bounds_E137.txt")
    assert c.outline and c.upper is None and len(c.segments()) == 1
    (poly,) = c.polygons(top=1.0)
    np.testing.assert_allclose(poly[:, 0], c.mass_mev)


# -- malformed input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "#  mass  lower\n 1e-3 abc\n",                   # non-numeric
    "#  mass  lower\n 1e-3 1e-4 1e-3\n",             # more columns than the header
    "#  mass  lower  upper\n 1e-3 1e-4\n",           # fewer columns than the header
    "#  mass  g  r\n 1e-3 1e-4 1.0\n",               # not a limit table (DarkCast's LHCb r-grids)
    "#  mass  lower\n 1e-3 -1e-4\n",                 # negative coupling
    " 1e-3 1e-4 1e-3 1.0\n",                         # no header and four columns
])  # fmt: skip
def test_malformed_lmt_raises_data_error_naming_file(tmp_path, text):
    path = write(tmp_path, "Bad_Test2020ab.lmt", text)
    with pytest.raises(DataError, match="Bad_Test2020ab.lmt"):
        read_lmt(path)


def test_malformed_foresee_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="bad.txt"):
        read_foresee(write(tmp_path, "bad.txt", "0.1 0.2 0.3\n"))
    with pytest.raises(DataError, match="missing limit file"):
        read_lmt(tmp_path / "absent.lmt")
    binary = tmp_path / "bin.lmt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not a text file"):
        read_lmt(binary)


def test_malformed_file_in_catalogue_raises(tmp_path):
    folder = tmp_path / "DS-Decay-Scripts" / "darkcast" / "recast" / "limits" / "Lmu-Ltau_boson"
    folder.mkdir(parents=True)
    write(folder, "BaBar_TheBABAR2016rlg.lmt", "#  mass  lower\n 0.2 oops\n")
    with pytest.raises(DataError, match="BaBar_TheBABAR2016rlg.lmt"):
        catalog.curves_for_model("L_mu-L_tau", shared_dir=tmp_path)


# -- data directory ------------------------------------------------------------------------------------------
def test_missing_directory_raises_data_error(tmp_path, monkeypatch):
    with pytest.raises(DataError):
        catalog.curves_for_model("B-L", shared_dir=tmp_path / "nowhere")
    monkeypatch.setenv("CEVNSFIT_LIMITS", str(tmp_path))
    with pytest.raises(DataError, match="CEVNSFIT_LIMITS"):
        catalog.curves_for_model("B-L")


def test_directory_from_env_or_shared_folder(monkeypatch):
    monkeypatch.setenv("CEVNSFIT_LIMITS", str(ROOT))
    assert catalog.resolve_limits_dir() == ROOT.resolve()
    monkeypatch.delenv("CEVNSFIT_LIMITS")
    assert catalog.resolve_limits_dir(ROOT.parent.parent) == ROOT.resolve()  # a `shared` folder works too


# -- catalogue ---------------------------------------------------------------------------------------------------
def test_unknown_model_lists_valid_names():
    with pytest.raises(InputError, match="L_mu-L_tau"):
        catalog.curves_for_model("dark_photon")


def test_every_model_maps_and_empty_ones_are_documented():
    assert len(catalog.MODEL_NAMES) == 11
    empty = set(catalog.models_without_curves())
    assert empty == {"universal", "B_y+L_mu+L_tau", "B-3L_e", "B-3L_mu", "B-2L_e-L_mu", "B-L_e-2L_mu", "scalar"}
    doc = (Path(__file__).resolve().parents[1] / "docs" / "external_limits.md").read_text(encoding="utf-8")
    for model in catalog.MODEL_NAMES:
        curves = catalog.curves_for_model(model, include_projections=True)
        assert isinstance(curves, list)
        assert (len(curves) == 0) == (model in empty), model
        assert f"`{model}`" in doc, f"{model} not in docs/external_limits.md"
        for c in curves:
            assert isinstance(c, LimitCurve) and c.coupling == "g" and c.reference
            assert c.has_points_in(1e-3, 1e5)


def test_model_names_are_case_insensitive():
    assert len(catalog.curves_for_model("l_mu-l_tau")) == len(catalog.curves_for_model("L_mu-L_tau")) > 0


def test_b_minus_l_sources_and_projections():
    bounds = catalog.curves_for_model("B-L")
    names = stems(bounds)
    assert {"BaBar_TheBABAR2016rlg", "CHARMII_Bauer2018onh", "Texono_Bauer2018onh", "bounds_NA64_inv_new"} <= names
    assert not any(c.kind == "projection" for c in bounds)
    # DarkCast v2.1 is preferred: FORESEE's older v1.x recasts and duplicate nu-e digitisations are not used
    assert not names & {"bounds_BaBar", "bounds_CHARM-II", "bounds_Texono", "bounds_NA64_inv"}
    projections = [c for c in catalog.curves_for_model("B-L", include_projections=True) if c.kind == "projection"]
    assert stems(projections) == {Path(n).stem for n in catalog.FORESEE_B_L if n.startswith("limits_")}


def test_loop_mixing_caveat_recorded():
    for model in ("L_mu-L_tau", "L_e-L_mu", "L_e-L_tau"):
        assert all("loop" in c.notes for c in catalog.curves_for_model(model))


def test_approximate_proxies_are_labelled_and_filtered():
    assert catalog.curves_for_model("B-3L_mu") == []
    proxies = catalog.curves_for_model("B-3L_mu", approximate=True)
    assert proxies and all(c.label.endswith("[B-L proxy]") and "approximate" in c.notes for c in proxies)
    names = stems(proxies)
    assert "BaBar_TheBABAR2016rlg" in names  # muon-only search applies
    assert "E137_Andreas2012mt" not in names  # Q'_e = 0: electron beam dumps say nothing
    assert catalog.curves_for_model("universal", approximate=True) == []
    assert "B-3L_mu" not in catalog.models_without_curves(approximate=True)


def test_approximate_proxies_rescaled_by_the_lepton_charge():
    # B-3L_mu couples to muons with |Q'_mu| = 3 (B-L: 1): a muon-only limit on g is 3 times stronger.
    bl = {Path(c.source_file).stem: c for c in catalog.curves_for_model("B-L")}
    proxy = {Path(c.source_file).stem: c for c in catalog.curves_for_model("B-3L_mu", approximate=True)}
    ref, got = bl["BaBar_TheBABAR2016rlg"], proxy["BaBar_TheBABAR2016rlg"]
    np.testing.assert_allclose(got.lower, ref.lower / 3.0, rtol=1e-15)
    # B-2L_e-L_mu: electron-only limits divided by |Q'_e| = 2, muon-only by |Q'_mu| = 1
    proxy = {Path(c.source_file).stem: c for c in catalog.curves_for_model("B-2L_e-L_mu", approximate=True)}
    np.testing.assert_allclose(proxy["E137_Andreas2012mt"].lower, bl["E137_Andreas2012mt"].lower / 2.0, rtol=1e-15)
    np.testing.assert_allclose(proxy["BaBar_TheBABAR2016rlg"].lower, bl["BaBar_TheBABAR2016rlg"].lower, rtol=1e-15)
