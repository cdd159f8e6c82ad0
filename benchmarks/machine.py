"""Describe the machine a benchmark runs on (printed with every timing)."""

import os
import platform

import numpy as np
import scipy


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {ncpu} cores available, {platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}")


def best_of(fn, repeat: int = 5, number: int = 200) -> float:
    """Shortest mean time of ``fn()`` [s] over ``repeat`` loops of ``number`` calls (timeit's convention)."""
    import time

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)
