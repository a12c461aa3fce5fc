"""export_trial: one trained trial of a run in, a self-contained deployment directory out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsearch.arch.analyze import analyze
from archsearch.arch.build import build
from archsearch.arch.checkpoints import load_weights
from archsearch.arch.deploy import deploy
from archsearch.errors import SpecError
from archsearch.export import onnx_check
from archsearch.export.card import card_markdown
from archsearch.export.directory import check_export_target, write_directory_atomic
from archsearch.export.selection import TrialChoice
from archsearch.io import write_state_dict
from archsearch.run.directory import RunDirectory
from archsearch.arch.spec import ArchSpec, load_spec


@dataclass(frozen=True)
class ExportedModel:
    """Where the export went, and its model card (as written to ``card.json``)."""

    directory: Path
    card: dict[str, Any]


def default_export_dir(run_dir: Path, choice: TrialChoice) -> Path:
    return Path(run_dir) / "exports" / f"trial_{choice.number}-{choice.arch_hash}"


def export_trial(run_dir: Path, choice: TrialChoice, *, out_dir: Path | None = None,
                 force: bool = False) -> ExportedModel:
    """Write ``arch.yaml``, deploy-form ``model.safetensors``, ``model.onnx`` and ``card.json``/``card.md``.

    The directory appears complete or not at all (see ``write_directory_atomic``). The ONNX
    model is exported at the study's input size and checked against PyTorch in ONNX Runtime.
    """
    run = RunDirectory(Path(run_dir))
    target = Path(out_dir) if out_dir is not None else default_export_dir(run.root, choice)
    check_export_target(target, force=force, run_dir=run.root)
    spec = _trial_spec(run, choice)
    weights = run.weights_path(choice.number)
    if not weights.is_file():
        raise SpecError("the trial's weights file is missing", source=str(weights),
                        allowed=f"the weights `archsearch run` saved for trial {choice.number}")
    input_size = choice.input_size
    deployed = deploy(load_weights(build(spec, num_classes=choice.num_classes), weights))
    analysis = analyze(spec, input_size, num_classes=choice.num_classes)
    card = {
        "study": choice.study_name, "run": str(run.root), "trial": choice.number, "seed": choice.seed,
        "name": spec.name, "arch_hash": spec.arch_hash, "num_classes": choice.num_classes,
        "in_channels": spec.in_channels, "input_size": list(input_size), "miou": choice.miou,
        "supernet_miou": choice.supernet_miou,
        "params_train": analysis.params_train, "params_deploy": analysis.params_deploy, "macs": analysis.macs,
        "receptive_field": analysis.receptive_field, "output_stride": analysis.output_stride,
        "latency": choice.latency,
        "rebuild_command": f"archsearch build arch.yaml --weights model.safetensors --classes {choice.num_classes}",
    }

    def fill(folder: Path) -> dict[str, Any]:
        (folder / "arch.yaml").write_text(spec.to_yaml(), encoding="utf-8")
        write_state_dict(folder / "model.safetensors", deployed.state_dict())
        check = onnx_check.write_checked_onnx(deployed, (1, spec.in_channels, *input_size), folder / "model.onnx")
        full_card = {**card, "onnx": {"file": "model.onnx", "exporter": check.exporter,
                                      "input_shape": list(check.input_shape), "max_abs_diff": check.max_abs_diff,
                                      "runtime": check.runtime}}
        (folder / "card.json").write_text(json.dumps(full_card, indent=2) + "\n", encoding="utf-8")
        (folder / "card.md").write_text(card_markdown(full_card), encoding="utf-8")
        return full_card

    return ExportedModel(directory=target, card=write_directory_atomic(target, fill, force=force))


def _trial_spec(run: RunDirectory, choice: TrialChoice) -> ArchSpec:
    path = run.spec_path(choice.arch_hash)
    spec = load_spec(path)
    if spec.arch_hash != choice.arch_hash:
        raise SpecError("the spec file's architecture does not have the hash it is filed under", source=str(path),
                        value=spec.arch_hash, allowed=choice.arch_hash)
    return spec
