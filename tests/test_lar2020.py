"""LAr (CENNS-10) 2020: release templates, computed SM prediction, statistical errors and the release fit."""

import numpy as np
import pytest

from cevnsfit.experiments import load_experiment
from cevnsfit.experiments.lar2020 import read_3d
from cevnsfit.io.datadir import read_table


def test_release_templates(lar):
    totals = {z: v.sum() for z, v in lar.release.items()}
    assert totals == pytest.approx({"cevns": 128.0, "ss": 3152.0, "pbrn": 497.0, "dbrn": 33.0}, rel=1e-4, abs=0)
    assert lar.observed.sum() == 3752
    np.testing.assert_array_equal(lar.observed.sum(axis=0), [351, 799, 387, 328, 319, 324, 320, 300, 332, 292])
    np.testing.assert_allclose(lar.release["cevns"].sum(axis=1)[:5], [78.70, 36.97, 9.89, 2.36, 0.08], atol=6e-3)
    np.testing.assert_allclose(lar.release["pbrn"].sum(axis=0)[:3], [56.19, 328.86, 111.96], atol=6e-3)


def test_stat_sigma_is_release_stat_error(lar):
    # the release's 1-D "Data Stat. Error" equals sqrt(N_data + N_SS/5) (spec 9.6)
    table = read_table(lar.data_dir / "lar2020/timingdata1d.txt", ncols=8, skip_header=1)
    var = lar.likelihood.stat_sigma(lar) ** 2
    np.testing.assert_allclose(np.sqrt(var.sum(axis=0)), table[:, 2], atol=0.011)


def test_computed_cevns_vs_release(lar):
    n = lar.kernel.sm_counts()
    # spec 13.3 independent cross-check 119.4 (+-2 %), and COHERENT's 128 +- 17 (+-10 %)
    assert n.sum() == pytest.approx(119.4, rel=0.02, abs=0)
    assert n.sum() == pytest.approx(128.0, rel=0.10, abs=0)
    rel = lar.release["cevns"]
    # shapes: time projection to 0.006, energy projection to 0.025 in fraction per bin
    np.testing.assert_allclose(n.sum(axis=0) / n.sum(), rel.sum(axis=0) / rel.sum(), atol=0.006)
    np.testing.assert_allclose(n.sum(axis=1) / n.sum(), rel.sum(axis=1) / rel.sum(), atol=0.025)


def test_release_ratio_reproduces_release(lar):
    alt = load_experiment("lar", lar.data_dir, prediction="release_ratio")
    np.testing.assert_allclose(alt.sm_prediction()["cevns"], alt.release["cevns"], rtol=1e-12, atol=1e-12)


def test_free_fit_vs_release_fit(lar):
    # COHERENT's 3-D likelihood fit: CEvNS 159 +- 43, SS 3131 +- 23, DBRN 10 +- 11 (PBRN 553 +- 34, see docs)
    fit = lar.cost(free_signal=True).fit(lar.kernel.sm_counts())
    t = fit.totals()
    assert abs(t["cevns"] - 159) < 43
    assert abs(t["ss"] - 3131) < 23
    assert abs(t["dbrn"] - 10) < 11
    assert abs(t["pbrn"] - 553) < 3 * 34


def test_natural_argon_changes_rate_little(lar):
    nat = load_experiment("lar", lar.data_dir, argon_isotopes="natural").kernel.sm_counts().sum()
    assert abs(nat / lar.kernel.sm_counts().sum() - 1) < 3e-3  # spec 5.3: < 0.3 %


def test_read_3d_rejects_bad_grid(tmp_path, lar):
    bad = tmp_path / "cevnspdf.txt"
    rows = np.loadtxt(lar.data_dir / "lar2020/cevnspdf.txt")
    rows[:, 0] += 1.0
    np.savetxt(bad, rows)
    from cevnsfit.errors import DataError

    with pytest.raises(DataError, match="bin centres"):
        read_3d(bad)
