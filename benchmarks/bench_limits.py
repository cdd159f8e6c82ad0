"""Benchmark: `cevnsfit limits` cold (a fresh process) at a base revision and at this tree, in one run, and the
parts outside the profiled chi^2: the import of the mediator layer, each experiment's load (data, response, cost)
and the templates of every model.

Targets (2-core machine): `cevnsfit limits` (all models, CsI, LAr and CsI+LAr) <= 5 s cold (issue "limits speed");
every model on every data set <= 5 s (issue 23: `--dataset all`, five data sets when it was set, seven now: compare
the same work with ``--dataset csi,lar,csi+lar,xenonnt,coherent+xenonnt``).
Run: python benchmarks/bench_limits.py [--base REV] [--repeat 3] [--dataset csi+lar]   (REV: default the merge base
with main)

The base revision's ``src/`` is exported with ``git archive`` to a temporary folder and both trees run alternately
as the console script ``cevnsfit limits`` (trees.CONSOLE; one BLAS thread, as the console script sets), best of
``--repeat`` wall times after one warm-up run per tree that compiles and caches the numba kernels (so "cold" = a
fresh process with the kernels' cache present, what a user sees from the second run on; the XENONnT release's parsed
cache is present too).  Both trees' tables
must be identical.  The parts are timed in fresh processes too (best of ``--repeat``), so that nothing is memoised.
The 1-minute load average is printed with every number: the test machine's 2 cores are shared.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402
from trees import CONSOLE, REPO, base_and_this, env  # noqa: E402

from cevnsfit.mediators import data_set_experiments, dataset_members  # noqa: E402

# the parts, in a fresh process per tree (the API used exists at the base revision too)
PARTS = r"""
import json, sys, time
t0 = time.process_time()
import cevnsfit.mediators
t_import = time.process_time() - t0
import numpy as np
from cevnsfit.mediators import MediatorAnalysis, default_masses
from cevnsfit.physics.models import model_names
an = MediatorAnalysis()
names = sys.argv[1].split(",")
load = {}
for n in names:
    t0 = time.process_time()
    an.cost(n)
    load[n] = time.process_time() - t0
t0 = time.process_time()
for n in names:
    for masses in (default_masses(), [0.0], [np.inf]):
        for m in model_names():
            an.templates(m, masses, n)
t_tpl = time.process_time() - t0
print(json.dumps({"import": t_import, "templates": t_tpl, "load": load}))
"""


def _cpu_of_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# `limits` on a list of data sets, through the API (the CLI takes one data set or all): every model's grids once for
# the experiments of all of them, then one row per data set -- what `limits --dataset all` does.  It exists at the
# base revisions compared here (7b8037c on), so a list fixes the work while "all" grows with the registry.
LIST = r"""
import json, sys
from cevnsfit.io.jsonio import nulls_for_nonfinite
from cevnsfit.mediators import DATASETS, MediatorAnalysis
from cevnsfit.physics.models import model_names
datasets = sys.argv[1].split(",")
an = MediatorAnalysis()
rows = []
for m in model_names():
    res = an.analyse(m, experiments=tuple(sorted({e for d in datasets for e in DATASETS[d]})))
    rows.extend(res.row(d) for d in datasets)
print(json.dumps({"limits": nulls_for_nonfinite(rows)}))
"""


def _limits(src: Path, dataset: str) -> tuple[float, float, str]:
    """(wall, CPU time [s], JSON output) of `cevnsfit limits` in a fresh process (a comma-separated list of data
    sets: their rows through the API, ``LIST``)."""
    t0, c0 = time.perf_counter(), _cpu_of_children()
    cmd = ([sys.executable, "-c", LIST, dataset] if "," in dataset else
           [*CONSOLE, "limits", "--dataset", dataset, "--json"])
    res = subprocess.run(cmd, capture_output=True, text=True, env=env(src), cwd=REPO)
    wall, cpu = time.perf_counter() - t0, _cpu_of_children() - c0
    if res.returncode != 0:
        raise SystemExit(f"limits failed with {src}: {res.stderr.strip()}")
    return wall, cpu, res.stdout


def _max_relative_difference(a, b) -> float:
    """Largest |a - b| / max(|a|, |b|) over the numbers of two JSON trees of the same shape (inf if they differ)."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return max((_max_relative_difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return max((_max_relative_difference(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))
    return 0.0 if a == b else float("inf")


def _parts(src: Path, experiments: str) -> dict:
    res = subprocess.run([sys.executable, "-c", PARTS, experiments], capture_output=True, text=True, env=env(src),
                         cwd=REPO, check=True)
    return json.loads(res.stdout)


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default=None, help="git revision to compare with (default: where HEAD left main)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dataset", default="csi+lar", help="a data set, all, or a comma-separated list (e.g. the five "
                    "that `all` meant when issue 23 set its target: csi,lar,csi+lar,xenonnt,coherent+xenonnt)")
    args = ap.parse_args()
    print(f"machine: {describe()}; {_load()}; one BLAS thread")
    with base_and_this(args.base) as trees:
        outputs = {}
        for label, src in trees.items():  # warm-up: numba compiles and caches its kernels beside each tree
            outputs[label] = _limits(src, args.dataset)[2]
        docs = [json.loads(o)["limits"] for o in outputs.values()]
        print(f"`limits --dataset {args.dataset} --json`: largest relative difference between the trees "
              f"{_max_relative_difference(*docs):.1e}")
        times = {label: [] for label in trees}
        parts = {label: [] for label in trees}
        for _ in range(args.repeat):
            for label, src in trees.items():
                wall, cpu, _ = _limits(src, args.dataset)
                times[label].append((wall, cpu))
                print(f"  {label}: limits {wall:.2f} s wall, {cpu:.2f} s CPU ({_load()})")
        members = (data_set_experiments() if args.dataset == "all" else
                   {e for d in args.dataset.split(",") for e in dataset_members(d)})
        experiments = ",".join(sorted(members))
        for _ in range(args.repeat):
            for label, src in trees.items():
                parts[label].append(_parts(src, experiments))
        print(f"\nbest of {args.repeat}, fresh processes ({_load()}); the parts in CPU time:")
        for label in trees:
            best = {k: min(p[k] for p in parts[label]) for k in ("import", "templates")}
            load = {n: min(p["load"][n] for p in parts[label]) for n in parts[label][0]["load"]}
            load_text = ", ".join(f"{n} {t:.2f} s" for n, t in load.items())
            wall, cpu = min(t[0] for t in times[label]), min(t[1] for t in times[label])
            print(f"  {label}: `limits --dataset {args.dataset}` {wall:.2f} s wall, {cpu:.2f} s CPU | templates of "
                  f"all models x 3 mass sets {best['templates']:.2f} s | load {load_text} | import "
                  f"cevnsfit.mediators {best['import']:.2f} s")

if __name__ == "__main__":
    main()
