"""How long does `archsearch fidelity` take on two 16-architecture runs? Target: under 5 s, whole process.

Writes two synthetic run directories (16 architectures, one seed, four proxies, costs and two
intermediate evaluations each) into a temporary directory, then times the command as a user
runs it, a fresh process each time: two runs compared, and one run's estimates against its
mIoU. Also says whether the command imported torch (it should not need to).

    python benchmarks/fidelity_speed.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ARCHITECTURES = 16
TARGET_SECONDS = 5.0
PROXIES = ("synflow", "naswot", "grad_norm", "snip")


def write_run(run_dir: Path, quality: np.ndarray, generator: np.random.Generator) -> None:
    rows = []
    for index, value in enumerate(quality):
        row = {"number": index, "state": "COMPLETE", "arch_hash": f"{index:016x}", "seed": 0,
               "params_train": int(1e6 * (1 + value)), "params_deploy": int(9e5 * (1 + value)),
               "macs": int(1e9 * (1 + value)), "receptive_field": 99, "output_stride": 8,
               "latency_ms": 5 + value + generator.normal(0, 0.2), "miou": value + generator.normal(0, 0.05),
               "train_seconds": 30.0, "fail_reason": ""}
        row.update({f"proxy.{name}": value + generator.normal(0, 0.3) for name in PROXIES})
        row.update({"miou_at.10": value / 3 + generator.normal(0, 0.05),
                    "miou_at.20": value / 2 + generator.normal(0, 0.05)})
        rows.append(row)
    run_dir.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(run_dir / "trials.csv", index=False)
    (run_dir / "study.yaml").write_text(yaml.safe_dump({"name": run_dir.name,
                                                        "objectives": [{"metric": "miou", "direction": "maximize"}]}))


def time_command(arguments: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "archsearch.cli", *arguments], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    generator = np.random.default_rng(0)
    quality = generator.uniform(0.2, 0.6, ARCHITECTURES)
    with tempfile.TemporaryDirectory() as scratch:
        short, long = Path(scratch) / "short", Path(scratch) / "long"
        write_run(short, quality, generator)
        write_run(long, quality, generator)
        probe = ("import sys, runpy; sys.argv = ['archsearch', 'fidelity', %r, %r];"
                 "import archsearch.cli.main as m; m.main(sys.argv[1:]); print('torch' in sys.modules)")
        torch_loaded = subprocess.run([sys.executable, "-c", probe % (str(short), str(long))], check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1]
        for label, command in (("two runs", ["fidelity", str(short), str(long)]),
                               ("one run", ["fidelity", str(long), "--json"])):
            seconds = [time_command(command) for _ in range(arguments.repeats)]
            median = statistics.median(seconds)
            print(f"{label}: median {median:.2f} s over {arguments.repeats} (min {min(seconds):.2f}, "
                  f"max {max(seconds):.2f}); target < {TARGET_SECONDS:.0f} s: {'met' if median < TARGET_SECONDS else 'MISSED'}")
        print(f"torch imported by the command: {torch_loaded}")


if __name__ == "__main__":
    main()
