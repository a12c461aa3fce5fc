"""Everything CUDA in archsearch, checked and timed in one command of under five minutes on a lent GPU.

The CUDA paths (events, AMP, channels-last, torch.compile, the relative protocol) are written on
machines without a GPU, and a GPU is lent for minutes at a time; this runs them all at once. Parts,
each guarded (a failure is recorded in the JSON and the next part runs), while time is left of ``--budget``:

  tests    the CUDA-marked tests (``pytest -m cuda`` on the test files that mark one)
  deploy   the deploy form computes the train form's function on CUDA (rdrnet-s, regseg; fp32 without TF32)
  train    50 training steps of rdrnet-s with AMP, channels-last and torch.compile (archsearch's trainer)
  latency  rdrnet-s and regseg against rdrnet-s-simple by archsearch's relative protocol (``measure_relative``:
           CUDA events, interleaved rounds): eager fp32, fp16, bf16, fp16 channels-last, compile fp16

The last line of stdout is one JSON object of every figure (and each part's error, if any); the exit
status is 0 when no part failed, 1 otherwise. Without CUDA it says so on stderr, prints the JSON line
with ``"cuda": false`` and exits 2.

    bash benchmarks/gpu_check.sh        # = python benchmarks/gpu_check.py [--input 1024x2048] [--budget 280]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archsearch.runtime import configure_process

configure_process()  # before torch loads, as the CLI does

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ("rdrnet-s", "regseg")
REFERENCE = "rdrnet-s-simple"
CLASSES = 19
NO_CUDA = "gpu_check needs a CUDA device: torch.cuda.is_available() is False on this machine"
ERROR_LENGTH = 600
TOLERANCE = 1e-3
"""Deploy and train outputs agree within this fraction of the largest output (rdrnet-s in fp32: about 1e-4 on
the CPU, from summing a block's branches in another order; a wrong fold is off by the output's own scale)."""
# (name, latency settings beyond the device and input); compile last: it takes the longest to get ready
VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("eager-fp32", {"dtype": "fp32"}),
    ("eager-fp16", {"dtype": "fp16"}),
    ("eager-bf16", {"dtype": "bf16"}),
    ("eager-fp16-channels-last", {"dtype": "fp16", "channels_last": True}),
    ("compile-fp16", {"dtype": "fp16", "backend": "compile"}),
)
Part = Callable[[float], dict[str, Any]]
"""A part of the check: given the deadline (``time.monotonic()``), its figures."""


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    from archsearch.cli.arguments import parse_size

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=parse_size, default=(1024, 2048), metavar="HxW",
                        help="timing input (default 1024x2048, the papers' Cityscapes size)")
    parser.add_argument("--budget", type=float, default=280.0, help="seconds for all parts (default 280)")
    parser.add_argument("--steps", type=int, default=50, help="training steps (default 50)")
    parser.add_argument("--amp", choices=("bf16", "fp16"), default="bf16", help="training precision (default bf16)")
    return parser.parse_args(argv)


def run_parts(parts: Sequence[tuple[str, Part]], deadline: float, *,
              clock: Callable[[], float] = time.monotonic) -> dict[str, dict[str, Any]]:
    """Each part's figures by name; a part that raises records its error, one started past ``deadline`` is skipped."""
    results: dict[str, dict[str, Any]] = {}
    for name, part in parts:
        if clock() >= deadline:
            results[name] = {"skipped": "out of time (--budget)"}
            continue
        started = clock()
        try:
            results[name] = part(deadline)
        except Exception as error:  # noqa: BLE001 (recorded, and the next part runs)
            results[name] = {"error": f"{type(error).__name__}: {error}"[:ERROR_LENGTH]}
        results[name]["seconds"] = round(clock() - started, 1)
    return results


def failed_parts(results: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, figures in results.items() if "error" in figures or figures.get("failed")]


def cuda_test_files() -> list[str]:
    """The test files that mark a test ``cuda``, so pytest imports only those."""
    return sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py")
                  if "mark.cuda" in path.read_text(encoding="utf-8"))


def cuda_tests(deadline: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "junit.xml"
        finished = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:randomly",
                                   "-p", "no:cacheprovider", f"--junitxml={report}", *cuda_test_files()], cwd=ROOT,
                                  capture_output=True, text=True, timeout=max(1.0, deadline - time.monotonic()))
        suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    broken = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    return {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": broken, "exit_status": finished.returncode}


def trained_statistics(model: torch.nn.Module, images: torch.Tensor) -> None:
    """BatchNorm running statistics of a few batches (their cumulative average, as a trained network's describe its
    data), so that folding them is really exercised and the eval outputs keep a trained network's scale."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None
            module.reset_running_stats()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(images)
    model.eval()


def deploy_matches(deadline: float) -> dict[str, Any]:
    from archsearch import build, deploy

    figures: dict[str, Any] = {}
    previous = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # fp32 as written
    try:
        for name in NETWORKS:
            torch.manual_seed(0)
            model = build(name, num_classes=CLASSES).cuda()
            images = torch.randn(2, 3, 512, 1024, device="cuda")
            trained_statistics(model, images)
            with torch.no_grad():
                expected, got = model(images), deploy(model)(images)
            torch.cuda.synchronize()
            difference = (expected - got).abs().max().item()
            scale = expected.abs().max().item()
            figures[name] = {"max_abs_difference": difference, "max_abs_output": scale,
                             "matches": difference <= TOLERANCE * max(1.0, scale)}
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous
    figures["failed"] = [name for name in NETWORKS if not figures[name]["matches"]]
    return figures


def train_steps(steps: int, amp: str) -> Part:
    def part(deadline: float) -> dict[str, Any]:
        import math

        from archsearch import build
        from archsearch.train import TrainConfig, train_and_evaluate

        generator = torch.Generator().manual_seed(0)
        data = [(torch.randn(8, 3, 512, 1024, generator=generator).cuda(),
                 torch.randint(0, CLASSES, (8, 512, 1024), generator=generator).cuda()) for _ in range(4)]
        config = TrainConfig(iterations=steps, batch_size=8, optimizer="adamw", lr=1e-3, weight_decay=1e-4,
                             warmup_iterations=min(5, steps - 1), aux_weight=0.4, device="cuda", amp=amp, channels_last=True,
                             compile=True)
        torch.manual_seed(0)
        result = train_and_evaluate(build("rdrnet-s", num_classes=CLASSES), data, data[:1], config)
        return {"network": "rdrnet-s", "batch": [8, 512, 1024], "amp": amp, "steps": result.steps,
                "train_seconds": round(result.train_seconds, 2),
                "ms_per_step_with_compile": round(result.train_seconds / result.steps * 1e3, 1),
                "final_loss": result.final_loss, "failed": [] if math.isfinite(result.final_loss) else ["loss"]}
    return part


def time_networks(input_size: tuple[int, int]) -> Part:
    def part(deadline: float) -> dict[str, Any]:
        from archsearch import build, deploy
        from archsearch.latency import LatencySettings, measure_relative

        figures: dict[str, Any] = {"input": list(input_size), "reference": REFERENCE}
        reference = deploy(build(REFERENCE, num_classes=CLASSES))
        networks = {name: deploy(build(name, num_classes=CLASSES)) for name in NETWORKS}
        for variant, options in VARIANTS:
            for name, network in networks.items():
                key = f"{name} {variant}"
                if time.monotonic() >= deadline:
                    figures[key] = {"skipped": "out of time (--budget)"}
                    continue
                settings = LatencySettings(device="cuda", input_size=input_size, warmup_seconds=0.5,
                                           min_warmup_iterations=5, time_budget_seconds=1.0, min_repeats=20,
                                           max_repeats=100_000, **options)
                try:
                    measured = measure_relative(network, reference, settings, reference_name=REFERENCE)
                except Exception as error:  # noqa: BLE001 (one variant's failure, recorded; the others run)
                    figures[key] = {"error": f"{type(error).__name__}: {error}"[:ERROR_LENGTH]}
                    continue
                figures[key] = {"ms": round(measured.candidate.median_ms, 3),
                                "reference_ms": round(measured.reference.median_ms, 3),
                                "ratio": round(measured.ratio, 4), "noise": round(measured.noise, 4),
                                "backend": measured.backend}
        figures["failed"] = [key for key, value in figures.items() if isinstance(value, dict) and "error" in value]
        return figures
    return part


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    started = time.monotonic()
    summary: dict[str, Any] = {"check": "gpu", "cuda": torch.cuda.is_available(), "torch": torch.__version__}
    if not summary["cuda"]:
        print(NO_CUDA, file=sys.stderr)
        print(json.dumps({**summary, "error": NO_CUDA}))
        return 2
    summary.update(device=torch.cuda.get_device_name(0), cuda_version=torch.version.cuda)
    parts = (("tests", cuda_tests), ("deploy", deploy_matches), ("train", train_steps(arguments.steps, arguments.amp)),
             ("latency", time_networks(arguments.input)))
    summary["parts"] = run_parts(parts, started + arguments.budget)
    summary["failed"] = failed_parts(summary["parts"])
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
