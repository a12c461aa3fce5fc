"""Mixed precision, channels-last, compilation, loader workers and the data-wait fraction.

CPU paths run everywhere; CUDA paths run on a CUDA device and are skipped without one.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archsearch.errors import SpecError
from archsearch.train import (TrainConfig, build_optimizer, build_scheduler, default_workers, loader_settings,
                              make_loader, present_device, train_and_evaluate)

FAST = {"optimizer": "adamw", "lr": 0.02, "weight_decay": 0.0, "batch_size": 4, "num_threads": 1}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def train(model, train_set, val_set, **settings):
    config = TrainConfig.from_dict({**FAST, "iterations": 40, **settings})
    loading = loader_settings(config)
    return train_and_evaluate(model, make_loader(train_set, 4, shuffle=True, seed=0, drop_last=True, **loading),
                              make_loader(val_set, 4, shuffle=False, seed=0, **loading), config)


def test_bf16_autocast_trains_on_the_cpu(make_model, train_set, val_set) -> None:
    torch.manual_seed(0)
    result = train(make_model(), train_set, val_set, amp="bf16")
    assert math.isfinite(result.final_loss) and result.final_loss > 0
    assert 0.0 <= result.miou <= 1.0 and result.miou > 0.5
    assert result.history[-1] == (40, result.miou)


def test_bf16_really_runs_in_bf16(make_model, train_set, val_set) -> None:
    """The head's output dtype is bf16 inside the step: autocast is on, not just accepted."""
    torch.manual_seed(0)
    model = make_model()
    seen: list[torch.dtype] = []
    model.head.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    train(model, train_set, val_set, amp="bf16", iterations=2)
    assert seen and set(seen) == {torch.bfloat16}
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())


def test_channels_last_trains_to_the_same_result_within_rounding(make_model, train_set, val_set) -> None:
    torch.manual_seed(0)
    plain = train(make_model(), train_set, val_set, iterations=10)
    torch.manual_seed(0)
    model = make_model()
    nhwc = train(model, train_set, val_set, iterations=10, channels_last=True)
    assert model.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.final_loss == pytest.approx(plain.final_loss, rel=1e-4)


def test_data_wait_fraction_is_a_share_of_training_time(make_model, train_set, val_set) -> None:
    result = train(make_model(), train_set, val_set, iterations=10)
    assert 0.0 < result.data_wait_fraction < 1.0


def test_a_slow_loader_shows_as_waiting_for_data(make_model, train_set, val_set) -> None:
    import time

    class Slow(torch.utils.data.Dataset):
        def __len__(self):
            return len(train_set)

        def __getitem__(self, index):
            time.sleep(0.01)
            return train_set[index]

    result = train(make_model(), Slow(), val_set, iterations=5)
    assert result.data_wait_fraction > 0.5


def test_workers_give_the_same_batches_as_the_main_process(train_set) -> None:
    in_process = [batch[1] for batch in make_loader(train_set, 4, shuffle=True, seed=5, num_workers=0)]
    loader = make_loader(train_set, 4, shuffle=True, seed=5, num_workers=2)
    assert loader.persistent_workers
    with_workers = [batch[1] for batch in loader]
    assert all(torch.equal(first, second) for first, second in zip(in_process, with_workers, strict=True))


def test_default_workers_follow_the_device_and_threads() -> None:
    assert default_workers(None, "cpu", 8) == 0  # the model's own threads use those cores
    assert default_workers(None, "cuda", 4) == 3  # every thread of the trial but the main one
    assert default_workers(None, "cuda:1", 1) == 1
    assert default_workers(2, "cpu", 1) == 2
    assert loader_settings(TrainConfig(iterations=1, num_workers=3)) == {"num_workers": 3, "pin_memory": False}


def test_no_decay_on_norm_weights_and_biases() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=False))
    groups = build_optimizer(model, TrainConfig(iterations=1, weight_decay=1e-4,
                                                weight_decay_exempt="norms_and_biases")).param_groups
    decayed = {id(parameter) for parameter in groups[0]["params"]}
    undecayed = {id(parameter) for parameter in groups[1]["params"]}
    assert decayed == {id(model[0].weight), id(model[2].weight)}
    assert undecayed == {id(model[0].bias), id(model[1].weight), id(model[1].bias)}
    assert (groups[0]["weight_decay"], groups[1]["weight_decay"]) == (1e-4, 0.0)


def test_warmup_from_a_factor() -> None:
    config = TrainConfig(iterations=10, lr=1.0, warmup_iterations=4, warmup_factor=0.1)
    optimizer = build_optimizer(nn.Linear(2, 2), config)
    scheduler = build_scheduler(optimizer, config, 10)
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.1, 0.325, 0.55, 0.775, 1.0])


@pytest.mark.parametrize("settings, path", [({"amp": "fp8"}, "training.amp"),
                                            ({"warmup_factor": 0.1}, "training.warmup_factor"),
                                            ({"warmup_iterations": 2, "warmup_factor": 0}, "training.warmup_factor"),
                                            ({"num_workers": -1}, "training.num_workers"),
                                            ({"channels_last": "yes"}, "training.channels_last")])
def test_bad_speed_settings_name_their_key(settings, path) -> None:
    with pytest.raises(SpecError) as error:
        TrainConfig.from_dict({"iterations": 10, **settings}, "study.yaml")
    assert error.value.path == path and "study.yaml" in str(error.value)


def test_a_missing_cuda_device_is_an_error() -> None:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(SpecError) as error:
        present_device(f"cuda:{count}")
    assert error.value.path == "device" and "'cpu'" in str(error.value)
    assert present_device("cpu") == torch.device("cpu")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cuda(make_model, train_set, val_set, amp) -> None:
    torch.manual_seed(0)
    result = train(make_model(), train_set, val_set, amp=amp, device="cuda", channels_last=True)
    assert math.isfinite(result.final_loss) and result.miou > 0.5


@pytest.mark.cuda
@needs_cuda
def test_compiled_model_trains_on_cuda(make_model, train_set, val_set) -> None:
    torch.manual_seed(0)
    result = train(make_model(), train_set, val_set, compile=True, device="cuda", amp="bf16", num_workers=1)
    assert math.isfinite(result.final_loss) and result.miou > 0.5


def test_a_missing_mps_device_is_an_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(SpecError) as error:
        present_device("mps")
    assert error.value.path == "device" and "'cpu'" in str(error.value) and "MPS" in error.value.message
