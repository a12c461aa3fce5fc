"""How good is the latency predictor? Predict and measure sampled architectures of each shipped space.

For each space it samples valid architectures at random (seeded): the first K calibrate the
predictor (their measured latency against their sum of units, as a screening study does with
every point it confirms), the next N are predicted from the unit table (timing the units the
table lacks) and measured whole with measure_latency under the same settings. It prints, per
space, the fraction of predictions within 10% of the measurement, the median absolute error and
the median signed error, for the plain sum of units and for the calibrated prediction, and what
predicting and measuring cost. Each network is then measured again (``remeasured``): how far two
measurements of the same network agree is the noise floor, which no prediction can beat on this
machine. The last line is one JSON object per space:

    {"<space>": {"kendall_tau": t, "within_10pct": a, "remeasure_within_10pct": b}, ...}

with Kendall's tau between calibrated predictions and first measurements (the ranking a screening
relies on), the fraction of calibrated predictions within 10% of the first measurement, and the
fraction of re-measurements within 10% of it. Targets: tau >= 0.9 and a >= 0.9 * b.

    python benchmarks/latency_predictor.py --per-space 50 --calibrate 10 --input 256x512 --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from scipy.stats import kendalltau

from archsearch import build, deploy
from archsearch.cli.arguments import parse_size
from archsearch.latency import LatencySettings, device_name, measure_latency
from archsearch.latency.predictor import LatencyPredictor, default_unit_table_path
from archsearch.latency.unit_table import CalibrationTable, UnitLatencyTable
from archsearch.space.sampling import RandomSuggester, load_space, sample
from archsearch.arch.spec import ArchSpec

SPACES = Path(__file__).parent.parent / "spaces"
SPACE_FILES = ("rdrnet.yaml", "regseg.yaml")
WITHIN = 0.10
TARGET_TAU = 0.9
TARGET_SHARE_OF_FLOOR = 0.9
MAX_DRAWS_PER_ARCHITECTURE = 20


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-space", type=int, default=50, metavar="N", help="architectures per space (default 50)")
    parser.add_argument("--calibrate", type=int, default=10, metavar="K",
                        help="further architectures per space that calibrate the predictor first (default 10)")
    parser.add_argument("--input", type=parse_size, default=(256, 512), metavar="HxW", help="input (default 256x512)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--budget", type=float, default=1.0,
                        help="timing seconds per network and per unit (default 1)")
    parser.add_argument("--warmup", type=float, default=0.2, help="warm-up seconds per timing (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--table", type=Path, default=None,
                        help=f"unit table (default {default_unit_table_path()})")
    parser.add_argument("--verbose", action="store_true", help="print every architecture")
    return parser.parse_args(argv)


def sample_architectures(space_file: Path, count: int, seed: int) -> list[ArchSpec]:
    """``count`` valid, distinct architectures drawn uniformly from the space (invalid draws are skipped)."""
    space = load_space(space_file)
    suggester = RandomSuggester(random.Random(seed))
    specs: dict[str, ArchSpec] = {}
    for _ in range(count * MAX_DRAWS_PER_ARCHITECTURE):
        point = sample(space, suggester)
        if point.valid:
            specs.setdefault(point.spec.arch_hash, point.spec)
        if len(specs) == count:
            break
    return list(specs.values())


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    settings = LatencySettings(input_size=arguments.input, num_threads=arguments.threads,
                               warmup_seconds=arguments.warmup, min_warmup_iterations=3,
                               time_budget_seconds=arguments.budget, min_repeats=10)
    table = UnitLatencyTable(arguments.table or default_unit_table_path())
    scratch = Path(tempfile.mkdtemp(prefix="archsearch-calibration-"))
    height, width = settings.input_size
    print(f"{device_name(settings)}, {settings.num_threads} thread(s), input 1x3x{height}x{width}, fp32, eager; "
          f"unit table {table.path} ({len(table)} entries)")
    print(f"{'space':8s} {'archs':>5s} {'form':>10s} {'within 10%':>10s} {'median |err|':>12s} {'median err':>10s} "
          f"{'median IQR':>10s} {'predict s':>9s} {'measure s':>9s}")
    summary: dict[str, dict[str, float]] = {}
    for space_file in SPACE_FILES:
        specs = sample_architectures(SPACES / space_file, arguments.calibrate + arguments.per_space, arguments.seed)
        calibrating, evaluation = specs[:arguments.calibrate], specs[arguments.calibrate:]
        # A calibration table per space, as a study keeps one; the unit table is shared.
        calibration = CalibrationTable(scratch / f"{Path(space_file).stem}.db")
        predictor = LatencyPredictor(table, settings, calibration=calibration)
        for spec in calibrating:
            measured = measure_latency(deploy(build(spec)), settings).median_ms
            predictor.calibrate(spec.arch_hash, predictor.predict(spec), measured)
        sums, calibrated, spreads, first_measurements, predictions = [], [], [], [], []
        predict_seconds = measure_seconds = 0.0
        for spec in evaluation:
            started = time.perf_counter()
            predicted = predictor.predict(spec)
            predict_seconds += time.perf_counter() - started
            started = time.perf_counter()
            measured = measure_latency(deploy(build(spec)), settings)
            measure_seconds += time.perf_counter() - started
            sums.append(predicted.sum_ms / measured.median_ms - 1)
            calibrated.append(predicted.median_ms / measured.median_ms - 1)
            spreads.append(measured.relative_iqr)
            first_measurements.append(measured.median_ms)
            predictions.append(predicted.median_ms)
            if arguments.verbose:
                print(f"  {spec.name:48s} predicted {predicted.median_ms:9.2f} ms (sum {predicted.sum_ms:9.2f}), "
                      f"measured {measured.median_ms:9.2f} ms (IQR {measured.relative_iqr:5.1%}), "
                      f"error {calibrated[-1]:+6.1%}, {predicted.timed_units} units timed")
        factor = predictor.calibration_factor()
        again = [measure_latency(deploy(build(spec)), settings).median_ms for spec in evaluation]
        remeasured = [second / first - 1 for first, second in zip(first_measurements, again)]
        rows = [("sum", sums), (f"x{factor:.3f}", calibrated), ("remeasured", remeasured)]
        for form, errors in rows:
            within = sum(abs(error) <= WITHIN for error in errors) / len(errors)
            print(f"{Path(space_file).stem:8s} {len(errors):5d} {form:>10s} {within:10.0%} "
                  f"{statistics.median(abs(error) for error in errors):12.1%} {statistics.median(errors):+10.1%} "
                  f"{statistics.median(spreads):10.1%} {predict_seconds:9.1f} {measure_seconds:9.1f}")
        within = sum(abs(error) <= WITHIN for error in calibrated) / len(calibrated)
        floor = sum(abs(error) <= WITHIN for error in remeasured) / len(remeasured)
        tau = float(kendalltau(predictions, first_measurements).statistic)
        verdict = "met" if tau >= TARGET_TAU and within >= TARGET_SHARE_OF_FLOOR * floor else "NOT met"
        print(f"         Kendall tau {tau:.3f}; within {WITHIN:.0%}: {within:.0%} predicted, {floor:.0%} re-measured; "
              f"target tau >= {TARGET_TAU} and predicted >= {TARGET_SHARE_OF_FLOOR} x re-measured: {verdict}")
        summary[Path(space_file).stem] = {"kendall_tau": round(tau, 4), "within_10pct": round(within, 4),
                                          "remeasure_within_10pct": round(floor, 4)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
