"""XENONnT in the light-mediator analysis: data sets from the registry, the batched/merged/warm-started morphed
profile against the per-point one and an independent minimiser, combined chi^2 = sum of parts, finite limits,
and the spectra figure."""

import numpy as np
import pytest
from reference_costs import ReferenceMorphed
from scipy.optimize import minimize

from cevnsfit.experiments import DATA_SETS, EXPERIMENTS
from cevnsfit.experiments.xenonnt import GRID
from cevnsfit.io.datadir import resolve_collection
from cevnsfit.mediators import DATASETS, LOW_MASS_G, MediatorAnalysis, data_set_experiments, log_grid
from cevnsfit.physics.models import get_model
from cevnsfit.stats.chi2 import SumCost
from cevnsfit.stats.morphing import MorphedPoissonChi2

try:
    resolve_collection("xenonnt_cevns")
    HAVE_RELEASE = True
except Exception:  # pragma: no cover - the release is not on this machine
    HAVE_RELEASE = False
needs_release = pytest.mark.skipif(not HAVE_RELEASE, reason="XENONnT release not available")

# Newton stops when the predicted decrease is < tol = 1e-9 (MorphedPoissonChi2), so two runs from different starts,
# or on merged vs all bins (same function, reordered sums), end within a few tol of the same minimum: 1e-7 leaves
# a factor 100 for the rounding of chi^2 ~ 200 summed over 243 bins (~1e-13) and the stopping rule.
TOL = 1e-7


def test_data_sets_are_registered_combinations_of_registered_experiments():
    xenon = [n for n, spec in DATA_SETS.items() if "xenonnt" in spec.members]
    assert xenon, "no data set uses XENONnT"
    assert "xenonnt" in data_set_experiments()
    for name, spec in DATA_SETS.items():
        assert set(spec.members) <= set(EXPERIMENTS) and DATASETS[name] == spec.members
    # the largest combination holds every experiment that any data set uses
    widest = max(DATA_SETS.values(), key=lambda s: len(s.members))
    assert set(widest.members) == set(data_set_experiments())


def test_figure_and_report_lists_come_from_the_registry(monkeypatch):
    """The plane figures' default data sets, the comparison figure's and the report's SM experiments are read off
    the registry (data/datasets.yaml: plot.plane_order / plot.compared, reproduce.sm_table), in the order they had as
    literals."""
    import cevnsfit.experiments.registry as registry
    from cevnsfit.experiments import DataSetSpec, compared_data_sets, plane_data_sets
    from cevnsfit.plotting.compare import COMPARED
    from cevnsfit.plotting.planes import PLANE_DATA_SETS
    from cevnsfit.reproduce import SM_EXPERIMENTS

    assert PLANE_DATA_SETS == plane_data_sets() == ("csi", "lar", "csi+lar")  # drawing order, not table order
    assert COMPARED == compared_data_sets() == ("csi+lar", "xenonnt", "coherent+xenonnt", "dresden2", "global")
    assert SM_EXPERIMENTS == ("csi", "lar")
    # a data set registered with those fields joins the lists where its field puts it
    monkeypatch.setattr(registry, "DATA_SETS", dict(DATA_SETS))
    registry.register_data_set(DataSetSpec("lar+x", ("lar",), "L", "L", {"colour": "#000000", "fill_alpha": 0.1,
                                                                          "line_width": 1.0, "plane_order": -1,
                                                                          "compared": True}))
    assert plane_data_sets() == ("lar+x", "csi", "lar", "csi+lar")
    assert compared_data_sets()[-1] == "lar+x"


@pytest.fixture(scope="module")
def an(xenonnt_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))  # shared with test_xenonnt.py (conftest.py)
        a = MediatorAnalysis()
        a.cost("xenonnt")
        yield a


@pytest.fixture(scope="module")
def line(an):
    """B-L at M = 0 on 60 couplings around the limit (the tly grid edge is reached above ~4e-5)."""
    tpl = an.templates("B-L", [0.0, 30.0], "xenonnt")
    g = np.concatenate([[0.0], np.geomspace(3e-6, 3e-4, 59)])
    return tpl, g


@needs_release
@pytest.mark.slow  # the release, its kernel and templates: ~5-20 s on a shared 2-core machine
def test_batched_profile_equals_per_point(an, line):
    cost = an.cost("xenonnt")
    tpl, g = line
    batch = tpl.counts(g, 0)
    chi = cost(batch)
    assert np.all(np.isfinite(chi)) and chi.shape == g.shape
    for i in range(0, g.size, 7):
        assert cost(batch[i]) == pytest.approx(chi[i], abs=TOL)
    # the reduced templates give the same chi^2 (the merge is linear), and so does the full-bin reference cost
    xe = an.experiment("xenonnt")
    every_bin = MorphedPoissonChi2("xenonnt", xe.observed, xe.backgrounds, xe.sigmas, (GRID, GRID), merge_empty=False)
    assert np.allclose(cost(tpl.mapped(cost.reduce).counts(g, 0)), chi, rtol=0, atol=TOL)
    assert np.allclose(every_bin(batch), chi, rtol=0, atol=TOL)
    # a warm start from another mass (30 MeV: a far jump) ends at the same minimum wherever the limits are decided.
    # Far inside the excluded region the profile has several local minima (at g = 1.7e-4: 865.56 from the nominal
    # start, 863.42 with tly = tqy = -3; Delta chi^2 ~ 690 either way), and a local minimiser may end in either
    chi_m1, p_m1 = cost.profile_warm(tpl.counts(g, 1))
    warm, _ = cost.profile_warm(batch, p_m1)
    decisive = chi - chi.min() < 100.0
    assert decisive.sum() > g.size // 2
    assert np.allclose(warm[decisive], chi[decisive], rtol=0, atol=TOL)
    assert np.all(warm[~decisive] - chi.min() > 100.0)


@needs_release
@pytest.mark.slow  # the release, its kernel and templates: ~5-20 s on a shared 2-core machine
def test_profile_at_the_grid_edge_matches_an_independent_minimiser(an, line):
    """Where the fit pins tly at the -3 sigma grid edge, the projected Newton profile equals L-BFGS-B with bounds
    (scipy) started from the nominal point; before the projection the profile stopped up to 0.045 higher.  The
    signal normalisation is held at 1 here (with its 25 % prior it would absorb the excess instead), so that the
    shape nuisances alone take up the mediator's signal and reach the edge."""
    cost = an.experiment("xenonnt").cost(fixed_signal=True)
    tpl, g = line
    batch = tpl.counts(g, 0)
    chi, p, _ = cost.profile(batch)
    edge = np.flatnonzero(np.isclose(p[:, -2], GRID[0]) | np.isclose(p[:, -1], GRID[0]))
    explicit = ReferenceMorphed.of(cost)
    assert edge.size, "no point of the line reaches the grid edge: the test lost its purpose"
    n_par = p.shape[1]
    for i in edge[:: max(1, edge.size // 3)]:
        f = lambda q: float(explicit.chi2_at(batch[i], q)[0])  # noqa: E731
        start = np.r_[np.ones(n_par - 2), 0.0, 0.0]
        ref = minimize(f, start, method="L-BFGS-B", bounds=[(1.0, 1.0)] + [(1e-6, None)] * (n_par - 3) + [(-3, 3)] * 2,
                       options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10000})
        assert chi[i] <= ref.fun + 1e-6
        assert chi[i] == pytest.approx(ref.fun, abs=1e-5)


@needs_release
@pytest.mark.slow  # the release, its kernel and templates: ~5-20 s on a shared 2-core machine
def test_combined_chi2_is_the_sum_of_its_parts(an, csi, lar):
    an._experiments.update(csi=csi, lar=lar)
    model = get_model("L_e-L_tau")
    names = DATASETS["coherent+xenonnt"]
    grid = an.grid(model, [0.0, 100.0], [0.0, 1e-4, 1e-3], names)
    chi, sm = grid.dataset_chi2("coherent+xenonnt")
    assert np.array_equal(chi, sum(grid.chi2[n] for n in names)) and sm == sum(grid.chi2_sm[n] for n in names)
    # and through the costs themselves: sum(costs) on a mapping of signals = the sum of each cost's chi^2
    total = sum(an.cost(n) for n in names)
    assert isinstance(total, SumCost)
    signals = {n: grid.templates[n].counts(1e-3, 1) for n in names}
    assert total(signals) == pytest.approx(sum(an.cost(n)(signals[n]) for n in names), rel=1e-12, abs=0)
    assert total(signals) == pytest.approx(chi[1, 2], abs=TOL)


@needs_release
@pytest.mark.parametrize("model", ["B-L", "L_e-L_tau"])
def test_light_mediator_limit_on_xenonnt_is_finite(an, model):
    """Fast lane: the M = 0 line alone (the slow CLI test runs `limits --dataset xenonnt`)."""
    lim = an.fixed_mass_limit(model, "xenonnt", 0.0, couplings=log_grid(*LOW_MASS_G, per_decade=30))
    assert np.isfinite(lim.value) and 1e-6 < lim.value < 1e-2
    assert lim.chi2_sm >= lim.chi2_min - 1e-9  # g = 0 is on the line: the minimum is at most chi2_sm


@needs_release
@pytest.mark.slow
def test_limits_cli_xenonnt(capsys):
    """`limits --dataset xenonnt` end to end for B-L (full plane; the fast lane checks B-L and L_e-L_tau on the
    M = 0 line), pinned at the precision docs/validation/xenonnt.md prints."""
    import json

    from cevnsfit import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["limits", "-d", "xenonnt", "-m", "B-L", "--json"])
    assert exc.value.code == 0
    (row,) = json.loads(capsys.readouterr().out)["limits"]
    assert row["dataset"] == "xenonnt" and row["model"] == "B-L"
    # Winter et al.'s spectrum and the collaboration's priors (25 % signal efficiency): docs/xenonnt.md (3.05e-5 and
    # 1.57e-3 GeV^-1 with the analytic spectrum and our earlier assumed priors; 4.02e-5 before the spectral moments
    # became exact for a tabulated spectrum, sources/spectra.py)
    assert row["g_low_mass"] == pytest.approx(4.01e-5, abs=0.005e-5)
    assert row["g_over_M_high_mass"] == pytest.approx(2.09e-3, abs=0.005e-3)


@needs_release
@pytest.mark.slow  # the release, its kernel and templates: ~5-20 s on a shared 2-core machine
def test_plot_spectra_xenonnt(tmp_path, capsys):
    from cevnsfit import cli

    for args, name in ((["--per-run"], "runs.png"), ([], "sum.png")):
        with pytest.raises(SystemExit) as exc:
            cli.main(["plot", "spectra", "-e", "xenonnt", *args, "--out", str(tmp_path / name)])
        assert exc.value.code == 0
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit) as exc:
        cli.main(["plot", "spectra", "-e", "csi", "--per-run", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "error:" in err and "Traceback" not in err and not (tmp_path / "x.png").exists()


def test_fc_refuses_a_data_set_without_toys(tmp_path, capsys, xenonnt_without_replicas):
    """`fc --dataset all` keeps the data sets whose experiments can throw replicas; naming another is one error
    (every cost of the package has replicas: XENONnT's is replaced by one without, conftest.py)."""
    from cevnsfit import cli
    from cevnsfit.fc import toy_data_sets

    no_toys = [d for d in DATA_SETS if d not in toy_data_sets()]
    assert no_toys, "every data set supports toys now: drop this test's premise"
    with pytest.raises(SystemExit) as exc:
        cli.main(["fc", "-m", "B-L", "-d", no_toys[0], "--out", str(tmp_path / "fc")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith("error:") and "toys" in err
    assert not (tmp_path / "fc").exists()


# ---- fast lane: the same properties on a small synthetic morphed cost (no release needed) ---------------------
def _toy(merge_empty=True):
    """20 bins, 7 x 7 grid: a signal and a background whose shapes move with (x, y), a fixed background, and
    observed counts with empty bins (what the merge acts on)."""
    rng = np.random.default_rng(11)
    x, y = np.repeat(GRID, 7), np.tile(GRID, 7)
    shape = np.exp(-0.5 * ((np.arange(20)[None, :] - 8 - 1.5 * x[:, None]) / (3 + 0.3 * y[:, None])) ** 2)
    sig = 3.0 * shape
    bkg = {"b": 0.4 + 0.2 * np.abs(shape[::-1]) * (1 + 0.1 * x[:, None]), "f": np.full(20, 0.2)}
    observed = rng.poisson(sig[24] + bkg["b"][24] + bkg["f"]).astype(float)
    observed[[0, 1, 17, 18, 19]] = 0.0
    cost = MorphedPoissonChi2("toy", observed, bkg, {"cevns": 0.1, "b": 0.3, "f": 0.05}, (GRID, GRID),
                              merge_empty=merge_empty)
    scales = np.concatenate([[0.0], np.geomspace(0.01, 30.0, 40)])
    return cost, scales[:, None, None] * sig[None]


def test_toy_batched_merged_and_warm_profiles_agree():
    cost, batch = _toy()
    assert np.count_nonzero(cost.observed == 0) >= 5 and cost._nr < cost.n_bins
    chi = cost(batch)
    assert np.all(np.isfinite(chi))
    assert np.allclose([cost(b) for b in batch], chi, rtol=0, atol=TOL)  # per point
    assert np.allclose(_toy(merge_empty=False)[0](batch), chi, rtol=0, atol=TOL)  # every bin iterated
    assert np.allclose(cost(cost.reduce(batch)), chi, rtol=0, atol=TOL)  # reduced templates
    _, start = cost.profile_warm(1.3 * batch)
    warm, _ = cost.profile_warm(batch, start)
    decisive = chi - chi.min() < 100.0
    assert np.allclose(warm[decisive], chi[decisive], rtol=0, atol=TOL)


def test_toy_profile_equals_an_independent_minimiser():
    """Every point, including those pinned at a grid edge, against L-BFGS-B with bounds from two starts."""
    cost, batch = _toy()
    ref = ReferenceMorphed.of(cost)
    chi, p, _ = cost.profile(batch)
    n_par = p.shape[1]
    bounds = [(1e-9, None)] * (n_par - 2) + [(-3, 3)] * 2
    sample = range(0, batch.shape[0], 8)
    assert any(np.isclose(np.abs(p[i, -2:]), 3.0).any() for i in sample), "no sampled point at the grid edge"
    for i in sample:
        f = lambda q: float(ref.chi2_at(batch[i], q)[0])  # noqa: E731
        best = min(minimize(f, q0, method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10000}).fun
                   for q0 in (np.r_[np.ones(n_par - 2), 0.0, 0.0], p[i]))
        assert chi[i] <= best + 1e-6 and chi[i] == pytest.approx(best, abs=1e-5)


def test_console_script_sets_one_blas_thread_unless_given():
    """`limits --dataset all` took 169 s of CPU with OpenBLAS's default threads, 54 s with one (bench_xenonnt.py):
    the console script's entry sets 1 before numpy loads, and keeps a value the user gave."""
    import os
    import subprocess
    import sys

    code = "import os, sys, cevnsfit.entry; print(os.environ['OPENBLAS_NUM_THREADS'], 'numpy' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["1", "False"]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "OPENBLAS_NUM_THREADS": "2"}, check=True).stdout
    assert out.split()[0] == "2"


def test_console_script_leaves_its_objects_out_of_the_last_collection():
    """The console script freezes the garbage collector's objects when its command ends, success or error: the
    interpreter's last collection would otherwise walk every object of the run (~0.4 s of `limits`); the output is
    complete by then and the exit status kept."""
    import os
    import subprocess
    import sys

    code = ("import atexit, gc, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0)); "
            "from cevnsfit.entry import main; sys.argv = ['cevnsfit'] + sys.argv[1:]; main()")
    for args, status in ((["models"], 0), (["sm", "-e", "nowhere"], 2)):
        run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=os.environ)
        assert run.returncode == status
        assert run.stdout.rstrip().endswith("frozen True")
