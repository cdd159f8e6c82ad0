"""The whole Feldman-Cousins table: every registered model x every data set with toys (csi, lar, csi+lar) x both
asymptotic lines.

One Dask LocalCluster for all models (``--workers``, default 2); the store of each model lies in
``OUT/<model>/store`` (rerunning resumes).  Writes ``OUT/fc_table.md`` (Wilks | FC | toy error per number) and
``OUT/fc_table.json``, and prints the wall time with the machine.  Wilks here is the one-parameter threshold on
the same line (Delta chi^2 = 4 at 2 sigma), the like-for-like partner of FC; the limits table's 6.18 values are
not recomputed (--no-wilks-table of ``cevnsfit fc``).

Run: python benchmarks/fc_table.py --toys 100 --out fc-table
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from cevnsfit.fc import REGIMES, run_fc, toy_data_sets  # noqa: E402
from cevnsfit.physics.models import model_names  # noqa: E402


def cell(row: dict, key: str) -> str:
    fmt = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
    err = row["toy_error"].get(key)
    return f"{fmt(row['wilks'].get(key))} | {fmt(row[key])} | {'-' if err is None else f'{err:.2g}'}"


def table(rows: list, toys: int, wall: float) -> str:
    lines = [f"FC with {toys} toys per tested coupling (2 sigma, CL = 95.45 %, profile construction, seed 0); "
             f"Wilks: one parameter on the same line (Delta chi^2 = 4); {wall / 60:.1f} min on {describe()}.", "",
             "| model | data set | g (M -> 0): Wilks | FC | toy error | g/M [GeV^-1] (M -> inf): Wilks | FC | toy error |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['dataset']} | {cell(r, 'g_low_mass')} | {cell(r, 'g_over_M_high_mass')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--toys", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("fc-table"))
    ap.add_argument("--models", nargs="*", default=None)
    args = ap.parse_args()
    from dask.distributed import LocalCluster

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    datasets = toy_data_sets()  # the data sets whose costs throw replicas (not XENONnT's morphed cost)
    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for model in args.models or model_names():
            t1 = time.perf_counter()
            doc = run_fc(model, datasets, REGIMES["both"], args.toys, 0, "2sigma",
                         args.out / model.replace("/", "_"), backend="dask", scheduler=cluster.scheduler_address,
                         with_table=False)
            rows += doc["limits"]
            print(f"{model}: {time.perf_counter() - t1:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    (args.out / "fc_table.json").write_text(json.dumps({"toys": args.toys, "wall_s": wall, "machine": describe(),
                                                        "limits": rows}, indent=1))
    text = table(rows, args.toys, wall)
    (args.out / "fc_table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
