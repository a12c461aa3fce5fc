"""CityscapesDataset on tiny fake trees written with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archsearch.data import IMAGENET_MEAN, IMAGENET_STD, CityscapesDataset
from archsearch.errors import SpecError

# The official Cityscapes table (labels.py of cityscapesScripts), written out by hand.
OFFICIAL_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                      24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def write_frame(root: Path, split: str, city: str, index: int, label: np.ndarray,
                kind: str = "labelIds", image: np.ndarray | None = None) -> Path:
    """One Cityscapes frame: an RGB image and a label PNG of the given kind."""
    stem = f"{city}_{index:06d}_000019"
    image_path = root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
    label_path = root / "gtFine" / split / city / f"{stem}_gtFine_{kind}.png"
    image_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    if image is None:
        image = np.full((*label.shape, 3), index * 10 % 256, dtype=np.uint8)
    Image.fromarray(image).save(image_path)
    Image.fromarray(label.astype(np.uint8)).save(label_path)
    return image_path


def every_label_id() -> np.ndarray:
    """A 4x64 label image holding every value 0..255 once."""
    return np.arange(256, dtype=np.uint8).reshape(4, 64)


def test_label_ids_map_to_the_official_train_ids(tmp_path: Path) -> None:
    write_frame(tmp_path, "train", "aachen", 0, every_label_id())
    _, mask = CityscapesDataset(tmp_path, "train")[0]
    values = mask.flatten().tolist()
    for label_id, train_id in enumerate(values):
        assert train_id == OFFICIAL_TRAIN_IDS.get(label_id, 255), f"label id {label_id}"
    assert values[7] == 0 and values[26] == 13 and values[0] == 255


def test_train_id_file_wins_over_label_id_file(tmp_path: Path) -> None:
    label_ids = np.full((4, 6), 7, dtype=np.uint8)  # all road as label ids
    write_frame(tmp_path, "val", "lindau", 0, label_ids)
    train_ids = np.array([[0, 5, 18, 19, 200, 255]] * 4, dtype=np.uint8)
    write_frame(tmp_path, "val", "lindau", 0, train_ids, kind="labelTrainIds")
    _, mask = CityscapesDataset(tmp_path, "val")[0]
    assert mask[0].tolist() == [0, 5, 18, 255, 255, 255]


def test_items_are_normalized_float_images_and_long_masks(tmp_path: Path) -> None:
    image = np.zeros((4, 6, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 255, 128, 0
    write_frame(tmp_path, "train", "bonn", 0, np.full((4, 6), 26), image=image)
    dataset = CityscapesDataset(tmp_path, "train")
    tensor, mask = dataset[0]
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 4, 6)
    assert mask.dtype == torch.int64 and mask.shape == (4, 6)
    assert type(tensor) is torch.Tensor and type(mask) is torch.Tensor
    expected = [(value / 255 - mean) / std for value, mean, std in zip((255, 128, 0), IMAGENET_MEAN, IMAGENET_STD)]
    assert torch.allclose(tensor[:, 0, 0], torch.tensor(expected), atol=1e-5)
    assert (mask == 13).all()
    assert dataset.num_classes == 19 and len(dataset.class_names) == 19
    assert dataset.class_names[0] == "road" and dataset.class_names[13] == "car"
    assert dataset.ignore_index == 255


def test_splits_are_kept_apart_and_ordered(tmp_path: Path) -> None:
    label = np.full((2, 2), 7)
    for index in (1, 0):
        write_frame(tmp_path, "train", "zurich", index, label)
    write_frame(tmp_path, "train", "aachen", 5, label)
    write_frame(tmp_path, "val", "munster", 0, label)
    train = CityscapesDataset(tmp_path, "train")
    val = CityscapesDataset(tmp_path, "val")
    assert [sample.image.name for sample in train.samples] == [
        "aachen_000005_000019_leftImg8bit.png", "zurich_000000_000019_leftImg8bit.png",
        "zurich_000001_000019_leftImg8bit.png"]
    assert [sample.image.parent.name for sample in val.samples] == ["munster"]
    assert all("/train/" in str(sample.label) for sample in train.samples)


def test_missing_root_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as error:
        CityscapesDataset(tmp_path / "nowhere", "train")
    assert str(tmp_path / "nowhere" / "leftImg8bit" / "train") in str(error.value)


def test_missing_split_lists_the_splits_found(tmp_path: Path) -> None:
    write_frame(tmp_path, "train", "bonn", 0, np.full((2, 2), 7))
    with pytest.raises(SpecError) as error:
        CityscapesDataset(tmp_path, "test")
    message = str(error.value)
    assert str(tmp_path / "leftImg8bit" / "test") in message and "found: train" in message


def test_missing_label_split_names_the_directory(tmp_path: Path) -> None:
    write_frame(tmp_path, "train", "bonn", 0, np.full((2, 2), 7))
    (tmp_path / "gtFine" / "train" / "bonn" / "bonn_000000_000019_gtFine_labelIds.png").unlink()
    (tmp_path / "gtFine" / "train" / "bonn").rmdir()
    (tmp_path / "gtFine" / "train").rmdir()
    with pytest.raises(SpecError, match=str(tmp_path / "gtFine" / "train")):
        CityscapesDataset(tmp_path, "train")


def test_split_without_images_names_the_directory(tmp_path: Path) -> None:
    (tmp_path / "leftImg8bit" / "train" / "bonn").mkdir(parents=True)
    (tmp_path / "gtFine" / "train").mkdir(parents=True)
    with pytest.raises(SpecError) as error:
        CityscapesDataset(tmp_path, "train")
    assert "no images" in str(error.value) and str(tmp_path / "leftImg8bit" / "train") in str(error.value)


def test_image_without_label_names_the_image_and_the_expected_file(tmp_path: Path) -> None:
    image_path = write_frame(tmp_path, "train", "bonn", 0, np.full((2, 2), 7))
    (tmp_path / "gtFine" / "train" / "bonn" / "bonn_000000_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(SpecError) as error:
        CityscapesDataset(tmp_path, "train")
    assert str(image_path) in str(error.value) and "bonn_000000_000019_gtFine_labelIds.png" in str(error.value)


def test_colour_label_file_is_refused(tmp_path: Path) -> None:
    write_frame(tmp_path, "train", "bonn", 0, np.full((2, 2), 7))
    label_path = tmp_path / "gtFine" / "train" / "bonn" / "bonn_000000_000019_gtFine_labelIds.png"
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(label_path)
    with pytest.raises(SpecError, match="single-channel"):
        CityscapesDataset(tmp_path, "train")[0]


def test_label_of_another_size_is_refused(tmp_path: Path) -> None:
    write_frame(tmp_path, "train", "bonn", 0, np.full((2, 2), 7), image=np.zeros((3, 2, 3), dtype=np.uint8))
    with pytest.raises(SpecError, match="label size differs"):
        CityscapesDataset(tmp_path, "train")[0]
