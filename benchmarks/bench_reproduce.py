"""Benchmark: `cevnsfit reproduce` cold (fresh process, empty output folder) and warm (cached grids), at a base
revision and at this tree, alternated in one run.

Target (issue "reproduce speed"): <= 15 s cold on a 2-core machine.  Last measured: docs/validation/speed.md, "`reproduce`
on the standard library's process pool" (cold 12.2 / 12.4 s against the ForkPool base's 11.7 / 11.5 s, 2 shared cores).
Run: python benchmarks/bench_reproduce.py [--repeat N] [--base REV | --no-base]   (REV: default where HEAD left main)

Each run is a fresh process of the command line (after one warm-up per tree that compiles and caches the numba
kernels).  Besides the wall time it prints the CPU time of the process and of its figure workers (user + system)
and the load average: on a machine shared with other jobs the wall time follows the load, the CPU time much less.
The warm run recomputes everything but the chi^2 grids (tables, verdicts, scans, figures), so it measures the
drawing and the orchestration.
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
from trees import CONSOLE, REPO, base_and_this, env  # noqa: E402


def run(src: Path, out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one `cevnsfit reproduce --out out` in a fresh process (its workers' CPU included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([*CONSOLE, "reproduce", "--out", str(out)], capture_output=True,
                         text=True, env=env(src), cwd=REPO)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"reproduce failed with {src}: {res.stderr.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="cold + warm pairs to run per tree")
    parser.add_argument("--base", default=None, help="git revision to compare with (default: where HEAD left main)")
    parser.add_argument("--no-base", action="store_true", help="this tree only")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    with base_and_this(args.base) as trees:
        if args.no_base:
            trees = dict(list(trees.items())[1:])
        with tempfile.TemporaryDirectory() as tmp:
            for i, src in enumerate(trees.values()):  # warm-up: numba compiles and caches its kernels per tree
                run(src, Path(tmp) / f"warm-up-{i}")
        for _ in range(args.repeat):
            for label, src in trees.items():
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "out"
                    load_before = load()
                    cold = run(src, out)
                    warm = run(src, out)
                print(f"{label}: cold {cold[0]:.1f} s wall / {cold[1]:.1f} s CPU (target <= 15 s), warm (cached "
                      f"grids) {warm[0]:.1f} s wall / {warm[1]:.1f} s CPU; load average {load_before} -> {load()}")


if __name__ == "__main__":
    main()
