from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from archsearch.errors import SpecError
from archsearch.train import (TrainConfig, TrainingDiverged, TrainResult, evaluate, make_loader,
                              train_and_evaluate)

FAST = {"optimizer": "adamw", "lr": 0.02, "weight_decay": 0.0, "batch_size": 4,
        "num_threads": 1}


def run(model: nn.Module, train_set: TensorDataset, val_set: TensorDataset, seed: int = 0,
        on_evaluation: Callable[[int, float], None] | None = None, **settings: object
        ) -> TrainResult:
    config = TrainConfig.from_dict({**FAST, "iterations": 20, "seed": seed, **settings})
    train_loader = make_loader(train_set, config.batch_size, shuffle=True, seed=seed,
                               drop_last=True)
    val_loader = make_loader(val_set, 4, shuffle=False, seed=seed)
    return train_and_evaluate(model, train_loader, val_loader, config,
                              on_evaluation=on_evaluation)


def seeded_model(make_model: Callable[..., nn.Module], seed: int, **options: object) -> nn.Module:
    torch.manual_seed(seed)
    return make_model(**options)


def test_training_a_learnable_task_raises_miou(make_model, train_set, val_set) -> None:
    model = seeded_model(make_model, 0)
    before = evaluate(model, make_loader(val_set, 4, shuffle=False, seed=0), num_classes=3).miou()
    result = run(model, train_set, val_set, iterations=80, eval_every=20)
    assert result.miou > 0.85 > before + 0.3
    assert result.history[-1] == (80, result.miou)
    assert result.pixel_accuracy > 0.9
    assert len(result.per_class_iou) == 3
    assert result.steps == 80 and result.final_loss > 0
    assert result.train_seconds > 0 and result.eval_seconds > 0


def test_same_seed_gives_identical_results_and_weights(make_model, train_set, val_set) -> None:
    first_model, second_model = seeded_model(make_model, 3), seeded_model(make_model, 3)
    first = run(first_model, train_set, val_set, seed=3, eval_every=10)
    second = run(second_model, train_set, val_set, seed=3, eval_every=10)
    assert (first.miou, first.per_class_iou, first.final_loss, first.history) == (
        second.miou, second.per_class_iou, second.final_loss, second.history)
    for first_tensor, second_tensor in zip(first_model.state_dict().values(),
                                           second_model.state_dict().values()):
        assert torch.equal(first_tensor, second_tensor)


def test_different_seed_gives_a_different_result(make_model, train_set, val_set) -> None:
    first = run(seeded_model(make_model, 0), train_set, val_set, seed=0)
    second = run(seeded_model(make_model, 1), train_set, val_set, seed=1)
    assert first.final_loss != second.final_loss


def test_config_seed_drives_randomness_during_training(make_model, train_set, val_set) -> None:
    def final_loss(config_seed: int) -> float:
        model = seeded_model(make_model, 0, dropout=0.5)
        config = TrainConfig.from_dict({**FAST, "iterations": 5, "seed": config_seed})
        return train_and_evaluate(
            model, make_loader(train_set, 4, shuffle=True, seed=0, drop_last=True),
            make_loader(val_set, 4, shuffle=False, seed=0), config).final_loss

    assert final_loss(1) == final_loss(1) != final_loss(2)


def test_loader_order_depends_only_on_the_seed(train_set) -> None:
    def order(seed: int) -> list[Tensor]:
        return [labels for _, labels in make_loader(train_set, 4, shuffle=True, seed=seed)]

    assert all(torch.equal(a, b) for a, b in zip(order(5), order(5)))
    assert not all(torch.equal(a, b) for a, b in zip(order(5), order(6)))


@pytest.mark.parametrize(("iterations", "eval_every", "expected"), [
    (10, 4, [4, 8, 10]), (10, 5, [5, 10]), (10, None, [10]), (3, 7, [3])])
def test_on_evaluation_is_called_at_the_evaluation_steps(
        make_model, train_set, val_set, iterations: int, eval_every: int | None,
        expected: list[int]) -> None:
    calls: list[tuple[int, float]] = []
    result = run(make_model(), train_set, val_set, iterations=iterations, eval_every=eval_every,
                 on_evaluation=lambda step, miou: calls.append((step, miou)))
    assert [step for step, _ in calls] == expected
    assert tuple(calls) == result.history


class Pruned(Exception):
    pass


class CountingModel(nn.Module):
    """Wraps a model; counts training forwards; makes the output NaN from ``nan_from`` on."""

    def __init__(self, inner: nn.Module, nan_from: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.nan_from = nan_from
        self.training_forwards = 0

    def forward(self, images: Tensor, return_aux: bool = False):
        output = self.inner(images, return_aux)
        if not self.training:
            return output
        self.training_forwards += 1
        if self.nan_from is not None and self.training_forwards >= self.nan_from:
            return output[0] * float("nan"), output[1]
        return output


def test_an_exception_from_on_evaluation_propagates_and_stops(make_model, train_set,
                                                              val_set) -> None:
    model = CountingModel(make_model())

    def prune(step: int, miou: float) -> None:
        raise Pruned(step)

    with pytest.raises(Pruned):
        run(model, train_set, val_set, iterations=20, eval_every=4, on_evaluation=prune)
    assert model.training_forwards == 4


@pytest.mark.parametrize(("nan_from", "eval_every"), [(1, 2), (3, None), (12, 2), (14, None)])
def test_nan_loss_raises_training_diverged_with_its_step(make_model, train_set, val_set,
                                                         nan_from: int,
                                                         eval_every: int | None) -> None:
    calls: list[int] = []
    with pytest.raises(TrainingDiverged) as caught:
        run(CountingModel(make_model(), nan_from=nan_from), train_set, val_set, iterations=15,
            eval_every=eval_every, on_evaluation=lambda step, miou: calls.append(step))
    assert caught.value.step == nan_from
    assert f"step {nan_from}" in str(caught.value)
    assert all(step < nan_from for step in calls)


@pytest.mark.parametrize(("aux_weight", "aux_changes"), [(0.4, True), (0.0, False)])
def test_aux_head_is_trained_only_with_an_aux_weight(make_model, train_set, val_set,
                                                     aux_weight: float, aux_changes: bool) -> None:
    model = make_model(aux=True)
    initial = model.aux_head.weight.detach().clone()
    run(model, train_set, val_set, iterations=3, aux_weight=aux_weight)
    assert (not torch.equal(model.aux_head.weight, initial)) == aux_changes


def test_aux_loss_enters_the_training_loss(make_model, train_set, val_set) -> None:
    without = run(seeded_model(make_model, 0, aux=True), train_set, val_set, iterations=1,
                  aux_weight=0.0)
    with_aux = run(seeded_model(make_model, 0, aux=True), train_set, val_set, iterations=1,
                   aux_weight=0.4)
    assert with_aux.final_loss > without.final_loss


def test_epochs_budget_counts_loader_batches(make_model, train_set, val_set) -> None:
    result = run(make_model(), train_set, val_set, iterations=None, epochs=2)
    assert result.steps == 2 * len(train_set) // 4


def test_class_weights_must_match_the_model(make_model, train_set, val_set) -> None:
    with pytest.raises(SpecError) as caught:
        run(make_model(), train_set, val_set, class_weights=[1.0, 2.0])
    assert caught.value.path == "class_weights"
    assert "3 weights" in str(caught.value)


def test_ohem_and_sgd_recipe_trains(make_model, train_set, val_set) -> None:
    result = run(make_model(), train_set, val_set, optimizer="sgd", lr=0.05, nesterov=True,
                 loss="ohem", ohem_min_kept=256, warmup_iterations=5, class_weights=[1, 1, 2])
    assert 0.0 <= result.miou <= 1.0


def test_thread_count_is_set_during_training_and_restored(make_model, train_set,
                                                          val_set) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []
    run(make_model(), train_set, val_set, iterations=2, num_threads=1,
        on_evaluation=lambda step, miou: seen.append(torch.get_num_threads()))
    assert seen == [1]
    assert torch.get_num_threads() == before


def test_empty_training_loader_is_an_error(make_model, val_set) -> None:
    with pytest.raises(SpecError, match="no batches"):
        run(make_model(), TensorDataset(torch.rand(2, 3, 32, 32), torch.zeros(2, 32, 32).long()),
            val_set)


def test_unavailable_cuda_is_an_error(make_model, train_set, val_set) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SpecError) as caught:
        run(make_model(), train_set, val_set, device="cuda")
    assert caught.value.path == "device"
