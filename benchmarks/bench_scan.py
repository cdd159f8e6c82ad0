"""Benchmark: a 200 x 200 profiled (M, g) grid for one model on CsI+LAr, fast template path vs direct path,
and `cevnsfit limits` for all models and data sets (cold, in a fresh process).

Targets (issue "light mediators", 2-core machine): grid <= 2 s; limits (all) <= 60 s cold.
Run: python benchmarks/bench_scan.py [--model B-L] [--direct-rows N]
The direct path (Q^2 rebuilt on the recoil grids and folded with the kernel at every point, then profiled) is
timed on the first N mass rows of the same grid (default 4) and scaled to the full grid; both paths are checked
to agree on those rows.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from cevnsfit.mediators import MediatorAnalysis  # noqa: E402
from cevnsfit.physics.models import get_model  # noqa: E402
from cevnsfit.templates import direct_counts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="B-L")
    ap.add_argument("--direct-rows", type=int, default=4)
    ap.add_argument("--skip-limits", action="store_true")
    args = ap.parse_args()
    print(f"machine: {describe()}")
    an = MediatorAnalysis()
    masses = np.geomspace(1e-2, 1e4, 200)
    couplings = np.geomspace(1e-7, 1.0, 200)
    model = get_model(args.model)
    for n in ("csi", "lar"):  # data, costs and the (lazy) response kernels are built outside the timing
        an.cost(n)             # (bench_chi2.py times the cold kernel build)
        an.templates(model, masses[:2], n)
    t0 = time.perf_counter()
    grid = an.grid(model, masses, couplings, ("csi", "lar"))
    t_fast = time.perf_counter() - t0
    print(f"template path, 200 x 200 (M, g) grid, CsI+LAr, {model.name}, one process: {t_fast:.2f} s "
          f"(target <= 2 s on 2 cores)")
    fast = grid.dataset_chi2("csi+lar")[0]

    rows = args.direct_rows
    t0 = time.perf_counter()
    direct = np.empty((rows, couplings.size))
    for i in range(rows):
        for j, g in enumerate(couplings):
            direct[i, j] = sum(an.cost(n)(direct_counts(an.experiment(n), model, masses[i], g)) for n in ("csi", "lar"))
    t_direct_rows = time.perf_counter() - t0
    t_direct = t_direct_rows * masses.size / rows
    ok = np.allclose(direct, fast[:rows], rtol=1e-8, atol=1e-8)
    print(f"direct path: {rows} rows in {t_direct_rows:.2f} s -> {t_direct:.1f} s for the full grid (agrees with the "
          f"template path to 1e-8: {ok})")
    print(f"ratio direct / template (same run): {t_direct / t_fast:.0f}x")

    if not args.skip_limits:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "cevnsfit.cli", "limits", "--json"], capture_output=True, text=True)
        t_lim = time.perf_counter() - t0
        status = "ok" if res.returncode == 0 else f"failed: {res.stderr.strip()}"
        print(f"`cevnsfit limits --json`, all models and data sets, cold process: {t_lim:.1f} s ({status}; target <= 60 s)")


if __name__ == "__main__":
    main()
