"""How much memory and time does the bootstrap interval of Kendall's tau take as architectures grow?

Target: well under 1 GB at 1000 architectures (1000 resamples), where holding every pair of every
resample at once took 4 GB an array. Prints seconds and the peak of traced allocations per count.

    python benchmarks/kendall_bootstrap_memory.py --counts 100 300 1000
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from archsearch.report.statistics import bootstrap_interval, kendall_taus

TARGET_BYTES = 1024 ** 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 300, 1000])
    arguments = parser.parse_args()
    generator = np.random.default_rng(0)
    for count in arguments.counts:
        estimate = generator.normal(size=count)
        reference = estimate + generator.normal(size=count)
        tracemalloc.start()
        started = time.perf_counter()
        low, high = bootstrap_interval(kendall_taus, estimate, reference)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        verdict = "meets" if peak < TARGET_BYTES else "MISSES"
        print(f"{count:6d} architectures: {seconds:6.2f} s, peak {peak / 1024 ** 2:7.1f} MiB ({verdict} the 1 GiB "
              f"target), interval [{low:.3f}, {high:.3f}]")


if __name__ == "__main__":
    main()
