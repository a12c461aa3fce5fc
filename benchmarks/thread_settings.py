"""Threads and OpenMP waiting, timed quiet and next to busy processes: the figures that chose archsearch's defaults.

A training step (rdrnet-s-simple, batch 8, 96x96, AdamW, data already in memory; the median of
at least 2 steps after a warm-up step, timed for ``--step-seconds``) and a latency
timing (its deploy form, batch 1, the default study's 96x192 input, median of at least 10 calls)
under each setting: 1 or 2 torch threads, ``OMP_WAIT_POLICY`` (OpenMP's default, ACTIVE, PASSIVE),
``GOMP_SPINCOUNT`` and torch's inter-op threads. OpenMP reads its variables when torch loads it,
so every setting runs in a fresh process (this script with ``--worker``); settings alternate
within each round (order reversed every other round) and each load level (0, 1 and 3 spinning
``python -c "while True: pass"`` processes, always killed afterwards) holds every setting, so
figures in one column met the same machine. The one-minute load average is printed with each
block. A run that takes longer than ``--timeout`` seconds is stopped and shown as "timeout".
``--short`` runs one round of fewer settings; Ctrl-C prints the tables of what was measured.

    python benchmarks/thread_settings.py [--short] [--rounds 2] [--busy 0 1 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from busy_core import busy_processes, die_with_parent, exit_on_terminate, load_average

OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "ARCHSEARCH_RUNTIME")


@dataclass(frozen=True)
class Setting:
    label: str
    threads: int
    environment: dict[str, str] = field(default_factory=dict)
    interop_threads: int | None = None


SETTINGS = (
    Setting("1 thread", 1),
    Setting("2 threads, OpenMP default", 2),
    Setting("2 threads, PASSIVE", 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    Setting("2 threads, ACTIVE", 2, {"OMP_WAIT_POLICY": "ACTIVE"}),
    Setting("2 threads, GOMP_SPINCOUNT=1000", 2, {"GOMP_SPINCOUNT": "1000"}),
    Setting("2 threads, GOMP_SPINCOUNT=10000", 2, {"GOMP_SPINCOUNT": "10000"}),
    Setting("2 threads, GOMP_SPINCOUNT=100000", 2, {"GOMP_SPINCOUNT": "100000"}),
    Setting("2 threads, default, 1 inter-op thread", 2, interop_threads=1),
)
SHORT_LABELS = ("1 thread", "2 threads, OpenMP default", "2 threads, PASSIVE", "2 threads, GOMP_SPINCOUNT=10000")


def worker(threads: int, interop_threads: int | None, step_seconds: float) -> None:
    """In a fresh process: time training steps, then latency; print one JSON line."""
    import torch
    import torch.nn.functional as F

    from archsearch.arch.build import build
    from archsearch.arch.deploy import deploy

    if interop_threads is not None:
        torch.set_num_interop_threads(interop_threads)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build("rdrnet-s-simple", num_classes=19).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    images = torch.randn(8, 3, 96, 96)
    targets = torch.randint(0, 19, (8, 96, 96))

    def step() -> None:
        logits, aux = model(images, return_aux=True)
        loss = F.cross_entropy(logits, targets)
        if aux is not None:
            loss = loss + 0.4 * F.cross_entropy(aux, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    step_ms: list[float] = []
    started = time.perf_counter()
    while len(step_ms) < 2 or (time.perf_counter() - started < step_seconds and len(step_ms) < 50):
        begin = time.perf_counter()
        step()
        step_ms.append((time.perf_counter() - begin) * 1e3)

    deployed = deploy(model.eval())
    image = torch.randn(1, 3, 96, 192)
    latency_ms: list[float] = []
    with torch.inference_mode():
        for _ in range(5):
            deployed(image)
        started = time.perf_counter()
        while len(latency_ms) < 10 or (time.perf_counter() - started < 1.0 and len(latency_ms) < 1000):
            begin = time.perf_counter()
            deployed(image)
            latency_ms.append((time.perf_counter() - begin) * 1e3)
    print(json.dumps({"step_ms": statistics.median(step_ms), "latency_ms": statistics.median(latency_ms),
                      "threads": torch.get_num_threads(), "interop": torch.get_num_interop_threads()}))


def run_setting(setting: Setting, step_seconds: float, timeout: float) -> dict[str, float]:
    """One fresh process under ``setting``; a run past ``timeout`` seconds counts as infinitely slow."""
    environment = {key: value for key, value in os.environ.items() if key not in OPENMP_VARIABLES}
    environment.update(setting.environment)
    command = [sys.executable, __file__, "--worker", "--threads", str(setting.threads),
               "--step-seconds", str(step_seconds)]
    if setting.interop_threads is not None:
        command += ["--interop-threads", str(setting.interop_threads)]
    try:
        finished = subprocess.run(command, env=environment, capture_output=True, text=True, check=False,
                                  timeout=timeout, preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        return {"step_ms": math.inf, "latency_ms": math.inf}
    if finished.returncode != 0:
        raise RuntimeError(f"{setting.label}: worker failed:\n{finished.stderr[-2000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="one round of four settings")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--busy", type=int, nargs="+", default=None, help="busy-process counts (default 0 1 3)")
    parser.add_argument("--step-seconds", type=float, default=None, help="timed training seconds per run")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run (start-up included) counts as too slow")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--interop-threads", type=int, default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(arguments.threads, arguments.interop_threads, arguments.step_seconds)
        return
    exit_on_terminate()
    settings = [s for s in SETTINGS if s.label in SHORT_LABELS] if arguments.short else list(SETTINGS)
    rounds = arguments.rounds or (1 if arguments.short else 2)
    loads = arguments.busy if arguments.busy is not None else [0, 1, 3]
    step_seconds = arguments.step_seconds or (1.5 if arguments.short else 3.0)

    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    load_averages: dict[int, list[float]] = {busy: [] for busy in loads}
    try:
        for round_index in range(rounds):
            for busy in loads:
                order = settings if round_index % 2 == 0 else settings[::-1]
                with busy_processes(busy):
                    time.sleep(0.5)
                    load_averages[busy].append(load_average())
                    for setting in order:
                        measured = run_setting(setting, step_seconds, arguments.timeout)
                        results.setdefault((setting.label, busy), []).append(measured)
                        print(f"round {round_index + 1}, {busy} busy, load {load_average():.1f}: {setting.label}: "
                              f"step {measured['step_ms']:.0f} ms, latency {measured['latency_ms']:.2f} ms",
                              file=sys.stderr, flush=True)
                    load_averages[busy].append(load_average())
    except KeyboardInterrupt:
        print("interrupted: the tables hold what was measured", file=sys.stderr)
    finally:
        print_tables(results, settings, loads, load_averages)


def print_tables(results: dict[tuple[str, int], list[dict[str, float]]], settings: list[Setting], loads: list[int],
                 load_averages: dict[int, list[float]]) -> None:
    for what, unit in (("step_ms", "training step, ms (median per run; runs in order)"),
                       ("latency_ms", "latency, ms (median per run; runs in order)")):
        print(f"\n{unit}")
        print(f"{'setting':<40}" + "".join(f"{f'{busy} busy':>26}" for busy in loads))
        for setting in settings:
            cells = []
            for busy in loads:
                values = [run[what] for run in results.get((setting.label, busy), [])]
                cells.append(" / ".join(_format(value, what) for value in values) or "-")
            print(f"{setting.label:<40}" + "".join(f"{cell:>26}" for cell in cells))
    print("\nload average (1 min) at the start and end of each block: " + "; ".join(
        f"{busy} busy: " + ", ".join(f"{value:.1f}" for value in values) for busy, values in load_averages.items()))
    summary = {f"{setting.label} | {busy} busy": round(statistics.median(
        run["step_ms"] for run in results[(setting.label, busy)]), 1)
        for setting in settings for busy in loads if (setting.label, busy) in results}
    print(json.dumps({"step_ms_median": summary}))


def _format(value: float, what: str) -> str:
    if math.isinf(value):
        return "timeout"
    return f"{value:.0f}" if what == "step_ms" else f"{value:.2f}"


if __name__ == "__main__":
    main()
