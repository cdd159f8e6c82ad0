"""Benchmark: XENONnT release loading (cold and cached), kernel build, the profiled chi^2, and the mediator grids.

Targets (issue 11): cold load of the release (6 900 HDF5 files) <= 10 s, cached <= 0.5 s, profiled chi^2 <= 1 ms
per point in batched (M, g) grids; `cevnsfit limits` for all models on all data sets <= 60 s cold.
Run: python benchmarks/bench_xenonnt.py [--skip-limits]   (a fresh temporary cache folder for the cold load)

Before/after in one run: "before" is the profile as it was before the batching work -- every one of the 243 bins
iterated (``merge_empty=False``) from the default start; "after" iterates on the 53 non-empty bins + their
complement's sum (exact), and a mediator grid warm-starts each mass row from the previous one.  (Two more changes
of the same commit are in both columns: the laddered line search and the projected Newton step at the tly/tqy
grid edge, which also fixed a premature stop there.)  Every path is checked to agree with the per-point one.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402


def _per_point_ms(fn, n: int) -> float:
    t0 = time.process_time()
    fn()
    return 1e3 * (time.process_time() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-limits", action="store_true")
    args = ap.parse_args()
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f}; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} (the console script sets 1); per-point times are CPU times")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CEVNSFIT_CACHE"] = cache
        from cevnsfit.experiments.xenonnt import GRID, XenonNT, sm_summary
        from cevnsfit.mediators import MediatorAnalysis, default_couplings, default_masses
        from cevnsfit.stats.morphing import MorphedPoissonChi2

        t0 = time.perf_counter()
        xe = XenonNT()
        print(f"release load cold: {time.perf_counter() - t0:.3f} s (target <= 10 s)")
        t0 = time.perf_counter()
        xe = XenonNT()
        print(f"release load cached: {time.perf_counter() - t0:.3f} s (target <= 0.5 s)")
        t0 = time.perf_counter()
        s = xe.sm_signal()
        print(f"kernel build: {time.perf_counter() - t0:.3f} s")
        after = xe.cost()
        before = MorphedPoissonChi2(xe.name, xe.observed, xe.backgrounds, xe.sigmas, (GRID, GRID), ("tly", "tqy"),
                                    merge_empty=False)
        single = {"before": [], "after": []}
        for _ in range(5):  # interleaved, best of 5 x 50 calls (CPU time: the machine is shared)
            for label, cost in (("before", before), ("after", after)):
                single[label].append(_per_point_ms(lambda: [cost(s) for _ in range(50)], 50))
        print("profiled chi^2, one point per call (SR0+SR1+SR2, 6 nuisances): "
              + ", ".join(f"{k} {min(v):.3f} ms" for k, v in single.items()))
        t0 = time.perf_counter()
        sm_summary(xe)
        print(f"sm summary (fit, interval, significance): {time.perf_counter() - t0:.3f} s")

        an = MediatorAnalysis()
        an._experiments["xenonnt"], an._costs["xenonnt"] = xe, after
        masses, g = default_masses(), np.concatenate([[0.0], default_couplings()])
        rows = slice(40, 61)  # 21 mass rows x 322 couplings of the default plane (1 MeV to 10 MeV...)
        tpl = an.templates("L_e-L_tau", masses[rows], "xenonnt")
        batch = [tpl.counts(g, i) for i in range(masses[rows].size)]
        n = len(batch) * g.size
        ref = np.array([after(b) for b in batch])
        per_point = _per_point_ms(lambda: [before(b[j]) for b in batch[:2] for j in range(g.size)], 2 * g.size)
        cold_before = _per_point_ms(lambda: [before(b) for b in batch], n)
        cold_after = _per_point_ms(lambda: [after(b) for b in batch], n)
        reduced = tpl.mapped(after.reduce)
        out, start = np.empty_like(ref), None

        def warm():
            nonlocal start
            for i in range(len(batch)):
                out[i], start = after.profile_warm(reduced.counts(g, i), start)

        warm_after = _per_point_ms(warm, n)
        dev_before = max(abs(np.array([before(b) for b in batch]) - ref).max(), 0.0)
        print(f"L_e-L_tau, {len(batch)} x {g.size} (M, g) points, ms of CPU per point:")
        print(f"  before: one point per call {per_point:.3f}; batched per mass row {cold_before:.3f}")
        print(f"  after:  batched per mass row {cold_after:.3f}; + reduced templates and warm start {warm_after:.3f}"
              f" (target <= 1 ms)")
        print(f"  max |chi^2 difference|: before vs after {dev_before:.2e}, warm vs cold {abs(out - ref).max():.2e}")

        t0 = time.process_time()
        an.analyse("B-L", experiments=("xenonnt",))
        print(f"analyse B-L on XENONnT (121 x 322 plane + M = 0 and M = inf lines, templates included): "
              f"{time.process_time() - t0:.2f} s CPU")
        if not args.skip_limits:
            t0 = time.perf_counter()
            r0 = os.times()
            subprocess.run([sys.executable, "-m", "cevnsfit.cli", "limits", "--dataset", "all", "--json"], check=True,
                           stdout=subprocess.DEVNULL)
            r1 = os.times()
            print(f"cevnsfit limits --dataset all (11 models x 5 data sets, fresh process): wall "
                  f"{time.perf_counter() - t0:.1f} s, CPU {r1.children_user - r0.children_user + r1.children_system - r0.children_system:.1f} s (target <= 60 s)")


if __name__ == "__main__":
    main()
