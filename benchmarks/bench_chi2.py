"""Benchmark: cold build of both response kernels and the time per profiled chi^2 evaluation.

Targets (issue "SM foundation", 2-core machine): kernels <= 5 s cold, <= 1 ms per profiled combined evaluation.
Run: python benchmarks/bench_chi2.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import best_of, describe  # noqa: E402

from cevnsfit.experiments import load_experiment  # noqa: E402



def main() -> None:
    print(f"machine: {describe()}")
    t0 = time.perf_counter()
    csi, lar = load_experiment("csi"), load_experiment("lar")
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = csi.kernel
    t_csi = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = lar.kernel
    t_lar = time.perf_counter() - t0
    print(f"data loading (both): {t_load:.3f} s")
    print(f"kernel build cold: CsI {t_csi:.3f} s, LAr {t_lar:.3f} s, both {t_csi + t_lar:.3f} s (target <= 5 s)")

    s_csi, s_lar = csi.kernel.sm_counts(), lar.signal(lar.kernel.sm_counts())
    c_csi, c_lar = csi.cost(), lar.cost()
    combined = c_csi + c_lar
    signals = {"csi": s_csi, "lar": s_lar}
    t_c = best_of(lambda: c_csi(s_csi))
    t_l = best_of(lambda: c_lar(s_lar))
    t_cl = best_of(lambda: combined(signals))
    print(f"profiled chi2, one evaluation: CsI {t_c * 1e3:.3f} ms, LAr {t_l * 1e3:.3f} ms, "
          f"combined {t_cl * 1e3:.3f} ms (target <= 1 ms)")
    import numpy as np

    batch = 200
    scales = np.linspace(0.5, 1.5, batch)
    b_csi, b_lar = scales[:, None, None] * s_csi, scales[:, None, None] * s_lar
    t_b = best_of(lambda: combined({"csi": b_csi, "lar": b_lar}), repeat=5, number=10) / batch
    print(f"profiled chi2 in batches of {batch}: combined {t_b * 1e6:.1f} us per evaluation "
          f"(ratio single/batched {t_cl / t_b:.1f})")


if __name__ == "__main__":
    main()
