"""Benchmark: the compiled profiles (numba, stats/compiled.py) against the numpy paths, in one run.

1. Per profiled point, best of ``--repeat``: a plane row (B-L at M = 0, the 322 couplings of ``cevnsfit limits``,
   0 .. 10: far-excluded points need more Newton steps) and a batch near the limit, for each cost (CsI Poisson,
   LAr Gaussian, XENONnT morphed Poisson).
2. ``cevnsfit limits --json`` as a user runs it (a fresh process each), per data set, with CEVNSFIT_COMPILED=0 and 1;
   and the first compiled run on a machine (an empty numba cache: the kernels are compiled, then cached).
Run: python benchmarks/bench_compiled.py [--repeat R] [--datasets csi+lar,all]
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

from cevnsfit.mediators import MediatorAnalysis, default_couplings  # noqa: E402
from cevnsfit.stats import compiled  # noqa: E402


def per_point(cost, signals, repeat: int) -> float:
    """Shortest time per profiled point [us] of ``cost.profile(signals)``."""
    cost.profile(signals)  # compile / warm caches
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        cost.profile(signals)
        best = min(best, time.perf_counter() - t0)
    return best / signals.shape[0] * 1e6


def cli(dataset: str, compiled_on: bool, env_extra=None) -> float:
    env = dict(os.environ, CEVNSFIT_COMPILED="1" if compiled_on else "0", **(env_extra or {}))
    t0 = time.perf_counter()
    script = Path(sys.executable).with_name("cevnsfit")  # the console script beside this interpreter
    subprocess.run([str(script), "limits", "--dataset", dataset, "--json"], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--datasets", default="csi+lar,all")
    args = ap.parse_args()
    if not compiled.available():
        sys.exit("error: numba is not installed (pip install '.[fast]')")
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f}")
    an = MediatorAnalysis()
    g = np.concatenate([[0.0], default_couplings()])
    for name in ("csi", "lar", "xenonnt"):
        cost = an.cost(name)
        tpl = an.templates("B-L", [0.0], name).mapped(cost.reduce)
        row = tpl.counts(g, 0)
        near = row[100:164]  # g = 3e-5 .. 3e-4: around the limits
        out = {}
        for on in (False, True):
            cost.compiled = on
            out[on] = (per_point(cost, row, args.repeat), per_point(cost, near, args.repeat))
        print(f"{name:8s} us per profiled point, plane row ({row.shape[0]}) / near the limit ({near.shape[0]}): "
              f"numpy {out[False][0]:.1f} / {out[False][1]:.1f}, compiled {out[True][0]:.1f} / {out[True][1]:.1f}, "
              f"speed-up {out[False][0] / out[True][0]:.1f} / {out[False][1] / out[True][1]:.1f}")
    for d in args.datasets.split(","):
        t_np, t_c = cli(d, False), cli(d, True)
        print(f"cevnsfit limits --dataset {d}: numpy {t_np:.1f} s, compiled {t_c:.1f} s (speed-up {t_np / t_c:.2f})")
    with tempfile.TemporaryDirectory() as cache:  # an empty numba cache: the first run on a machine
        t_first = cli(args.datasets.split(",")[0], True, {"NUMBA_CACHE_DIR": cache})
    print(f"first compiled run on a machine (kernels compiled, then cached): {t_first:.1f} s")


if __name__ == "__main__":
    main()
