"""XENONnT 8B: release reading, folding, morphing, cost, and validation against the collaboration's results."""


from pathlib import Path

import h5py
import numpy as np
import pytest
from reference_costs import ReferenceMorphed

from cevnsfit.errors import DataError, InputError
from cevnsfit.experiments import load_experiment
from cevnsfit.experiments.xenonnt import XenonOptions, sm_signal, sm_summary
from cevnsfit.experiments.xenonnt_release import GRID, MONO_KEV, read_run, read_template
from cevnsfit.responses.mono import FoldedMatrix
from cevnsfit.responses.mono import hat_weights as _hat_weights


def hat_weights(recoil_kev):
    return _hat_weights(recoil_kev, MONO_KEV)


def XenonNT(**options):
    return load_experiment("xenonnt", **options)
from cevnsfit.io.datadir import resolve_collection
from cevnsfit.physics.cross_section import differential_cross_section
from cevnsfit.stats.morphing import CardinalSplines, GridMorph, MorphedPoissonChi2

try:
    ROOT = resolve_collection("xenonnt_cevns")
except Exception:  # pragma: no cover - the release is not on this machine
    ROOT = None
needs_release = pytest.mark.skipif(ROOT is None, reason="XENONnT release not available")


@pytest.fixture(scope="module")
def xe01(xenonnt_cache):
    # the release cache goes to a temporary folder (not the user's cache), shared by the session (conftest.py)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))
        yield XenonNT(runs=("sr0", "sr1"))


@pytest.fixture(scope="module")
def summary01(xe01):
    return sm_summary(xe01)


# ---- folding -------------------------------------------------------------------------------------------
def test_hat_weights_zero_outside_release_range_and_exact_at_nodes():
    t = np.array([0.0, 0.3, 0.49, 0.5, 0.55, 2.0, 4.97, 5.0, 5.01, 7.0])
    h = hat_weights(t)
    assert np.all(h[:, [0, 1, 2, 8, 9]] == 0)  # below 0.5 keV and above 5.0 keV: no efficiency
    assert np.allclose(h[:, 3:8].sum(axis=0), 1.0)  # partition of unity inside
    assert h[0, 3] == 1.0 and h[MONO_KEV.index(2.0), 5] == pytest.approx(1.0) and h[-1, 7] == 1.0
    assert h[0, 4] == pytest.approx(0.5) and h[1, 4] == pytest.approx(0.5)  # linear between 0.5 and 0.6


def test_folded_matrix_equals_dense_product():
    rng = np.random.default_rng(1)
    left, right, d = rng.random((7, 4)), rng.random((4, 9)), rng.random(9)
    m = FoldedMatrix(left, right) * d
    x = rng.random((9, 3))
    assert np.allclose(m @ x, (left @ right * d) @ x)
    assert np.allclose(m @ x[:, 0], (left @ right * d) @ x[:, 0])
    assert m.shape == (7, 9)


# ---- morphing ------------------------------------------------------------------------------------------
def test_morphing_exact_at_grid_points_and_smooth_between():
    rng = np.random.default_rng(2)
    grid = rng.random((49, 5)) + 0.5
    morph = GridMorph(GRID, GRID)
    for i, x in enumerate(GRID):
        for j, y in enumerate(GRID):
            assert np.allclose(morph(grid, x, y)[0], grid[i * 7 + j], rtol=1e-12, atol=1e-12)
    # C^1 across a node: one-sided slopes agree; the analytic derivative matches finite differences
    h = 1e-6
    for x0 in (-1.0, 0.0, 2.0):
        left = (morph(grid, x0, 0.3) - morph(grid, x0 - h, 0.3)) / h
        right = (morph(grid, x0 + h, 0.3) - morph(grid, x0, 0.3)) / h
        assert np.allclose(left, right, rtol=1e-4, atol=1e-6)
    w = morph.weights(0.37, -1.2)[0]
    fd = (morph(grid, 0.37 + h, -1.2) - morph(grid, 0.37 - h, -1.2))[0] / (2 * h)
    assert np.allclose(w[1] @ grid, fd, rtol=1e-6)
    # clamped outside the grid
    assert np.allclose(morph(grid, 4.0, 0.0), morph(grid, 3.0, 0.0))
    with pytest.raises(InputError):
        CardinalSplines([0.0, 1.0, 0.5, 2.0])


def test_morphed_cost_recovers_injected_parameters():
    rng = np.random.default_rng(3)
    morph = GridMorph(GRID, GRID)
    sig = 50 * (1 + 0.05 * np.add.outer(np.repeat(GRID, 7), np.arange(20)) / 10) * rng.random((1, 20)) + 1
    sig = np.broadcast_to(sig, (49, 20)) * (1 + 0.1 * np.repeat(GRID, 7))[:, None]
    bkg = {"b": 100 * rng.random(20) + 10}
    cost = MorphedPoissonChi2("toy", np.zeros(20), bkg, {"cevns": None, "b": 0.1}, (GRID, GRID))
    truth = 1.3 * morph(sig, 0.0, 0.0)[0] + bkg["b"]
    cost = MorphedPoissonChi2("toy", truth, bkg, {"cevns": None, "b": 0.1}, (GRID, GRID))
    chi, p, _ = cost.profile(sig[None])
    # Asimov data at the prior centre: chi^2 = 0 exactly at the truth, and the fit finds it
    assert chi[0] == pytest.approx(0.0, abs=1e-8)
    assert np.allclose(p[0], [1.3, 1.0, 0.0, 0.0], atol=1e-4)
    # off the prior centre the fit is at least as good as the truth (chi^2 there = x_true^2 = 0.64)
    shifted = 1.3 * morph(sig, 0.8, -0.5)[0] + bkg["b"]
    cost2 = MorphedPoissonChi2("toy2", shifted, bkg, {"cevns": None, "b": 0.1}, (GRID, GRID))
    assert cost2(sig) <= 0.8**2 + 0.5**2 + 1e-9
    # the minimum is a minimum: perturbing any parameter raises chi^2
    for k in range(p.shape[1]):
        q = p.copy()
        q[0, k] += 1e-3
        assert ReferenceMorphed.of(cost).chi2_at(sig, q)[0] >= chi[0] - 1e-9


# ---- release and bad input -----------------------------------------------------------------------------
def _write(path, arr, edges):
    with h5py.File(path, "w") as h:
        for i, e in enumerate(edges):
            h[f"bins/{i}"] = e
        h["templates/template"] = arr


def test_bad_templates_are_data_errors(tmp_path):
    edges = [np.array([0.0, 1.0, 2.0, 3.0])] * 4
    _write(tmp_path / "ok.h5", np.ones((3, 3, 3, 3)), edges)
    assert read_template(tmp_path / "ok.h5", edges).sum() == 81
    _write(tmp_path / "shape.h5", np.ones((3, 3, 3)), edges)
    _write(tmp_path / "nan.h5", np.full((3, 3, 3, 3), np.nan), edges)
    _write(tmp_path / "edges.h5", np.ones((3, 3, 3, 3)), [np.array([0.0, 1.0, 2.0, 4.0])] * 4)
    for name, what in (("shape", "shape"), ("nan", "NaN"), ("edges", "edges"), ("missing", "missing")):
        with pytest.raises(DataError, match=what):
            read_template(tmp_path / f"{name}.h5", edges)


def test_missing_run_and_bad_options(tmp_path):
    (tmp_path / "binning").mkdir()
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match="missing"):
        read_run(tmp_path, "sr0")
    for bad in ({"runs": ("sr3",)}, {"runs": ()}, {"runs": ("sr0", "sr0")}, {"flux": "bogus"}):
        with pytest.raises(InputError):
            XenonOptions(**bad)


@needs_release
def test_missing_grid_point_is_a_data_error(tmp_path):
    import shutil

    run = tmp_path / "templates" / "sr0"
    for sub in ("ac", "er"):
        shutil.copytree(ROOT / "templates" / "sr0" / sub, run / sub)
    (run / "rg").mkdir(parents=True)
    shutil.copytree(ROOT / "binning", tmp_path / "binning")
    shutil.copytree(ROOT / "data", tmp_path / "data")
    with pytest.raises(DataError, match="missing XENONnT template"):
        read_run(tmp_path, "sr0")


# ---- validation against XENONnT ------------------------------------------------------------------------
@needs_release
def test_observed_and_background_sr0_sr1(xe01):
    """PRL 133 (2024) 191002: 37 events, 26.4 (+1.4/-1.3) expected from backgrounds (SR0+SR1)."""
    assert sum(xe01.n_events.values()) == 37
    assert xe01.observed.sum() == 37  # every event lies inside the binning
    pred = xe01.sm_prediction()
    bkg = sum(pred[z].sum() for z in pred if z != "cevns")
    assert set(pred) == {"cevns", "ac_sr0", "ac_sr1", "er", "rg"}  # AC per run (the collaboration's model)
    # symmetric, the smaller of the quoted errors (ours 26.50: 8 % of it)
    assert bkg == pytest.approx(26.4, abs=1.3)


@needs_release
def test_b8_flux_and_significance_sr0_sr1(summary01):
    """PRL 133 (2024) 191002: flux (4.7 +3.6/-2.3)e6 cm^-2 s^-1, background-only rejected at 2.73 sigma.  With the
    Winter spectrum our best fit, 5.91e6, is 26 % above theirs -- the documented disagreement of docs/xenonnt.md
    ("The response difference"): ~20 % less 8B signal per unit flux than XENONnT's response implies.  The tolerance
    is symmetric, the smaller of their errors (2.3e6: ours uses 53 % of it), and our documented value is pinned at
    its printed precision so that a change which moved it, or removed the disagreement, updates the document.  The
    significance agrees to 0.1 sigma (quoted without an error); the interval edges do not (next test)."""
    assert summary01["b8_flux_best_fit"] == pytest.approx(4.7e6, abs=2.3e6)
    assert summary01["b8_flux_best_fit"] == pytest.approx(5.91e6, abs=0.005e6)  # docs/xenonnt.md, ours
    lo, hi = summary01["b8_flux_interval_1sigma"]
    assert lo < summary01["b8_flux_best_fit"] < hi
    assert summary01["significance_sigma"] == pytest.approx(2.73, abs=0.1)


@needs_release
def test_flux_weighted_cross_section_sr0_sr1(summary01):
    """PRL 133 (2024) 191002: flux-weighted CEvNS cross section on xenon (1.1 +0.8/-0.5)e-39 cm^2.  Fast twin of
    test_mutants_xenonnt.py's slow check.  Symmetric tolerance, the smaller error: ours 1.40e-39 uses 60 % of it (the
    same ~25 % excess as the flux: best fit / SM = fitted flux / SNO flux), inside our own 1 sigma interval."""
    best = summary01["flux_weighted_cross_section_best_fit_cm2"]
    assert best == pytest.approx(1.1e-39, abs=0.5e-39)
    lo, hi = summary01["flux_weighted_cross_section_interval_1sigma_cm2"]
    assert lo < best < hi
    ratio = summary01["b8_flux_best_fit"] / summary01["b8_flux_reference"]
    assert best / summary01["flux_weighted_cross_section_sm_cm2"] == pytest.approx(ratio, rel=1e-12, abs=0)


@needs_release
@pytest.mark.xfail(strict=True, reason="with the Winter spectrum we expect ~20 % less 8B signal per unit flux than "
                   "XENONnT does, so our flux interval [3.1, 10.5]e6 sits above theirs [2.4, 8.3]e6 (docs/xenonnt.md, "
                   "'The response difference')")
def test_b8_flux_interval_sr0_sr1(summary01):
    """Our 1-sigma interval against theirs: both edges within 0.5e6 (one fifth of their smaller error)."""
    lo, hi = summary01["b8_flux_interval_1sigma"]
    assert lo == pytest.approx(4.7e6 - 2.3e6, abs=0.5e6) and hi == pytest.approx(4.7e6 + 3.6e6, abs=0.5e6)


@needs_release
def test_sm_totals_and_table_sr0_sr1(xe01, summary01):
    """The `sm` document's totals are the sums of its runs and of the prediction, and the human-readable table shows
    them (mutants of the total keys and of sm_table, which only slow tests read)."""
    runs = summary01["per_run"]
    pred = xe01.sm_prediction()
    assert summary01["expected_signal"] == pytest.approx(pred["cevns"].sum(), rel=1e-12, abs=0)
    assert summary01["expected_signal"] == pytest.approx(sum(v["expected_signal"] for v in runs.values()),
                                                         rel=1e-12, abs=0)
    assert summary01["expected_background"] == pytest.approx(sum(v["expected_background"] for v in runs.values()),
                                                             rel=1e-12, abs=0)
    title, cols, rows, foot = xe01.sm_table(summary01)
    sigma, (lo, hi) = summary01["significance_sigma"], summary01["b8_flux_interval_1sigma"]
    assert title == f"xenonnt: sr0+sr1, observed 37 events, background-only rejected at {sigma:.2f} sigma"
    assert len(cols) == 4 and [r[0] for r in rows] == ["sr0", "sr1", "total"]
    for row, v in zip(rows, [runs["sr0"], runs["sr1"], summary01]):
        assert row[1:] == [str(v["observed"]), f"{v['expected_background']:.2f}", f"{v['expected_signal']:.2f}"]
    assert f"1 sigma [{lo:.3g}, {hi:.3g}]" in foot and f"best fit {summary01['b8_flux_best_fit']:.3g}" in foot


@needs_release
def test_sm_rate_against_independent_quadrature(xe01):
    """Kernel path (spectral moments, node folding) vs scipy quadrature of dR/dT through the efficiency nodes."""
    k = xe01.kernel
    src = xe01.source()
    g = xe01.grid_index_nominal
    eff = xe01.efficiency_rows.reshape(49, -1, len(MONO_KEV))[g].sum(axis=0)  # total efficiency x exposure per node
    nodes = np.array(MONO_KEV)
    # T: 4-point Gauss-Legendre on every 0.1-keV node interval (the efficiency is linear there; 12 points move the
    # reference by 1.4e-8 relative, at three times the cost); E: trapezoid on the spectrum's nodes each cut in 8
    # (the density is linear between nodes, the cross section's 1 - M T / 2E^2 is not: on the nodes alone the
    # trapezoid reads the rate 0.1 % low, as the package's moments did before they became exact), E_min(T) inserted
    x, w = np.polynomial.legendre.leggauss(4)
    t_kev = (0.5 * (nodes[:-1, None] + nodes[1:, None]) + 0.05 * x[None, :]).ravel()
    wt = np.tile(0.05 * w, nodes.size - 1)
    nodes_e = next(iter(src.spectra.values())).energy_mev
    e_grid = np.unique(np.concatenate([np.linspace(a, b, 9) for a, b in zip(nodes_e[:-1], nodes_e[1:])]))
    total = 0.0
    for name, tg in k.detector.targets.items():
        nuc = tg.nucleus
        for t, wi in zip(t_kev, wt):
            t_mev = t * 1e-3
            e_min = 0.5 * (t_mev + np.sqrt(t_mev**2 + 2 * nuc.mass_mev * t_mev))
            e = np.concatenate([[e_min], e_grid[e_grid > e_min]])
            rate = 0.0
            for f, spec in src.spectra.items():
                xs = differential_cross_section(e, t_mev, nuc, f, "helm", "radiative", "ac22", xe01.params)
                rate += np.trapezoid(spec.pdf(e) * xs, e)
            total += wi * rate * 1e-3 * tg.count * src.fluence_per_cm2 * np.interp(t, nodes, eff)
    ours = sm_signal(xe01)[g].sum()
    assert ours == pytest.approx(total, rel=1e-3)


@needs_release
def test_cache_is_used_and_equal(xe01, monkeypatch):
    """A second load reads the cache and not one HDF5 file, and gives the same arrays (the timings against the
    issue's targets -- cold <= 10 s, cached <= 0.5 s, chi^2 <= 1 ms -- are measured in benchmarks/bench_xenonnt.py,
    not asserted: a loaded CI machine would make a timed test fail for no defect)."""
    import os
    from pathlib import Path

    import cevnsfit.experiments.xenonnt_release as xmod

    assert len(list(Path(os.environ["CEVNSFIT_CACHE"]).glob("xenonnt_*.npz"))) == 1  # written by a fixture

    def no_hdf5(*args, **kwargs):
        raise AssertionError("an HDF5 template was read although the cache matches")

    monkeypatch.setattr(xmod, "_read_fast", no_hdf5)
    monkeypatch.setattr(xmod, "read_template", no_hdf5)
    cached = XenonNT(runs=("sr0", "sr1"))
    assert np.array_equal(cached.observed, xe01.observed)
    s = sm_signal(xe01)
    assert cached.cost()(s) == xe01.cost()(s)


@needs_release
def test_cache_key_is_that_of_a_walk_of_the_release(tmp_path):
    """The cache key (``release_digest``: listed with os.scandir) equals a digest written here the plain way --
    os.walk and pathlib, a folder's files then its sub-folders, sorted -- on a release-like tree with nested
    folders and a linked folder (not entered, as os.walk does not), and changes when one file's size does."""
    import hashlib
    import os

    from cevnsfit.experiments.xenonnt_release import CACHE_FORMAT, release_digest

    def walked(root):
        h = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
        for base in ("data", "binning", "templates"):
            for dirpath, dirnames, filenames in os.walk(root / base):
                dirnames.sort()
                for f in sorted(filenames):
                    p = Path(dirpath) / f
                    st = p.stat()
                    h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    for rel in ("data/sr0.csv", "data/sr1.csv", "binning/sr0.yaml", "templates/sr0/b/rg_0.h5", "templates/sr0/a.h5",
                "templates/sr0/b/c/mono_1.h5", "templates/sr1/a.h5", "limits/ignored.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "templates" / "linked").symlink_to(tmp_path / "templates" / "sr1", target_is_directory=True)
    key = release_digest(tmp_path)
    assert key == walked(tmp_path)
    (tmp_path / "templates/sr0/b/c/mono_1.h5").write_text("longer than before")
    assert release_digest(tmp_path) == walked(tmp_path) != key


def test_flux_weighted_cross_section_against_quadrature(xe01):
    """<sigma> from the kernel ingredients vs Gauss-Legendre in T and trapezoid in E of dsigma/dT (1e-3)."""
    from cevnsfit.experiments.xenonnt import flux_weighted_cross_section_cm2
    from cevnsfit.physics.cross_section import max_recoil_mev

    src = xe01.source()
    targets = xe01.targets()
    atoms = sum(tg.count for tg in targets.values())
    x, w = np.polynomial.legendre.leggauss(64)
    nodes_e = next(iter(src.spectra.values())).energy_mev
    e_grid = np.unique(np.concatenate([np.linspace(a, b, 9) for a, b in zip(nodes_e[:-1], nodes_e[1:])]))
    ref = 0.0
    for tg in targets.values():
        nuc = tg.nucleus
        t_max = float(max_recoil_mev(e_grid[-1], nuc.mass_mev))
        ts, wt = 0.5 * t_max * (x + 1), 0.5 * t_max * w
        for t, wi in zip(ts, wt):
            e_min = 0.5 * (t + np.sqrt(t * t + 2 * nuc.mass_mev * t))
            e = np.concatenate([[e_min], e_grid[e_grid > e_min]])
            for f, spec in src.spectra.items():
                xs = differential_cross_section(e, t, nuc, f, "helm", "radiative", "ac22", xe01.params)
                ref += tg.count / atoms * wi * np.trapezoid(spec.pdf(e) * xs, e)
    assert flux_weighted_cross_section_cm2(xe01) == pytest.approx(ref, rel=1e-3, abs=0)


@needs_release
def test_mediator_templates_reuse_the_kernel(xe01):
    """Templates of every vector model and the scalar equal the direct path; tau-flavoured models see nu_tau."""
    from cevnsfit.physics.models import get_model
    from reference_templates import direct_counts

    from cevnsfit.templates import build_templates

    masses = np.array([0.0, 10.0, np.inf])
    for name in ("L_e-L_tau", "L_mu-L_tau", "B-L", "scalar"):
        model = get_model(name)
        tp = build_templates(xe01, model, masses)
        assert tp.n0.shape == (49, 162) and tp.n1.shape == (3, 49, 162)
        for g in (1e-5, 3e-5):
            assert np.allclose(tp.counts(g, 1), direct_counts(xe01, model, 10.0, g), rtol=1e-10, atol=0)
    # L_mu - L_tau couples only to the converted neutrinos (nu_mu, nu_tau; nu_e has charge 0): non-zero shift
    tp = build_templates(xe01, get_model("L_mu-L_tau"), masses)
    assert np.any(tp.n1 != 0)


@needs_release
def test_template_basis_folds_into_the_efficiency_nodes(xe01):
    """Every XENONnT response shares its left factor (the efficiency rows of FoldedMatrix): the shared basis folds
    the terms into the nodes (a term holds flavours x nodes x masses, not x 7 938 rows) and applies the left factor
    once per model; the templates equal those of the full-row fold (what a response without the shared factor
    gets) to rounding."""
    from cevnsfit.physics.models import get_model
    from cevnsfit.templates import TemplateBasis

    masses = np.array([0.0, 10.0, np.inf])
    nodes, full = TemplateBasis(xe01), TemplateBasis(xe01)
    assert nodes._left is xe01.kernel.vector[("nue", next(iter(xe01.kernel.nuclei)))].left
    full._left = None  # fold with the whole responses (their @), as for an unfactorised kernel
    for name in ("L_e-L_tau", "B-L", "scalar"):
        a, b = nodes.templates(get_model(name), masses), full.templates(get_model(name), masses)
        for attr in ("n1", "n2"):
            np.testing.assert_allclose(getattr(a, attr), getattr(b, attr), rtol=1e-12,
                                       atol=1e-14 * np.abs(getattr(b, attr)).max())
    held = next(iter(nodes._folded.values()))
    assert all(v.shape == (3, nodes._left.shape[1], 3) for v in held.values())


@needs_release
def test_nan_in_one_of_the_bulk_templates_names_the_file(monkeypatch):
    import cevnsfit.experiments.xenonnt_release as xn

    real = xn._read_fast
    target = "mono_2.300_cevns_tly_1.0_tqy_-2.0"

    def poisoned(path, out):
        real(path, out)
        if target in path.name:
            out[1, 2, 0, 1] = np.nan

    monkeypatch.setattr(xn, "_read_fast", poisoned)
    with pytest.raises(DataError, match=target):
        read_run(ROOT, "sr0")
