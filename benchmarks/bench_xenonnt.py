"""Benchmark: XENONnT release loading (cold and cached), kernel build, and the profiled chi^2 evaluation.

Targets (issue 11): cold load of the release (6 900 HDF5 files) <= 10 s, cached <= 0.5 s, profiled chi^2 <= 1 ms.
Run: python benchmarks/bench_xenonnt.py   (uses a fresh temporary cache folder for the cold load)
"""

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import best_of, describe  # noqa: E402



def main() -> None:
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CEVNSFIT_CACHE"] = cache
        from cevnsfit.experiments.xenonnt import XenonNT, sm_summary

        t0 = time.perf_counter()
        xe = XenonNT()
        print(f"release load cold: {time.perf_counter() - t0:.3f} s (target <= 10 s)")
        t0 = time.perf_counter()
        xe = XenonNT()
        print(f"release load cached: {time.perf_counter() - t0:.3f} s (target <= 0.5 s)")
        t0 = time.perf_counter()
        s = xe.sm_signal()
        print(f"kernel build: {time.perf_counter() - t0:.3f} s")
        cost = xe.cost()
        print(f"profiled chi^2 (SR0+SR1+SR2, 6 nuisances): {1e3 * best_of(lambda: cost(s), number=100):.3f} ms (target <= 1 ms)")
        t0 = time.perf_counter()
        sm_summary(xe)
        print(f"sm summary (fit, interval, significance): {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
