"""Benchmark: `cevnsfit reproduce` cold (fresh process, empty output folder) and warm (cached grids).

Target (issue "reproduce speed"): <= 15 s cold on a 2-core machine.
Run: python benchmarks/bench_reproduce.py [--repeat N]

Each run is a fresh process of the command line.  Besides the wall time it prints the CPU time of the process
(user + system) and the load average: on a machine shared with other jobs the wall time follows the load, the CPU
time much less.  The warm run recomputes everything but the chi^2 grids (tables, verdicts, scans, figures), so it
measures the drawing and the orchestration.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402


def run(out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one `cevnsfit reproduce --out out` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "cevnsfit.cli", "reproduce", "--out", str(out)], capture_output=True,
                         text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"reproduce failed: {res.stderr.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="cold + warm pairs to run")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            load_before = load()
            cold = run(out)
            warm = run(out)
        print(f"cevnsfit reproduce: cold {cold[0]:.1f} s wall / {cold[1]:.1f} s CPU (target <= 15 s), warm (cached "
              f"grids) {warm[0]:.1f} s wall / {warm[1]:.1f} s CPU; load average {load_before} -> {load()}")


if __name__ == "__main__":
    main()
