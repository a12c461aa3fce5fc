"""How repeatable is a CPU latency measurement? Time one small conv net several times.

For each run it prints the median, the IQR and IQR / median; then the same figures
over the run medians. On an idle CPU the target is an IQR under 5% of the median,
both within a run and across runs.

    python benchmarks/latency_repeatability.py --input 256x512 --threads 2 --budget 2
"""

from __future__ import annotations

import argparse

from torch import nn

from archsearch.latency import LatencySettings, measure_latency, summarize_timings

TARGET_RELATIVE_IQR = 0.05


def small_segmentation_net(classes: int = 19) -> nn.Module:
    """A deploy-form (no batch norm) stride-8 conv net with a segmentation-shaped output."""

    def conv(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *conv(3, 32, 2), *conv(32, 32, 1),
        *conv(32, 64, 2), *conv(64, 64, 1),
        *conv(64, 128, 2), *conv(128, 128, 1),
        nn.Conv2d(128, classes, 1),
        nn.Upsample(scale_factor=8, mode="bilinear", align_corners=False),
    )


def parse_input_size(text: str) -> tuple[int, int]:
    """Read ``HxW`` (e.g. ``256x512``) as (height, width)."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x512, got {text!r}") from None
    return height, width


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=parse_input_size, default=(256, 512), help="input HxW (default 256x512)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--budget", type=float, default=2.0, help="timing seconds per run (default 2)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run (default 1)")
    parser.add_argument("--runs", type=int, default=5, help="number of measurements (default 5)")
    parser.add_argument("--backend", default="eager", help="eager, onnxruntime or compile (default eager)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    settings = LatencySettings.from_dict(
        {"device": "cpu", "input_size": list(arguments.input), "num_threads": arguments.threads,
         "backend": arguments.backend, "warmup_seconds": arguments.warmup,
         "time_budget_seconds": arguments.budget, "min_repeats": 10, "max_repeats": 100_000},
        source="command line")
    model = small_segmentation_net()
    height, width = settings.input_size
    print(f"{settings.backend} on {settings.device}, {settings.num_threads} thread(s), input {height}x{width}, "
          f"{arguments.runs} runs of {settings.time_budget_seconds:g} s")
    print(f"{'run':>4} {'median ms':>10} {'IQR ms':>8} {'IQR/median':>11} {'repeats':>8}")
    medians = []
    for run in range(1, arguments.runs + 1):
        result = measure_latency(model, settings)
        medians.append(result.median_ms)
        print(f"{run:>4} {result.median_ms:>10.3f} {result.iqr_ms:>8.3f} {result.relative_iqr:>10.2%} "
              f"{result.repeats:>8}")
    print(f"device: {result.device_name}; backend: {result.backend}")

    across = summarize_timings(medians)
    relative = across.iqr_ms / across.median_ms
    spread = (max(medians) - min(medians)) / across.median_ms
    print(f"across runs: median of medians {across.median_ms:.3f} ms, IQR {across.iqr_ms:.3f} ms "
          f"({relative:.2%}), max-min {spread:.2%}")
    verdict = "met" if relative < TARGET_RELATIVE_IQR else "NOT met (is the CPU idle?)"
    print(f"target IQR < {TARGET_RELATIVE_IQR:.0%} of the median across runs: {verdict}")


if __name__ == "__main__":
    main()
