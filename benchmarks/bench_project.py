"""Benchmark: one projection of a shipped detector (issue 9 item 4 target: <= a few seconds).

Timed from the detector file to the finished result, cold (kernel and templates built inside the timing):
``--model``: the M = 0 and M = inf expected limits (Brent-refined, 5 band edges each) and the 61-mass raster;
``--param``: the expected intervals of sin2_theta_w (PoiFit on the Asimov data).  Toy bands (``--toys``) are timed
separately with 1000 replicas per line.
Run: python benchmarks/bench_project.py [--model B-L] [--repeat 3]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from cevnsfit.detector import load_detector, shipped_detectors  # noqa: E402
from cevnsfit.experiments.projected import ProjectedExperiment  # noqa: E402
from cevnsfit.projection import Projection  # noqa: E402


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="B-L")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {describe()}")
    print(f"{'detector':14s} {'model [s]':>10s} {'param [s]':>10s} {'toys 2x1000 [s]':>16s}")
    for name in shipped_detectors():
        config = load_detector(name)
        t_model = timed(lambda: Projection(ProjectedExperiment(config)).mediator(args.model), args.repeat)
        t_param = timed(lambda: Projection(ProjectedExperiment(config)).parameter("sin2_theta_w"), args.repeat)
        pr = Projection(ProjectedExperiment(config))
        pr.mediator(args.model)  # kernel and templates built: the toys alone
        t_toys = timed(lambda: pr.mediator(args.model, masses_mev=[1.0], toys=1000), 1)
        print(f"{name:14s} {t_model:10.2f} {t_param:10.2f} {t_toys:16.2f}")


if __name__ == "__main__":
    main()
