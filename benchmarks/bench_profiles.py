"""Benchmark: single-point and batched profiles of the experiments' costs, before/after in one run.

"Before" and "after" are two source trees (``--before DIR`` and ``--after DIR``, each a ``src`` folder holding
``cevnsfit``), measured one after the other by this same script in fresh interpreters (``--worker``), so the two
columns come from one run on one machine.  What is timed (wall clock, best of ``--repeat`` loops, each loop a
mean over several calls; kernels already loaded and warm):

* a single point: ``experiment.cost()(signal)`` -- the SM template of CsI and of XENONnT (what ``cevnsfit sm`` and
  ``fit`` profile), and the same through ``MediatorAnalysis.cost`` (what the limit refinements profile);
* a 1000-row batch: B-L at M = 0 on 1000 couplings 1e-6 .. 1e-3 (CsI, LAr, XENONnT), ``cost(batch)``.

Run: python benchmarks/bench_profiles.py [--before /work/base/src] [--after src] [--repeat 5]
(the numbers of the commit that made every profile compiled are in the docstring of src/cevnsfit/stats/compiled.py)
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def best(fn, repeat: int, number: int) -> float:
    """Shortest mean time of ``fn()`` [s] over ``repeat`` loops of ``number`` calls."""
    fn()  # warm: kernels loaded, caches filled
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out = min(out, (time.perf_counter() - t0) / number)
    return out


def worker(repeat: int) -> dict:
    """The timings of the cevnsfit on sys.path, in us per call (single points) and us per row (batches)."""
    import numpy as np

    from cevnsfit.experiments import load_experiment
    from cevnsfit.mediators import MediatorAnalysis

    an = MediatorAnalysis()
    out = {}
    for name in ("csi", "xenonnt"):
        exp = load_experiment(name)
        sm = exp.sm_prediction()["cevns"] if name == "csi" else exp.sm_signal()
        plain, in_analysis = exp.cost(), an.cost(name)
        out[f"{name} single point, experiment.cost() [us]"] = 1e6 * best(lambda: plain(sm), repeat, 200)
        out[f"{name} single point, MediatorAnalysis.cost [us]"] = 1e6 * best(lambda: in_analysis(sm), repeat, 200)
    g = np.geomspace(1e-6, 1e-3, 1000)
    for name in ("csi", "lar", "xenonnt"):
        cost = load_experiment(name).cost()
        batch = an.templates("B-L", [0.0], name).counts(g, 0)
        out[f"{name} 1000-row batch [us per row]"] = 1e6 * best(lambda: cost(batch), repeat, 1) / g.size
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="/work/base/src")
    ap.add_argument("--after", default=str(HERE.parent / "src"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.repeat)))
        return
    sys.path.insert(0, str(HERE))
    from machine import describe

    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f}")
    cols = {}
    for label, src in (("before", args.before), ("after", args.after)):
        env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()), OPENBLAS_NUM_THREADS="1")
        res = subprocess.run([sys.executable, __file__, "--worker", "--repeat", str(args.repeat)], env=env,
                             check=True, capture_output=True, text=True)
        cols[label] = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"{'':52s} {'before':>10s} {'after':>10s}")
    for key in cols["before"]:
        b, a = cols["before"][key], cols["after"][key]
        print(f"{key:52s} {b:10.1f} {a:10.1f}   x{b / a:.2f}")


if __name__ == "__main__":
    main()
