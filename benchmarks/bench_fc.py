"""Benchmark: Feldman-Cousins toys -- toy fits per second per core, block size, 1 -> 2 local Dask workers.

A *toy* is one replicated experiment at one tested coupling: its profiled chi^2 on the whole toy grid (one batched
call) plus the refinement of its minimum; a *toy fit* is one profiled chi^2 evaluation.
Issue 10 targets: >= 200 000 profiled toy fits per second per core (stretch), 1 -> 2 workers efficiency >= 80 %.
The reference path (tests/reference_toys.py ``ReferenceLine``: every pair of the grid through
``ReplicaCost.replicas_grid``, cold Newton starts, golden-section refinement) and the line of ``cevnsfit fc``
(Gaussian profiled once per template, Poisson warm starts along the grid, sampled-bracket + parabola refinement)
are timed in the same run, on the same toys; both profile in the compiled kernels.
Run: python benchmarks/bench_fc.py [--toys N] [--repeat R]
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))  # the reference line
from machine import describe  # noqa: E402
from reference_toys import GOLDEN_STEPS, ReferenceLine  # noqa: E402

import numpy as np

from cevnsfit.fc import LineSpec, _analysis, build_line, choose_grids, observe, run_task  # noqa: E402
from cevnsfit.physics.models import model_names  # noqa: E402
from cevnsfit.stats.toys import SUB_POINTS, block_rng  # noqa: E402


def spec_for(model: str, dataset: str, regime: str = "low_mass") -> LineSpec:
    obs = observe(_analysis(None), model, dataset, regime, "2sigma")
    tested, grid = choose_grids(obs, "2sigma")
    return LineSpec(model, dataset, regime, tuple(tested), tuple(grid), 0, 100)


def per_core(spec: LineSpec, n: int, reference: bool = False, repeat: int = 3) -> dict:
    """Toys per second at a tested point near the limit (best of ``repeat``: other processes share the cores)."""
    fast = build_line(spec)
    line = ReferenceLine(fast.members, fast.grid) if reference else fast
    point = len(spec.tested) * 3 // 4  # near the limit
    g = spec.tested[point]
    line.statistic(g, block_rng(0, (99,)), 10)  # warm caches
    dt = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        line.statistic(g, block_rng(0, (0,)), n)
        dt = min(dt, time.perf_counter() - t0)
    # evaluations per toy: the grid, then for a toy whose grid minimum is interior (the others need none) the
    # golden-section starting points and steps (reference) or the bracket samples and the two parabola vertices
    # (fast); the interior fraction counted on the same toys, outside the timing
    on_grid = line.chi2_grid(line.throw(g, block_rng(0, (0,)), n))
    k = np.argmin(on_grid, axis=1)
    inner = float(np.mean((k > 0) & (k < len(spec.grid) - 1)))
    evals = len(spec.grid) + inner * (2 + GOLDEN_STEPS if reference else SUB_POINTS + 2)
    return {"toys_per_s": n / dt, "fits_per_s": n * evals / dt, "us_per_fit": dt / (n * evals) * 1e6,
            "s_per_task_100": dt / n * 100, "evals": evals, "inner": inner}


def scaling(spec: LineSpec, n_tasks: int, block: int) -> dict:
    from dask.distributed import Client, LocalCluster, wait

    out = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            # warm every worker (templates, costs) before timing
            wait([client.submit(run_task, spec, 0, 1000 + w, 2, pure=False, workers=[addr])
                  for w, addr in enumerate(client.scheduler_info()["workers"])])
            t0 = time.perf_counter()
            futs = [client.submit(run_task, spec, k % len(spec.tested), k // len(spec.tested), block, pure=False)
                    for k in range(n_tasks)]
            wait(futs)
            out[workers] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--toys", type=int, default=200)
    ap.add_argument("--tasks", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=3)
    # tasks of ~0.1-0.2 s, as `cevnsfit fc` makes them (--block 100 on a combined line); 50 CsI toys are now ~20 ms,
    # where Dask's per-task overhead (~ms) starts to count
    ap.add_argument("--scaling-block", type=int, default=400)
    args = ap.parse_args()
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f} (other processes share the cores)")
    specs = {d: spec_for("B-L", d) for d in ("csi", "lar", "csi+lar")}
    rates = {}
    for d, spec in specs.items():
        ref = per_core(spec, args.toys, reference=True, repeat=args.repeat)
        r = per_core(spec, args.toys, repeat=args.repeat)
        rates[d] = r
        print(f"B-L {d:8s} M -> 0: {len(spec.tested)} tested points, toy grid {len(spec.grid)}")
        for label, x in (("reference", ref), ("fc line", r)):
            print(f"  {label:13s}: {x['evals']:.1f} fits per toy ({x['inner']:.0%} refined), {x['toys_per_s']:.0f} toys/s, {x['fits_per_s']:.0f} toy fits/s "
                  f"per core, {x['us_per_fit']:.1f} us per profiled fit (target <= 5 us)")
        print(f"  speed-up per toy: {r['toys_per_s'] / ref['toys_per_s']:.2f}")
    spec = specs["csi"]
    for block in (25, 100, 400, 1000):
        t0 = time.perf_counter()
        run_task(spec, 5, 7, block)
        dt = time.perf_counter() - t0
        print(f"block of {block:4d} toys (CsI): {dt:.3f} s per task, {dt / block * 1e3:.2f} ms per toy")
    t = scaling(spec, args.tasks, args.scaling_block)
    eff = t[1] / (2 * t[2])
    print(f"Dask LocalCluster, {args.tasks} tasks of {args.scaling_block} CsI toys: 1 worker {t[1]:.2f} s, 2 workers {t[2]:.2f} s, "
          f"speed-up {t[1] / t[2]:.2f}, efficiency {eff:.0%} (target >= 80 %)")
    # cost of the whole FC table at 1000 toys per tested point: every model x 2 lines x 3 data sets
    per_line = {d: len(s.tested) * 1000 / rates[d]["toys_per_s"] for d, s in specs.items()}
    n_models = len(model_names())
    table = n_models * 2 * sum(per_line.values())
    raster = 50 * per_line["csi+lar"]
    print(f"one line with 1000 toys/point, one core: CsI {per_line['csi']:.0f} s, LAr {per_line['lar']:.0f} s, "
          f"CsI+LAr {per_line['csi+lar']:.0f} s; one model (2 lines x 3 data sets) {2 * sum(per_line.values()) / 60:.1f} min")
    print(f"full table ({n_models} models): {table / 3600:.1f} core-hours -> {table / 100 / 60:.1f} min on 100 workers; "
          f"50-mass CsI+LAr raster: {raster / 3600:.1f} core-hours -> {raster / 100 / 60:.1f} min on 100 workers")


if __name__ == "__main__":
    main()
