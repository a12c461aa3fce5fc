"""Which subnets a supernet trains on each step, and the sample of a space that sizes its shared tensors.

``uniform`` is SPOS's single path: one point drawn uniformly per step. ``sandwich`` is BigNAS's
rule: the largest point, the smallest and one random point every step, their gradients summed,
so the extremes of the space are always trained. Paths depend only on the seed and the step,
so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from archsearch.errors import SpecError
from archsearch.space.sampling import Primitive, RandomSuggester, Space, sample
from archsearch.supernet.layout import Params
from archsearch.supernet.network import Supernet

SAMPLING_RULES = ("uniform", "sandwich")
MAX_ATTEMPTS = 1000
"""Draws allowed per valid point; a space that is invalid this often is an error, not a wait."""
EXTREME_ATTEMPTS = 10


def _numeric(options: Sequence[Primitive]) -> bool:
    return all(isinstance(option, (int, float)) and not isinstance(option, bool) for option in options)


@dataclass
class ExtremeSuggester(RandomSuggester):
    """Random, except that every numeric decision takes its largest (or smallest) value: widths, depths."""

    largest: bool = True

    def categorical(self, name: str, options: Sequence[Primitive]) -> Primitive:
        if _numeric(options):
            return max(options) if self.largest else min(options)
        return super().categorical(name, options)

    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return low + (high - low) // step * step if self.largest else low

    def real(self, name: str, low: float, high: float, step: float | None, log: bool,
             grid: Sequence[float] | None) -> float:
        values = list(grid) if grid else [low, high]
        return max(values) if self.largest else min(values)


def random_points(space: Space, count: int, rng: random.Random, *, extreme: bool | None = None) -> list[dict]:
    """``count`` valid points drawn uniformly (``extreme``: with numeric decisions at their largest or smallest,
    as many of ``count`` as are valid within a few draws each: an extreme point may well be invalid)."""
    suggester = RandomSuggester(rng) if extreme is None else ExtremeSuggester(rng, largest=extreme)
    points: list[dict] = []
    for _ in range(count * (MAX_ATTEMPTS if extreme is None else EXTREME_ATTEMPTS)):
        if len(points) == count:
            return points
        point = sample(space, suggester)
        if point.valid:
            points.append(point.params)
    if extreme is not None:
        return points
    raise SpecError("the space gave too few valid points", value=len(points), source=space.source,
                    allowed=f"at least one valid point in {MAX_ATTEMPTS} draws")


def compile_supernet(space: Space, *, num_classes: int = 19, coverage: int = 64, seed: int = 0) -> Supernet:
    """A supernet whose shared tensors fit ``coverage`` random points and as many extreme ones.

    Raises SpecError naming a choice the supernet cannot share. Its ``largest`` and ``smallest``
    points (by parameter count, among the sample) are the sandwich rule's.
    """
    supernet = Supernet(space, num_classes=num_classes)
    rng = random.Random(seed)
    points = random_points(space, coverage, rng)
    points += random_points(space, max(1, coverage // 4), rng, extreme=True)
    points += random_points(space, max(1, coverage // 4), rng, extreme=False)
    counts = []
    for params in points:
        supernet.register(params)
        counts.append(supernet.plan(params).parameter_count)
    supernet.largest = points[max(range(len(points)), key=counts.__getitem__)]
    supernet.smallest = points[min(range(len(points)), key=counts.__getitem__)]
    return supernet


def training_paths(supernet: Supernet, rule: str, seed: int, step: int) -> list[dict]:
    """The points trained on ``step`` under ``rule``; the same for the same seed and step."""
    rng = random.Random(f"{seed}:{step}")
    drawn = random_points(supernet.space, 1, rng)
    if rule == "uniform":
        return drawn
    if rule == "sandwich":
        return [supernet.largest, supernet.smallest, *drawn]
    raise SpecError("unknown path sampling", path="supernet.sampling", value=rule, allowed=", ".join(SAMPLING_RULES))
