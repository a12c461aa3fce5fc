"""build_dataset: names, roots, options and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archsearch.data import (DATASET_NAMES, SYNTHETIC_TRAIN_IDS, SegNetCamVidDataset, CityscapesDataset, build_dataset,
                             train_transforms)
from archsearch.errors import SpecError

SMALL = {"num_train": 2, "num_val": 1, "height": 48, "width": 96}


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(SpecError) as error:
        build_dataset("kitti", Path("/data"), "train")
    assert DATASET_NAMES == ("synthetic", "cityscapes", "camvid", "camvid_segnet", "voc")
    assert "'kitti'" in str(error.value) and "synthetic, cityscapes, camvid, camvid_segnet, voc" in str(error.value)


@pytest.mark.parametrize("name", ["cityscapes", "camvid", "camvid_segnet", "voc"])
def test_real_datasets_need_a_root(name: str) -> None:
    with pytest.raises(SpecError) as error:
        build_dataset(name, None, "train")
    assert error.value.path == "dataset.root"


def test_options_are_checked_per_dataset(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no options"):
        build_dataset("cityscapes", tmp_path, "train", seed=1)
    with pytest.raises(SpecError) as error:
        build_dataset("synthetic", tmp_path, "train", colour=1)
    assert "seed, num_train, num_val, height, width" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_synthetic_is_generated_in_the_given_cache_and_read_as_cityscapes(tmp_path: Path) -> None:
    dataset = build_dataset("synthetic", tmp_path, "train", train_transforms(32), **SMALL)
    assert isinstance(dataset, CityscapesDataset) and len(dataset) == 2
    assert len(build_dataset("synthetic", tmp_path, "val", **SMALL)) == 1
    assert len(list(tmp_path.iterdir())) == 1  # both splits come from one generated directory
    image, mask = dataset[0]
    assert image.shape == (3, 32, 32) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) <= set(SYNTHETIC_TRAIN_IDS) | {255}


def test_synthetic_without_root_uses_the_user_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dataset = build_dataset("synthetic", None, "val", **SMALL)
    assert dataset.samples[0].image.is_relative_to(tmp_path / "archsearch" / "synthetic")


def test_real_dataset_by_name(tmp_path: Path) -> None:
    for directory in ("val", "valannot"):
        (tmp_path / directory).mkdir()
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(tmp_path / "val" / "a.png")
    Image.fromarray(np.full((2, 2), 4, dtype=np.uint8)).save(tmp_path / "valannot" / "a.png")
    dataset = build_dataset("camvid_segnet", tmp_path, "val")
    assert isinstance(dataset, SegNetCamVidDataset) and dataset[0][1].tolist() == [[4, 4], [4, 4]]
