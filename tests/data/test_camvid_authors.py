"""CamVid as RDRNet's mmseg fork and RegSeg read it, and the evaluation/rescale options their recipes use.

Expected values come from the authors' code: mmseg's ``CamVid`` METAINFO (gyyang23/RDRNet
``mmseg/datasets/camvid.py``: classes and palette, ``seg_map_suffix='_L.png'``, ``{split}_labels``)
and RegSeg's ``datasets/camvid.py`` (``color_to_class``, ``class_names``, ``<name>_L.png``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from archsearch.data import AugmentationConfig, CamVidDataset, build_dataset
from archsearch.data.transforms import RandomScale
from archsearch.errors import SpecError
from archsearch.search import load_study
from archsearch.study.datasets import check_data
from archsearch.train import evaluate

MMSEG_CLASSES = ("Bicyclist", "Building", "Car", "Column_Pole", "Fence", "Pedestrian", "Road", "Sidewalk",
                 "SignSymbol", "Sky", "Tree")
MMSEG_PALETTE = [[0, 128, 192], [128, 0, 0], [64, 0, 128], [192, 192, 128], [64, 64, 128], [64, 64, 0],
                 [128, 64, 128], [0, 0, 192], [192, 128, 128], [128, 128, 128], [128, 128, 0]]
REGSEG_CLASS_NAMES = ["Building", "Tree", "Sky", "Car", "SignSymbol", "Road", "Pedestrian", "Fence", "Column_Pole",
                      "Sidewalk", "Bicyclist"]
REGSEG_COLOR_TO_CLASS = {(0, 128, 192): 10, (128, 0, 0): 0, (64, 0, 128): 3, (192, 192, 128): 8, (64, 64, 128): 7,
                         (64, 64, 0): 6, (128, 64, 128): 5, (0, 0, 192): 9, (192, 128, 128): 4, (128, 128, 128): 2,
                         (128, 128, 0): 1}
OTHER_COLOURS = [(64, 128, 64), (0, 0, 0), (192, 0, 128)]  # Animal, Void, Archway of the 32-class table


def make_camvid(root: Path, splits=("train", "test"), height: int = 4, width: int = 6) -> list[tuple[int, int, int]]:
    colours = [tuple(colour) for colour in MMSEG_PALETTE] + OTHER_COLOURS
    rng = np.random.default_rng(0)
    for split in splits:
        for name in ("0001TP_006690", "Seq05VD_f00000"):
            (root / split).mkdir(parents=True, exist_ok=True)
            (root / f"{split}_labels").mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(root / split / f"{name}.png")
            picks = rng.integers(0, len(colours), (height, width))
            label = np.array(colours, dtype=np.uint8)[picks]
            label[0, : len(colours) % width] = colours[: len(colours) % width]
            Image.fromarray(label).save(root / f"{split}_labels" / f"{name}_L.png")
    return colours


def test_colour_coded_labels_give_mmseg_train_ids_and_regseg_classes(tmp_path: Path) -> None:
    make_camvid(tmp_path)
    dataset = CamVidDataset(tmp_path, "train")
    assert dataset.class_names == MMSEG_CLASSES and dataset.num_classes == 11 and len(dataset) == 2
    for index, sample in enumerate(dataset.samples):
        colours = np.asarray(Image.open(sample.label).convert("RGB"))
        _, mask = dataset[index]
        for (row, column), train_id in np.ndenumerate(mask.numpy()):
            colour = tuple(int(value) for value in colours[row, column])
            if colour in REGSEG_COLOR_TO_CLASS:  # the same class by name in both authors' tables
                assert MMSEG_CLASSES[train_id] == REGSEG_CLASS_NAMES[REGSEG_COLOR_TO_CLASS[colour]]
                assert MMSEG_PALETTE[train_id] == list(colour)
            else:
                assert train_id == 255
    assert (dataset[0][1] == 255).any() and (dataset[0][1] != 255).any()


def test_missing_label_and_layout_errors_say_which_layout(tmp_path: Path) -> None:
    make_camvid(tmp_path)
    (tmp_path / "train_labels" / "Seq05VD_f00000_L.png").unlink()
    with pytest.raises(SpecError, match="Seq05VD_f00000_L.png"):
        CamVidDataset(tmp_path, "train")
    with pytest.raises(SpecError, match="val_labels/<name>_L.png colour-coded"):
        CamVidDataset(tmp_path, "val")


def test_a_study_without_the_data_says_which_release_and_layout(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(f"space: {Path(__file__).parents[1] / 'fixtures' / 'tiny_space.yaml'}\n"
                     "training: {iterations: 1}\ndataset: {name: camvid, root: missing}\n")
    config = load_study(study)  # a dry run views the recipe without its data; the data check names the release
    with pytest.raises(SpecError) as error:
        check_data(config)
    assert "720x960" in str(error.value) and "_labels" in str(error.value) and "_L.png" in str(error.value)


def test_evaluation_resizes_as_each_author(tmp_path: Path) -> None:
    make_camvid(tmp_path, height=6, width=8)
    mmseg = build_dataset("camvid", tmp_path, "test", AugmentationConfig(eval_size=(3, 4)).eval_transforms())
    image, mask = mmseg[0]
    assert image.shape == (3, 3, 4) and mask.shape == (6, 8)  # the label keeps its size
    regseg = build_dataset("camvid", tmp_path, "test", AugmentationConfig(eval_short_side=3).eval_transforms())
    image, mask = regseg[0]
    assert image.shape == (3, 3, 4) and mask.shape == (3, 4)


def test_evaluate_compares_predictions_at_the_labels_size() -> None:
    class Constant(torch.nn.Module):
        def forward(self, images):
            logits = torch.zeros(images.shape[0], 2, *images.shape[-2:])
            logits[:, 1] = 1.0
            return logits

    loader = [(torch.zeros(1, 3, 3, 4), torch.ones(1, 6, 8, dtype=torch.int64))]
    assert evaluate(Constant(), loader, num_classes=2).pixel_accuracy() == 1.0


def test_absolute_scale_targets_are_mmsegs_random_resize() -> None:
    """mmseg RandomResize(scale=(960, 720), ratio_range): target (int(960 r), int(720 r)), then mmcv's
    rescale_size fits the image into it: factor min(long/long, short/short), size int(x * factor + 0.5)."""
    image = tv_tensors.Image(torch.zeros(3, 360, 480, dtype=torch.uint8))
    for scale_range in ((0.5, 0.5), (1.3, 1.3), (2.0, 2.0)):
        ratio = scale_range[0]
        target = (int(960 * ratio), int(720 * ratio))
        factor = min(max(target) / 480, min(target) / 360)
        expected = [int(360 * factor + 0.5), int(480 * factor + 0.5)]
        assert RandomScale(scale_range, base=(720, 960)).make_params([image])["size"] == expected
    relative = RandomScale((2.0, 2.0)).make_params([image])["size"]
    assert relative == [720, 960]  # relative: twice the file's own size, absolute: twice 720x960
