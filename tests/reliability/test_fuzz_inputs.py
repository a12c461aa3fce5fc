"""Every file the CLI reads, fuzzed: malformed content gives one clear error and exit status 2, never a
traceback, and never a half-written output.

Specs (`build FILE --save`), studies and spaces (`run STUDY`), checkpoints (`build --weights`), data
directories (`run` on a Cityscapes-layout study) and run directories (`report RUN --out`, `run --out RUN`).
Mutations start from a valid file and replace random nodes with random YAML values, delete keys and add
unknown ones, so most examples are wrong in one place only, deep inside. A mutated file that happens to
still be valid may run (status 0 or 1); the test then only checks that it is valid indeed.

Studies run for real (storage, sampling, analysis, trials.csv) but nothing trains and no latency is
timed: ``TrialRunner.train`` and ``cached_latency`` are replaced by instant fakes, so that an example
costs well under a second.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.study.config import load_study
from tests.helpers.paths import FIXTURES

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                database=None)
ERROR_PREFIX = "archsearch: error: "


def examples(count: int) -> int:
    """Example counts sized for the test suite; ARCHSEARCH_FUZZ_SCALE=20 searches longer."""
    return max(1, int(count * float(os.environ.get("ARCHSEARCH_FUZZ_SCALE", "1"))))

SMALL_SPEC = """\
name: small-dual
norm: {eps: 0.001, momentum: 0.03}
stem:
- {block: rep, out_channels: 8, stride: 2}
- {block: conv, out_channels: 8, stride: 2, kernel_size: 3}
- {block: rep, out_channels: 16, stride: 2}
stages:
- branches:
  - - {repeat: 2, block: rep, out_channels: 16}
  - - {block: rep, out_channels: 32, stride: 2}
    - {block: basic, out_channels: 32, activation: false}
  fusion: {block: bilateral_fusion}
- branches:
  - - {block: bottleneck, out_channels: 32, activation: false}
  - - {block: bottleneck, out_channels: 64, stride: 2, activation: false}
  input_activation: true
context: {block: rppm, branch_channels: 8, out_channels: 32}
head: {block: ddr_head, channels: 8, norm: {eps: 1.0e-05, momentum: 0.1}}
aux_head: {stage: 0, branch: 0, head: {block: ddr_head, channels: 8}}
"""
DBLOCK_SPEC = """\
name: tiny-w32
stem: [{block: conv, out_channels: 8, stride: 2}]
stages:
- blocks: [{block: dblock, out_channels: 16, stride: 2, group_width: 8, se_ratio: 0.25}]
- blocks:
  - {block: dblock, out_channels: 32, stride: 2, group_width: 8}
  - {block: dblock, out_channels: 32, group_width: 16, each: {dilations: '[[1],[1,2]]'}}
head:
  block: topdown
  projections: {8: 8, 4: 8}
  steps: [{merge: sum, refine: {block: conv, out_channels: 8}}]
"""
KNOWN_KEYS = ["block", "out_channels", "stride", "repeat", "each", "dilations", "group_width", "branches",
              "blocks", "fusion", "head", "stem", "stages", "choice", "int", "float", "if", "then", "else",
              "name", "space", "training", "iterations", "sampler", "seed", "dataset", "root", "latency",
              "constraints", "objectives", "metric", "direction", "parameters", "fix", "spec", "log", "step"]

# ---------------------------------------------------------------- strategies

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 40), st.floats(width=32), st.text(max_size=8),
    st.sampled_from(["${width}", "${width * 2}", "${nope}", "[[1],[1,2]]", "4*[[1,4]]", "conv", "dblock", "rep",
                     "sum", "1e-3", "", "-1", "grid", "tpe", "miou", "maximize", "cpu", "cuda", "8x8", "\x00"]))
yaml_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=5), children, max_size=3),
    max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += _paths(value, prefix + (index,))
    return paths


def _parent(tree: Any, path: tuple) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


@st.composite
def mutated(draw, base: Any) -> Any:
    """``base`` with one to three random nodes replaced, deleted, or given an unknown key."""
    tree = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(tree)))
        operation = draw(st.sampled_from(["replace", "replace", "delete", "add key"]))
        if not path:
            if operation == "replace":
                tree = draw(yaml_values)
            continue
        parent = _parent(tree, path)
        if operation == "replace":
            parent[path[-1]] = draw(yaml_values)
        elif operation == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(KNOWN_KEYS) | st.text(max_size=5))] = draw(yaml_values)
    return tree


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def yaml_documents(base_text: str) -> st.SearchStrategy[str]:
    """Mutations of a YAML document, some YAML-level damage, and text or bytes that are not YAML."""
    base = yaml.safe_load(base_text)
    return st.one_of(
        mutated(base).map(as_yaml),
        mutated(base).map(as_yaml),
        mutated(base).map(as_yaml),
        st.tuples(st.just(base_text), st.integers(0, len(base_text))).map(lambda pair: pair[0][:pair[1]]),
        st.text(max_size=60),
        st.binary(max_size=60).map(lambda data: data.decode("latin-1")),
    )


def check_bad_input(status: int, err: str) -> None:
    assert status == 2, err
    assert err.startswith(ERROR_PREFIX) or f"\n{ERROR_PREFIX}" in err, err
    assert "Traceback" not in err, err
    assert err[err.index(ERROR_PREFIX) + len(ERROR_PREFIX):].strip(), err  # a message, not just the prefix


class Folders:
    """A fresh folder per hypothesis example (pytest's tmp_path is one per test, not per example)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counter = itertools.count()

    def new(self) -> Path:
        path = self.root / f"example{next(self.counter)}"
        path.mkdir()
        return path


@pytest.fixture
def folders(tmp_path) -> Folders:
    return Folders(tmp_path)


# ---------------------------------------------------------------- specs: `build FILE --save`


def write_text(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    return path


@settings(FUZZ, max_examples=examples(40))
@given(document=st.one_of(yaml_documents(SMALL_SPEC), yaml_documents(DBLOCK_SPEC)))
@example(document=SMALL_SPEC.replace("repeat: 2", "repeat: 2.5"))
@example(document=SMALL_SPEC.replace("{block: basic,", "{block: [],"))
@example(document=DBLOCK_SPEC.replace("'[[1],[1,2]]'", "'[[1],[1,2]] + [[]]'"))
@example(document=DBLOCK_SPEC.replace("'[[1],[1,2]]'", "'[[1],[1,2]] + 100000000*[[1]]'"))
@example(document=SMALL_SPEC.replace("out_channels: 8, stride: 2}", "out_channels: 0, stride: 2}", 1))
@example(document=DBLOCK_SPEC.replace("projections: {8: 8, 4: 8}", "projections: {8: 8, x: 8}"))
@example(document=DBLOCK_SPEC.replace("projections: {8: 8, 4: 8}", "projections: {8: 8, 3: 8}"))
def test_fuzzed_spec_files(folders, capsys, document):
    folder = folders.new()
    spec_file = write_text(folder / "spec.yaml", document)
    saved = folder / "saved.yaml"
    capsys.readouterr()
    status = main(["build", str(spec_file), "--input", "32x64", "--save", str(saved)])
    out, err = capsys.readouterr()
    if status == 0:
        from archsearch import load_spec
        assert json.dumps(load_spec(saved).to_dict())  # the saved spec is whole and valid
        return
    check_bad_input(status, err)
    assert not saved.exists() and sorted(path.name for path in folder.iterdir()) == ["spec.yaml"]


# ---------------------------------------------------------------- studies and spaces: `run STUDY`


def tiny_study_text() -> str:
    data = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    data["dataset"] = {"name": "synthetic", "seed": 0, "num_train": 2, "num_val": 1, "height": 32, "width": 32}
    data["training"]["batch_size"] = 2  # the whole training set: a larger batch would draw none
    data["sampler"] = {"name": "tpe", "seed": 0, "n_startup_trials": 1}
    data["latency"] = {"device": "cpu", "time_budget_seconds": 0.1}
    data["constraints"] = {"macs": {"max": 1.0e+9}}
    return as_yaml(data)


STUDY = tiny_study_text()
SPACE = (FIXTURES / "tiny_space.yaml").read_text()


def run_study(folder: Path, study_text: str, space_text: str, capsys) -> tuple[int, str, Path]:
    write_text(folder / "tiny_space.yaml", space_text)
    study = write_text(folder / "study.yaml", study_text)
    run_dir = folder / "run"
    capsys.readouterr()
    status = main(["run", str(study), "--out", str(run_dir), "--trials", "2"])
    return status, capsys.readouterr().err, run_dir


def check_study_outcome(folder: Path, status: int, err: str, run_dir: Path) -> None:
    if status in (0, 1):
        load_study(folder / "study.yaml")  # it ran, so the files were valid
        frame = pd.read_csv(run_dir / "trials.csv")
        assert len(frame) >= 2 and set(frame["state"]) <= {"COMPLETE", "FAIL", "INFEASIBLE"}
        return
    check_bad_input(status, err)
    if run_dir.exists():
        # Found only once a point was sampled (a space error in a branch few points take): the study
        # stopped at that trial, and the table says why.
        frame = pd.read_csv(run_dir / "trials.csv")
        stopped = frame[frame["state"] == "FAIL"]
        assert len(stopped) == 1 and stopped["fail_reason"].iloc[0].split(":")[0] in (
            "SpecError", "SpaceError", "ExpressionSyntaxError")


@settings(FUZZ, max_examples=examples(20))
@given(document=yaml_documents(STUDY))
@example(document=STUDY.replace("n_startup_trials: 1", "n_startup_trials: -1"))
@example(document=STUDY.replace("n_startup_trials: 1", "n_startup_trials: x"))
@example(document=STUDY.replace("seed: 0\n  n_startup", "seed: -5\n  n_startup"))
@example(document=STUDY.replace("time_budget_seconds: 0.1", "time_budget_seconds: .nan"))
@example(document=STUDY.replace("num_train: 2", "num_train: 1").replace("batch_size: 2", "batch_size: 8"))
@example(document=STUDY.replace("  name: tpe\n  seed: 0\n  n_startup_trials: 1\n", "  block: null\n"))
def test_fuzzed_study_files(folders, capsys, no_training, document):
    folder = folders.new()
    status, err, run_dir = run_study(folder, document, SPACE, capsys)
    check_study_outcome(folder, status, err, run_dir)


@settings(FUZZ, max_examples=examples(20))
@given(document=yaml_documents(SPACE))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {float: [0, 1], log: true}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {int: [8, 64], step: 8, log: true}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {float: [8, 64], step: 0.5, log: true}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {float: [8, 64], step: -1}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {int: [8, 64], step: 0}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {choice: []}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {float: [8, 64], grid: 3}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {float: [8, 64], grid: [a]}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {float: [8, 64], grid: []}"))
@example(document=SPACE.replace("width: {choice: [16, 32, 48]}", "width: {float: [.nan, 64]}"))
@example(document=SPACE.replace("'${width}', group_width: 8", "'${width / 0}', group_width: 8"))
def test_fuzzed_space_files(folders, capsys, no_training, document):
    folder = folders.new()
    status, err, run_dir = run_study(folder, STUDY, document, capsys)
    check_study_outcome(folder, status, err, run_dir)


# ---------------------------------------------------------------- checkpoints: `build SPEC --weights FILE --save`


class Checkpoints(dict):
    """Checkpoint bytes by suffix, with a short repr (hypothesis prints a failing example's arguments)."""

    def __repr__(self) -> str:
        return f"<checkpoints of DBLOCK_SPEC: {', '.join(self)}>"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Checkpoints:
    """A real checkpoint of DBLOCK_SPEC in each format, as bytes."""
    from safetensors.torch import save as safetensors_bytes

    from archsearch import build, parse_spec

    model = build(parse_spec(yaml.safe_load(DBLOCK_SPEC)), num_classes=19)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return Checkpoints({".pth": buffer.getvalue(), ".safetensors": safetensors_bytes(state)})


def torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def damaged(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(data[:max(0, len(data) - cut)] if cut else data)
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    return bytes(data)


tensor_values = st.one_of(
    st.integers(-3, 3), st.text(max_size=4), st.none(), st.lists(st.integers(), max_size=2),
    st.tuples(st.sampled_from([torch.float32, torch.int64, torch.bool, torch.float64, torch.complex64,
                               torch.float16, torch.uint8]),
              st.lists(st.integers(0, 3), max_size=3)).map(lambda pair: torch.zeros(pair[1], dtype=pair[0])))


@st.composite
def checkpoint_files(draw) -> tuple[str, Any]:
    """(suffix, recipe): random bytes, a damaged real checkpoint, or a torch.save of a wrong structure."""
    kind = draw(st.sampled_from(["random", "damaged", "damaged", "structure", "reshaped"]))
    suffix = draw(st.sampled_from([".pth", ".pt", ".safetensors", ".bin"]))
    if kind == "random":
        return suffix, ("bytes", draw(st.binary(max_size=200)))
    if kind == "damaged":
        source = draw(st.sampled_from([".pth", ".safetensors"]))
        flips = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4))
        return draw(st.sampled_from([source, source, suffix])), ("damaged", source, draw(st.integers(0, 4000)), flips)
    if kind == "structure":
        structure = draw(st.dictionaries(st.text(max_size=6) | st.sampled_from(["state_dict", "model", "module"]),
                                         tensor_values | st.dictionaries(st.text(max_size=4), tensor_values,
                                                                         max_size=2), max_size=3))
        return draw(st.sampled_from([".pth", ".pt"])), ("object", structure)
    return draw(st.sampled_from([".pth", ".safetensors"])), ("reshaped", draw(st.integers(0, 10**6)),
                                                             draw(tensor_values))


def materialize(recipe: tuple, checkpoints: dict[str, bytes], suffix: str) -> bytes:
    if recipe[0] == "bytes":
        return recipe[1]
    if recipe[0] == "damaged":
        _, source, cut, flips = recipe
        return damaged(checkpoints[source], cut, flips)
    if recipe[0] == "object":
        return torch_bytes(recipe[1])
    _, index, value = recipe  # one entry of a real state dict replaced by a wrong value
    state = torch.load(io.BytesIO(checkpoints[".pth"]), weights_only=True)
    key = sorted(state)[index % len(state)]
    state[key] = value
    if suffix == ".safetensors":
        from safetensors.torch import save as safetensors_bytes
        if not isinstance(value, torch.Tensor):
            return safetensors_bytes({name: tensor for name, tensor in state.items() if name != key})
        return safetensors_bytes(state)
    return torch_bytes(state)


@settings(FUZZ, max_examples=examples(30))
@given(case=checkpoint_files())
@example(case=(".pth", ("damaged", ".pth", 100, [])))
@example(case=(".safetensors", ("damaged", ".safetensors", 0, [(3, 255)])))
@example(case=(".safetensors", ("damaged", ".safetensors", 0, [(0, 255), (1, 255), (2, 255), (3, 255),
                                                                (4, 255), (5, 255), (6, 255), (7, 0)])))
@example(case=(".pth", ("reshaped", 0, torch.zeros([2, 2], dtype=torch.complex64))))
@example(case=(".pth", ("object", {"state_dict": {"a": 1}})))
@example(case=(".pth", ("bytes", b"PK\x03\x04")))
@example(case=(".bin", ("bytes", b"")))
@example(case=(".pth", ("bytes", b"\x80")))
def test_fuzzed_checkpoints(folders, capsys, checkpoints, case):
    suffix, recipe = case
    folder = folders.new()
    spec_file = write_text(folder / "spec.yaml", DBLOCK_SPEC)
    weights = folder / f"weights{suffix}"
    weights.write_bytes(materialize(recipe, checkpoints, suffix))
    saved = folder / "out.safetensors"
    capsys.readouterr()
    status = main(["build", str(spec_file), "--input", "32x64", "--weights", str(weights), "--save", str(saved)])
    out, err = capsys.readouterr()
    if status == 0:
        from safetensors.torch import load_file
        assert load_file(str(saved))
        return
    check_bad_input(status, err)
    assert not saved.exists() and len(list(folder.iterdir())) == 2


# ---------------------------------------------------------------- data directories: `run` on a Cityscapes layout

FILE_KINDS = ["good", "good", "garbage", "empty", "truncated", "missing", "rgb label", "small", "16-bit label",
              "jpeg named png", "directory"]


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def write_sample(path: Path, kind: str, label: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    good = (rng.integers(0, 34, (32, 32), dtype=np.uint8) if label
            else rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    if kind == "missing":
        return
    if kind == "directory":
        path.mkdir()
        return
    data = {
        "good": lambda: png_bytes(good),
        "garbage": lambda: rng.integers(0, 256, 64, dtype=np.uint8).tobytes(),
        "empty": lambda: b"",
        "truncated": lambda: png_bytes(good)[:60],
        "rgb label": lambda: png_bytes(np.stack([good] * 3, axis=-1) if label else good),
        "small": lambda: png_bytes(good[:5, :7]),
        "16-bit label": lambda: png_bytes(good.astype(np.uint16) * 1000) if label else png_bytes(good),
        "jpeg named png": lambda: _jpeg(good),
    }[kind]()
    path.write_bytes(data)


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    return buffer.getvalue()


@settings(FUZZ, max_examples=examples(20))
@given(kinds=st.lists(st.tuples(st.sampled_from(FILE_KINDS), st.sampled_from(FILE_KINDS)), min_size=4, max_size=4))
@example(kinds=[("garbage", "good"), ("good", "good"), ("good", "good"), ("good", "good")])
@example(kinds=[("good", "good"), ("good", "truncated"), ("good", "good"), ("good", "good")])
@example(kinds=[("good", "good"), ("good", "good"), ("good", "good"), ("good", "rgb label")])
def test_fuzzed_data_directories(folders, capsys, no_training, kinds):
    """Two train and two val samples, each image and label good or damaged in one of several ways."""
    folder = folders.new()
    root = folder / "data"
    for index, (image_kind, label_kind) in enumerate(kinds):
        split = "train" if index < 2 else "val"
        images, labels = root / "leftImg8bit" / split / "city", root / "gtFine" / split / "city"
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        stem = f"city_{index:06d}_000019"
        write_sample(images / f"{stem}_leftImg8bit.png", image_kind, False, index)
        write_sample(labels / f"{stem}_gtFine_labelIds.png", label_kind, True, index)
    study = yaml.safe_load(STUDY)
    study["dataset"] = {"name": "cityscapes", "root": "data"}
    study["training"]["batch_size"] = 1
    status, err, run_dir = run_study(folder, as_yaml(study), SPACE, capsys)
    if all(kind == ("good", "good") for kind in kinds):
        assert status in (0, 1), err
    if status in (0, 1):
        return  # only harmless damage: a stray directory or an unmatched label
    check_bad_input(status, err)
    assert "data" in err  # the message names the file or directory
    if run_dir.exists():  # a damaged sample beyond the first of its split stops the study at its first trial
        frame = pd.read_csv(run_dir / "trials.csv")
        assert list(frame["state"]) == ["FAIL"] and frame["fail_reason"][0].startswith("SpecError")


# ---------------------------------------------------------------- run directories: `report RUN --out`, `run --out RUN`

GOOD_TRIALS = """\
number,state,arch_hash,seed,params_train,params_deploy,macs,receptive_field,output_stride,latency_ms,miou,\
train_seconds,fail_reason,param.width
0,COMPLETE,aaaaaaaaaaaa,0,100,90,1000,63,4,1.5,0.25,1.0,,16
1,FAIL,,0,,,,,,,,,InvalidPoint: width,32
2,COMPLETE,bbbbbbbbbbbb,0,200,180,2000,127,4,2.5,0.5,2.0,,48
3,COMPLETE,aaaaaaaaaaaa,1,100,90,1000,63,4,1.5,0.3,1.0,,16
"""
GOOD_HEADING = ("name: fuzz\nspace: space.yaml\ntraining: {iterations: 1}\nlatency: {}\n"
                "objectives:\n- {metric: miou, direction: maximize}\n- {metric: latency_ms, direction: minimize}\n")


@st.composite
def damaged_tables(draw) -> str:
    rows = [line.split(",") for line in GOOD_TRIALS.splitlines()]
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(st.sampled_from(["cell", "cell", "drop column", "rename column", "drop line",
                                          "duplicate line", "extra cell"]))
        row = draw(st.integers(0, len(rows) - 1))
        column = draw(st.integers(0, len(rows[0]) - 1))
        if operation == "cell":
            rows[row][column % len(rows[row])] = draw(
                st.sampled_from(["", "nan", "inf", "-1", "1.5", "x", "RUNNING", "INFEASIBLE", "1e400", '"', "0"])
                | st.text(alphabet=st.characters(blacklist_characters=",\n\r"), max_size=6))
        elif operation == "drop column":
            for line in rows:
                if column < len(line):
                    del line[column]
        elif operation == "rename column":
            rows[0][column % len(rows[0])] = draw(st.text(max_size=5))
        elif operation == "drop line" and len(rows) > 1:
            del rows[row]
        elif operation == "duplicate line":
            rows.append(list(rows[row]))
        else:
            rows[row].append("extra")
    return "\n".join(",".join(line) for line in rows) + "\n"


@settings(FUZZ, max_examples=examples(40))
@given(table=st.one_of(damaged_tables(), damaged_tables(), st.text(max_size=80),
                       st.binary(max_size=80).map(lambda data: data.decode("latin-1"))),
       heading=st.one_of(st.just(GOOD_HEADING), st.just(GOOD_HEADING), st.none(),
                         mutated(yaml.safe_load(GOOD_HEADING)).map(as_yaml), st.text(max_size=30)))
@example(table=GOOD_TRIALS.replace("0.25", "inf"), heading=GOOD_HEADING)
@example(table=GOOD_TRIALS.replace("1.5,0.25", "-inf,0.25"), heading=GOOD_HEADING)
@example(table=GOOD_TRIALS.replace(",16\n", ",\n"), heading=GOOD_HEADING)
@example(table=GOOD_TRIALS.replace("1,FAIL", "1,COMPLETE"), heading=GOOD_HEADING)
@example(table=GOOD_TRIALS.replace("0,COMPLETE,aaaaaaaaaaaa,0,100", "0,COMPLETE,aaaaaaaaaaaa,0,1e400"),
         heading=GOOD_HEADING)
@example(table=GOOD_TRIALS.replace(",1000,63", ",1e30,63"), heading=GOOD_HEADING)
@example(table=GOOD_TRIALS, heading="name: [1]\nobjectives: [{metric: miou, direction: maximize}]\n")
def test_fuzzed_run_directories_for_report(folders, capsys, table, heading):
    folder = folders.new()
    run_dir = folder / "run"
    run_dir.mkdir()
    write_text(run_dir / "trials.csv", table)
    if heading is not None:
        write_text(run_dir / "study.yaml", heading)
    out_dir = folder / "report"
    capsys.readouterr()
    status = main(["report", str(run_dir), "--out", str(out_dir)])
    out, err = capsys.readouterr()
    written = sorted(path.name for path in out_dir.iterdir()) if out_dir.exists() else []
    if status == 0:  # race.png too when a trial was trained (a race to draw)
        assert written in (["pareto.png", "report.csv", "report.md"], ["pareto.png", "race.png", "report.csv", "report.md"])
        return
    check_bad_input(status, err)
    assert written == [], "a report was partly written"


@pytest.mark.parametrize("damage", ["random bytes", "empty", "sqlite header only", "truncated", "a directory"])
def test_a_damaged_storage_in_the_run_directory_is_bad_input(tmp_path, capsys, damage, no_training, tiny_study):
    run_dir = tmp_path / "run"
    assert main(["run", str(tiny_study), "--out", str(run_dir), "--trials", "1",
                 "--set", "training.iterations=1"]) in (0, 1)
    storage = run_dir / "study.db"
    good = storage.read_bytes()
    storage.unlink()
    if damage == "random bytes":
        storage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif damage == "empty":
        storage.write_bytes(b"")
    elif damage == "sqlite header only":
        storage.write_bytes(good[:100])
    elif damage == "truncated":
        storage.write_bytes(good[:len(good) // 2])
    else:
        storage.mkdir()
    capsys.readouterr()
    status = main(["run", str(tiny_study), "--out", str(run_dir), "--trials", "2", "--set", "training.iterations=1"])
    err = capsys.readouterr().err
    check_bad_input(status, err)  # an empty file too: SQLite would start the study again over trial 0's row
    assert "study.db" in err


def test_a_run_directory_resumed_with_other_objectives_is_bad_input(tiny_study, tmp_path, capsys, no_training):
    run_dir = tmp_path / "run"
    assert main(["run", str(tiny_study), "--out", str(run_dir), "--trials", "1"]) in (0, 1)
    for objectives in ("[{metric: miou, direction: maximize}, {metric: macs, direction: minimize}]",
                       "[{metric: macs, direction: maximize}]"):
        capsys.readouterr()
        status = main(["run", str(tiny_study), "--out", str(run_dir), "--trials", "3",
                       "--set", f"objectives={objectives}"])
        err = capsys.readouterr().err
        check_bad_input(status, err)
        assert "holds trials measured with other settings: objectives: " in err
        status = main(["run", str(tiny_study), "--out", str(run_dir), "--trials", "3",
                       "--set", f"objectives={objectives}", "--allow-changed-settings"])
        err = capsys.readouterr().err
        check_bad_input(status, err)  # a recipe may change; what the storage's values mean may not
        assert "objectives: the storage holds this study with other objectives" in err
    assert len(pd.read_csv(run_dir / "trials.csv")) == 1


def test_checkpoint_fixture_is_loadable(checkpoints, tmp_path):
    """The base of the checkpoint fuzz loads, so what the fuzz breaks was whole before."""
    for suffix, data in checkpoints.items():
        path = tmp_path / f"w{suffix}"
        path.write_bytes(data)
        assert main(["build", str(write_text(tmp_path / "spec.yaml", DBLOCK_SPEC)), "--input", "32x64",
                     "--weights", str(path)]) == 0


def test_tiny_study_base_is_valid(tmp_path):
    write_text(tmp_path / "tiny_space.yaml", SPACE)
    load_study(write_text(tmp_path / "study.yaml", STUDY))
    with pytest.raises(SpecError):
        load_study(write_text(tmp_path / "study.yaml", STUDY.replace("trials: 4", "trials: 0")))



# ---------------------------------------------------------------- output paths: `build --save`, `report --out`

PATH_PARTS = ["new", "a file", "a dir", "x.yaml", "x.pt", "x.txt", "d.yaml (a dir)", "deep/er"]


def make_path(folder: Path, parts: list[str]) -> Path:
    """A path in ``folder`` from parts; 'a file' and 'a dir' (and 'd.yaml (a dir)') exist as such."""
    path = folder
    for part in parts:
        if part == "a file":
            path = path / "file"
            if not path.exists() and path.parent.is_dir():
                path.write_text("keep me")
        elif part == "a dir":
            path = path / "dir"
            if path.parent.is_dir():
                path.mkdir(exist_ok=True)
        elif part == "d.yaml (a dir)":
            path = path / "d.yaml"
            if path.parent.is_dir():
                path.mkdir(exist_ok=True)
        else:
            path = path / part
    return path


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@settings(FUZZ, max_examples=examples(25))
@given(parts=st.lists(st.sampled_from(PATH_PARTS), min_size=1, max_size=3), force=st.booleans())
@example(parts=["a file", "x.yaml"], force=False)
@example(parts=["a file"], force=True)
@example(parts=["d.yaml (a dir)"], force=True)
def test_fuzzed_save_paths(folders, capsys, parts, force):
    folder = folders.new()
    spec_file = write_text(folder / "spec.yaml", DBLOCK_SPEC)
    target = make_path(folder, parts)
    before = files_of(folder)
    capsys.readouterr()
    status = main(["build", str(spec_file), "--input", "32x64", "--save", str(target)] + ["--force"] * force)
    err = capsys.readouterr().err
    if status == 0:
        assert target.is_file() and (force or str(target.relative_to(folder)) not in before)
        return
    check_bad_input(status, err)
    assert files_of(folder) == before and not list(folder.rglob("*.tmp"))


@settings(FUZZ, max_examples=examples(15))
@given(parts=st.lists(st.sampled_from(PATH_PARTS), min_size=1, max_size=3))
@example(parts=["a file", "new"])
def test_fuzzed_report_out_paths(folders, capsys, parts):
    folder = folders.new()
    run_dir = folder / "run"
    run_dir.mkdir()
    write_text(run_dir / "trials.csv", GOOD_TRIALS)
    write_text(run_dir / "study.yaml", GOOD_HEADING)
    target = make_path(folder, parts)
    before = files_of(folder)
    capsys.readouterr()
    status = main(["report", str(run_dir), "--out", str(target)])
    err = capsys.readouterr().err
    if status == 0:
        assert {"report.md", "report.csv", "pareto.png"} <= {path.name for path in target.iterdir()}
        return
    check_bad_input(status, err)
    assert files_of(folder) == before


# ---------------------------------------------------------------- nesting and aliases


@st.composite
def nested_documents(draw) -> str:
    """Deep flow or block nesting, alias chains (billion laughs), aliases inside their anchor."""
    kind = draw(st.sampled_from(["flow", "block", "aliases", "self"]))
    depth = draw(st.integers(1, 3000))
    if kind == "flow":
        return "stem: " + "[" * depth + "]" * depth
    if kind == "block":
        return "".join(f"{'  ' * level}k{level}:\n" for level in range(min(depth, 400)))
    if kind == "self":
        return "stem: &a [{block: conv, out_channels: 8}, *a]"
    levels, fanout = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    lines = ["a0: &a0 {block: conv, out_channels: 8}"]
    lines += [f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * fanout)}]" for level in range(1, levels + 1)]
    return "\n".join(lines) + f"\nstem: *a{levels}\nstages: []\nhead: {{block: topdown}}\n"


@settings(FUZZ, max_examples=examples(20))
@given(document=nested_documents())
def test_fuzzed_nesting_and_aliases(folders, capsys, document):
    folder = folders.new()
    spec_file = write_text(folder / "spec.yaml", document)
    capsys.readouterr()
    status = main(["build", str(spec_file), "--input", "32x64"])
    err = capsys.readouterr().err
    assert status == 2, err  # none of these is a whole network
    check_bad_input(status, err)
    assert "RecursionError" not in err


# ---------------------------------------------------------------- resource sizes


@pytest.fixture
def small_machine(monkeypatch):
    """256 MiB free: large sizes are refused by the estimate, and whatever is let through is small."""
    from archsearch import resources

    monkeypatch.setattr(resources, "available_memory_bytes", lambda device="cpu": 256 * 2**20)


sizes = st.one_of(st.integers(1, 64), st.integers(1, 10**9), st.sampled_from([10**5, 10**7, 2**31, 10**12]))


@settings(FUZZ, max_examples=examples(20))
@given(command=st.sampled_from(["build", "latency"]), classes=sizes, height=sizes, width=sizes, channels=sizes)
@example(command="build", classes=100_000_000, height=32, width=32, channels=8)
@example(command="latency", classes=19, height=100_000, width=100_000, channels=8)
@example(command="build", classes=19, height=32, width=32, channels=10**7)
def test_fuzzed_resource_sizes(folders, capsys, small_machine, command, classes, height, width, channels):
    folder = folders.new()
    spec_file = write_text(folder / "spec.yaml", DBLOCK_SPEC.replace("out_channels: 32, stride: 2",
                                                                     f"out_channels: {channels * 8}, stride: 2"))
    extra = ["--budget", "0", "--warmup", "0"] if command == "latency" else []
    capsys.readouterr()
    try:
        status = main([command, str(spec_file), "--classes", str(classes), "--input", f"{height}x{width}", *extra])
    except SystemExit as exit:  # argparse refusing a size: its own one-line message
        status = exit.code
    err = capsys.readouterr().err
    if status == 0:
        return
    assert status == 2 and "Traceback" not in err, err
    if "needs about" in err:
        assert "more than the 256.0 MiB available" in err


# ---------------------------------------------------------------- run directories resumed with other settings

CHANGES = [("training.iterations", "3"), ("training.lr", "0.01"), ("training.num_threads", "1"),
           ("input_size", "[32, 32]"), ("fix", "{width: 32}"), ("sampler.seed", "7"), ("seeds", "[0, 1]"),
           ("dataset.num_train", "3"), ("name", "another"), ("constraints.macs.max", "2.0e+9")]
SPEED_ONLY = ("training.num_threads", "sampler.seed", "seeds")


@settings(FUZZ, max_examples=examples(8))
@given(changes=st.lists(st.sampled_from(CHANGES), max_size=3, unique_by=lambda change: change[0]),
       allow=st.booleans())
@example(changes=[("name", "another")], allow=True)
@example(changes=[("training.lr", "0.01"), ("input_size", "[32, 32]")], allow=False)
def test_fuzzed_run_directory_mismatches(folders, capsys, no_training, changes, allow):
    folder = folders.new()
    status, err, run_dir = run_study(folder, STUDY, SPACE, capsys)
    assert status in (0, 1), err
    before = pd.read_csv(run_dir / "trials.csv")
    arguments = ["run", str(folder / "study.yaml"), "--out", str(run_dir), "--trials", "3"]
    for key, value in changes:
        arguments += ["--set", f"{key}={value}"]
    capsys.readouterr()
    status = main(arguments + ["--allow-changed-settings"] * allow)
    err = capsys.readouterr().err
    measured = [key for key, _ in changes if key not in SPEED_ONLY and key != "name"]
    if any(key == "name" for key, _ in changes):
        check_bad_input(status, err)
        assert "belongs to another study" in err
    elif measured and not allow:
        check_bad_input(status, err)
        for key in measured:  # named by its section (a list, such as constraints, is named whole)
            assert key.split(".")[0] in err.split("other settings: ")[1]
    else:
        assert status in (0, 1), err
        return
    assert pd.read_csv(run_dir / "trials.csv").equals(before)  # nothing changed
