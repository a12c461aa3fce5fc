"""The recipes' training and augmentation fields and the runtime section parse through the one schema: a bad value
names its key path and what is allowed in the schema's words, whether read from a study or built in Python."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from archsearch.data.augmentation import AugmentationConfig
from archsearch.errors import SpecError
from archsearch.runtime import RuntimeSettings
from archsearch.schema import parse_dataclass
from archsearch.study.config import load_study
from archsearch.train.config import TrainConfig
from tests.helpers.paths import FIXTURES

TINY = FIXTURES / "tiny_study.yaml"


@pytest.mark.parametrize(("assignment", "path", "message", "allowed"), [
    ("augmentation.pad_order=sideways", "augmentation.pad_order", "not an allowed value",
     "'at_crop' | 'after_colour' | 'after_normalisation'"),
    ("augmentation.pad_value=grey", "augmentation.pad_value", "not an allowed value", "'black' | 'mean'"),
    ("augmentation.class_uniform_sampling=per_batch", "augmentation.class_uniform_sampling", "not an allowed value",
     "'per_image' | 'per_epoch'"),
    ("augmentation.class_uniform_tile=0", "augmentation.class_uniform_tile", "out of range", "an integer >= 1"),
    ("augmentation.eval_short_side=0", "augmentation.eval_short_side", "out of range", "an integer >= 1 or null"),
    ("training.warmup_style=linear", "training.warmup_style", "not an allowed value", "'sequential' | 'multiplied'"),
    ("training.weight_decay_exempt=biases", "training.weight_decay_exempt", "not an allowed value",
     "'none' | 'norms_and_biases' | 'batchnorm'"),
    ("training.ohem_normalisation=mean", "training.ohem_normalisation", "not an allowed value",
     "'weight_sum' | 'kept_pixels'"),
    ("training.eval_last_epochs=-1", "training.eval_last_epochs", "out of range", "an integer >= 0"),
    ("training.processes=0", "training.processes", "out of range", "an integer >= 1"),
    ("training.sync_batchnorm=1", "training.sync_batchnorm", "expected true or false", "true, false"),
])
def test_a_bad_recipe_value_names_its_key_and_what_is_allowed(assignment, path, message, allowed):
    with pytest.raises(SpecError) as caught:
        load_study(TINY, [assignment])
    assert (caught.value.path, caught.value.message, caught.value.allowed) == (path, message, allowed)


def test_configs_built_in_python_are_checked_by_the_same_schema():
    with pytest.raises(SpecError, match="ohem_normalisation"):
        TrainConfig(iterations=2, ohem_normalisation="mean")
    with pytest.raises(SpecError, match="wait_policy"):
        RuntimeSettings(wait_policy="sleepy")
    with pytest.raises(SpecError, match="class_uniform_tile"):
        AugmentationConfig.from_dict({"class_uniform_tile": 0})


@dataclass(frozen=True)
class Inner:
    policy: str | None = None


@dataclass(frozen=True)
class Outer:
    inner: Inner | None = None


def test_an_error_inside_an_optional_section_is_not_offered_null_twice():
    with pytest.raises(SpecError) as caught:
        parse_dataclass(Outer, {"inner": {"policy": 3}}, "")
    assert caught.value.path == "inner.policy" and caught.value.allowed == "a string or null"
    with pytest.raises(SpecError) as caught:
        parse_dataclass(Outer, {"inner": 3}, "")
    assert caught.value.path == "inner" and caught.value.allowed.endswith("or null")
