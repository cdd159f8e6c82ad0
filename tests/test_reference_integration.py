"""The package's response kernels vs the independent quadrature reference of ``tests/reference_rates.py``.

The reference integrates the master formula (physics.md 7) with scipy quad: detector response per bin
(Gamma pdf x efficiency for CsI, Gaussian x interpolated efficiency for LAr), recoil energy, neutrino energy
(own Michel spectra, own Helm form factor and cross section).  Energy projections must agree to 1e-4 relative (LAr 1e-6, the lowest CsI bin 1e-3);
time fractions to 1e-7 absolute (each tolerance 3-10x the agreement achieved, see the constants).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_rates as ref  # noqa: E402

from cevnsfit.experiments import load_experiment  # noqa: E402

# Tolerances 3-10x the agreement achieved (docs/validation/sm.md), which a 1e-3 used to hide:
RTOL = 1e-4  # CsI bins 1-8 and totals: achieved <= 2.2e-5
RTOL_LAR = 1e-6  # LAr bins with content: achieved <= 1.1e-7
RTOL_CSI_BIN0 = 1e-3  # [0, 8) PE with the default 0.1-PE efficiency nodes: achieved 2.3e-4
FINE_BIN0_RTOL = 2e-5  # the same bin with 0.01-PE nodes: achieved 2.4e-6
ATOL_EVENTS = 1e-8  # bins whose content is ~1e-14 events or less are compared absolutely
TIME_ATOL = 1e-7  # achieved: LAr 2e-16, CsI 1e-8

# The lowest CsI bin [0, 8) PE: see test_csi_lowest_bin_default_node_step.
CSI_BINS = [1, 2, 3, 4, 5, 6, 7, 8]
LAR_BINS = list(range(12))


def _energy_projection(experiment, flavour: str) -> np.ndarray:
    """Package counts of one flavour per energy bin, integrated over all arrival times (time fractions divided out)."""
    counts = experiment.kernel.sm_counts_by_flavour()[flavour]
    return counts.sum(axis=1) / experiment.kernel.detector.time[flavour].sum()


def _edges(name: str):
    return ref.CSI_PE_EDGES if name == "csi" else ref.LAR_E_EDGES


def _ref_bin(name: str, i: int, flavour: str) -> float:
    e = _edges(name)
    fn = ref.csi_counts if name == "csi" else ref.lar_counts
    return fn(e[i], e[i + 1], flavour)


# ---- set-up consistency (the reference reads the same inputs) ------------------------------------------------
def test_reference_inputs_match_package(csi, lar):
    assert tuple(csi.options.pe_edges) == ref.CSI_PE_EDGES
    assert tuple(csi.options.t_edges_us) == ref.CSI_T_EDGES_US
    np.testing.assert_allclose(lar.energy_edges, ref.LAR_E_EDGES)
    np.testing.assert_allclose(lar.time_edges_us, ref.LAR_T_EDGES_US)
    np.testing.assert_array_equal(csi.quenching_coeffs, ref.csi_quenching())
    np.testing.assert_array_equal(csi.efficiency_coeffs, ref.csi_efficiency())
    assert ref.E_PI == pytest.approx(29.792, abs=1e-3)
    assert ref.n_targets("csi") == pytest.approx(3.3842e25, rel=1e-4, abs=0)
    assert ref.n_targets("lar") == pytest.approx(3.6782e26, rel=1e-4, abs=0)
    assert ref.helm(0.0, 5.0) == 1.0
    # the clipped CsI efficiency vanishes below 7.068 PE (physics.md 8.5 says "about 5.2 PE")
    assert ref.csi_eps_zero() == pytest.approx(7.0682, abs=1e-3)


# ---- energy projections ------------------------------------------------------------------------------------
@pytest.mark.parametrize("flavour", ref.FLAVOURS)
@pytest.mark.parametrize("i", CSI_BINS)
def test_csi_energy_bins(csi, flavour, i):
    pkg = _energy_projection(csi, flavour)[i]
    assert pkg == pytest.approx(_ref_bin("csi", i, flavour), rel=RTOL, abs=ATOL_EVENTS)


@pytest.mark.parametrize("flavour", ref.FLAVOURS)
@pytest.mark.parametrize("i", LAR_BINS)
def test_lar_energy_bins(lar, flavour, i):
    pkg = _energy_projection(lar, flavour)[i]
    assert pkg == pytest.approx(_ref_bin("lar", i, flavour), rel=RTOL_LAR, abs=ATOL_EVENTS)


@pytest.mark.parametrize("flavour", ref.FLAVOURS)
def test_totals_over_energy(csi, lar, flavour):
    # one quad over the whole ROI (0-60 PE, 0-120 keVee), independent of the bin-by-bin reference
    assert _energy_projection(csi, flavour).sum() == pytest.approx(ref.csi_counts(0.0, 60.0, flavour), rel=RTOL, abs=0)
    assert _energy_projection(lar, flavour).sum() == pytest.approx(ref.lar_counts(0.0, 120.0, flavour), rel=RTOL_LAR, abs=0)


# The clipped efficiency has a kink at 7.068 PE; the package places a node there (before that fix, the 0.1-PE
# interpolation put the [0, 8) PE bin 0.28 % high, which this test caught).
@pytest.mark.parametrize("flavour", ref.FLAVOURS)
def test_csi_lowest_bin_default_node_step(csi, flavour):
    pkg = _energy_projection(csi, flavour)[0]
    assert pkg == pytest.approx(_ref_bin("csi", 0, flavour), rel=RTOL_CSI_BIN0, abs=0)


@pytest.fixture(scope="module")
def csi_fine(csi):
    return load_experiment("csi", csi.data_dir, pe_edges=(0.0, 8.0), pe_node_step=0.01)  # one bin keeps it fast


@pytest.mark.parametrize("flavour", ref.FLAVOURS)
def test_csi_lowest_bin_fine_node_step(csi_fine, flavour):
    pkg = _energy_projection(csi_fine, flavour)[0]
    assert pkg == pytest.approx(_ref_bin("csi", 0, flavour), rel=FINE_BIN0_RTOL, abs=0)


# ---- time fractions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flavour", ref.FLAVOURS)
def test_lar_time_fractions(lar, flavour):
    np.testing.assert_allclose(lar.kernel.detector.time[flavour], ref.lar_time_fractions(flavour),
                               rtol=0, atol=TIME_ATOL)


def test_lar_in_window_fractions():
    # physics.md 6.4 quotes in-window fractions prompt 0.9999, delayed 0.868.  The delayed one is 0.8662: the window
    # ends at 4.9 us, far in the tail, where 1 - F(t) = tau_mu/(tau_mu - tau_pi) exp(-(t - mu)/tau_mu + sigma^2/(2
    # tau_mu^2)) (exponentially modified Gaussian tail; the part below -0.1 us is < 1e-6).
    mu, sig = 0.45, 0.15
    tail = ref.TAU_MU_US / (ref.TAU_MU_US - ref.TAU_PI_US) * np.exp(-(4.9 - mu) / ref.TAU_MU_US
                                                                     + sig**2 / (2 * ref.TAU_MU_US**2))
    assert ref.lar_time_fractions("numu").sum() == pytest.approx(0.9999, abs=1e-4)
    assert ref.lar_time_fractions("nue").sum() == pytest.approx(1.0 - tail, abs=2e-6)
    assert ref.lar_time_fractions("nue").sum() == pytest.approx(0.868, abs=2e-3)


@pytest.mark.parametrize("flavour", ref.FLAVOURS)
def test_csi_time_fractions(csi, flavour):
    np.testing.assert_allclose(csi.kernel.detector.time[flavour], ref.csi_time_fractions(flavour),
                               rtol=0, atol=TIME_ATOL)


# ---- full reference prediction vs the specification's cross-checks (physics.md 13.3, +-2 %) -----------------
def test_reference_vs_spec_numbers():
    csi_e = {f: np.array([_ref_bin("csi", i, f) for i in range(9)]) for f in ref.FLAVOURS}
    csi_roi = {f: csi_e[f] * ref.csi_time_fractions(f).sum() for f in ref.FLAVOURS}
    for f, spec in (("numu", 50.0), ("nue", 101.4), ("numubar", 164.8)):
        assert csi_roi[f].sum() == pytest.approx(spec, rel=0.02, abs=0)
    assert sum(v.sum() for v in csi_roi.values()) == pytest.approx(316.2, rel=0.02, abs=0)
    per_bin = sum(csi_roi.values())
    np.testing.assert_allclose(per_bin, [2.3, 49.4, 73.4, 62.0, 43.7, 49.8, 22.6, 10.5, 2.6], rtol=0.02, atol=0.05)
    # CsI all times, no eps_T: 364.2 (nu_mu 50.1, nu_e 119.7, nu_mu-bar 194.4)
    for f, spec in (("numu", 50.1), ("nue", 119.7), ("numubar", 194.4)):
        assert csi_e[f].sum() == pytest.approx(spec, rel=0.02, abs=0)
    lar_all = {f: ref.lar_counts(0.0, 120.0, f) for f in ref.FLAVOURS}
    assert sum(lar_all.values()) == pytest.approx(133.0, rel=0.02, abs=0)
    lar_window = sum(lar_all[f] * ref.lar_time_fractions(f).sum() for f in ref.FLAVOURS)
    assert lar_window == pytest.approx(119.4, rel=0.02, abs=0)
