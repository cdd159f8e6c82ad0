"""Benchmark: peak memory (resident set size) of the largest scan the CLI accepts.

`cevnsfit scan` refuses more than 1e4 masses or 4e6 (mass, coupling) points (cli.MAX_SCAN_MASSES / MAX_SCAN_POINTS).
This runs that largest scan (1e4 masses x 400 couplings, CsI+LAr, every nuisance profiled) in a fresh process and
reports its wall time and peak RSS (getrusage of the child; Linux reports kB).  Target: peak RSS <= 1 GB.

Run: python benchmarks/bench_memory.py [--model B-L] [--n-mass 10000] [--n-coupling 400] [--out DIR]
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from cevnsfit.cli import MAX_SCAN_MASSES, MAX_SCAN_POINTS  # noqa: E402

LIMIT_BYTES = 1 << 30


def peak_rss_of(cmd: list[str]) -> tuple[int, float, int]:
    """(exit code, wall time [s], peak RSS [bytes]) of ``cmd`` run to completion in a child process."""
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - t0
    return rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="B-L")
    ap.add_argument("--n-mass", type=int, default=MAX_SCAN_MASSES)
    ap.add_argument("--n-coupling", type=int, default=MAX_SCAN_POINTS // MAX_SCAN_MASSES)
    ap.add_argument("--out", default=None, help="folder for the .nc file (default: a temporary folder)")
    args = ap.parse_args()
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp) / "largest_scan.nc"
        cmd = [sys.executable, "-m", "cevnsfit.cli", "scan", "--model", args.model, "--dataset", "csi+lar",
               "--n-mass", str(args.n_mass), "--n-coupling", str(args.n_coupling), "--out", str(out)]
        rc, wall, rss = peak_rss_of(cmd)
        size = out.stat().st_size if out.exists() else 0
    print(f"scan {args.n_mass} masses x {args.n_coupling} couplings ({args.n_mass * args.n_coupling:.1e} points), "
          f"{args.model}, CsI+LAr: exit {rc}, {wall:.0f} s, peak RSS {rss / 2**20:.0f} MiB "
          f"(bound {LIMIT_BYTES / 2**20:.0f} MiB: {'ok' if rss <= LIMIT_BYTES else 'EXCEEDED'}), file {size / 2**20:.0f} MiB")
    sys.exit(0 if rc == 0 and rss <= LIMIT_BYTES else 1)


if __name__ == "__main__":
    main()
