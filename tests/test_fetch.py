"""``cevnsfit data fetch / verify / info``: the registry, the restricted unpickler, and every fault of the fetcher,
each against a file server on the loopback address that the test starts and stops itself."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from cevnsfit.errors import DataError
from cevnsfit.io import registry as reg
from cevnsfit.io.datadir import resolve_collection
from cevnsfit.io.fetch import FetchError, _Fetcher, _Progress, fetch
from cevnsfit.io.flux_pickle import FLAVOURS, RestrictedUnpickler, convert_file, read_pickle

from loopback import LoopbackServer, closed_port

SHARED = resolve_collection("coherent").parent  # ../shared/data of the development set-up
REPO = Path(__file__).resolve().parents[1]
FLUX = "coherent/flux/snsFlux2D_derived_BarbeauGroup"
COHERENT_AND_LIMITS = ("coherent", "limits")  # data-set groups of the registry


def run_cli(*args, env=None, cwd=None, pythonpath=None, timeout=300):
    e = {k: v for k, v in os.environ.items() if not k.startswith("CEVNSFIT_") and k != "XDG_DATA_HOME"}
    e.update(env or {})
    if pythonpath:
        e["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-m", "cevnsfit.cli", *args], capture_output=True, text=True, env=e,
                          cwd=cwd, timeout=timeout)


def one_error_line(res, *words, code=2):
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def leftovers(root: Path) -> list[Path]:
    """Temporary files of a fetch (staging folder, pooch temporaries) anywhere under ``root``."""
    return [p for p in root.rglob("*") if ".cevnsfit-staging" in p.parts or p.name.startswith("tmp")]


@pytest.fixture(scope="module")
def server():
    with LoopbackServer(SHARED) as srv:
        yield srv


@pytest.fixture
def lar():
    return reg.DATASETS["lar2020"]


# --- the registry ----------------------------------------------------------------------------------------------

def test_registry_agrees_with_shared_manifest():
    manifest = {}
    for line in (SHARED / "MANIFEST.sha256").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        manifest[rel] = digest
    r = reg.registry()
    # every upstream file of the manifest is registered with its hash and size; only the project's notes are not
    missing = sorted(set(manifest) - set(r))
    assert all(Path(m).name in ("SOURCES.md", "PROVENANCE.md") for m in missing) and missing
    for path, e in r.items():
        assert manifest[path] == e.sha256, path
        assert (SHARED / path).stat().st_size == e.size, path


def test_every_registered_file_belongs_to_exactly_one_dataset():
    owners: dict[str, list[str]] = {}
    for ds in reg.DATASETS.values():
        for e in reg.dataset_files(ds):
            owners.setdefault(e.path, []).append(ds.name)
    assert set(owners) == set(reg.registry())
    assert all(len(v) == 1 for v in owners.values()), {k: v for k, v in owners.items() if len(v) > 1}


def test_every_file_the_readers_open_is_in_a_default_dataset():
    from cevnsfit.experiments import csi2021, lar2020

    default = {e.path for ds in reg.default_datasets() for e in reg.dataset_files(ds)}
    for rel in [*csi2021.FILES.values(), *lar2020.FILES.values()]:
        assert f"coherent/{rel}" in default, rel


def test_urls_order_and_upstream_spelling():
    fs = reg.DATASETS["foresee"]
    urls = fs.urls("limits/FORESEE/Models/U1B-L/model/lines/bounds_NA64.txt", ["http://lab/mirror/"])
    assert [k for k, _ in urls] == ["mirror", "pinned mirror"]
    assert urls[0][1] == "http://lab/mirror/limits/FORESEE/Models/U1B-L/model/lines/bounds_NA64.txt"
    assert "/Models/U%281%29B-L/model/lines/bounds_NA64.txt" in urls[1][1]  # the upstream folder is 'U(1)B-L'
    lar = reg.DATASETS["lar2020"].urls("coherent/lar2020/cevnspdf+1sigF90.txt")
    assert [k for k, _ in lar] == ["official", "pinned mirror"]
    assert lar[0][1] == "https://zenodo.org/api/records/3903810/files/cevnspdf%2B1sigF90.txt/content"


def test_unknown_dataset_is_one_line():
    one_error_line(run_cli("data", "fetch", "nope", "--mirror", "http://127.0.0.1:9/", "--no-upstream"), "nope")


# --- the restricted unpickler and the flux conversion -----------------------------------------------------------

class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("payload", [_Evil(), {"nuE": _Evil()}, print, Path("x")])
def test_restricted_unpickler_refuses_every_other_global(tmp_path, payload):
    raw = pickle.dumps(payload)
    with pytest.raises(DataError, match="refusing to unpickle global"):
        RestrictedUnpickler(io.BytesIO(raw)).load()
    # also wrapped as the upstream .npy of an object array
    f = tmp_path / "evil.npy"
    np.save(f, np.array({"nuE": payload}, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="refusing to unpickle global"):
        read_pickle(f)


def test_restricted_unpickler_admits_arrays_and_containers():
    obj = {"a": (np.arange(3.0), [np.float64(2.5), "s", b"b", 1]), "b": np.ones((2, 2), dtype=np.int32)}
    for protocol in (2, 3, 4, 5):
        back = RestrictedUnpickler(io.BytesIO(pickle.dumps(obj, protocol=protocol))).load()
        assert np.array_equal(back["a"][0], obj["a"][0]) and back["a"][1][1:] == ["s", b"b", 1]
        assert back["b"].dtype == np.int32


def _upstream_pickles(tmp_path) -> dict[str, Path]:
    """The upstream flux_dict.pkl layouts (PROVENANCE.md §4a), rebuilt from the shared .npz files."""
    z2 = np.load(SHARED / FLUX / "rebin125ns_2D/flux_dict_converted.npz")
    d2 = {fl: ((z2["t_edges_ns"], z2["E_bin_label_MeV"]), z2[fl]) for fl in FLAVOURS}
    z1 = np.load(SHARED / FLUX / "rebin10ns_1D/flux_dict_converted.npz")
    d1 = {fl: {"energy": (z1["E_bin_label_MeV"], z1[f"{fl}_energy_nu_per_POT"]),
               "time": (z1["t_edges_ns"], z1[f"{fl}_time_pdf"])} for fl in FLAVOURS}
    out = {}
    for name, d in (("2d", d2), ("1d", d1)):
        out[name] = tmp_path / f"flux_dict_{name}.pkl"
        with open(out[name], "wb") as fh:  # np.save on a name would append '.npy'
            np.save(fh, np.array(d, dtype=object), allow_pickle=True)
    return out


def test_conversion_gives_the_shared_npz_bit_for_bit(tmp_path):
    pk = _upstream_pickles(tmp_path)
    for conv, src, ref in (("convert_2d", pk["2d"], "rebin125ns_2D"), ("convert_1d", pk["1d"], "rebin10ns_1D")):
        out = tmp_path / f"{ref}.npz"
        convert_file(conv, src, out)
        assert out.read_bytes() == (SHARED / FLUX / ref / "flux_dict_converted.npz").read_bytes()


def test_derived_path_fetches_pickle_checks_it_and_converts(tmp_path, lar):
    """Upstream (no mirror): the pinned pickle is fetched, its hash checked, converted; the result must be the
    registered file.  A pickle with the wrong hash is never opened."""
    pk = _upstream_pickles(tmp_path)
    flux = reg.DATASETS["flux"]
    derived = {}
    extra = {}
    for name, key in (("snsFlux2D_derived_BarbeauGroup/rebin125ns_2D/flux_dict_converted.npz", "2d"),
                      ("snsFlux2D_derived_BarbeauGroup/rebin10ns_1D/flux_dict_converted.npz", "1d")):
        extra[f"/upstream/{key}.pkl"] = pk[key].read_bytes()
        derived[name] = reg.Derived(f"URL/upstream/{key}.pkl", sha(pk[key]), flux.derived[name].converter)
    with LoopbackServer(tmp_path / "empty", extra=extra) as srv:
        derived = {k: reg.Derived(v.source_url.replace("URL", srv.url), v.source_sha256, v.converter)
                   for k, v in derived.items()}
        ds = reg.Dataset("flux", "coherent", "flux", "", "", mirrors=(srv.url + "/raw/{name}",), derived=derived)
        with pytest.raises(FetchError) as exc:  # the .root file is not served here: only it fails
            fetch(dest=tmp_path / "home", datasets=[ds], retries=0)
        assert "nuEnergyAndTime.root" in str(exc.value) and "1 file(s)" in str(exc.value)
        for ref in ("rebin125ns_2D", "rebin10ns_1D"):
            assert sha(tmp_path / "home" / FLUX / ref / "flux_dict_converted.npz") == sha(
                SHARED / FLUX / ref / "flux_dict_converted.npz")
        # a pickle whose hash is not the pinned one is refused before it is read
        bad = {k: reg.Derived(v.source_url, "0" * 64, v.converter) for k, v in derived.items()}
        ds_bad = reg.Dataset("flux", "coherent", "flux", "", "", derived=bad)
        with pytest.raises(FetchError, match="differs from the registered 0000"):
            fetch(dest=tmp_path / "home2", datasets=[ds_bad], retries=0)
        assert not list((tmp_path / "home2").rglob("*.npz")) and not leftovers(tmp_path / "home2")


# --- end to end: a machine without ../shared --------------------------------------------------------------------

@pytest.fixture(scope="module")
def bare_machine(tmp_path_factory, server):
    """A copy of the package in a folder with nothing beside it, $HOME in a temporary folder, the data fetched
    from the loopback mirror with the plain command of the README (no data set named: everything it reads)."""
    root = tmp_path_factory.mktemp("bare")
    shutil.copytree(REPO / "src", root / "clone" / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "home").mkdir()
    (root / "work").mkdir()
    env = {"HOME": str(root / "home")}
    kw = dict(env=env, cwd=root / "work", pythonpath=root / "clone" / "src")
    before = len(server.requests)
    res = run_cli("data", "fetch", "--mirror", server.url + "/", **kw)
    assert res.returncode == 0, res.stderr
    first = server.requests[before:]
    return root, kw, res, first


@pytest.mark.slow  # subprocesses of the whole command line
def test_bare_machine_fetch_puts_every_read_file_in_the_user_data_dir(bare_machine):
    root, kw, res, first = bare_machine
    home = root / "home" / ".local" / "share" / "cevnsfit"  # platformdirs' user data dir on Linux
    expected = [e for ds in reg.default_datasets() for e in reg.dataset_files(ds)]
    assert len(first) == len(expected)
    for e in expected:
        assert sha(home / e.path) == e.sha256
    assert not leftovers(home)
    assert "csi2017" not in os.listdir(home / "coherent")  # not read by the package: fetched only when named


@pytest.mark.slow  # subprocesses of the whole command line
def test_bare_machine_sm_and_limits_equal_the_development_setup(bare_machine):
    root, kw, _, _ = bare_machine
    info = run_cli("data", "info", **kw)
    assert info.returncode == 0, info.stderr
    assert "[used] fetched data" in info.stdout and "shared/data beside the clone: (none found)" in info.stdout
    for args in (("sm", "--json"), ("limits", "--model", "L_mu-L_tau", "--json")):
        bare = run_cli(*args, **kw)
        dev = run_cli(*args, cwd=REPO)
        assert bare.returncode == 0 and dev.returncode == 0, bare.stderr + dev.stderr
        assert json.loads(bare.stdout) == json.loads(dev.stdout)


@pytest.mark.slow  # subprocesses of the whole command line
def test_second_fetch_is_a_noop_and_force_refetches(bare_machine, server):
    root, kw, _, first = bare_machine
    before = len(server.requests)
    again = run_cli("data", "fetch", "--mirror", server.url, **kw)
    assert again.returncode == 0 and "0 file(s) downloaded" in again.stdout
    assert len(server.requests) == before
    forced = run_cli("data", "fetch", "csi2021", "--force", "--mirror", server.url, **kw)
    assert forced.returncode == 0 and "8 file(s) downloaded" in forced.stdout
    assert len(server.requests) == before + 8


def test_only_the_shared_folder_beside_a_clone_is_searched(tmp_path, monkeypatch):
    """A ``shared/data`` left in a parent folder that is not beside a clone (``/tmp/shared``, say) is never used;
    the one beside a clone (a folder whose pyproject.toml names cevnsfit) is, from anywhere inside the clone."""
    from cevnsfit.io.datadir import _dev_candidates

    stray = tmp_path / "shared" / "data" / "coherent" / "csi2021"
    stray.mkdir(parents=True)
    (tmp_path / "work" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work" / "deep")
    assert stray.parent not in _dev_candidates("coherent")
    (tmp_path / "clone" / "notes").mkdir(parents=True)
    (tmp_path / "clone" / "pyproject.toml").write_text('[project]\nname = "cevnsfit"\n')
    monkeypatch.chdir(tmp_path / "clone" / "notes")
    assert _dev_candidates("coherent")[0] == stray.parent
    (tmp_path / "clone" / "pyproject.toml").write_text("[project]\nname='cevnsfit'\n")  # any TOML spelling
    assert _dev_candidates("coherent")[0] == stray.parent
    for other in ('[project]\nname = "another-project"\n', '[tool.x]\nname = "cevnsfit"\n', "not = [toml"):
        (tmp_path / "clone" / "pyproject.toml").write_text(other)
        assert stray.parent not in _dev_candidates("coherent")


def test_bare_machine_without_data_says_which_command_fetches_it(tmp_path):
    shutil.copytree(REPO / "src", tmp_path / "clone" / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "home").mkdir()
    res = run_cli("sm", env={"HOME": str(tmp_path / "home")}, cwd=tmp_path, pythonpath=tmp_path / "clone" / "src")
    one_error_line(res, "cevnsfit data fetch")


@pytest.mark.slow  # subprocesses of the whole command line
def test_verify_names_each_file_that_differs(tmp_path):
    home = tmp_path / "data"
    shutil.copytree(SHARED / "coherent", home / "coherent")
    shutil.copytree(SHARED / "limits", home / "limits")
    # the package (installed from the clone) would find ../shared itself: name the folders to check
    n = sum(len(reg.dataset_files(d)) for d in reg.default_datasets() if d.collection in ("coherent", "limits"))
    ok = run_cli("data", "verify", *COHERENT_AND_LIMITS, "--data-dir", str(home / "coherent"),
                 env={"CEVNSFIT_LIMITS": str(home / "limits")}, cwd=tmp_path)
    assert ok.returncode == 0 and f"{n} file(s) verified" in ok.stdout, ok.stderr
    target = home / "coherent" / "lar2020" / "cevnspdf.txt"
    target.write_text(target.read_text().replace("0", "1", 1))
    (home / "coherent" / "csi2021" / "brnPE.txt").unlink()
    res = run_cli("data", "verify", *COHERENT_AND_LIMITS, "--data-dir", str(home / "coherent"),
                  env={"CEVNSFIT_LIMITS": str(home / "limits")}, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: 2 of {n} file(s) differ")
    differs = [line for line in lines if line.startswith("differs:")]
    assert len(differs) == 2
    assert f"{target}: expected {reg.registry()['coherent/lar2020/cevnspdf.txt'].sha256}, actual {sha(target)}" in res.stderr
    assert "brnPE.txt: expected" in res.stderr and "actual missing" in res.stderr


def test_data_info_prints_each_files_sha256():
    res = run_cli("data", "info", cwd=REPO, env={"COLUMNS": "300"})
    assert res.returncode == 0, res.stderr
    for rel in ("csi2021/dataBeamOnC.txt", "lar2020/cevnspdf.txt"):
        assert reg.registry()[f"coherent/{rel}"].sha256 in res.stdout


# --- faults ----------------------------------------------------------------------------------------------------

def test_corrupt_file_is_named_with_both_hashes_and_never_installed(tmp_path, lar):
    bad = "/coherent/lar2020/bkgpdf.txt"
    with LoopbackServer(SHARED, faults={bad: "corrupt"}) as srv:
        res = run_cli("data", "fetch", "lar2020", "--mirror", srv.url, "--no-upstream",
                      "--dest", str(tmp_path / "d"))
    line = one_error_line(res, "coherent/lar2020/bkgpdf.txt", reg.registry()["coherent/lar2020/bkgpdf.txt"].sha256)
    corrupt = bytearray((SHARED / bad[1:]).read_bytes())
    corrupt[-1] = (corrupt[-1] + 1) % 256
    assert hashlib.sha256(bytes(corrupt)).hexdigest() in line
    assert not (tmp_path / "d" / bad[1:]).exists()
    good = [e for e in reg.dataset_files(lar) if not e.path.endswith("bkgpdf.txt")]
    assert all(sha(tmp_path / "d" / e.path) == e.sha256 for e in good)  # the good files are kept
    assert not leftovers(tmp_path / "d")


def test_dropped_connection_is_retried(tmp_path, lar):
    path = "/coherent/lar2020/datanobkgsub.txt"
    with LoopbackServer(SHARED, faults={path: "drop_once"}) as srv:
        rep = fetch(dest=tmp_path / "d", mirrors=[srv.url], upstream=False, datasets=[lar], retries=1)
        assert srv.requests.count(path) == 2
    assert sha(tmp_path / "d" / path[1:]) == reg.registry()[path[1:]].sha256
    assert len(rep.downloaded) == 21 and not leftovers(tmp_path / "d")


def test_dropped_connection_falls_to_the_next_mirror_and_leaves_no_partial_file(tmp_path, lar):
    path = "/coherent/lar2020/datanobkgsub.txt"
    with LoopbackServer(SHARED, faults={path: "drop"}) as broken, LoopbackServer(SHARED) as good:
        rep = fetch(dest=tmp_path / "d", mirrors=[broken.url, good.url], upstream=False, datasets=[lar], retries=1)
        assert broken.requests.count(path) == 2 and good.requests.count(path) == 1
    assert rep.sources[path[1:]].startswith(good.url)
    assert sha(tmp_path / "d" / path[1:]) == reg.registry()[path[1:]].sha256
    # only drops, nowhere to fall back: an error, and no partial file anywhere
    with LoopbackServer(SHARED, faults={path: "drop"}) as broken:
        with pytest.raises(FetchError, match="connection closed after|connection dropped"):
            fetch(dest=tmp_path / "e", mirrors=[broken.url], upstream=False, datasets=[lar], retries=1)
    assert not (tmp_path / "e" / path[1:]).exists() and not leftovers(tmp_path / "e")


def test_404_on_the_official_url_falls_to_the_mirror(tmp_path):
    with LoopbackServer(SHARED, faults={}) as srv:
        ds = reg.Dataset("csi2021", "coherent", "csi2021", "", "", official=srv.url + "/official/{name}",
                         mirrors=(srv.url + "/coherent/csi2021/{name}",))
        rep = fetch(dest=tmp_path / "d", datasets=[ds], retries=0)
        assert len([r for r in srv.requests if r.startswith("/official/")]) == 8  # each answered 404
    assert len(rep.downloaded) == 8 and all(u.startswith(srv.url + "/coherent/") for u in rep.sources.values())


def test_no_server_at_all_is_one_line(tmp_path):
    port = closed_port()
    res = run_cli("data", "fetch", "--mirror", f"http://127.0.0.1:{port}/", "--no-upstream",
                  "--dest", str(tmp_path / "d"))
    one_error_line(res, "could not be fetched", "unreachable")
    # the same with the official location on a dead host: every host is asked once, not once per file
    ds = reg.Dataset("lar2020", "coherent", "lar2020", "", "", official=f"http://127.0.0.1:{port}/o/{{name}}")
    with pytest.raises(FetchError, match="21 file"):
        fetch(dest=tmp_path / "e", datasets=[ds], retries=3)
    assert not leftovers(tmp_path / "e")


def _in_private_mount(tmp_path, options: str, *args):
    """Run the CLI with its destination on a tmpfs mounted with ``options`` in a private mount namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a tmpfs")
    dest = tmp_path / "mnt"
    dest.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEVNSFIT_")}
    cmd = (f"mount -t tmpfs -o {options} tmpfs {dest} || exit 77; "
           f"exec {sys.executable} -m cevnsfit.cli data fetch --dest {dest} " + " ".join(args))
    res = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
    if res.returncode == 77:
        pytest.skip("cannot mount a tmpfs here")
    return res


def test_read_only_destination_is_one_line(tmp_path, server):
    res = _in_private_mount(tmp_path, "ro,size=1m", "lar2020", "--mirror", server.url, "--no-upstream")
    one_error_line(res, "cannot write into", "Read-only file system")


def test_full_destination_is_one_line(tmp_path, server):
    # exit 1: the destination failed while being written (README, "Faults": the exit-code table)
    res = _in_private_mount(tmp_path, "size=64k", "lar2020", "--mirror", server.url, "--no-upstream")
    one_error_line(res, "no space left", "run the same command again", code=1)


def run_in_process(capsys, *args):
    from cevnsfit import cli

    with pytest.raises(SystemExit) as exc:
        cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_full_disk_while_fetching_is_exit_1_and_leaves_nothing(capsys, monkeypatch, tmp_path, server):
    """ENOSPC on the first write of a download (simulated: the file object's write fails as on a full disk): one
    line, exit 1 (an output that could not be written, not bad input), and the destination holds nothing -- no
    partial file, no staging folder, no lock file."""
    import errno

    import cevnsfit.io.fetch as fetch_mod

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch_mod, "open", lambda *a, **k: Full(open(*a, **k)), raising=False)
    dest = tmp_path / "d"
    code, _, err = run_in_process(capsys, "data", "fetch", "lar2020", "--mirror", server.url, "--no-upstream",
                                  "--dest", dest)
    assert code == 1, err
    assert err == (f"error: no space left on the device of {dest}: 0 file(s) fetched, free some space and run the "
                   "same command again\n")
    assert list(dest.iterdir()) == []


def test_fetch_leaves_only_data_in_the_destination(tmp_path, lar, server):
    """No lock file, staging folder or probe is left after a fetch, whether it succeeds or fails."""
    dest = tmp_path / "d"
    fetch(dest=dest, mirrors=[server.url], upstream=False, datasets=[lar])
    assert sorted(p.name for p in dest.iterdir()) == ["coherent"]
    assert not [p for p in dest.rglob(".*")]
    bad = "/coherent/lar2020/bkgpdf.txt"
    with LoopbackServer(SHARED, faults={bad: "corrupt"}) as srv:
        with pytest.raises(FetchError, match="bkgpdf.txt"):
            fetch(dest=tmp_path / "e", mirrors=[srv.url], upstream=False, datasets=[lar], retries=0)
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["coherent"]
    assert not [p for p in (tmp_path / "e").rglob(".*")]


def test_fetch_lock_refuses_a_second_fetch_and_is_removed_at_the_end(tmp_path, monkeypatch):
    from cevnsfit.io.fetch import LOCK, _locked

    dest = tmp_path / "d"
    dest.mkdir()
    with _locked(dest):
        assert (dest / LOCK).exists()
        with pytest.raises(FetchError, match="another `cevnsfit data fetch`"):
            with _locked(dest):
                pass
    assert list(dest.iterdir()) == []
    # the race the removal opens: a fetch opened the lock file, the holder then removed it and finished, and the
    # fetch's flock succeeds on the removed file -- it must notice and lock a file that is at the path
    real_flock, calls = fcntl.flock, []

    def flock(fd, op):
        if not calls:
            os.unlink(dest / LOCK)  # the holder removes the file between our open and our flock
        calls.append(fd)
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)  # the module cevnsfit.io.fetch calls
    with _locked(dest):
        assert len(calls) == 2  # retried once, on a fresh file
        with open(dest / LOCK) as other:  # the file at the path is the locked one
            with pytest.raises(BlockingIOError):
                real_flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    monkeypatch.undo()
    assert list(dest.iterdir()) == []


def test_two_fetches_into_one_folder(tmp_path, server):
    dest = tmp_path / "d"
    dest.mkdir()
    with open(dest / ".cevnsfit-fetch.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        res = run_cli("data", "fetch", "lar2020", "--mirror", server.url, "--no-upstream", "--dest", str(dest))
    one_error_line(res, "another `cevnsfit data fetch`")
    assert not (dest / "coherent").exists()


def test_leftovers_of_a_killed_fetch_are_removed_and_the_wrong_file_replaced(tmp_path, lar, server):
    dest = tmp_path / "d"
    staging = dest / ".cevnsfit-staging"
    staging.mkdir(parents=True)
    (staging / "3-bkgpdf.txt").write_text("half a file")
    wrong = dest / "coherent" / "lar2020" / "bkgpdf.txt"
    wrong.parent.mkdir(parents=True)
    wrong.write_text("not the release")
    rep = fetch(dest=dest, mirrors=[server.url], upstream=False, datasets=[lar])
    assert "coherent/lar2020/bkgpdf.txt" in rep.downloaded and sha(wrong) == reg.registry()[
        "coherent/lar2020/bkgpdf.txt"].sha256
    assert not staging.exists()


def test_bad_mirror_url_and_no_upstream_without_mirror():
    one_error_line(run_cli("data", "fetch", "--mirror", "ftp://x"), "--mirror")
    one_error_line(run_cli("data", "fetch", "--no-upstream"), "--no-upstream")


# --- the official archive (XENONnT) -----------------------------------------------------------------------------

def _tar(members: dict[str, bytes], links=()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def test_archive_members_are_checked_one_by_one_and_links_refused(tmp_path):
    entries = [reg.registry()[p] for p in ("xenonnt_cevns/data/sr0.csv", "xenonnt_cevns/data/sr1.csv",
                                           "xenonnt_cevns/binning/sr0.yaml")]
    top = "cevns_data_release-60d230dd"
    members = {f"{top}/{e.path.split('/', 1)[1]}": (SHARED / e.path).read_bytes() for e in entries}
    members[f"{top}/data/sr1.csv"] += b"tampered\n"
    blob = _tar(members, links=[(f"{top}/binning/sr1.yaml", "/etc/passwd")])
    with LoopbackServer(tmp_path / "empty", extra={"/archive.tar.gz": blob}) as srv:
        arch = reg.Dataset("xenonnt", "xenonnt_cevns", "", "", "", archive=srv.url + "/archive.tar.gz")
        dest = tmp_path / "d"
        dest.mkdir()
        f = _Fetcher(dest, (), 0, 10.0, _Progress(None), True)
        f.staging.mkdir()
        done, error = f.archive(arch, entries + [reg.registry()["xenonnt_cevns/binning/sr1.yaml"]])
    assert set(done) == {"xenonnt_cevns/data/sr0.csv", "xenonnt_cevns/binning/sr0.yaml"}
    assert "xenonnt_cevns/data/sr1.csv: SHA-256" in error
    assert not (dest / "xenonnt_cevns/data/sr1.csv").exists() and not (dest / "xenonnt_cevns/binning/sr1.yaml").exists()
    for p in done:
        assert sha(dest / p) == reg.registry()[p].sha256
    assert list(f.staging.iterdir()) == []


_REPRODUCE_ONE = ("import json, sys; from cevnsfit.reproduce import reproduce; "
                  "r = reproduce(sys.argv[1], models=['B-L']); print(json.dumps(sorted(r['figures'])))")


@pytest.mark.slow
def test_bare_machine_reproduce_equals_the_development_setup(bare_machine, tmp_path):
    """The README's user path ends with `cevnsfit reproduce`: it needs the other experiments' limit curves too,
    found in the fetched data.  One model through the same function, both set-ups, identical tables."""
    root, kw, _, _ = bare_machine
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEVNSFIT_") and k != "XDG_DATA_HOME"}
    runs = {}
    for name, extra, cwd in (("bare", {**kw["env"], "PYTHONPATH": str(kw["pythonpath"])}, kw["cwd"]),
                             ("dev", {}, REPO)):
        res = subprocess.run([sys.executable, "-c", _REPRODUCE_ONE, str(tmp_path / name)], capture_output=True,
                             text=True, env={**env, **extra}, cwd=cwd, timeout=600)
        assert res.returncode == 0, res.stderr
        runs[name] = json.loads((tmp_path / name / "limits.json").read_text())
        assert any(f.endswith("plane_B-L.png") for f in json.loads(res.stdout.strip().splitlines()[-1]))
    assert runs["bare"] == runs["dev"]


def test_experiments_read_only_registered_default_data_sets():
    from cevnsfit.experiments import EXPERIMENTS

    for spec in EXPERIMENTS.values():
        for name in spec.fetch:
            assert reg.DATASETS[name].read, name
        registered = {e.path for n in spec.fetch for e in reg.dataset_files(reg.DATASETS[n])}
        assert {f"{spec.collection}/{rel}" for rel in spec.files.values()} <= registered
