"""CamVid and Pascal VOC loaders on tiny fake trees written with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archsearch.data import SegNetCamVidDataset, VOCSegmentationDataset
from archsearch.errors import SpecError


def write_rgb(path: Path, height: int, width: int, suffix_format: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 90, dtype=np.uint8)).save(path, format=suffix_format)


def write_index_png(path: Path, indices: np.ndarray, palette: list[int] | None = None) -> None:
    """A grayscale index PNG, or a palette PNG whose colours differ from the indices when ``palette`` is set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if palette is None:
        Image.fromarray(indices.astype(np.uint8)).save(path)
        return
    image = Image.frombytes("P", (indices.shape[1], indices.shape[0]), indices.astype(np.uint8).tobytes())
    image.putpalette(palette)
    image.save(path)


def voc_palette() -> list[int]:
    """The VOC colour map: palette index i gets a colour built from the bits of i."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        value = index
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette += [red, green, blue]
    return palette


# CamVid ----------------------------------------------------------------------------------

def make_camvid(root: Path, label_directory_suffix: str = "annot") -> None:
    labels = np.array([[0, 3, 10, 11, 12, 255]], dtype=np.uint8)
    for split, names in (("train", ("0001TP_006690", "Seq05VD_f00000")), ("val", ("0016E5_07959",))):
        for name in names:
            write_rgb(root / split / f"{name}.png", 1, 6)
            write_index_png(root / f"{split}{label_directory_suffix}" / f"{name}.png", labels)


def test_camvid_maps_void_to_ignore_and_keeps_classes(tmp_path: Path) -> None:
    make_camvid(tmp_path)
    dataset = SegNetCamVidDataset(tmp_path, "train")
    assert len(dataset) == 2 and len(SegNetCamVidDataset(tmp_path, "val")) == 1
    _, mask = dataset[0]
    assert mask[0].tolist() == [0, 3, 10, 255, 255, 255]
    assert dataset.num_classes == 11 and dataset.class_names[3] == "road" and dataset.ignore_index == 255


def test_camvid_accepts_labels_directory_name(tmp_path: Path) -> None:
    make_camvid(tmp_path, label_directory_suffix="_labels")
    assert len(SegNetCamVidDataset(tmp_path, "train")) == 2


def test_camvid_missing_split_names_the_directory(tmp_path: Path) -> None:
    make_camvid(tmp_path)
    with pytest.raises(SpecError, match=str(tmp_path / "test")):
        SegNetCamVidDataset(tmp_path, "test")


def test_camvid_missing_label_directory_is_reported(tmp_path: Path) -> None:
    write_rgb(tmp_path / "train" / "a.png", 1, 1)
    with pytest.raises(SpecError) as error:
        SegNetCamVidDataset(tmp_path, "train")
    assert str(tmp_path / "trainannot") in str(error.value) and "train_labels" in str(error.value)


def test_camvid_image_without_label_is_reported(tmp_path: Path) -> None:
    make_camvid(tmp_path)
    write_rgb(tmp_path / "train" / "extra.png", 1, 6)
    with pytest.raises(SpecError, match="extra.png"):
        SegNetCamVidDataset(tmp_path, "train")


# Pascal VOC -------------------------------------------------------------------------------

def make_voc(root: Path) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    splits = {"train": ["2007_000032", "2007_000039"], "val": ["2007_000033"]}
    labels = np.array([[0, 1, 15, 20], [21, 254, 255, 0]], dtype=np.uint8)
    for split, names in splits.items():
        (voc / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
        for name in names:
            write_rgb(voc / "JPEGImages" / f"{name}.jpg", 2, 4, suffix_format="JPEG")
            write_index_png(voc / "SegmentationClass" / f"{name}.png", labels, palette=voc_palette())
    return voc


def test_voc_reads_palette_indices_not_colours(tmp_path: Path) -> None:
    make_voc(tmp_path)
    dataset = VOCSegmentationDataset(tmp_path, "train")
    assert len(dataset) == 2 and len(VOCSegmentationDataset(tmp_path, "val")) == 1
    image, mask = dataset[0]
    assert image.shape == (3, 2, 4)
    assert mask.tolist() == [[0, 1, 15, 20], [255, 255, 255, 0]]
    assert dataset.num_classes == 21 and dataset.class_names[15] == "person"


def test_voc_root_may_be_the_voc2012_directory(tmp_path: Path) -> None:
    voc = make_voc(tmp_path)
    assert len(VOCSegmentationDataset(voc, "val")) == 1


def test_voc_unknown_split_lists_the_split_files(tmp_path: Path) -> None:
    make_voc(tmp_path)
    with pytest.raises(SpecError) as error:
        VOCSegmentationDataset(tmp_path, "trainaug")
    assert "trainaug.txt" in str(error.value) and "found: train, val" in str(error.value)


def test_voc_listed_image_without_file_is_reported(tmp_path: Path) -> None:
    voc = make_voc(tmp_path)
    (voc / "SegmentationClass" / "2007_000033.png").unlink()
    with pytest.raises(SpecError, match=str(voc / "SegmentationClass" / "2007_000033.png")):
        VOCSegmentationDataset(tmp_path, "val")


def test_voc_missing_devkit_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=str(tmp_path / "VOCdevkit" / "VOC2012")):
        VOCSegmentationDataset(tmp_path, "train")
