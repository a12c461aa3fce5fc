"""``archsearch list`` and ``archsearch build``: the presets, and one network counted, folded or saved."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from archsearch.cli.arguments import parse_size, positive_int
from archsearch.errors import SpecError


def command_list(arguments: argparse.Namespace) -> int:
    from archsearch.arch.presets import preset_names, preset_path
    from archsearch.io import read_yaml

    names = preset_names(arguments.pattern)
    if not names:
        raise SpecError("no preset matches", path="PATTERN", value=arguments.pattern,
                        allowed=", ".join(preset_names()))
    for name in names:
        description = read_yaml(preset_path(name)).get("description", "")
        print(f"{name:28s} {description.split(':')[0]}")
    return 0


def command_build(arguments: argparse.Namespace) -> int:
    from archsearch.arch.analyze import analyze
    from archsearch.arch.build import build, resolve_spec
    from archsearch.arch.checkpoints import WidenedWeightsWarning, load_weights_any_form
    from archsearch.arch.deploy import deploy
    from archsearch.arch.memory import allocation_guard, check_fits_building

    if arguments.save is not None:
        check_save_path(arguments.save, force=arguments.force)
    spec = resolve_spec(arguments.spec)
    check_fits_building(spec, arguments.input, num_classes=arguments.classes, deploy=arguments.deploy,
                        source=str(arguments.spec))
    analysis = analyze(spec, arguments.input, num_classes=arguments.classes)  # on the meta device: no memory
    with allocation_guard(what=f"building {spec.name}", source=str(arguments.spec)):
        model = build(spec, num_classes=arguments.classes)
        if arguments.weights is not None:
            with warnings.catch_warnings(record=True) as notes:
                warnings.simplefilter("always", WidenedWeightsWarning)
                model = load_weights_any_form(model, arguments.weights, trust=arguments.trust_checkpoint)
            for note in notes:  # a conversion of the weights is said as a note; anything else as it was
                if issubclass(note.category, WidenedWeightsWarning):
                    print(f"note: {note.message}", file=sys.stderr)
                else:
                    warnings.warn_explicit(note.message, note.category, note.filename, note.lineno)
        if arguments.deploy:
            model = deploy(model)
    if arguments.save is not None:
        save_built(arguments.save, spec, model)
    report = {**analysis.to_dict(), "hash": analysis.arch_hash, "deploy": arguments.deploy,
              "weights": str(arguments.weights) if arguments.weights else None,
              "saved": str(arguments.save) if arguments.save else None}
    if arguments.json:
        print(json.dumps(report))
    else:
        print_analysis(report)
    return 0


SPEC_SUFFIXES = (".yaml", ".yml")
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth")


def check_save_path(path: Path, *, force: bool) -> None:
    """Before any work: the file name says what to save, and the path can be written (replaced only with --force)."""
    from archsearch.io import check_output_file

    if path.suffix not in SPEC_SUFFIXES + WEIGHTS_SUFFIXES:
        raise SpecError("cannot tell what to save from the file name", source="--save", value=str(path),
                        allowed=".yaml (the spec), .safetensors, .pt or .pth (the weights)")
    check_output_file(path, flag="--save", force=force)


def save_built(path: Path, spec, model) -> None:
    """``.yaml`` saves the spec; ``.safetensors``/``.pt``/``.pth`` the weights of the form built."""
    from archsearch.io import write_state_dict, write_text_atomic

    if path.suffix in SPEC_SUFFIXES:
        write_text_atomic(path, spec.to_yaml())
    else:
        write_state_dict(path, model.state_dict())


def print_analysis(report: dict) -> None:
    height, width = report["input_size"]
    rows = [
        ("name", report["name"]),
        ("hash", report["hash"]),
        ("params (train, no aux)", f"{report['params_train']:,}"),
        ("params (aux head)", f"{report['params_aux']:,}"),
        ("params (deploy)", f"{report['params_deploy']:,}"),
        (f"MACs (deploy, {height}x{width})", f"{report['macs']:,} ({report['macs'] / 1e9:.1f} G)"),
        ("receptive field", f"{report['receptive_field']} px"),
        ("output stride", str(report["output_stride"])),
        ("classes", str(report["num_classes"])),
    ]
    if report["weights"]:
        rows.append(("weights", report["weights"]))
    if report["saved"]:
        rows.append(("saved", report["saved"]))
    for label, value in rows:
        print(f"{label:28s} {value}")


def add_build_commands(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("list", help="list the named presets")
    listing.add_argument("pattern", nargs="?", metavar="PATTERN", help="substring or shell pattern (rdrnet-*)")
    listing.set_defaults(handler=command_list)

    building = commands.add_parser("build", help="build a preset or spec file and count it")
    building.add_argument("spec", metavar="NAME|FILE", help="a preset name or a spec YAML file")
    building.add_argument("--input", type=parse_size, default=(1024, 2048), metavar="HxW",
                          help="input size for MACs (default 1024x2048)")
    building.add_argument("--classes", type=positive_int, default=19, metavar="N", help="number of classes")
    building.add_argument("--deploy", action="store_true", help="convert to the deploy form")
    building.add_argument("--json", action="store_true", help="print one JSON object")
    building.add_argument("--save", type=Path, metavar="PATH",
                          help="write the spec (.yaml) or the built weights (.safetensors, .pt)")
    building.add_argument("--force", action="store_true", help="let --save replace an existing file")
    building.add_argument("--weights", type=Path, metavar="CKPT",
                          help="a checkpoint: archsearch's own or the authors' official layout")
    building.add_argument("--trust-checkpoint", action="store_true",
                          help="allow a .pth checkpoint that holds more than tensors (unpickling runs code)")
    building.set_defaults(handler=command_build)
