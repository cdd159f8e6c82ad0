"""cevnsfit.process.ForkedWorkers (a concurrent.futures ProcessPoolExecutor of forked workers with the command line's
fault behaviour) and the figure jobs of ``reproduce`` on it: results, errors carried back, clean-up on faults."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cevnsfit.errors import DataError
from cevnsfit.process import ForkedWorkers, WorkerLost, run_reported

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="ForkedWorkers has no executor without fork")


def pid_and(value):
    return os.getpid(), value


def test_jobs_run_in_forked_workers_and_leaving_waits(tmp_path):
    with ForkedWorkers(2) as pool:
        futures = [pool.executor.submit(pid_and, i) for i in range(5)]
    results = [f.result() for f in futures]  # all done: leaving the block waited for them
    assert [v for _, v in results] == list(range(5))
    assert all(pid != os.getpid() for pid, _ in results)


def test_no_workers_means_no_executor():
    with ForkedWorkers(0) as pool:
        assert pool.executor is None


def test_workers_inherit_this_process_and_run_the_initializer():
    state = {"computed here": 42}  # not picklable into the job: inherited at the fork

    with ForkedWorkers(1, initializer=_remember, initargs=(state,)) as pool:
        assert pool.result(pool.executor.submit(_remembered)) == 42


_REMEMBERED = {}


def _remember(state):
    _REMEMBERED.update(state)


def _remembered():
    return _REMEMBERED["computed here"]


def raising(exc):
    raise exc


def in_a_worker(exc, job=raising):
    """What ``result`` raises for a job that raised ``exc`` in a worker."""
    with ForkedWorkers(1) as pool:
        future = pool.executor.submit(run_reported, job, exc)
        try:
            pool.result(future)
        except BaseException as got:  # noqa: BLE001 - returned for the test to check
            return got
    return None


def test_oserror_in_a_worker_keeps_errno_and_filename(tmp_path):
    err = in_a_worker(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "f.png")))
    assert type(err) is OSError and err.errno == errno.ENOSPC and err.filename == str(tmp_path / "f.png")


def test_package_error_in_a_worker_keeps_its_class():
    err = in_a_worker(DataError("bad file, line 3"))
    assert type(err) is DataError and str(err) == "bad file, line 3"


def raise_local(text):
    class Local(Exception):  # a class defined in a function cannot be pickled
        pass

    raise Local(text)


def test_an_error_that_cannot_be_sent_back_is_reported_by_its_text():
    err = in_a_worker("from a local class", raise_local)
    assert type(err) is RuntimeError and "Local: from a local class" in str(err)


def kill_myself():
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_by_a_signal_is_worker_lost():
    assert issubclass(WorkerLost, OSError)  # the environment's failure: the command line exits 1, not 2
    with pytest.raises(WorkerLost, match="killed by SIGKILL"):
        with ForkedWorkers(1) as pool:
            pool.result(pool.executor.submit(kill_myself))


def sleeper(pid_file):
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)


def test_leaving_by_an_exception_kills_the_workers(tmp_path):
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    with pytest.raises(KeyError):
        with ForkedWorkers(1) as pool:
            pool.executor.submit(sleeper, str(pid_file))
            while not pid_file.exists():
                time.sleep(0.01)
            raise KeyError("the parent fails")
    assert time.monotonic() - start < 20
    with pytest.raises(ProcessLookupError):  # killed and reaped: not even a zombie is left
        os.kill(int(pid_file.read_text()), 0)


def is_closed(fd):
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_descriptors_to_close_are_closed_in_the_workers(tmp_path):
    with open(tmp_path / "lock", "w") as held:
        with ForkedWorkers(1, close_fds=(held.fileno(),)) as pool:
            assert pool.result(pool.executor.submit(is_closed, held.fileno())) is True
        os.fstat(held.fileno())  # still open here


def signal_dispositions():
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), blocked


def test_workers_end_at_once_on_sigint_and_sigterm(monkeypatch):
    """A Ctrl-C at the terminal reaches every process of the group: a worker ends at once (the run reports the
    interrupt), it does not raise the run's own KeyboardInterrupt in its job."""
    from cevnsfit import process

    process.install_signal_handlers()  # as the command line does: the workers must not inherit these
    try:
        with ForkedWorkers(1) as pool:
            sigint, sigterm, blocked = pool.result(pool.executor.submit(signal_dispositions))
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert sigint == signal.SIG_DFL and sigterm == signal.SIG_DFL
    assert not {signal.SIGINT, signal.SIGTERM} & set(blocked)
    assert not {signal.SIGINT, signal.SIGTERM} & set(signal.pthread_sigmask(signal.SIG_BLOCK, []))  # restored here


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_parent(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from cevnsfit.process import ForkedWorkers
        pid_file = Path({str(tmp_path / "worker")!r})
        def job():
            pid_file.write_text(str(os.getpid()))
            time.sleep(60)
        pool = ForkedWorkers(1).__enter__()
        pool.executor.submit(job)
        while not pid_file.exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    res = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert res.returncode == -signal.SIGKILL
    worker = int((tmp_path / "worker").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not alive(worker):
            return
        time.sleep(0.05)
    pytest.fail("the worker outlived its killed parent")


def alive(pid: int) -> bool:
    """Running (a zombie is dead: an orphan's exit status waits for a PID 1 that may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def test_no_process_to_fork_means_no_executor(monkeypatch):
    def refuse():
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    with ForkedWorkers(2) as pool:
        assert pool.executor is None  # the caller runs its jobs in place


# ---- reproduce's figure jobs on the workers ------------------------------------------------------------------------
def figures_with(monkeypatch, draw):
    """reproduce.figures with ``draw`` replaced by ``draw(state, job)``, and a figure state."""
    from cevnsfit.reproduce import figures

    monkeypatch.setattr(figures, "draw", draw)
    state = figures.FigureState(Path("."), None, Path("."), (), "2dof", {})
    return figures, state


def test_a_failed_figure_is_raised_at_the_next_submit(monkeypatch, tmp_path):
    def draw(state, job):
        if job.name == "first":
            raise DataError("the first figure failed")
        (tmp_path / job.name).write_text("drawn")

    figures, state = figures_with(monkeypatch, draw)
    start = time.monotonic()
    with pytest.raises(DataError, match="first figure failed"):
        with figures.ForkedWorkers(1, initializer=figures._init_worker, initargs=(state,)) as pool:
            figs = figures.Figures(state, pool)
            figs.submit(figures.Job("spectra", "first"))
            while time.monotonic() < start + 60:  # each submit raises the failure of a job that has finished
                figs.submit(figures.Job("spectra", "later"))
                time.sleep(0.05)
    assert time.monotonic() - start < 30  # raised by a submit, not at the end


def test_join_raises_a_failed_figure(monkeypatch):
    def draw(state, job):
        raise OSError(errno.ENOSPC, "No space left on device", f"{job.name}.png")

    figures, state = figures_with(monkeypatch, draw)
    with pytest.raises(OSError, match="No space left") as info:
        with figures.ForkedWorkers(2, initializer=figures._init_worker, initargs=(state,)) as pool:
            figs = figures.Figures(state, pool)
            figs.submit(figures.Job("spectra", "csi"))
            figs.join()
    assert info.value.errno == errno.ENOSPC and info.value.filename == "csi.png"


def test_figures_drawn_in_place_without_workers_and_listed_in_report_order(monkeypatch, tmp_path):
    drawn = []
    figures, state = figures_with(monkeypatch, lambda state, job: drawn.append((job.kind, job.name, os.getpid())))
    monkeypatch.setattr(figures, "comparison_part", lambda: "coarse")
    with figures.ForkedWorkers(0) as pool:
        figs = figures.Figures(state, pool)
        figs.submit(figures.Job("spectra", "csi"))
        figs.plane("B-L", "key")
        figs.summaries({"B-L": "key"}, [type("M", (), {"kind": "vector"})()])
        figs.join()
    assert [(k, n) for k, n, _ in drawn] == [("spectra", "csi"), ("plane", "B-L"), ("summary", ""), ("comparison", "")]
    assert {pid for *_, pid in drawn} == {os.getpid()}
    assert [Path(p).name for p in figs.paths()] == [
        "plane_B-L.png", "plane_B-L.pdf", "summary_csi+lar.png", "summary_csi+lar.pdf", "coherent_vs_xenonnt.png",
        "coherent_vs_xenonnt.pdf", "spectra_csi.png", "spectra_csi.pdf"]
