"""Synthetic street scenes: deterministic, cached atomically, and a fair test of architectures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from archsearch.data import SYNTHETIC_TRAIN_IDS, CityscapesDataset, ensure_synthetic_cityscapes, render_scene
from archsearch.data import scenes as scenes_module
from archsearch.data import synthetic
from archsearch.errors import SpecError

SMALL = {"num_train": 3, "num_val": 2, "height": 64, "width": 128}
ROAD, SIDEWALK, BUILDING, WALL, POLE, SKY = 7, 8, 11, 12, 17, 23


@pytest.fixture(scope="module")
def scenes() -> list:
    """Twenty full-size scenes, rendered once for the statistical tests."""
    return [render_scene(np.random.default_rng([11, 0, index]), 128, 256) for index in range(20)]


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = ensure_synthetic_cityscapes(tmp_path / "a", seed=3, **SMALL)
    second = ensure_synthetic_cityscapes(tmp_path / "b", seed=3, **SMALL)
    assert first.name == second.name
    first_files, second_files = file_bytes(first), file_bytes(second)
    assert len(first_files) == 2 * (3 + 2) + 1
    assert first_files == second_files


def test_different_seed_gives_different_scenes_in_another_directory(tmp_path: Path) -> None:
    first = ensure_synthetic_cityscapes(tmp_path, seed=0, **SMALL)
    second = ensure_synthetic_cityscapes(tmp_path, seed=1, **SMALL)
    assert first != second
    image = "leftImg8bit/train/synth/synth_000000_000019_leftImg8bit.png"
    assert (first / image).read_bytes() != (second / image).read_bytes()


def test_any_changed_parameter_changes_the_directory_and_marker(tmp_path: Path) -> None:
    base = ensure_synthetic_cityscapes(tmp_path, seed=0, **SMALL)
    names = {base.name}
    for key, value in (("num_train", 4), ("num_val", 3), ("height", 48), ("width", 96)):
        names.add(ensure_synthetic_cityscapes(tmp_path, seed=0, **{**SMALL, key: value}).name)
    assert len(names) == 5
    marker = json.loads((base / synthetic.MARKER_NAME).read_text())
    assert marker == {"generator_version": synthetic.GENERATOR_VERSION, "seed": 0, **SMALL}


def test_second_call_reuses_the_cache(tmp_path: Path, monkeypatch) -> None:
    root = ensure_synthetic_cityscapes(tmp_path, **SMALL)
    mtimes = {path: path.stat().st_mtime_ns for path in root.rglob("*")}

    def must_not_render(*args, **kwargs):
        raise AssertionError("scenes were rendered again")

    monkeypatch.setattr(synthetic, "render_scene", must_not_render)
    assert ensure_synthetic_cityscapes(tmp_path, **SMALL) == root
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*")} == mtimes


def test_failed_write_leaves_no_dataset_behind(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fail_on_fourth_scene(rng, height, width):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("disk full")
        return render_scene(rng, height, width)

    monkeypatch.setattr(synthetic, "render_scene", fail_on_fourth_scene)
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_synthetic_cityscapes(tmp_path, **SMALL)
    assert len(calls) == 4
    assert list(tmp_path.iterdir()) == []  # neither a final directory nor a staging one

    monkeypatch.setattr(synthetic, "render_scene", render_scene)
    root = ensure_synthetic_cityscapes(tmp_path, **SMALL)
    assert len(CityscapesDataset(root, "train")) == 3 and len(CityscapesDataset(root, "val")) == 2


def test_losing_the_race_to_another_writer_uses_its_copy(tmp_path: Path, monkeypatch) -> None:
    original_write = synthetic._write_dataset
    published = []

    def write_while_another_writer_publishes(directory: Path, parameters: dict) -> None:
        original_write(directory, parameters)
        assert all(path.name.startswith(".") for path in tmp_path.iterdir())  # nothing published yet
        other = tmp_path / directory.name.split(".")[1]  # another writer publishes first
        shutil.copytree(directory, other)
        published.append(other)

    monkeypatch.setattr(synthetic, "_write_dataset", write_while_another_writer_publishes)
    root = ensure_synthetic_cityscapes(tmp_path, **SMALL)
    assert published == [root]
    assert [path.name for path in tmp_path.iterdir()] == [root.name]


def test_incomplete_directory_is_not_trusted(tmp_path: Path) -> None:
    root = ensure_synthetic_cityscapes(tmp_path, **SMALL)
    (root / synthetic.MARKER_NAME).unlink()
    with pytest.raises(SpecError, match=str(root)):
        ensure_synthetic_cityscapes(tmp_path, **SMALL)


@pytest.mark.parametrize(("key", "value"), [("height", 8), ("num_train", 0), ("seed", -1), ("width", 64.0)])
def test_bad_parameters_are_named(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(SpecError) as error:
        ensure_synthetic_cityscapes(tmp_path, **{**SMALL, key: value})
    assert error.value.path == key and list(tmp_path.iterdir()) == []


def test_dataset_reads_only_synthetic_train_ids(tmp_path: Path) -> None:
    root = ensure_synthetic_cityscapes(tmp_path, **SMALL)
    dataset = CityscapesDataset(root, "train")
    image, mask = dataset[0]
    assert image.shape == (3, 64, 128) and mask.shape == (64, 128)
    present = set(mask.unique().tolist())
    assert present <= set(SYNTHETIC_TRAIN_IDS) and {0, 1, 2, 10} <= present  # road, sidewalk, building, sky


def test_scenes_use_cityscapes_label_ids(scenes) -> None:
    allowed = {7, 8, 11, 12, 17, 20, 21, 22, 23, 24, 26}
    seen = set()
    for scene in scenes:
        seen |= set(np.unique(scene.label_ids).tolist())
        assert scene.image.shape == (128, 256, 3) and scene.image.dtype == np.uint8
    assert seen == allowed


def horizontal_runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of every horizontal run of True pixels."""
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))
    changes = np.diff(padded, axis=1)
    starts, stops = np.nonzero(changes == 1), np.nonzero(changes == -1)
    return stops[1] - starts[1]


def test_poles_are_thin(scenes) -> None:
    runs = [horizontal_runs(scene.label_ids == POLE) for scene in scenes]
    assert sum(len(scene_runs) > 0 for scene_runs in runs) >= 15  # most scenes have poles
    all_runs = np.concatenate(runs)
    assert all_runs.max() <= 3
    assert (all_runs == 1).any() and (all_runs == 3).any()


def standardized_difference(images: list[np.ndarray], labels: list[np.ndarray], first: int, second: int) -> float:
    """Largest per-channel gap between two classes' mean colours, in pooled standard deviations."""
    a = np.concatenate([image[label == first] for image, label in zip(images, labels)]).astype(np.float64)
    b = np.concatenate([image[label == second] for image, label in zip(images, labels)]).astype(np.float64)
    pooled = np.sqrt((a.var(axis=0) + b.var(axis=0)) / 2)
    return float(np.max(np.abs(a.mean(axis=0) - b.mean(axis=0)) / pooled))


def per_scene_difference(scenes: list, first: int, second: int) -> float:
    """Median over scenes (that show enough of both classes) of the within-scene difference."""
    return float(np.median([standardized_difference([scene.image], [scene.label_ids], first, second)
                            for scene in scenes
                            if min((scene.label_ids == first).sum(), (scene.label_ids == second).sum()) > 50]))


def test_context_pairs_share_one_colour_distribution_over_the_dataset(scenes) -> None:
    """What a context-free classifier meets: each class's colours over all scenes."""
    images, labels = [scene.image for scene in scenes], [scene.label_ids for scene in scenes]
    assert sum((label == WALL).sum() > 50 for label in labels) >= 5
    assert standardized_difference(images, labels, ROAD, SIDEWALK) < 0.3
    assert standardized_difference(images, labels, SKY, WALL) < 0.3
    assert standardized_difference(images, labels, ROAD, SKY) > 2.0  # the measure does see a real difference


def test_context_pairs_look_alike_within_each_unlit_scene() -> None:
    """Without lighting, sensor noise and blotches (spatially correlated, so a small region's mean
    wanders), the two classes of a pair are drawn from one colour distribution in every scene."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scenes_module, "_camera", lambda rng, colour: np.clip(np.rint(colour), 0, 255).astype(np.uint8))
        patch.setattr(scenes_module, "_smooth_field", lambda rng, height, width, cell: np.zeros((height, width)))
        unlit = [render_scene(np.random.default_rng([12, 0, index]), 128, 256) for index in range(16)]
    assert per_scene_difference(unlit, ROAD, SIDEWALK) < 0.1
    assert per_scene_difference(unlit, SKY, WALL) < 0.15
    assert per_scene_difference(unlit, BUILDING, SKY) > 2.0


def test_walls_stand_under_buildings(scenes) -> None:
    """What tells a wall from sky is context: directly above a wall there is building, not sky."""
    above_walls = []
    for scene in scenes:
        labels = scene.label_ids
        wall_top = (labels[1:] == WALL) & (labels[:-1] != WALL)
        above_walls.append(labels[:-1][wall_top])
    above = np.concatenate(above_walls)
    assert above.size > 0 and np.mean(above == BUILDING) > 0.8 and not (above == SKY).any()


@pytest.mark.parametrize(("key", "value"), [("num_train", 10 ** 8), ("num_val", 10 ** 8), ("height", 100_000),
                                            ("width", 100_000)])
def test_parameters_past_their_caps_are_refused_before_anything_is_written(tmp_path: Path, key: str, value) -> None:
    with pytest.raises(SpecError) as error:
        ensure_synthetic_cityscapes(tmp_path, **{**SMALL, key: value})
    assert error.value.path == key and "at most" in error.value.allowed and list(tmp_path.iterdir()) == []


def test_a_dataset_whose_pixels_pass_the_cap_is_refused_with_its_cost(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as error:
        ensure_synthetic_cityscapes(tmp_path, num_train=synthetic.MAX_IMAGES - 1, num_val=1,
                                    height=synthetic.MAX_SIDE, width=synthetic.MAX_SIDE)
    assert "GiB" in str(error.value) and "min" in str(error.value) and list(tmp_path.iterdir()) == []


def test_the_cost_is_estimated_from_the_sizes() -> None:
    cost = synthetic.generation_cost(num_train=200, num_val=50, height=128, width=256)
    assert cost.images == 250 and cost.pixels == 250 * 128 * 256
    assert cost.disk_bytes == cost.pixels * synthetic.DISK_BYTES_PER_PIXEL
    assert 1 < cost.seconds < 60  # measured: about 0.04 s a 128x256 scene


def test_a_dataset_larger_than_the_free_disk_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(synthetic.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9, 1000))
    with pytest.raises(SpecError, match="free on the disk") as error:
        ensure_synthetic_cityscapes(tmp_path, **SMALL)
    assert list(tmp_path.iterdir()) == [] and str(tmp_path) in str(error.value)


def test_a_long_generation_is_announced_with_its_cost_and_a_short_one_is_not(tmp_path: Path, monkeypatch,
                                                                            capsys) -> None:
    ensure_synthetic_cityscapes(tmp_path / "short", **SMALL)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(synthetic, "SECONDS_PER_PIXEL", 1.0)  # as if each scene took hours
    ensure_synthetic_cityscapes(tmp_path / "long", **SMALL)
    err = capsys.readouterr().err
    assert "generating synthetic data once into" in err and "5 scenes" in err and "min" in err, err


def test_only_this_hosts_staging_of_a_gone_writer_is_deleted(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(gone.stdout)
    host = synthetic._writer().rsplit("-", 1)[0]
    names = {"dead here": f".synthetic-cityscapes-0.{host}-{dead_pid}.abc.partial",
             "alive here": f".synthetic-cityscapes-0.{host}-{os.getpid()}.abc.partial",
             "dead elsewhere": f".synthetic-cityscapes-0.elsewhere-{dead_pid}.abc.partial",
             "unknown naming": ".synthetic-cityscapes-0.abc.partial"}
    for name in names.values():
        (tmp_path / name).mkdir()
    ensure_synthetic_cityscapes(tmp_path, **SMALL)
    left = {path.name for path in tmp_path.iterdir()}
    assert names["dead here"] not in left
    assert {names["alive here"], names["dead elsewhere"], names["unknown naming"]} <= left
