"""Benchmark: `cevnsfit reproduce` cold (fresh process, empty output folder) and warm (cached grids).

Target (issue "g-2, other experiments, figures"): <= 180 s cold on a 2-core machine.
Run: python benchmarks/bench_reproduce.py
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402


def run(out: Path) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "cevnsfit.cli", "reproduce", "--out", str(out)], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"reproduce failed: {res.stderr.strip()}")
    return time.perf_counter() - t0


def main() -> None:
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cold = run(out)
        warm = run(out)
    print(f"cevnsfit reproduce: cold {cold:.1f} s (target <= 180 s), warm (cached grids) {warm:.1f} s")


if __name__ == "__main__":
    main()
