from __future__ import annotations

import pytest
import torch
from torch import nn

from archsearch.train import (CrossEntropy, OhemCrossEntropy, SegmentationLoss, TrainConfig,
                              build_loss)


def random_batch(seed: int = 0, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, classes, 6, 5, generator=generator)
    target = torch.randint(0, classes, (2, 6, 5), generator=generator)
    target[0, :2] = 255
    return logits, target


def test_cross_entropy_matches_torch_with_weights_and_ignore_index() -> None:
    logits, target = random_batch()
    weights = [1.0, 2.0, 0.5, 3.0]
    expected = nn.CrossEntropyLoss(weight=torch.tensor(weights), ignore_index=255)(logits, target)
    actual = CrossEntropy(class_weights=weights)(logits, target)
    torch.testing.assert_close(actual, expected)


def test_class_weights_change_the_loss() -> None:
    logits, target = random_batch()
    plain = CrossEntropy()(logits, target)
    weighted = CrossEntropy(class_weights=[1.0, 5.0, 1.0, 1.0])(logits, target)
    assert not torch.isclose(plain, weighted)


@pytest.mark.parametrize("loss", [CrossEntropy(), OhemCrossEntropy(min_kept=4)])
def test_a_batch_of_only_ignored_pixels_gives_zero_not_nan(loss: nn.Module) -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    value = loss(logits, torch.full((1, 4, 4), 255))
    value.backward()
    assert value.item() == 0.0
    assert torch.all(logits.grad == 0)


def confident_logits(target: torch.Tensor, classes: int, margins: torch.Tensor) -> torch.Tensor:
    """Logits whose true-class margin over the other classes is ``margins`` per pixel."""
    logits = torch.zeros(target.shape[0], classes, *target.shape[1:])
    true_class = target.clamp(max=classes - 1).unsqueeze(1)
    return logits.scatter(1, true_class, margins.unsqueeze(1)).requires_grad_()


def kept_pixels(loss: nn.Module, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    loss(logits, target).backward()
    return logits.grad.abs().sum(dim=1) > 0


def test_ohem_drops_easy_pixels_and_keeps_hard_ones() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.int64)
    margins = torch.full((1, 4, 4), 10.0)  # probability of the true class ~1: easy
    margins[0, 0] = -1.0  # 4 hard pixels
    logits = confident_logits(target, 3, margins)
    kept = kept_pixels(OhemCrossEntropy(threshold=0.7, min_kept=2), logits, target)
    assert kept[0, 0].all() and kept.sum() == 4


def test_ohem_keeps_at_least_min_kept_hardest_pixels() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.int64)
    margins = torch.linspace(5.0, 20.0, 16).view(1, 4, 4)  # all easy, distinct
    logits = confident_logits(target, 3, margins)
    kept = kept_pixels(OhemCrossEntropy(threshold=0.7, min_kept=5), logits, target)
    assert kept.flatten().tolist() == [True] * 5 + [False] * 11


def test_ohem_never_keeps_ignored_pixels() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.int64)
    target[0, :2] = 255
    margins = torch.full((1, 4, 4), -3.0)  # every pixel hard
    logits = confident_logits(target, 3, margins)
    kept = kept_pixels(OhemCrossEntropy(min_kept=100), logits, target)
    assert kept.tolist() == (target != 255).tolist()


def test_ohem_with_everything_kept_equals_cross_entropy() -> None:
    logits, target = random_batch(seed=3)
    weights = [1.0, 2.0, 0.5, 3.0]
    ohem = OhemCrossEntropy(threshold=1.0, min_kept=1, class_weights=weights)
    plain = CrossEntropy(class_weights=weights)
    torch.testing.assert_close(ohem(logits, target), plain(logits, target))


def test_aux_loss_is_added_with_its_weight() -> None:
    logits, target = random_batch(seed=1)
    aux_logits, _ = random_batch(seed=2)
    pixel_loss = CrossEntropy()
    combined = SegmentationLoss(pixel_loss, aux_weight=0.4)
    expected = pixel_loss(logits, target) + 0.4 * pixel_loss(aux_logits, target)
    torch.testing.assert_close(combined(logits, aux_logits, target), expected)
    torch.testing.assert_close(combined(logits, None, target), pixel_loss(logits, target))
    second, _ = random_batch(seed=3)
    torch.testing.assert_close(combined(logits, [aux_logits, second], target),
                               expected + 0.4 * pixel_loss(second, target))


def test_build_loss_follows_the_config() -> None:
    ohem = build_loss(TrainConfig(iterations=1, loss="ohem", ohem_min_kept=7, aux_weight=1.0,
                                  class_weights=(1.0, 2.0), ignore_index=-1))
    assert isinstance(ohem.pixel_loss, OhemCrossEntropy)
    assert (ohem.pixel_loss.min_kept, ohem.pixel_loss.ignore_index, ohem.aux_weight) == (7, -1, 1.0)
    assert ohem.pixel_loss.class_weights.tolist() == [1.0, 2.0]
    assert isinstance(build_loss(TrainConfig(iterations=1)).pixel_loss, CrossEntropy)


def mmseg_ohem(logits: torch.Tensor, target: torch.Tensor, threshold: float, min_kept: int,
               weights: list[float] | None) -> torch.Tensor:
    """mmsegmentation's OhemCrossEntropy.forward (models/losses/ohem_cross_entropy_loss.py), step by step:
    sort the labelled pixels' true-class probabilities, cut at max(p[min(min_kept, n - 1)], threshold),
    keep those strictly below, and average their (class-weighted) losses over their count."""
    weight = None if weights is None else torch.tensor(weights)
    losses = nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=255, reduction="none").view(-1)
    labelled = target.view(-1) != 255
    probability = logits.softmax(1).gather(1, target.masked_fill(target == 255, 0).unsqueeze(1)).view(-1)
    sorted_probability, order = probability[labelled].sort()
    cut = max(float(sorted_probability[min(min_kept, sorted_probability.numel() - 1)]), threshold)
    kept = losses[labelled][order][sorted_probability < cut]
    return kept.mean()


@pytest.mark.parametrize(("threshold", "min_kept", "weights"), [
    (0.7, 5, None), (0.2, 20, [1.0, 2.0, 0.5, 3.0]), (0.05, 1000, [1.0, 2.0, 0.5, 3.0]), (0.9, 3, [0.8, 1.1, 1.0, 0.9])])
def test_ohem_kept_pixels_is_mmsegs_ohem_cross_entropy(threshold: float, min_kept: int,
                                                       weights: list[float] | None) -> None:
    logits, target = random_batch(seed=3)
    expected = mmseg_ohem(logits, target, threshold, min_kept, weights)
    actual = OhemCrossEntropy(threshold=threshold, min_kept=min_kept, class_weights=weights,
                              normalisation="kept_pixels")(logits, target)
    torch.testing.assert_close(actual, expected)
    if weights is not None:  # the other normalisation divides by the weights' sum, so it differs
        other = OhemCrossEntropy(threshold=threshold, min_kept=min_kept, class_weights=weights)(logits, target)
        assert not torch.isclose(other, expected)
