"""YAML files and ``--set`` values: read as YAML 1.2, within bounds, and every bad one named with where and why."""

from __future__ import annotations

import math
import os

import pytest

from archsearch.errors import SpecError
from archsearch.io import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, parse_yaml, read_yaml
from archsearch.study.config import load_study

ALIAS_BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                       + [f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]" for level in range(1, 9)])


@pytest.mark.parametrize(("text", "value"), [
    ("1e30", 1e30), ("-2.5E-3", -2.5e-3), (".5", 0.5), ("017", 17), ("0o17", 15), ("0x1F", 31), ("+7", 7),
    ("1_000", "1_000"), ("1:20", "1:20"), ("1.0e-05", 1e-5), (".inf", math.inf), ("-.Inf", -math.inf),
])
def test_numbers_read_as_yaml_1_2(text, value):
    assert parse_yaml(f"v: {text}", source="s.yaml") == {"v": value}


def test_nan_reads_as_a_float():
    assert math.isnan(parse_yaml("v: .nan", source="s.yaml")["v"])


def test_duplicated_key_is_refused_with_both_lines():
    with pytest.raises(SpecError) as caught:
        parse_yaml("name: a\ntrials: 3\nname: b\n", source="study.yaml")
    assert str(caught.value).startswith("study.yaml: duplicated key 'name' (first at line 1) at line 3")


def test_merge_keys_still_override():
    assert parse_yaml("base: &b {x: 1, y: 2}\nc: {<<: *b, x: 3}", source="s")["c"] == {"x": 3, "y": 2}


def test_alias_bomb_is_refused_before_it_is_expanded():
    with pytest.raises(SpecError) as caught:
        parse_yaml(ALIAS_BOMB, source="space.yaml")
    assert f"more than {MAX_YAML_NODES:,} values once aliases are expanded" in str(caught.value)
    assert caught.value.source == "space.yaml" and "at most" in caught.value.allowed


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(SpecError, match="an alias refers to a node that contains it"):
        parse_yaml("a: &a [1, *a]", source="s")


@pytest.mark.parametrize("text", ["[" * 1000 + "]" * 1000, "".join(f"{'  ' * depth}k:\n" for depth in range(1000)),
                                  "a: &a " + "[" * 20 + "1" + "]" * 20 + "\nb: &b [[[[[[[[[[[[[[*a]]]]]]]]]]]]]]"])
def test_deep_nesting_is_refused_without_recursion_error(text):
    with pytest.raises(SpecError, match=f"nested deeper than {MAX_YAML_DEPTH} levels"):
        parse_yaml(text, source="s")


def test_directory_is_named(tmp_path):
    with pytest.raises(SpecError, match="is a directory; allowed: a YAML file"):
        read_yaml(tmp_path)


def test_latin1_file_names_position_and_utf8(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes("name: a\nstem: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(SpecError) as caught:
        read_yaml(path)
    assert str(caught.value) == (f"{path}: expected UTF-8 text, found byte 0xe9 at line 2, column 10 (byte offset 17); "
                                 "allowed: a YAML file encoded as UTF-8")


def test_binary_file_names_a_position(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\x00\x01\x02\xff")
    with pytest.raises(SpecError, match="expected UTF-8 text, found byte 0xff at line 1, column 4"):
        read_yaml(path)
    path.write_bytes(b"name: \x00")
    with pytest.raises(SpecError, match="character U\\+0000 at line 1, column 7 is not allowed"):
        read_yaml(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_named(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: a\n")
    path.chmod(0)
    with pytest.raises(SpecError, match="cannot read file: Permission denied"):
        read_yaml(path)


def test_set_value_reads_as_yaml_1_2(tiny_study):
    assert load_study(tiny_study, ["training.lr=1e30"]).training.lr == 1e30


def test_set_value_error_names_the_set_not_the_file(tiny_study):
    with pytest.raises(SpecError) as caught:
        load_study(tiny_study, ["training.lr=-1e3"])
    assert caught.value.source == f"--set training.lr=-1e3 (over {tiny_study})"
    assert caught.value.path == "training.lr" and caught.value.value == -1000.0


def test_set_value_that_is_bad_yaml_names_the_set(tiny_study):
    with pytest.raises(SpecError) as caught:
        load_study(tiny_study, ["training.lr=[1, 2"])
    assert caught.value.source == "--set training.lr"
    with pytest.raises(SpecError, match="--set: a key path deeper than"):
        load_study(tiny_study, [".".join(["a"] * 1000) + "=1"])


def _fifo(tmp_path):
    path = tmp_path / "study.yaml"
    os.mkfifo(path)
    return path


def _sparse(tmp_path):
    path = tmp_path / "spec.yaml"
    with open(path, "wb") as file:
        file.truncate(3 * 1024 ** 3)  # 3 GB of holes: no disk used
    return path


@pytest.mark.parametrize("make", [lambda tmp_path: "/dev/zero", lambda tmp_path: "/dev/urandom", _fifo],
                         ids=["dev-zero", "dev-urandom", "fifo"])
def test_a_file_that_is_not_a_regular_file_is_refused_without_reading(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(SpecError) as caught:
        read_yaml(path)
    assert str(caught.value).startswith(f"{path}: not a regular file") and "a YAML file" in caught.value.allowed


def test_a_file_over_the_size_cap_is_refused_naming_the_cap(tmp_path):
    path = _sparse(tmp_path)
    with pytest.raises(SpecError) as caught:
        read_yaml(path)
    assert f"larger than {MAX_YAML_BYTES // 1024 ** 2} MiB" in str(caught.value) and caught.value.source == str(path)


def test_a_file_is_read_with_a_bound_even_when_its_size_lies(tmp_path, monkeypatch):
    """A file whose reported size is small (a /proc file, one growing as it is read) is still read only to the cap."""
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"#" * (MAX_YAML_BYTES + 10))
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda descriptor: os.stat_result(
        real_fstat(descriptor)[:6] + (0,) + real_fstat(descriptor)[7:]))
    with pytest.raises(SpecError, match=f"larger than {MAX_YAML_BYTES // 1024 ** 2} MiB"):
        read_yaml(path)


@pytest.mark.parametrize("make", [lambda tmp_path: "/dev/zero", lambda tmp_path: "/dev/urandom", _fifo, _sparse],
                         ids=["dev-zero", "dev-urandom", "fifo", "sparse"])
@pytest.mark.parametrize("command", [["build"], ["run"], ["run", "--dry-run"]])
def test_the_cli_refuses_such_files_with_exit_2(tmp_path, capsys, make, command):
    from archsearch.cli.main import main

    path = make(tmp_path)
    assert main([*command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"archsearch: error: {path}: ") and "Traceback" not in err, err


def test_a_space_that_is_not_a_regular_file_is_refused_by_the_study(tiny_study):
    (tiny_study.parent / "tiny_space.yaml").unlink()
    os.mkfifo(tiny_study.parent / "tiny_space.yaml")
    with pytest.raises(SpecError, match="not a regular file"):
        load_study(tiny_study)
