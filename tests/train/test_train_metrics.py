from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.train import ConfusionMatrix


def test_hand_computed_example() -> None:
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    prediction = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]])
    matrix = ConfusionMatrix(4)
    matrix.update(prediction, target)
    # class 0: TP 1, FP 1 (a 2 read as 0), FN 1 (read as 1) -> 1/3
    # class 1: TP 2, FP 1, FN 0 -> 2/3;  class 2: TP 1, FP 0, FN 1 -> 1/2;  class 3 absent
    assert matrix.counts.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    iou = matrix.per_class_iou()
    assert iou[:3] == pytest.approx((1 / 3, 2 / 3, 1 / 2))
    assert math.isnan(iou[3])
    assert matrix.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert matrix.pixel_accuracy() == pytest.approx(4 / 6)


def test_ignored_pixels_are_not_counted_whatever_is_predicted() -> None:
    matrix = ConfusionMatrix(2, ignore_index=255)
    matrix.update(torch.tensor([0, 1, 1]), torch.tensor([0, 255, 255]))
    assert matrix.counts.sum() == 1
    assert matrix.miou() == 1.0


def test_a_class_only_predicted_counts_with_iou_zero() -> None:
    matrix = ConfusionMatrix(3)
    matrix.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
    assert matrix.per_class_iou()[:2] == (0.5, 0.0)
    assert matrix.miou() == 0.25


def test_empty_matrix_reports_nan_and_reset_empties() -> None:
    matrix = ConfusionMatrix(2)
    assert math.isnan(matrix.miou()) and math.isnan(matrix.pixel_accuracy())
    matrix.update(torch.tensor([1]), torch.tensor([1]))
    matrix.reset()
    assert matrix.counts.sum() == 0


@pytest.mark.parametrize(("prediction", "target"), [([0, 1], [0, 2]), ([0, 2], [0, 1]),
                                                    ([0, 0], [0, -1])])
def test_class_outside_the_range_is_refused(prediction: list[int], target: list[int]) -> None:
    with pytest.raises(ValueError, match="outside 0..1"):
        ConfusionMatrix(2).update(torch.tensor(prediction), torch.tensor(target))


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        ConfusionMatrix(2).update(torch.zeros(2, 3, dtype=torch.int64),
                                  torch.zeros(3, 2, dtype=torch.int64))


def brute_force(predictions: list[np.ndarray], targets: list[np.ndarray], classes: int,
                ignore_index: int) -> tuple[list[float], float, float]:
    """IoU per class, mIoU and accuracy by counting pixel by pixel."""
    pairs = [(int(t), int(p)) for prediction, target in zip(predictions, targets)
             for p, t in zip(prediction.ravel(), target.ravel()) if t != ignore_index]
    ious = []
    for c in range(classes):
        intersection = sum(1 for t, p in pairs if t == c and p == c)
        union = sum(1 for t, p in pairs if t == c or p == c)
        ious.append(intersection / union if union else math.nan)
    present = [iou for iou in ious if not math.isnan(iou)]
    miou = sum(present) / len(present) if present else math.nan
    accuracy = sum(1 for t, p in pairs if t == p) / len(pairs) if pairs else math.nan
    return ious, miou, accuracy


@st.composite
def batches(draw: st.DrawFn) -> tuple[int, list[np.ndarray], list[np.ndarray]]:
    classes = draw(st.integers(1, 6))
    count = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    labels = st.integers(0, classes - 1)
    pixels = int(np.prod(shape))
    predictions = [np.array(draw(st.lists(labels, min_size=pixels, max_size=pixels))).reshape(shape)
                   for _ in range(count)]
    targets = [np.array(draw(st.lists(labels | st.just(255), min_size=pixels, max_size=pixels)))
               .reshape(shape) for _ in range(count)]
    return classes, predictions, targets


@settings(max_examples=150, deadline=None)
@given(batches())
def test_matches_brute_force_over_several_updates(
        case: tuple[int, list[np.ndarray], list[np.ndarray]]) -> None:
    classes, predictions, targets = case
    matrix = ConfusionMatrix(classes, ignore_index=255)
    for prediction, target in zip(predictions, targets):
        matrix.update(torch.from_numpy(prediction), torch.from_numpy(target))
    ious, miou, accuracy = brute_force(predictions, targets, classes, 255)
    np.testing.assert_allclose(matrix.per_class_iou(), ious)
    np.testing.assert_allclose(matrix.miou(), miou)
    np.testing.assert_allclose(matrix.pixel_accuracy(), accuracy)
