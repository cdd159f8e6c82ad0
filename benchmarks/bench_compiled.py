"""Benchmark: the compiled profiles (numba, stats/kernels) against the numpy references of tests/reference_*.py (the
former numpy profiles), in one run.

1. Per profiled point, best of ``--repeat``: a plane row (B-L at M = 0, the 322 couplings of ``cevnsfit limits``,
   0 .. 10: far-excluded points need more Newton steps) and a batch near the limit, for each cost (CsI Poisson,
   LAr Gaussian, XENONnT morphed Poisson).
2. ``cevnsfit limits --json`` as a user runs it (a fresh process each, kernels cached), per data set; and the
   first run on a machine (an empty numba cache: ``stats.compiled.load`` compiles the kernels, then caches them).
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
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))  # the numpy references
from machine import describe  # noqa: E402
from reference_costs import reference  # noqa: E402

from cevnsfit.mediators import MediatorAnalysis, default_couplings  # noqa: E402


def per_point(profile, signals, repeat: int) -> float:
    """Shortest time per profiled point [us] of ``profile(signals)``."""
    profile(signals)  # load / warm caches
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        profile(signals)
        best = min(best, time.perf_counter() - t0)
    return best / signals.shape[0] * 1e6


def cli(dataset: str, env_extra=None) -> float:
    env = dict(os.environ, **(env_extra or {}))
    t0 = time.perf_counter()
    script = Path(sys.executable).with_name("cevnsfit")  # the console script beside this interpreter
    subprocess.run([str(script), "limits", "--dataset", dataset, "--json"], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def first_load(cache: str) -> float:
    """Seconds of ``stats.compiled.load()`` in a fresh process with an empty numba cache (compiles every kernel)."""
    code = "import time; t = time.perf_counter(); from cevnsfit.stats import compiled; compiled.load(); print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, NUMBA_CACHE_DIR=cache), check=True,
                         capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--datasets", default="csi+lar,all")
    args = ap.parse_args()
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f}")
    an = MediatorAnalysis()
    g = np.concatenate([[0.0], default_couplings()])
    for name in ("csi", "lar", "xenonnt"):
        cost = an.cost(name)
        ref = reference(cost)
        tpl = an.templates("B-L", [0.0], name).mapped(cost.reduce)
        row = tpl.counts(g, 0)
        near = row[100:164]  # g = 3e-5 .. 3e-4: around the limits
        out = {label: (per_point(fn, row, args.repeat), per_point(fn, near, args.repeat))
               for label, fn in (("numpy", ref.profile), ("compiled", cost.profile))}
        print(f"{name:8s} us per profiled point, plane row ({row.shape[0]}) / near the limit ({near.shape[0]}): "
              f"numpy reference {out['numpy'][0]:.1f} / {out['numpy'][1]:.1f}, compiled {out['compiled'][0]:.1f} / "
              f"{out['compiled'][1]:.1f}, speed-up {out['numpy'][0] / out['compiled'][0]:.1f} / "
              f"{out['numpy'][1] / out['compiled'][1]:.1f}")
    for d in args.datasets.split(","):
        print(f"cevnsfit limits --dataset {d}: {cli(d):.1f} s")
    with tempfile.TemporaryDirectory() as cache:  # an empty numba cache: the first run on a machine
        print(f"first run on a machine: compiling (and caching) the kernels, stats.compiled.load(): {first_load(cache):.1f} s")
        t_first = cli(args.datasets.split(",")[0], {"NUMBA_CACHE_DIR": cache})  # the cache made just now
    print(f"cevnsfit limits right after (the kernels cached by the line above): {t_first:.1f} s")


if __name__ == "__main__":
    main()
