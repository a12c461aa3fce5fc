"""The race's rules: which architectures still get seeds, whether the race is decided, who gets the next ones.

Every architecture gets ``minimum`` seeds. After that the ``rule`` says who stops receiving seeds:

- ``posterior`` (default): an architecture is out once the chance that it would be among the ``top`` best
  after the race's remaining seeds (every architecture taken to ``maximum``, the posterior predictive of
  ``race.probability.leading_after_max``) is below 1 - ``confidence``: futility, as Bayesian adaptive
  trials stop an arm that its remaining patients could not make a winner. With a large ``maximum`` it is
  the report's own P(best) (P(top k)) below 1 - ``confidence``; near ``maximum`` it is stricter, because
  two more seeds move a mean less than the whole of its uncertainty. The race is decided when the
  report's posterior puts the estimated top k at the top with P >= ``confidence``, and then nothing gets
  more seeds.
- ``test``: an architecture is out once at least ``top`` others are shown better than it by a one-sided
  test at ``confidence`` (``race.model``), as F-Race drops a candidate; decided when no more than ``top``
  contenders remain.

Until the race is decided, or no more than ``top`` contenders remain, every contender below ``maximum``
seeds gets its next one, a round at a time. Nothing is remembered between rounds: the standing is
computed again from every run so far, so a study resumed after a crash, or the report, reaches the same
decision from the same runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Literal, Mapping, Sequence

import numpy as np

from archsearch.race.model import Observations, fit
from archsearch.race.probability import BestProbabilities, best_probabilities, leading_after_max

DEFAULT_TEST = "paired"  # chosen on the replay table (README: "Racing seeds"): fewest trainings at equal accuracy
Rule = Literal["posterior", "test"]
DEFAULT_RULE = "posterior"  # chosen on the replay table (README: "Racing seeds"): fewer trainings, as often right


@dataclass(frozen=True)
class RaceRules:
    minimum: int = 2
    maximum: int = 8
    confidence: float = 0.95
    top: int = 1
    test: str = DEFAULT_TEST
    rule: str = DEFAULT_RULE


@dataclass(frozen=True)
class Standing:
    """Where the race stands after the runs so far (architectures in ``Observations.arms`` order)."""

    arms: tuple[Hashable, ...]
    means: np.ndarray
    runs: np.ndarray
    out: np.ndarray       # gets no more seeds (by the rule)
    leaders: tuple[int, ...]  # the ``top`` best estimated means, best first
    probabilities: BestProbabilities  # the posterior's P(best), P(top k), P(leaders)
    decided: bool

    @property
    def contenders(self) -> tuple[int, ...]:
        """Not (yet) out, best estimated mean first."""
        order = np.argsort(-self.means, kind="stable")
        return tuple(int(index) for index in order if not self.out[index])

    @property
    def over(self) -> bool:
        """Decided, or no more than ``top`` contenders left: nothing more to race for."""
        return self.decided or len(self.contenders) <= len(self.leaders)


def standing(observations: Observations, rules: RaceRules) -> Standing:
    model = fit(observations, rules.test)
    probabilities = best_probabilities(model, rules.top)
    if rules.rule == "test":
        shown_better = np.nan_to_num(model.p_not_better(), nan=1.0) < 1 - rules.confidence  # [a, b]: a beats b
        np.fill_diagonal(shown_better, False)
        out = shown_better.sum(axis=0) >= rules.top
        decided = int((~out).sum()) <= rules.top
    else:
        leading = leading_after_max(model, observations.runs, rules.maximum, rules.top)
        out = np.nan_to_num(leading, nan=1.0) < 1 - rules.confidence
        decided = probabilities.p_leaders >= rules.confidence  # NaN (no spread measured): not decided
    leaders = tuple(int(index) for index in np.argsort(-model.means, kind="stable")[:rules.top])
    return Standing(arms=observations.arms, means=model.means, runs=observations.runs, out=out, leaders=leaders,
                    probabilities=probabilities, decided=bool(decided))


def next_seeds(observations: Observations, tried: Mapping[Hashable, set[int]], busy: set[Hashable],
               seeds: Sequence[int], rules: RaceRules) -> dict[Hashable, int]:
    """The next seed of each architecture that gets one now.

    ``observations``: the finished runs (an architecture without any is not in the race);
    ``tried``: every architecture's seeds finished or pending, so that a seed is never given twice;
    ``busy``: architectures with a run pending, which wait for it; ``seeds``: the race's seeds in the
    order they are given. An architecture below ``minimum`` seeds tried (a failed or pruned run) is
    brought up to it first; the race moves on once none is.
    """
    def next_of(key: Hashable) -> int | None:
        return next((seed for seed in seeds if seed not in tried.get(key, set())), None)

    idle = [key for key in observations.arms if key not in busy]
    entering = {key: next_of(key) for key in idle if len(tried.get(key, ())) < rules.minimum}
    entering = {key: seed for key, seed in entering.items() if seed is not None}
    if entering or not observations.arms:
        return entering
    race = standing(observations, rules)
    if race.over:
        return {}
    chosen = {}
    for index in race.contenders:
        key = observations.arms[index]
        if key not in busy and len(tried.get(key, ())) < rules.maximum and (seed := next_of(key)) is not None:
            chosen[key] = seed
    return chosen
