"""cevnsfit.forkpool: jobs in forked children -- results, errors carried back, limits, and clean-up on faults."""

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
from cevnsfit.forkpool import ForkPool, WorkerLost

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="ForkPool runs jobs in place without os.fork")


def write(path: Path, text: str):
    def job():
        path.write_text(f"{text} {os.getpid()}")
    return job


def test_jobs_run_in_children_and_join_waits(tmp_path):
    with ForkPool(2) as pool:
        for i in range(5):
            pool.submit(write(tmp_path / f"{i}.txt", str(i)))
        pool.join()
    for i in range(5):
        text, pid = (tmp_path / f"{i}.txt").read_text().split()
        assert text == str(i) and int(pid) != os.getpid()


def test_no_workers_runs_in_this_process(tmp_path):
    with ForkPool(0) as pool:
        pool.submit(write(tmp_path / "a.txt", "a"))  # done when submit returns
        assert (tmp_path / "a.txt").read_text() == f"a {os.getpid()}"
        pool.join()


def test_never_more_children_than_workers(tmp_path):
    def job(i):
        def run():
            start = time.monotonic()
            time.sleep(0.5)
            (tmp_path / f"{i}").write_text(f"{start} {time.monotonic()}")
        return run

    with ForkPool(2) as pool:
        for i in range(6):
            pool.submit(job(i))
        pool.join()
    spans = [tuple(map(float, (tmp_path / f"{i}").read_text().split())) for i in range(6)]
    most = max(sum(a <= t < b for a, b in spans) for t, _ in spans)
    assert most == 2  # two at a time, never three


def in_a_child(job):
    """Run ``job`` in a pool's child and return what the parent raised (None if nothing)."""
    try:
        with ForkPool(1) as pool:
            pool.submit(job)
            pool.join()
    except BaseException as exc:  # noqa: BLE001 - returned for the test to check
        return exc
    return None


def raises(exc):
    def job():
        raise exc
    return job


def test_oserror_in_a_child_keeps_errno_and_filename(tmp_path):
    err = in_a_child(raises(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "f.png"))))
    assert type(err) is OSError and err.errno == errno.ENOSPC and err.filename == str(tmp_path / "f.png")


def test_package_error_in_a_child_keeps_its_class():
    err = in_a_child(raises(DataError("bad file, line 3")))
    assert type(err) is DataError and str(err) == "bad file, line 3"


def test_unpicklable_error_is_reported_by_its_text():
    class Local(Exception):  # a class defined in a function cannot be pickled
        pass

    err = in_a_child(raises(Local("from a local class")))
    assert type(err) is RuntimeError and "Local: from a local class" in str(err)


def test_child_killed_by_a_signal_is_worker_lost():
    assert issubclass(WorkerLost, OSError)  # the environment's failure: the command line exits 1, not 2
    err = in_a_child(lambda: os.kill(os.getpid(), signal.SIGKILL))
    assert type(err) is WorkerLost and "SIGKILL" in str(err)


def test_a_failure_is_raised_at_the_next_submit(tmp_path):
    def fails():
        raise DataError("first job")

    with pytest.raises(DataError):
        with ForkPool(1) as pool:
            pool.submit(fails)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # each submit collects the children that have finished
                pool.submit(write(tmp_path / "later.txt", "later"))
                time.sleep(0.05)
    assert not (tmp_path / "later.txt").exists()  # queued behind the failure, never started


def test_leaving_by_an_exception_kills_the_children(tmp_path):
    pid_file = tmp_path / "pid"

    def sleeper():
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)

    start = time.monotonic()
    with pytest.raises(KeyError):
        with ForkPool(1) as pool:
            pool.submit(sleeper)
            while not pid_file.exists():
                time.sleep(0.01)
            raise KeyError("the parent fails")
    assert time.monotonic() - start < 10
    with pytest.raises(ProcessLookupError):  # killed and reaped: not even a zombie is left
        os.kill(int(pid_file.read_text()), 0)


def test_descriptors_to_close_are_closed_in_the_child(tmp_path):
    with open(tmp_path / "lock", "w") as held:
        def job():
            try:
                os.fstat(held.fileno())
            except OSError:
                (tmp_path / "closed").write_text("yes")

        with ForkPool(1, close_fds=(held.fileno(),)) as pool:
            pool.submit(job)
            pool.join()
        os.fstat(held.fileno())  # still open here
    assert (tmp_path / "closed").read_text() == "yes"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_killed_parent(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from cevnsfit.forkpool import ForkPool
        pid_file = Path({str(tmp_path / "child")!r})
        def job():
            pid_file.write_text(str(os.getpid()))
            time.sleep(60)
        pool = ForkPool(1)
        pool.submit(job)
        while not pid_file.exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    res = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert res.returncode == -signal.SIGKILL
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not alive(child):
            return
        time.sleep(0.05)
    pytest.fail("the child outlived its killed parent")


def alive(pid: int) -> bool:
    """Running (a zombie is dead: an orphan's exit status waits for a PID 1 that may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def test_children_do_not_share_file_offsets(tmp_path):
    """A file the parent has open for reading: one child positions itself and waits while a sibling reads elsewhere
    through the same descriptor; with a shared offset (a plain fork) the first would then read the sibling's
    bytes -- matplotlib's font files are read this way."""
    data = bytes(range(256)) * 64
    (tmp_path / "font.bin").write_bytes(data)
    fd = os.open(tmp_path / "font.bin", os.O_RDONLY)

    def wait_for(name):
        deadline = time.monotonic() + 20
        while not (tmp_path / name).exists():
            assert time.monotonic() < deadline, f"{name} never came"
            time.sleep(0.01)

    def first():
        os.lseek(fd, 100, os.SEEK_SET)
        (tmp_path / "positioned").touch()
        wait_for("sibling-read")
        got = os.read(fd, 10)
        if got != data[100:110]:
            raise AssertionError(f"read {got!r} at offset 100")

    def sibling():
        wait_for("positioned")
        os.lseek(fd, 5000, os.SEEK_SET)
        os.read(fd, 10)
        (tmp_path / "sibling-read").touch()

    try:
        with ForkPool(2) as pool:
            pool.submit(first)
            pool.submit(sibling)
            pool.join()
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # and the parent's offset was not moved either
    finally:
        os.close(fd)


def test_leaving_normally_waits_for_the_jobs(tmp_path):
    with ForkPool(2) as pool:
        pool.submit(lambda: (time.sleep(0.3), (tmp_path / "done").write_text("yes")))
    assert (tmp_path / "done").read_text() == "yes"  # joined at the end of the block


def test_no_process_to_fork_runs_the_job_here(tmp_path, monkeypatch):
    def refuse():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    with ForkPool(2) as pool:
        pool.submit(write(tmp_path / "a.txt", "a"))
    assert (tmp_path / "a.txt").read_text() == f"a {os.getpid()}"


# ---- warm-up thread and order ----------------------------------------------------------------------------------
def test_warm_up_job_runs_in_a_thread_here_and_no_child_is_forked_meanwhile(tmp_path):
    """The first job runs in a thread of this process; a job submitted while it runs is forked only after it ended
    (a fork would copy only the forking thread, with the drawing's state half-way)."""
    import threading

    go = threading.Event()

    def warm():
        go.wait(5)
        (tmp_path / "warm").write_text(f"{os.getpid()} {threading.current_thread().name} {time.monotonic()}")

    def later():
        (tmp_path / "later").write_text(f"{os.getpid()} {time.monotonic()}")

    with ForkPool(2, warm_up=True) as pool:
        pool.submit(warm)  # returns at once: the job waits for ``go``
        pool.submit(later)
        time.sleep(0.3)
        assert not (tmp_path / "later").exists()  # held while the warm-up runs
        go.set()
        pool.join()
    pid, thread, ended = (tmp_path / "warm").read_text().split()
    assert int(pid) == os.getpid() and thread == "cevnsfit-warm-up"
    child, started = (tmp_path / "later").read_text().split()
    assert int(child) != os.getpid() and float(started) >= float(ended)


def test_warm_up_failure_is_raised_at_join():
    with pytest.raises(DataError, match="warm-up failed"):
        with ForkPool(1, warm_up=True) as pool:
            pool.submit(raises(DataError("warm-up failed")))
            pool.join()


def test_warm_up_without_workers_runs_in_place(tmp_path):
    with ForkPool(0, warm_up=True) as pool:
        pool.submit(write(tmp_path / "a.txt", "a"))
        assert (tmp_path / "a.txt").read_text() == f"a {os.getpid()}"  # done when submit returns


def test_leaving_by_an_exception_waits_for_the_warm_up_thread(tmp_path):
    """A thread cannot be killed: leaving the pool by an exception waits until its job has ended (the caller then
    removes what it wrote)."""
    def slow():
        time.sleep(0.5)
        (tmp_path / "done").write_text("x")

    with pytest.raises(KeyboardInterrupt):
        with ForkPool(1, warm_up=True) as pool:
            pool.submit(slow)
            raise KeyboardInterrupt
    assert (tmp_path / "done").exists()


def gated(gate: Path, job):
    """``job`` run once the file ``gate`` exists (the test creates it when it is ready)."""
    def run():
        while not gate.exists():
            time.sleep(0.005)
        job()
    return run


def test_first_goes_ahead_of_the_waiting_jobs(tmp_path):
    order, gate = tmp_path / "order", tmp_path / "gate"

    def job(name):
        def run():
            with open(order, "a") as fh:
                fh.write(name + "\n")
        return run

    with ForkPool(1) as pool:
        pool.submit(gated(gate, job("a")))  # holds the one worker until the gate opens; the next three wait
        pool.submit(job("b"))
        pool.submit(job("c"))
        pool.submit(job("d"), first=True)
        gate.touch()
        pool.join()
    assert order.read_text().split() == ["a", "d", "b", "c"]


def test_poll_starts_a_waiting_job_when_a_worker_is_free(tmp_path):
    gate = tmp_path / "gate"
    with ForkPool(1) as pool:
        pool.submit(gated(gate, write(tmp_path / "a.txt", "a")))
        pool.submit(write(tmp_path / "b.txt", "b"))  # waits: the one worker is busy until the gate opens
        time.sleep(0.2)
        assert not (tmp_path / "b.txt").exists()
        gate.touch()
        deadline = time.monotonic() + 20
        while not (tmp_path / "b.txt").exists():  # b starts at a poll after a's child has ended -- before join
            assert time.monotonic() < deadline, "poll did not start the waiting job"
            pool.poll()
            time.sleep(0.01)
        pool.join()


def test_join_returns_when_no_process_can_be_forked(tmp_path, monkeypatch):
    """The jobs waiting behind the warm-up run here when fork fails; join then has no child to wait for (it used to
    wait on an empty poll forever)."""
    def no_fork():
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    with ForkPool(2, warm_up=True) as pool:
        monkeypatch.setattr(os, "fork", no_fork)
        pool.submit(write(tmp_path / "a.txt", "a"))  # the warm-up thread
        pool.submit(write(tmp_path / "b.txt", "b"))
        pool.join()
    assert (tmp_path / "b.txt").read_text() == f"b {os.getpid()}"


def test_warm_up_runs_here_when_no_thread_can_be_started(tmp_path, monkeypatch):
    import threading

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    with ForkPool(1, warm_up=True) as pool:
        pool.submit(write(tmp_path / "a.txt", "a"))
        assert (tmp_path / "a.txt").read_text() == f"a {os.getpid()}"  # done when submit returns
        pool.join()
