"""Benchmark: parameter-of-interest fits (issue 9 targets, this machine): a 1-D profile of every registered
parameter <= 1 s, a 100 x 100 2-D profiled contour <= 5 s, on CsI+LAr (each point profiles every detector nuisance).

The experiments' data, costs and response kernels are built once outside the timing (bench_chi2.py times the cold
kernel build); each timed run starts from an empty template cache, so the per-radius templates are included.
"1-D profile" = PoiFit.run(): the 241-point grid, the bounded minimisation and the Brent-refined crossings of the
three levels (automatic widening included).  "2-D" = PoiFit.run(100): 10^4 grid points, the Nelder-Mead best fit
and the grid profiles.
Run: python benchmarks/bench_fit.py [--dataset csi+lar]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from cevnsfit.experiments import load_experiment  # noqa: E402
from cevnsfit.poi import poi_names  # noqa: E402
from cevnsfit.poifit import PoiFit  # noqa: E402

PLANES = (("eps.u.ee", "eps.d.ee"), ("mu_nu.e", "mu_nu.mu"), ("r_n.CsI", "sin2_theta_w"), ("r2_nu.ee", "r2_nu.mumu"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="csi+lar")
    args = ap.parse_args()
    print(f"machine: {describe()}")
    exps = {n: load_experiment(n) for n in ("csi", "lar")}
    for e in exps.values():
        e.kernel  # noqa: B018 - build outside the timing
    worst = 0.0
    for name in poi_names():
        ds = "csi" if name in ("r_n.Cs", "r_n.I", "r_n.CsI") else ("lar" if name == "r_n.Ar" else args.dataset)
        f = PoiFit([name], ds, experiments=exps)
        t0 = time.perf_counter()
        o = f.run()
        dt = time.perf_counter() - t0
        worst = max(worst, dt)
        print(f"1-D {name:14s} [{ds:7s}] {dt:6.2f} s   best {o.best_fit[name]:.4g}, 2 sigma {o.intervals[name]['2sigma']}")
    print(f"slowest 1-D profile: {worst:.2f} s (target <= 1 s)")
    worst = 0.0
    for plane in PLANES:
        ds = "csi" if "r_n.CsI" in plane else args.dataset
        f = PoiFit(list(plane), ds, experiments=exps)
        t0 = time.perf_counter()
        f.run(100)
        dt = time.perf_counter() - t0
        worst = max(worst, dt)
        print(f"2-D 100 x 100 {plane} [{ds}] {dt:.2f} s")
    print(f"slowest 2-D contour: {worst:.2f} s (target <= 5 s)")


if __name__ == "__main__":
    main()
