"""cevnsfit fc: same numbers serially and on Dask (1 and 2 workers, a cluster started by hand), resume after
kill -9, a store made with other inputs refused, the reports."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cevnsfit.errors import InputError
from cevnsfit.fc import LineSpec, _analysis, build_line, parse_masses, run_fc, write_reports
from cevnsfit.stats.toys import significance

SMALL = dict(model="B-L", datasets=["csi"], regimes=["low_mass"], n_toys=12, seed=3, cl="2sigma", block=5,
             per_decade=3, with_table=False)
BIN = Path(sys.executable).parent


def _t_values(doc):
    return [(r["dataset"], reg, line["t_c"], line["p_value"]) for r in doc["limits"] for reg, line in r["lines"].items()]


def _store_arrays(out):
    root = Path(out) / "store"
    return {p.relative_to(root).as_posix(): np.load(p)["t"] for p in sorted(root.rglob("*.npz"))}


def _serial_run(tmp_path_factory, name: str, options: dict):
    out = tmp_path_factory.mktemp(name)
    return out, run_fc(out=out, backend="serial", **options)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return _serial_run(tmp_path_factory, "serial", SMALL)


def test_serial_run_reports_fc_beside_wilks(serial):
    out, doc = serial
    row = doc["limits"][0]
    assert doc["method"] == "fc" and doc["n_toys"] == 12 and doc["seed"] == 3
    assert row["model"] == "B-L" and row["dataset"] == "csi"
    assert row["g_over_M_high_mass"] is None  # regime not asked for
    line = row["lines"]["low_mass"]
    assert line["coupling"][0] == 0.0 and len(line["t_c"]) == len(line["coupling"])
    assert 0 < row["g_low_mass"] < np.inf and 0 < row["wilks"]["g_low_mass"] < np.inf
    # the store holds one file per (point, block): 12 toys in blocks of 5 -> 5, 5, 2
    arrays = _store_arrays(out)
    assert len(arrays) == 3 * len(line["coupling"])
    assert sorted({a.size for a in arrays.values()}) == [2, 5]


def test_a_passed_analysis_is_used_and_gives_identical_numbers(serial, tmp_path, monkeypatch):
    import cevnsfit.fc.construction as fc
    import cevnsfit.mediators as mediators
    from cevnsfit.mediators import MediatorAnalysis

    an = MediatorAnalysis()
    an.cost("csi")  # loaded before: run_fc must not load an experiment again (reproduce --fc passes its analysis)
    loads = []
    real = mediators.load_experiment
    monkeypatch.setattr(mediators, "load_experiment", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    monkeypatch.setattr(fc, "_ANALYSES", {})
    doc = run_fc(out=tmp_path, backend="serial", analysis=an, **SMALL)
    assert loads == []
    assert fc._ANALYSES[None] is an  # the serial tasks built their lines on it too
    assert _t_values(doc) == _t_values(serial[1]) and doc["limits"] == serial[1]["limits"]
    from cevnsfit.parameters import load_parameters

    with pytest.raises(InputError, match="default parameters"):
        run_fc(out=tmp_path / "other", backend="serial", analysis=MediatorAnalysis(params=load_parameters(
            {"csi2021.pot": 1e23})), **SMALL)


def test_a_data_set_whose_cost_has_no_replicas_is_refused_before_any_work(tmp_path, xenonnt_without_replicas):
    with pytest.raises(InputError, match=r"no toys for data set 'coherent\+xenonnt': the cost of xenonnt"):
        run_fc(out=tmp_path, backend="serial", **dict(SMALL, datasets=["coherent+xenonnt"]))
    assert not (tmp_path / "store").exists()


def test_observe_reads_the_analysis_fixed_mass_limit(serial):
    from cevnsfit.fc import _analysis, observe

    an = _analysis(None)
    obs = observe(an, "B-L", "csi", "low_mass", "2sigma")
    lim = an.fixed_mass_limit("B-L", "csi", 0.0, "1dof", regime="low_mass")
    assert (obs.chi2_min, obs.best) == (lim.chi2_min, lim.best_coupling) and lim.regime == "low_mass"
    np.testing.assert_array_equal(obs.fine, lim.grid.couplings)
    np.testing.assert_array_equal(obs.delta, lim.grid.dataset_chi2("csi")[0][0] - lim.chi2_min)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.slow  # subprocesses of the command line; the full suite (CI) runs it
def test_dask_local_cluster_is_bit_identical_to_serial(serial, tmp_path, workers):
    out, doc = serial
    dask_doc = run_fc(out=tmp_path, backend="dask", workers=workers, **SMALL)
    assert json.dumps(dask_doc, sort_keys=True) == json.dumps(doc, sort_keys=True)
    a, b = _store_arrays(out), _store_arrays(tmp_path)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow  # a local cluster (seconds to start)
def test_one_dask_session_serves_several_runs_bit_identically(serial, tmp_path):
    from cevnsfit.fc import DaskSession

    out, doc = serial
    with DaskSession(workers=2) as dask:
        first = run_fc(out=tmp_path / "a", backend="dask", dask=dask, **SMALL)
        second = run_fc(out=tmp_path / "b", backend="dask", dask=dask, **SMALL)
        assert dask.started == 1
    for d in (first, second):
        assert json.dumps(d, sort_keys=True) == json.dumps(doc, sort_keys=True)


def test_a_dask_session_starts_no_cluster_when_every_toy_is_stored(serial, monkeypatch):
    import cevnsfit.fc.backends as fc

    monkeypatch.setattr(fc, "_connect", lambda *a: pytest.fail("a cluster was started"))
    out, doc = serial
    with fc.DaskSession() as dask:
        again = run_fc(out=out, backend="dask", dask=dask, **SMALL)  # the serial run's store: nothing to run
        assert dask.started == 0
    assert json.dumps(again, sort_keys=True) == json.dumps(doc, sort_keys=True)


def test_reproduce_runs_every_model_on_one_dask_cluster(monkeypatch, tmp_path):
    """reproduce --fc (dask): one cluster for the whole run, not one per model; closed at the end."""
    import cevnsfit.fc as fc
    import cevnsfit.fc.backends as backends
    from cevnsfit.reproduce import pipeline as rp
    from cevnsfit.physics.models import get_model

    made, closed, sessions = [], [], []

    class Client:
        def close(self):
            closed.append(self)

    def connect(scheduler, workers):
        made.append(Client())
        return made[-1], None

    def fake_run_fc(model, *args, dask=None, **kwargs):
        assert kwargs["backend"] == "dask"
        dask.client()  # every model has toys to run
        sessions.append(dask)
        return {"limits": [{"model": model, "dataset": "csi"}]}

    monkeypatch.setattr(backends, "_connect", connect)
    monkeypatch.setattr(fc, "run_fc", fake_run_fc)
    monkeypatch.setattr(fc, "toy_data_sets", lambda an: ["csi"])
    models = [get_model(m) for m in ("B-L", "L_mu-L_tau", "scalar")]
    rows = rp._fc_rows(tmp_path, None, models, {"toys": 3, "backend": "dask", "data_dir": None})
    assert set(rows) == {(m.name, "csi") for m in models}
    assert len(made) == 1 and len(set(map(id, sessions))) == 1
    assert closed == made


def test_resume_computes_only_missing_tasks_with_identical_numbers(serial, tmp_path):
    out, doc = serial
    first = run_fc(out=tmp_path, backend="serial", **SMALL)
    files = sorted((tmp_path / "store").rglob("*.npz"))
    for p in files[::2]:  # lose half of the finished tasks
        p.unlink()
    calls = []
    again = run_fc(out=tmp_path, backend="serial", progress=lambda total, n=0: calls.append(total), **SMALL)
    assert calls[0] == len(files[::2])  # only the missing tasks were run
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True) == json.dumps(doc, sort_keys=True)


def test_more_toys_reuse_the_finished_blocks(serial, tmp_path):
    out, _ = serial
    run_fc(out=tmp_path, backend="serial", **SMALL)
    calls = []
    more = dict(SMALL, n_toys=15)
    run_fc(out=tmp_path, backend="serial", progress=lambda total, n=0: calls.append(total), **more)
    n_points = len(json.loads((tmp_path / "store" / "manifest.json").read_text())["lines"]["B-L__csi__low_mass"]["tested"])
    assert calls[0] == n_points  # blocks 5, 5, 2 -> 5, 5, 5: only the last block is new (it had 2 toys, now 5)


def test_store_with_other_inputs_is_refused(serial, tmp_path):
    run_fc(out=tmp_path, backend="serial", **SMALL)
    with pytest.raises(InputError, match="other inputs .*seed"):
        run_fc(out=tmp_path, backend="serial", **dict(SMALL, seed=4))
    with pytest.raises(InputError, match="other inputs .*construction"):
        run_fc(out=tmp_path, backend="serial", construction="fixed", **SMALL)


def _cli(args, **kw):
    return subprocess.run([str(BIN / "cevnsfit"), *args], capture_output=True, text=True, **kw)


CLI_SMALL = ["fc", "--model", "B-L", "--dataset", "csi", "--regime", "low", "--toys", "12", "--block", "5", "--seed", "3",
             "--points-per-decade", "3", "--no-wilks-table"]


@pytest.mark.slow  # subprocesses of the command line; the full suite (CI) runs it
def test_cli_writes_the_reports_and_matches_the_api(serial, tmp_path):
    r = _cli([*CLI_SMALL[:-1], "--backend", "serial", "--out", str(tmp_path)])  # with the table's Wilks values
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "fc.json").read_text())
    assert doc["method"] == "fc" and set(doc["limits"][0]) >= {"model", "dataset", "g_low_mass", "g_over_M_high_mass",
                                                                 "low_mass_islands", "high_mass_islands", "wilks",
                                                                 "wilks_table", "toy_error"}
    assert (tmp_path / "fc.md").read_text().startswith("# Feldman-Cousins")
    assert (tmp_path / "fc.csv").read_text().splitlines()[0].startswith("model,dataset,regime,fc")
    assert doc["limits"][0]["wilks_table"]["g_low_mass"] > doc["limits"][0]["wilks"]["g_low_mass"]  # 6.18 > 4
    api = serial[1]["limits"][0]["lines"]["low_mass"]
    assert doc["limits"][0]["lines"]["low_mass"] == api  # same inputs: the same numbers, bit for bit


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "unknown model"),
    (["--model", "B-L", "--regime", "mid"], "unknown regime"),
    (["--model", "B-L", "--cl", "3sigma"], "unknown confidence level"),
    (["--model", "B-L", "--toys", "0"], "--toys"),
    (["--model", "B-L", "--dataset", "csi", "--backend", "mpi"], "unknown backend"),
    (["--model", "B-L", "--backend", "serial", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs"),
    (["--model", "B-L", "--dataset", "csi", "--masses", "5:1:3"], "--masses wants"),
    (["--model", "B-L", "--dataset", "all", "--masses", "1,2"], "one data set"),
    (["--model", "B-L", "--dataset", "nope"], "unknown data set 'nope'"),
])
@pytest.mark.slow  # subprocesses of the command line; the full suite (CI) runs it
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    r = _cli(["fc", *args, "--out", str(tmp_path / "o")])
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and message in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.slow  # subprocesses of the command line; the full suite (CI) runs it
def test_kill_minus_9_then_rerun_equals_an_uninterrupted_run(serial, tmp_path):
    out, doc = serial
    # a longer run (more blocks) killed while it writes its store, then rerun with the same command
    args = [*CLI_SMALL, "--backend", "serial", "--toys", "40", "--out", str(tmp_path / "k")]
    proc = subprocess.Popen([str(BIN / "cevnsfit"), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    store = tmp_path / "k" / "store"
    while time.time() < deadline and len(list(store.rglob("*.npz"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(store.rglob("*.npz")))
    assert not (tmp_path / "k" / "fc.json").exists() and done_before >= 3
    assert _cli(args).returncode == 0
    # the uninterrupted run, through the API (the same numbers as the CLI: see the test above)
    straight = run_fc(out=tmp_path / "u", backend="serial", **dict(SMALL, n_toys=40))
    resumed = json.loads((tmp_path / "k" / "fc.json").read_text())
    assert resumed["limits"][0]["lines"] == json.loads(json.dumps(straight["limits"][0]["lines"]))
    a, b = _store_arrays(tmp_path / "k"), _store_arrays(tmp_path / "u")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not list(store.rglob(".*"))  # no temporary file left behind by the kill


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_cluster_started_by_hand_on_loopback(tmp_path):
    """`dask scheduler` + two `dask worker` processes on 127.0.0.1, used through --scheduler."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        time.sleep(2)
        procs += [subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard",
                                    "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=env) for _ in range(2)]
        r = _cli([*CLI_SMALL, "--backend", "dask", "--scheduler", address, "--out", str(tmp_path / "d")], timeout=300)
        assert r.returncode == 0, r.stderr
        assert _cli([*CLI_SMALL, "--backend", "serial", "--out", str(tmp_path / "s")]).returncode == 0
        a = json.loads((tmp_path / "d" / "fc.json").read_text())
        b = json.loads((tmp_path / "s" / "fc.json").read_text())
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.mark.slow  # subprocesses of the command line; the full suite (CI) runs it
def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    r = _cli([*CLI_SMALL, "--backend", "dask", "--scheduler", f"tcp://127.0.0.1:{_free_port()}", "--out", str(tmp_path)],
             timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.startswith("error: cannot reach the Dask scheduler")


def test_allowed_set_islands_and_their_p_values_from_toys():
    """Synthetic line: t_obs crosses a constant t_c twice after the interval at 0, so an island appears; its
    p-value is the largest fraction of toys with t >= t_obs over the tested points inside it."""
    from cevnsfit.fc import LineResult, Observed
    from cevnsfit.stats.intervals import AllowedIntervals

    tested = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    t_obs = np.array([0.0, 1.0, 6.0, 9.0, 2.0, 1.5, 8.0, 12.0])
    rng = np.random.default_rng(0)
    t = [rng.chisquare(1, 2000) for _ in tested]
    spec = LineSpec("m", "csi", "low_mass", tuple(tested), tuple(tested), 0, 10)
    obs = Observed(100.0, 0.0, AllowedIntervals([(0.0, 1.5)], 4.0), 1.5, tested, t_obs, t_obs)
    s = LineResult(spec, obs, t, "2sigma").summary()
    t_c = s["t_c"]
    assert np.all((t_c > 3.0) & (t_c < 5.5))  # chi2_1 toys: the 95.45 % quantile is 4
    assert 1.0 < s["limit"] < 2.0
    (island,) = s["islands"]
    a, b = island["interval"]
    assert 3.0 < a < 4.0 and 5.0 < b < 6.0
    want = max(np.mean(t[4] >= 2.0), np.mean(t[5] >= 1.5))
    assert island["p_value"] == want and island["significance"] == pytest.approx(significance(want))
    assert s["toy_error"] is not None and s["toy_error"] >= 0


# ---- fixed-mass raster (cevnsfit fc --masses) ----------------------------------------------------------------
RASTER = dict(model="B-L", datasets=["csi"], regimes=(), n_toys=6, seed=4, cl="2sigma", block=3, per_decade=3,
              with_table=False, masses=[10.0, 1000.0])


@pytest.fixture(scope="module")
def raster(tmp_path_factory):
    return _serial_run(tmp_path_factory, "raster", RASTER)


def test_raster_reports_fc_and_wilks_per_mass(raster):
    out, doc = raster
    ras = doc["raster"]
    assert doc["limits"] == [] and ras["units"] == {"mass": "MeV", "g": "1"} and ras["masses_MeV"] == [10.0, 1000.0]
    entries = ras["datasets"]["csi"]
    assert [e["mass_MeV"] for e in entries] == [10.0, 1000.0]
    for e in entries:
        assert 0 < e["g"] < 1 and 0 < e["wilks_g"] < 1 and len(e["t_c"]) == len(e["coupling"])
        assert e["allowed_g"][0][0] == 0.0 and e["allowed_g"][0][1] == pytest.approx(e["g"])
    # a heavier mediator is weaker: the Wilks limit at 1 GeV lies above the one at 10 MeV (both lines computed
    # independently), and g / M approaches the contact limit's scale
    assert entries[1]["wilks_g"] > 3 * entries[0]["wilks_g"]
    # one store directory per mass line, and the reports name every mass
    assert sorted(p.name for p in (out / "store").iterdir() if p.is_dir()) == ["B-L__csi__m1000MeV", "B-L__csi__m10MeV"]
    write_reports(doc, out)
    assert "fixed_mass_1000MeV" in (out / "fc.csv").read_text()
    assert "| csi | 1000 |" in (out / "fc.md").read_text()


@pytest.mark.slow  # a subprocess of the command line; the full suite (CI) runs it
def test_cli_raster_equals_the_api_and_draws_the_figure(raster, tmp_path):
    """README: `cevnsfit fc ... --masses M1,M2 --out DIR` -- the same numbers as the API run, and fc_plane.png."""
    r = _cli(["fc", "--model", "B-L", "--dataset", "csi", "--masses", "10,1000", "--toys", "6", "--block", "3",
              "--seed", "4", "--points-per-decade", "3", "--no-wilks-table", "--backend", "serial",
              "--out", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "fc.json").read_text())
    assert doc["raster"]["datasets"]["csi"] == raster[1]["raster"]["datasets"]["csi"]
    assert (tmp_path / "fc_plane.png").read_bytes()[:4] == b"\x89PNG"


def test_raster_masses_are_parsed_and_checked():
    np.testing.assert_allclose(parse_masses("1:100:3"), [1.0, 10.0, 100.0])
    np.testing.assert_allclose(parse_masses("5, 0.5"), [0.5, 5.0])
    for bad in ("0:10:3", "10:1:3", "1:2:0", "a,b", "-1", "1:inf:3", ""):
        with pytest.raises(InputError):
            parse_masses(bad)


@pytest.mark.slow  # a local Dask cluster; the full suite (CI) runs it
def test_raster_on_dask_is_bit_identical_to_serial(raster, tmp_path):
    out, doc = raster
    dask_doc = run_fc(out=tmp_path, backend="dask", workers=2, **RASTER)
    assert json.dumps(dask_doc, sort_keys=True) == json.dumps(doc, sort_keys=True)
    a, b = _store_arrays(out), _store_arrays(tmp_path)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_raster_overlay_draws_the_fc_and_wilks_limits(raster):
    import matplotlib.pyplot as plt

    from cevnsfit.plotting.fc import raster_overlay

    _, doc = raster
    fig, ax = plt.subplots()
    handles = raster_overlay(doc["raster"], "csi")(ax)
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    entries = doc["raster"]["datasets"]["csi"]
    np.testing.assert_allclose(lines["fc-raster"].get_ydata(), [e["g"] for e in entries])
    np.testing.assert_allclose(lines["wilks-raster"].get_xdata(), [10.0, 1000.0])
    assert len(handles) == 2
    plt.close(fig)
    with pytest.raises(InputError):
        raster_overlay(doc["raster"], "lar")


# ---- reproduce --fc ------------------------------------------------------------------------------------------
def test_fc_columns_of_the_limits_table_and_the_asymptotes(serial):
    """In process: the FC row of a run joins the limits-table row; the overlay draws g_FC at small M."""
    import matplotlib.pyplot as plt

    from cevnsfit.fc import fc_columns_markdown, with_fc_columns
    from cevnsfit.plotting.fc import asymptote_overlay

    _, doc = serial
    fc_row = doc["limits"][0]
    table_row = {"model": "B-L", "dataset": "csi", "g_low_mass": 5.05e-5, "g_over_M_high_mass": 1e-3}
    other = {"model": "B-L", "dataset": "lar", "g_low_mass": 5.4e-5, "g_over_M_high_mass": 1.7e-3}
    rows = with_fc_columns([table_row, other], {("B-L", "csi"): fc_row})
    assert "fc" not in rows[1] and "fc" not in table_row  # inputs untouched, missing rows left without columns
    cols = rows[0]["fc"]["g_low_mass"]
    assert cols == {"wilks_1par": fc_row["wilks"]["g_low_mass"], "fc": fc_row["g_low_mass"],
                    "toy_error": fc_row["toy_error"]["g_low_mass"]}
    text = fc_columns_markdown(rows, 12)
    assert "12 toys" in text and f"{fc_row['g_low_mass']:.3g}" in text and "| B-L | lar |" not in text
    fig, ax = plt.subplots()
    ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlim(1e-2, 1e4)
    handles = asymptote_overlay(fc_row)(ax)
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    assert set(lines) == {"fc-low", "wilks-low"}  # the high-mass line was not run
    np.testing.assert_allclose(lines["fc-low"].get_ydata(), fc_row["g_low_mass"])
    assert len(handles) == 2
    plt.close(fig)


@pytest.mark.slow  # a whole-model reproduction (~1 min)
def test_reproduce_with_fc_adds_the_columns(tmp_path):
    from cevnsfit.reproduce import reproduce

    out = tmp_path / "repro"
    reproduce(out, models=["B-L"], fc_toys=3, fc_backend="serial")
    doc = json.loads((out / "limits.json").read_text())
    from cevnsfit.fc import toy_data_sets
    from cevnsfit.mediators import DATASETS

    assert [r["dataset"] for r in doc["limits"]] == list(DATASETS)
    # FC columns for every data set: the COHERENT costs, XENONnT's morphed cost and Dresden-II's grid-profiled one
    # all have replicas
    assert {r["dataset"] for r in doc["limits"] if "fc" in r} == set(toy_data_sets()) == set(DATASETS)
    fc_doc = {r["dataset"]: r["fc"] for r in doc["limits"] if "fc" in r}
    assert fc_doc["csi"]["g_low_mass"]["wilks_1par"] > 0
    md = (out / "limits.md").read_text()
    assert "## Feldman-Cousins (3 toys" in md and "Wilks 1 par." in md
    assert "## Feldman-Cousins" in (out / "report.md").read_text()
    assert json.loads((out / "run.json").read_text())["options"]["fc_toys"] == 3
    assert any((out / "cache" / "fc" / "B-L" / "store").rglob("*.npz"))
    assert (out / "figures" / "plane_B-L.png").read_bytes()[:4] == b"\x89PNG"


def test_raster_lines_at_masses_sharing_a_grid_throw_their_own_templates():
    """Neighbouring raster masses often snap to the same grid of couplings: the per-process line cache must still
    give each mass its own templates (it once returned the first mass's line for the next ones)."""
    grid = (0.0, 1e-4, 1e-3)
    specs = [LineSpec("B-L", "csi", "fixed_mass", grid[1:], grid, 0, 10, mass=m) for m in (10.0, 300.0)]
    lines = [build_line(sp) for sp in specs]
    an = _analysis(None)
    for sp, line in zip(specs, lines):
        direct = an.templates("B-L", [sp.mass_mev], "csi").counts(np.asarray(grid), 0)
        np.testing.assert_array_equal(line._grid_signals[0], direct)
    assert not np.allclose(lines[0]._grid_signals[0][1:], lines[1]._grid_signals[0][1:], rtol=1e-3, atol=0)
