"""``archsearch latency``: time a network's deploy form on this machine."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from archsearch.cli.arguments import non_negative_float, parse_size, positive_int
from archsearch.errors import SpecError

if TYPE_CHECKING:
    from archsearch.latency import LatencySettings

# LatencySettings field -> the flag that sets it, so a bad value is reported under the flag the user typed.
LATENCY_FLAGS = {"input_size": "--input", "device": "--device", "dtype": "--dtype", "backend": "--backend",
                 "num_threads": "--threads", "channels_last": "--channels-last",
                 "time_budget_seconds": "--budget", "warmup_seconds": "--warmup"}


def latency_settings_from_flags(arguments: argparse.Namespace) -> LatencySettings:
    """LatencySettings from the flags given; flags left out keep LatencySettings' defaults."""
    from archsearch.latency import LatencySettings

    given = {field: getattr(arguments, field) for field in LATENCY_FLAGS if getattr(arguments, field) is not None}
    try:
        return LatencySettings(**given)
    except SpecError as error:
        raise _under_flag(error) from None


def _under_flag(error: SpecError) -> SpecError:
    flag = LATENCY_FLAGS.get(error.path.split("[")[0])
    if flag is None or error.source:
        return error
    return SpecError(error.message, value=error.value, allowed=error.allowed, source=flag)


def command_latency(arguments: argparse.Namespace) -> int:
    from archsearch.arch.build import build, resolve_spec
    from archsearch.arch.deploy import deploy
    from archsearch.latency import device_name, measure_latency
    from archsearch.latency.relative import measure_relative

    settings = latency_settings_from_flags(arguments)
    try:
        device_name(settings)  # a missing device is reported before any model is built
    except SpecError as error:
        raise _under_flag(error) from None
    spec = resolve_spec(arguments.spec)
    model = deploy(build(spec, num_classes=arguments.classes))
    reference = None
    if arguments.reference is not None:
        try:
            reference = resolve_spec(arguments.reference)
        except SpecError as error:
            raise SpecError(error.message, value=error.value, allowed=error.allowed, source="--reference") from None
    try:
        if reference is None:
            result = measure_latency(model, settings)
        else:
            relative = measure_relative(model, deploy(build(reference, num_classes=arguments.classes)), settings,
                                        reference_name=arguments.reference)
            result = relative.candidate
    except SpecError as error:
        raise _under_flag(error) from None
    report = {"name": spec.name, "hash": spec.arch_hash, "num_classes": arguments.classes, **result.to_dict()}
    if reference is not None:
        report.update(reference=arguments.reference, reference_hash=reference.arch_hash,
                      reference_median_ms=relative.reference.median_ms, ratio=relative.ratio,
                      ratio_noise=relative.noise, rounds=len(relative.round_ratios))
    if arguments.json:
        print(json.dumps(report))
    else:
        print_latency(report)
    return 0


def print_latency(report: dict) -> None:
    settings = report["settings"]
    height, width = settings["input_size"]
    threads = settings["num_threads"]
    layout = ", channels-last" if settings["channels_last"] else ""
    rows = [
        ("name", report["name"]),
        ("hash", report["hash"]),
        ("input", f"{settings['batch_size']}x{settings['input_channels']}x{height}x{width} "
                  f"{settings['dtype']}{layout}"),
        ("device", f"{report['device_name']} ({settings['device']}, {threads} thread{'s' * (threads > 1)})"),
        ("backend", report["backend"]),
        ("median", f"{report['median_ms']:.3f} ms"),
        ("IQR", f"{report['iqr_ms']:.3f} ms ({report['iqr_ms'] / report['median_ms']:.1%} of the median)"),
        ("repeats", str(report["repeats"])),
    ]
    if "ratio" in report:
        rows += [
            ("reference", f"{report['reference']}: {report['reference_median_ms']:.3f} ms median, timed in the same "
                          f"{report['rounds']} interleaved rounds"),
            ("ratio", f"{report['ratio']:.3f} (noise band +-{report['ratio_noise']:.1%}; median of per-round ratios)"),
        ]
    for label, value in rows:
        print(f"{label:10s} {value}")


def add_latency_command(commands: argparse._SubParsersAction) -> None:
    # Its help quotes LatencySettings' defaults, which import torch: added when the command is used.
    commands.add_parser("latency", help="time a network's deploy form on this machine",
                        add_arguments=add_latency_arguments)


def add_latency_arguments(timing: argparse.ArgumentParser) -> None:
    from archsearch.latency.settings import BACKEND_NAMES, DTYPES, LatencySettings

    default = LatencySettings()
    timing.add_argument("spec", metavar="NAME|FILE", help="a preset name or a spec YAML file")
    timing.add_argument("--input", dest="input_size", type=parse_size, metavar="HxW",
                        help="input size (default {}x{})".format(*default.input_size))
    timing.add_argument("--classes", type=positive_int, default=19, metavar="N", help="number of classes")
    timing.add_argument("--device", metavar="D", help=f"cpu, cuda or cuda:N (default {default.device})")
    timing.add_argument("--dtype", metavar="T", help=f"{', '.join(DTYPES)} (default {default.dtype})")
    timing.add_argument("--backend", metavar="B",
                        help=f"{', '.join(BACKEND_NAMES)} (default {default.backend})")
    timing.add_argument("--threads", dest="num_threads", type=positive_int, metavar="N",
                        help=f"CPU threads (default {default.num_threads})")
    timing.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                        help="NHWC memory layout (eager and compile)")
    timing.add_argument("--budget", dest="time_budget_seconds", type=non_negative_float, metavar="SECONDS",
                        help=f"seconds of timing after warm-up (default {default.time_budget_seconds:g})")
    timing.add_argument("--warmup", dest="warmup_seconds", type=non_negative_float, metavar="SECONDS",
                        help=f"seconds of warm-up (default {default.warmup_seconds:g})")
    timing.add_argument("--reference", metavar="NAME|FILE",
                        help="also time this network in interleaved rounds and print the latency ratio to it")
    timing.add_argument("--json", action="store_true", help="print one JSON object")
    timing.set_defaults(handler=command_latency)
