"""``archsearch export``: package a trained trial for deployment (spec, deploy weights, ONNX, card)."""

from __future__ import annotations

import argparse
from pathlib import Path

from archsearch.cli.arguments import non_negative_float, non_negative_int, output_path
from archsearch.errors import SpecError


def command_export(arguments: argparse.Namespace) -> int:
    from archsearch.export import export_trial, select_trial
    from archsearch.export.directory import check_export_target

    if arguments.trial is not None and arguments.max_latency is not None:
        raise SpecError("--max-latency narrows the choice of --best; it does not apply to a given --trial",
                        source="--max-latency", value=arguments.max_latency, allowed="--best --max-latency MS")
    if arguments.out is not None:
        check_export_target(arguments.out, force=arguments.force, run_dir=arguments.run)
    choice = select_trial(arguments.run, trial_number=arguments.trial, max_latency_ms=arguments.max_latency)
    exported = export_trial(arguments.run, choice, out_dir=arguments.out, force=arguments.force)
    card = exported.card
    score = (f"mIoU {card['miou']:.4f}" if card["miou"] is not None else
             f"supernet mIoU {card['supernet_miou']:.4f}" if card["supernet_miou"] is not None else "no mIoU")
    print(f"exported trial {card['trial']} of study {card['study']} (arch {card['arch_hash']}, {score}) "
          f"to {exported.directory}")
    print(f"ONNX max abs difference from PyTorch: {card['onnx']['max_abs_diff']:.3g}")
    print(f"rebuild: {card['rebuild_command']}")
    return 0


def add_export_command(commands: argparse._SubParsersAction) -> None:
    exporting = commands.add_parser("export", help="package a trained trial: spec, deploy weights, ONNX, card")
    exporting.add_argument("run", type=Path, metavar="RUN", help="a run directory")
    which = exporting.add_mutually_exclusive_group()
    which.add_argument("--trial", type=non_negative_int, metavar="N", help="this trial (must be COMPLETE)")
    which.add_argument("--best", action="store_true",
                       help="the COMPLETE trial best by the study's first objective (the default)")
    exporting.add_argument("--max-latency", type=non_negative_float, metavar="MS",
                           help="with --best: only trials whose measured latency_ms is at most MS")
    exporting.add_argument("--out", type=output_path, metavar="DIR",
                           help="where to write (default RUN/exports/trial_<N>-<arch hash>)")
    exporting.add_argument("--force", action="store_true", help="replace DIR if an earlier export wrote it")
    exporting.set_defaults(handler=command_export)
