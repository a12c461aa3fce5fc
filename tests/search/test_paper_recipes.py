"""The papers' recipes in studies/paper/ against the authors' own values, field by field.

Each table below is copied from the authors' configuration file named in its comment (the
mmsegmentation configs at the root of github.com/gyyang23/RDRNet; configs/*.yaml of
github.com/RolandGao/RegSeg). A study must state every one of those values, and every training
and augmentation value a study file states must be in its table, so that nothing unreviewed
slips into a recipe.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archsearch import load_spec
from archsearch.arch.presets import preset_path
from archsearch.cli.dry_run import first_point, resolved_study
from archsearch.cli.main import main
from archsearch.search import load_study
from tests.helpers.paths import REPOSITORY, STUDIES

PAPER = STUDIES / "paper"
CITYSCAPES_CLASS_WEIGHTS = [0.8373, 0.918, 0.866, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023, 0.9539,
                            0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529, 1.0507]

AUTHORS = {
    # gyyang23/RDRNet rdrnet-s_2xb6-120k_cityscapes-1024x1024.py
    "rdrnet-s_cityscapes.yaml": {
        "preset": "rdrnet-s", "dataset": "cityscapes", "train_split": "train", "val_split": "val",
        "input_size": [1024, 2048], "seeds": [304],                    # randomness = dict(seed=304)
        "training.optimizer": "sgd", "training.lr": 0.01, "training.momentum": 0.9,
        "training.weight_decay": 0.0005, "training.weight_decay_exempt": "none",
        "training.schedule": "poly", "training.poly_power": 0.9, "training.warmup_iterations": 0,
        "training.iterations": 120000, "training.batch_size": 12,      # 2 GPUs x 6
        "training.processes": 2, "training.sync_batchnorm": False,     # 2xb6, norm_cfg BN (not SyncBN)
        "training.loss": "ohem", "training.ohem_threshold": 0.9, "training.ohem_min_kept": 131072,
        "training.ohem_normalisation": "kept_pixels",                 # mmseg OhemCrossEntropy: pixel_losses.mean()
        "training.class_weights": CITYSCAPES_CLASS_WEIGHTS, "training.aux_weight": 0.4,
        "training.eval_every": 12000, "training.amp": None, "training.device": "cuda",
        "augmentation.crop_size": [1024, 1024], "augmentation.scale_range": [0.5, 2.0],
        "augmentation.scale_base": [1024, 2048],                       # RandomResize scale=(2048, 1024)
        "augmentation.cat_max_ratio": 0.75,                            # RandomCrop cat_max_ratio=0.75
        "augmentation.pad_value": "mean", "augmentation.pad_position": "bottom_right",   # pad_val=0, seg_pad_val=255
        "augmentation.pad_order": "after_normalisation",               # SegDataPreProcessor: normalise, then pad
        "augmentation.eval_size": [1024, 2048],                        # Resize scale=(2048, 1024)
        "objective": "miou",                                           # the last evaluation's mIoU
        "augmentation.short_side_range": None, "augmentation.flip": True, "augmentation.photometric": True,
        "augmentation.randaugment_ops": 0, "augmentation.class_uniform_pct": 0.0,
    },
    # gyyang23/RDRNet rdrnet-s-simple_1xb12-7800_camvid-720x960.py (the repository's only CamVid recipe)
    "rdrnet-s-simple_camvid.yaml": {
        "preset": "rdrnet-s-simple", "dataset": "camvid", "train_split": "train", "val_split": "test",
        "input_size": [720, 960], "seeds": [304],
        "training.optimizer": "sgd", "training.lr": 0.001, "training.momentum": 0.9,
        "training.weight_decay": 0.0005, "training.weight_decay_exempt": "none",
        "training.schedule": "poly", "training.poly_power": 0.9, "training.warmup_iterations": 0,
        "training.iterations": 7800, "training.batch_size": 12, "training.processes": 1,   # 1xb12
        "training.loss": "ohem", "training.ohem_threshold": 0.9, "training.ohem_min_kept": 131072,
        "training.ohem_normalisation": "kept_pixels",
        "training.class_weights": None, "training.aux_weight": 0.4, "training.eval_every": 780,
        "training.amp": None, "training.device": "cuda",
        "augmentation.crop_size": [960, 720], "augmentation.scale_range": [0.5, 2.0],
        "augmentation.scale_base": [720, 960],                         # RandomResize scale=(960, 720)
        "augmentation.cat_max_ratio": 0.75,                            # RandomCrop cat_max_ratio=0.75
        "augmentation.pad_value": "mean", "augmentation.pad_position": "bottom_right",
        "augmentation.pad_order": "after_normalisation",
        "augmentation.eval_size": [720, 960],                          # Resize scale=(960, 720), keep_ratio=False
        "objective": "miou",
        "augmentation.short_side_range": None, "augmentation.flip": True, "augmentation.photometric": True,
        "augmentation.randaugment_ops": 0, "augmentation.class_uniform_pct": 0.0,
    },
    # RolandGao/RegSeg configs/cityscapes_1000epochs.yaml (model exp48_decoder26)
    "regseg_cityscapes.yaml": {
        "preset": "regseg", "dataset": "cityscapes", "train_split": "train", "val_split": "val",
        "input_size": [1024, 2048], "seeds": [0],                      # RNG_seed: 0, val_input_size: 1024
        "training.optimizer": "sgd", "training.lr": 0.05, "training.momentum": 0.9,
        "training.weight_decay": 0.0001, "training.weight_decay_exempt": "batchnorm",   # bn_weight_decay: False
        "training.schedule": "poly", "training.poly_power": 0.9,
        "training.warmup_iterations": 3000, "training.warmup_factor": 0.1,
        "training.warmup_style": "multiplied",                         # lr_schedulers.poly_lr_scheduler
        "training.eval_every_epochs": 25, "training.eval_last_epochs": 30,   # save_every/last_k_epochs
        "training.epochs": 1000, "training.batch_size": 8,
        "training.loss": "cross_entropy", "training.class_weights": None, "training.aux_weight": 0.0,
        "training.amp": "fp16", "training.device": "cuda",           # mixed_precision: True (torch.cuda.amp)
        "augmentation.crop_size": [768, 768], "augmentation.scale_range": None,
        "augmentation.short_side_range": [400, 1600], "augmentation.flip": True,
        "augmentation.photometric": False, "augmentation.randaugment_ops": 2,    # aug_mode: randaug_reduced
        "augmentation.randaugment_magnitude": 0.2, "augmentation.class_uniform_pct": 0.5,
        "augmentation.class_uniform_sampling": "per_epoch", "augmentation.class_uniform_tile": 1024,
        "augmentation.pad_value": "mean", "augmentation.pad_position": "random",  # fill int(mean*255), RandomPad
        "augmentation.pad_order": "after_colour",                      # build_train_transform2: after RandAugment
        "augmentation.eval_short_side": 1024,                          # val_input_size: 1024
        "augmentation.cat_max_ratio": 1.0,                             # RegSeg's RandomCrop has none
        "objective": "miou_best",                                      # best_mIU
    },
    # RolandGao/RegSeg configs/camvid_200epochs.yaml
    "regseg_camvid.yaml": {
        "preset": "regseg", "dataset": "camvid", "train_split": "train+val", "val_split": "test",
        "input_size": [720, 960], "seeds": [0],                        # train_split: trainval, val_split: test
        "training.optimizer": "sgd", "training.lr": 0.005, "training.momentum": 0.9,
        "training.weight_decay": 0.0001, "training.weight_decay_exempt": "batchnorm",
        "training.schedule": "poly", "training.poly_power": 0.9,
        "training.warmup_iterations": 1000, "training.warmup_factor": 0.1,
        "training.warmup_style": "multiplied",
        "training.eval_every_epochs": 20, "training.eval_last_epochs": 10,
        "training.epochs": 200, "training.batch_size": 12,
        "training.loss": "cross_entropy", "training.class_weights": None, "training.aux_weight": 0.0,
        "training.amp": "fp16", "training.device": "cuda",
        "augmentation.crop_size": [720, 960], "augmentation.scale_range": None,
        "augmentation.short_side_range": [288, 1152], "augmentation.flip": True,
        "augmentation.photometric": False, "augmentation.randaugment_ops": 0,    # aug_mode: baseline
        "augmentation.class_uniform_pct": 0.0,
        "augmentation.pad_value": "mean", "augmentation.pad_position": "random",
        "augmentation.pad_order": "at_crop",                           # build_train_transform: RandomCrop pads
        "augmentation.eval_short_side": 720,                           # val_input_size: 720
        "augmentation.cat_max_ratio": 1.0,
        "objective": "miou_best",
    },
}


def load_recipe(name: str, tmp_path: Path):
    return load_study(PAPER / name, [f"dataset.root={tmp_path}"])


def test_every_paper_study_has_a_table() -> None:
    assert sorted(path.name for path in PAPER.glob("*.yaml")) == sorted(AUTHORS)


@pytest.mark.parametrize("name", sorted(AUTHORS))
def test_recipe_matches_the_authors_values(name, tmp_path) -> None:
    table = AUTHORS[name]
    config = load_recipe(name, tmp_path)
    resolved = resolved_study(config)
    options = dict(config.dataset.options)
    actual = {"dataset": config.dataset.name, "train_split": options.get("train_split", "train"),
              "val_split": options.get("val_split", "val"), "input_size": list(config.input_size),
              "seeds": list(config.seeds), "objective": config.objectives[0].metric}
    for section in ("training", "augmentation"):
        actual.update({f"{section}.{key}": value for key, value in resolved[section].items()})
    for key, expected in table.items():
        if key != "preset":
            assert actual[key] == pytest.approx(expected) if isinstance(expected, (float, list)) \
                else actual[key] == expected, key
    written = yaml.safe_load((PAPER / name).read_text())
    for section in ("training", "augmentation"):
        unreviewed = {f"{section}.{key}" for key in written[section]} - set(table)
        assert not unreviewed, f"{name} states values no table of the authors' has: {unreviewed}"


@pytest.mark.parametrize("name", sorted(AUTHORS))
def test_recipe_trains_the_papers_network(name, tmp_path) -> None:
    point = first_point(load_recipe(name, tmp_path))
    assert point.spec is not None, point.invalid_reason
    assert point.spec.arch_hash == load_spec(preset_path(AUTHORS[name]["preset"])).arch_hash


@pytest.mark.parametrize("name, hint", [("rdrnet-s_cityscapes.yaml", "gtFine_trainvaltest.zip"),
                                        ("regseg_cityscapes.yaml", "leftImg8bit/"),
                                        ("rdrnet-s-simple_camvid.yaml", "720x960"),
                                        ("regseg_camvid.yaml", "_L.png")])
def test_without_the_data_a_recipe_exits_2_naming_where_it_looked_and_how_to_prepare(name, hint, tmp_path,
                                                                                        capsys) -> None:
    missing = tmp_path / "nowhere"
    status = main(["run", str(PAPER / name), "--set", f"dataset.root={missing}", "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert status == 2 and str(missing) in error and hint in error, error
    assert "Traceback" not in error and not (tmp_path / "run").exists()


def test_recipes_default_to_a_data_folder_in_the_project(capsys, tmp_path) -> None:
    if (REPOSITORY / "data" / "cityscapes").exists():
        pytest.skip("this checkout holds Cityscapes in data/cityscapes")
    status = main(["run", str(PAPER / "regseg_cityscapes.yaml"), "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert status == 2 and str(REPOSITORY / "data" / "cityscapes") in error


@pytest.mark.parametrize("name", sorted(path.name for path in PAPER.glob("*.yaml")))
def test_a_recipe_can_be_viewed_with_a_dry_run_without_its_data(name, tmp_path, capsys) -> None:
    """The README offers ``--dry-run`` as the way to read a recipe; it reads no data, so it needs none."""
    missing = tmp_path / "nowhere"
    status = main(["run", str(PAPER / name), "--set", f"dataset.root={missing}", "--dry-run"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "# first point" in captured.out and "no data was read" in captured.out
