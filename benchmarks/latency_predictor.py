"""How good is the latency predictor? Predict and measure sampled architectures of each shipped space.

For each space it samples valid architectures at random (seeded) and predicts each from the unit
table (timing the units the table lacks, all together in interleaved rounds, as the predictor
does). Then it measures all of them whole, in interleaved rounds (protocol.ROUNDS, every network
once per round, the order reversed every other round), so that a machine that drifts during the
measurement slows every network alike and the ranking is the machine's, not the moment's; and then
measures them all so again (``remeasured``): how far two measurements of the same networks agree is
the noise floor, which no prediction can beat on this machine. K networks, spread evenly over the
measuring order, calibrate the predictor (their first measurement against their sum of units, as a
screening study does with every point it confirms); the other N are evaluated.
It prints, per space, the fraction within 10% of the first measurement, the median absolute and
signed errors for the plain sum of units, the calibrated prediction and the re-measurement, and
what predicting and measuring cost. The last line is one JSON object per space:

    {"<space>": {"kendall_tau": t, "within_10pct": a, "remeasure_within_10pct": b,
                 "remeasure_kendall_tau": f}, ...}

with Kendall's tau between calibrated predictions and first measurements (the ranking a screening
relies on), the fraction of calibrated predictions within 10% of the first measurement, the
fraction of re-measurements within 10% of it, and the re-measurement's own tau (the floor for t).
Targets: tau >= 0.9 and a >= 0.9 * b.

    python benchmarks/latency_predictor.py --per-space 50 --calibrate 10 --input 256x512 --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from scipy.stats import kendalltau

from archsearch import build, deploy
from archsearch.cli.arguments import parse_size
from archsearch.latency import LatencySettings, device_name
from archsearch.latency.measure import measure_together
from archsearch.latency.protocol import ROUNDS
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
    parser.add_argument("--budget", type=float, default=1.0, help="timing seconds per unit (default 1)")
    parser.add_argument("--measure-budget", type=float, default=3.0,
                        help="timing seconds per network in each of the two measurements (default 3)")
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


def measure_all(specs: list[ArchSpec], settings: LatencySettings) -> list[float]:
    """Each network's median latency (ms), all timed in the same interleaved rounds."""
    return [result.median_ms for result in measure_together([deploy(build(spec)) for spec in specs], settings, ROUNDS)]


def calibration_indices(count: int, calibrate: int) -> set[int]:
    """``calibrate`` positions spread evenly over the ``count`` networks' measuring order.

    Spread, not the first K: in a list of 58 measured in interleaved rounds, the first 16
    measured about 7% slower against their re-measurement than the rest, which a study (two
    networks at a time) never sees; calibrating on them alone moved every prediction by as much.
    """
    return {round(index * (count - 1) / max(calibrate - 1, 1)) for index in range(calibrate)}


def fraction_within(estimates: list[float], truths: list[float]) -> float:
    return sum(abs(estimate / truth - 1) <= WITHIN for estimate, truth in zip(estimates, truths)) / len(truths)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    settings = LatencySettings(input_size=arguments.input, num_threads=arguments.threads,
                               warmup_seconds=arguments.warmup, min_warmup_iterations=3,
                               time_budget_seconds=arguments.budget, min_repeats=10)
    whole = replace(settings, time_budget_seconds=arguments.measure_budget, min_repeats=ROUNDS)
    table = UnitLatencyTable(arguments.table or default_unit_table_path())
    scratch = Path(tempfile.mkdtemp(prefix="archsearch-calibration-"))
    height, width = settings.input_size
    print(f"{device_name(settings)}, {settings.num_threads} thread(s), input 1x3x{height}x{width}, fp32, eager; "
          f"unit table {table.path} ({len(table)} entries); {ROUNDS} interleaved rounds per measurement")
    print(f"{'space':8s} {'archs':>5s} {'form':>10s} {'within 10%':>10s} {'median |err|':>12s} {'median err':>10s} "
          f"{'tau':>6s} {'predict s':>9s} {'measure s':>9s}")
    summary: dict[str, dict[str, float]] = {}
    for space_file in SPACE_FILES:
        space = Path(space_file).stem
        specs = sample_architectures(SPACES / space_file, arguments.calibrate + arguments.per_space, arguments.seed)
        # A calibration table per space, as a study keeps one; the unit table is shared.
        predictor = LatencyPredictor(table, settings, calibration=CalibrationTable(scratch / f"{space}.db"))
        started = time.perf_counter()
        predictions = predictor.predict_many(specs)
        predict_seconds = time.perf_counter() - started
        started = time.perf_counter()
        first = measure_all(specs, whole)
        measure_seconds = time.perf_counter() - started
        again = measure_all(specs, whole)
        calibrating = calibration_indices(len(specs), arguments.calibrate)
        for index in calibrating:
            predictor.calibrate(specs[index].arch_hash, predictions[index], first[index])
        factor = predictor.calibration_factor()
        evaluated = [index for index in range(len(specs)) if index not in calibrating]
        truths, remeasured = [first[index] for index in evaluated], [again[index] for index in evaluated]
        sums = [predictions[index].sum_ms for index in evaluated]
        calibrated = [total * factor for total in sums]
        if arguments.verbose:
            for spec, total, truth, second in zip([specs[index] for index in evaluated], calibrated, truths,
                                                  remeasured):
                print(f"  {spec.name:40s} predicted {total:9.2f} ms, measured {truth:9.2f} ms, "
                      f"error {total / truth - 1:+6.1%}, re-measured {second / truth - 1:+6.1%}")
        taus = {}
        for form, estimates in (("sum", sums), (f"x{factor:.3f}", calibrated), ("remeasured", remeasured)):
            errors = [estimate / truth - 1 for estimate, truth in zip(estimates, truths)]
            taus[form] = float(kendalltau(estimates, truths).statistic)
            print(f"{space:8s} {len(errors):5d} {form:>10s} {fraction_within(estimates, truths):10.0%} "
                  f"{statistics.median(abs(error) for error in errors):12.1%} {statistics.median(errors):+10.1%} "
                  f"{taus[form]:6.3f} {predict_seconds:9.1f} {measure_seconds:9.1f}")
        tau, floor_tau = taus[f"x{factor:.3f}"], taus["remeasured"]
        within, floor = fraction_within(calibrated, truths), fraction_within(remeasured, truths)
        verdict = "met" if tau >= TARGET_TAU and within >= TARGET_SHARE_OF_FLOOR * floor else "NOT met"
        print(f"         Kendall tau {tau:.3f} (re-measured {floor_tau:.3f}); within {WITHIN:.0%}: {within:.0%} "
              f"predicted, {floor:.0%} re-measured; target tau >= {TARGET_TAU} and predicted >= "
              f"{TARGET_SHARE_OF_FLOOR} x re-measured: {verdict}")
        summary[space] = {"kendall_tau": round(tau, 4), "within_10pct": round(within, 4),
                          "remeasure_within_10pct": round(floor, 4), "remeasure_kendall_tau": round(floor_tau, 4)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
