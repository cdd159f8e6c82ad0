"""Every number of the Standard-Model tables of the validation pages (docs/validation/sm.md), asserted at the
precision printed there, and printed there (test_the_page_prints_the_pinned_numbers reads the page).

These are regression pins of documented results (each row of the document names this file or the test that holds
the number against an external reference): a change that moves a published number must update the document.
The references themselves (spec cross-checks, COHERENT, AC22) are checked with their own tolerances by the tests
the document names; the chi^2 machinery independently by tests/test_chi2_bruteforce.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from pathlib import Path

from cevnsfit.analysis import sm_summary
from cevnsfit.experiments import load_experiment

HALF_DIGIT = 0.05 + 1e-9  # a number printed with one decimal
HALF_CENT = 0.005 + 1e-9  # two decimals
SM_PAGE = Path(__file__).resolve().parents[1] / "docs" / "validation" / "sm.md"

# what the page prints, as it prints it: every number the tests below pin
PRINTED = [
    "**316.2** (ν_μ 50.0, ν_e 101.4, ν̄_μ 164.8)", "2.3, 49.4, 73.4, 62.0, 43.7, 49.8, 22.5, 10.5, 2.6",
    "0.1, 2.2, 10.2, 21.0, 25.9, 22.0, 17.0, 14.6, 87.6, 84.7, 30.9", "**307.1**",
    "χ²_min = 104.90 / 99 bins; CEvNS 310.8, BRN 18.2, NIN 5.1, SS 1276.7", "18.26 / 5.16",
    "`grid2d` flux 319.3", "`analytic` timing 315.8", "319.2 / 313.4", "352.4 / 284.3", "Klein–Nystrand 317.6",
    "symmetrized Fermi 317.0", "tree couplings 315.2", "exact kinematics 315.9",
    "**119.25** (ν_μ 30.0, ν_e 36.3, ν̄_μ 53.0)", "0.637 vs 0.615", "CEvNS 166.4, SS 3131.3, DBRN 2.3, PBRN 474.5",
    "χ²_min = 106.22 / 120 bins; CEvNS 123.3, SS 3134.5, PBRN 488.9, DBRN 4.8",
]


def test_the_page_prints_the_pinned_numbers():
    text = SM_PAGE.read_text(encoding="utf-8")
    assert [p for p in PRINTED if p not in text] == []


def test_csi_standard_model_table(csi):
    k = csi.kernel
    by = {f: v.sum() for f, v in k.sm_counts_by_flavour().items()}
    assert sum(by.values()) == pytest.approx(316.2, abs=HALF_DIGIT)
    assert (by["numu"], by["nue"], by["numubar"]) == pytest.approx((50.0, 101.4, 164.8), abs=HALF_DIGIT)
    n = k.sm_counts()
    np.testing.assert_allclose(n.sum(axis=1), [2.3, 49.4, 73.4, 62.0, 43.7, 49.8, 22.5, 10.5, 2.6], rtol=0,
                               atol=HALF_DIGIT)
    np.testing.assert_allclose(n.sum(axis=0), [0.1, 2.2, 10.2, 21.0, 25.9, 22.0, 17.0, 14.6, 87.6, 84.7, 30.9],
                               rtol=0, atol=HALF_DIGIT)
    free = csi.cost(free_signal=True).fit(n).totals()["cevns"]
    assert free == pytest.approx(307.1, abs=HALF_DIGIT)
    s = sm_summary(csi)
    assert s["chi2_min"] == pytest.approx(104.90, abs=HALF_CENT) and s["n_bins"] == 99
    assert [s["best_fit"][z] for z in ("cevns", "brn", "nin", "ss")] == pytest.approx([310.8, 18.2, 5.1, 1276.7],
                                                                                      abs=HALF_DIGIT)
    assert (csi.backgrounds["brn"].sum(), csi.backgrounds["nin"].sum()) == pytest.approx((18.26, 5.16), abs=HALF_CENT)


@pytest.mark.slow
@pytest.mark.parametrize("options, total", [
    ({"flux_model": "grid2d"}, 319.3), ({"flux_model": "analytic"}, 315.8),
    ({"quenching": "model0+"}, 319.2), ({"quenching": "model0-"}, 313.4),
    ({"efficiency": "sys1"}, 352.4), ({"efficiency": "sys2"}, 284.3),
    ({"form_factor": "klein_nystrand"}, 317.6), ({"form_factor": "fermi"}, 317.0),
    ({"couplings": "tree"}, 315.2), ({"kinematics": "exact"}, 315.9),
], ids=lambda v: str(v))
def test_csi_option_sensitivities(csi, options, total):
    assert load_experiment("csi", csi.data_dir, **options).kernel.sm_counts().sum() == pytest.approx(total, abs=HALF_DIGIT)


def test_lar_standard_model_table(lar):
    by = {f: v.sum() for f, v in lar.kernel.sm_counts_by_flavour().items()}
    assert sum(by.values()) == pytest.approx(119.25, abs=HALF_CENT)
    assert (by["numu"], by["nue"], by["numubar"]) == pytest.approx((30.0, 36.3, 53.0), abs=HALF_DIGIT)
    n = lar.kernel.sm_counts()
    rel = lar.release["cevns"]
    assert (n.sum(axis=1)[0] / n.sum(), rel.sum(axis=1)[0] / rel.sum()) == pytest.approx((0.637, 0.615), abs=5e-4)
    free = lar.cost(free_signal=True).fit(n).totals()
    assert [free[z] for z in ("cevns", "ss", "dbrn", "pbrn")] == pytest.approx([166.4, 3131.3, 2.3, 474.5],
                                                                              abs=HALF_DIGIT)
    s = sm_summary(lar)
    assert s["chi2_min"] == pytest.approx(106.22, abs=HALF_CENT) and s["n_bins"] == 120
    assert [s["best_fit"][z] for z in ("cevns", "ss", "pbrn", "dbrn")] == pytest.approx([123.3, 3134.5, 488.9, 4.8],
                                                                                      abs=HALF_DIGIT)
