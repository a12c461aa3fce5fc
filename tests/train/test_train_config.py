from __future__ import annotations

import pytest

from archsearch.errors import SpecError
from archsearch.train import TrainConfig


def test_defaults_follow_the_ddrnet_recipe() -> None:
    config = TrainConfig(iterations=100)
    assert (config.optimizer, config.momentum, config.poly_power, config.aux_weight,
            config.ohem_threshold, config.ignore_index, config.device) == (
        "sgd", 0.9, 0.9, 0.4, 0.7, 255, "cpu")


def test_from_dict_normalizes_and_round_trips() -> None:
    config = TrainConfig.from_dict({"iterations": 10, "lr": 1, "class_weights": [1, 2.5],
                                    "loss": "ohem", "ohem_min_kept": 64})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.class_weights == (1.0, 2.5)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["class_weights"] == [1.0, 2.5]


@pytest.mark.parametrize(("key", "value", "path"), [
    ("lr", -0.1, "training.lr"),
    ("lr", 0, "training.lr"),
    ("lr", True, "training.lr"),
    ("lr", float("nan"), "training.lr"),
    ("optimizer", "adam", "training.optimizer"),
    ("schedule", "step", "training.schedule"),
    ("loss", "focal", "training.loss"),
    ("batch_size", 0, "training.batch_size"),
    ("batch_size", 2.0, "training.batch_size"),
    ("momentum", 1.0, "training.momentum"),
    ("nesterov", "yes", "training.nesterov"),
    ("weight_decay", -1e-4, "training.weight_decay"),
    ("ohem_threshold", 1.5, "training.ohem_threshold"),
    ("ohem_min_kept", 0, "training.ohem_min_kept"),
    ("class_weights", [1.0, -1.0], "training.class_weights[1]"),
    ("class_weights", [0, 0], "training.class_weights"),
    ("class_weights", "1,2", "training.class_weights"),
    ("aux_weight", -0.4, "training.aux_weight"),
    ("eval_every", 0, "training.eval_every"),
    ("seed", -1, "training.seed"),
    ("num_threads", 0, "training.num_threads"),
    ("device", "gpu", "training.device"),
    ("device", 0, "training.device"),
    ("warmup_iterations", 10, "training.warmup_iterations"),
])
def test_bad_value_names_its_key_path_value_and_source(key: str, value: object,
                                                       path: str) -> None:
    with pytest.raises(SpecError) as caught:
        TrainConfig.from_dict({"iterations": 10, key: value}, "studies/x.yaml")
    error = caught.value
    assert error.path == path
    assert error.source == "studies/x.yaml"
    assert error.allowed
    assert str(error).startswith(f"studies/x.yaml: {path}: ")


def test_unknown_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(SpecError) as caught:
        TrainConfig.from_dict({"iterations": 10, "warmup_iters": 5}, "s.yaml")
    assert caught.value.path == "training.warmup_iters"
    assert "did you mean 'warmup_iterations'" in str(caught.value)


def test_number_written_as_quoted_text_gets_a_hint() -> None:
    with pytest.raises(SpecError, match="without quotes") as caught:
        TrainConfig.from_dict({"iterations": 10, "lr": "1e-3"})
    assert caught.value.value == "1e-3"


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        TrainConfig.from_dict([("iterations", 10)], path="study.training")
    assert caught.value.path == "study.training"


@pytest.mark.parametrize("budget", [{}, {"iterations": 10, "epochs": 2}])
def test_exactly_one_budget(budget: dict[str, int]) -> None:
    with pytest.raises(SpecError, match="exactly one") as caught:
        TrainConfig.from_dict(budget)
    assert caught.value.path == "training.iterations"


def test_nesterov_needs_sgd_with_momentum() -> None:
    with pytest.raises(SpecError, match="sgd"):
        TrainConfig(iterations=10, optimizer="adamw", nesterov=True)
    with pytest.raises(SpecError, match="momentum"):
        TrainConfig(iterations=10, momentum=0.0, nesterov=True)
    assert TrainConfig(iterations=10, nesterov=True).nesterov


def test_total_steps_from_iterations_or_epochs() -> None:
    assert TrainConfig(iterations=7).total_steps(None) == 7
    assert TrainConfig(epochs=3).total_steps(5) == 15
    with pytest.raises(SpecError) as caught:
        TrainConfig(epochs=3).total_steps(None)
    assert caught.value.path == "epochs"
    with pytest.raises(SpecError) as caught:
        TrainConfig(epochs=1, warmup_iterations=5).total_steps(5)
    assert caught.value.path == "warmup_iterations"


def test_config_is_frozen_and_hashable() -> None:
    config = TrainConfig(iterations=10, class_weights=[1.0, 2.0])
    with pytest.raises(AttributeError):
        config.lr = 1.0  # type: ignore[misc]
    assert hash(config) == hash(TrainConfig(iterations=10, class_weights=(1.0, 2.0)))


@pytest.mark.parametrize("name", ["xpu", "meta", "cuda:x", "cpu:0", "", " cpu", 0])
def test_training_and_latency_refuse_the_same_device_names(name) -> None:
    from archsearch.latency import LatencySettings

    with pytest.raises(SpecError) as training:
        TrainConfig.from_dict({"iterations": 1, "device": name})
    with pytest.raises(SpecError) as latency:
        LatencySettings(device=name)
    assert training.value.path == "training.device" and latency.value.path == "device"
    assert training.value.message == latency.value.message


def test_mps_is_a_training_device_and_is_refused_for_latency_by_name() -> None:
    from archsearch.latency import LatencySettings

    assert TrainConfig.from_dict({"iterations": 1, "device": "mps"}).device == "mps"
    with pytest.raises(SpecError, match="mps devices are not supported here"):
        LatencySettings(device="mps")


@pytest.mark.parametrize("value", ["nan", "inf", "-.inf", float("nan"), float("inf")])
def test_a_number_that_is_not_finite_is_called_so(value) -> None:
    with pytest.raises(SpecError) as error:
        TrainConfig.from_dict({"iterations": 1, "lr": value})
    assert error.value.message == "expected a finite number" and "quoted" not in str(error.value)
    assert error.value.allowed == "a finite number > 0.0"


def test_a_number_written_as_text_is_called_text() -> None:
    with pytest.raises(SpecError) as error:
        TrainConfig.from_dict({"iterations": 1, "lr": "0.1"})
    assert "text" in error.value.message
