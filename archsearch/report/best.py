"""How likely each architecture is the best (or among the top k), and the report's one-line verdict.

The method: draws from the posterior of the architectures' mean mIoUs under a flat prior
(a multivariate Student-t around the estimates, see ``race.model``, with the study's race test,
``paired`` by default), and the share of draws in which an architecture is the best (P(best)) or
among the k best (P(top k)): ``race.probability``. The verdict is the race's own rule
(``race.decision``): with the default ``posterior`` rule, decided when the estimated top k are the
top k with P >= the race's confidence; otherwise it names the contenders and how many more seeds
each would separate them at the spread seen so far. It is a claim about the architectures trained
(a sampler's are not its whole space: the verdict counts them), and it is never made from runs a
pruner let through: a pruner stops the runs that look weak early, so the finished ones are a chosen
few and the pruned ones' mIoU is unknown (the verdict says so instead). Seeded, so a report reads
the same twice. No torch.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Hashable, Mapping

import numpy as np
import pandas as pd

from archsearch.race.decision import RaceRules, Standing, standing
from archsearch.race.model import MeanModel, Observations, fit
from archsearch.race.probability import BestProbabilities
from archsearch.report.ranking import architecture_keys, row_keys, seed_runs
from archsearch.run.trials_table import CHOICE_PREFIX

LISTED_CONTENDERS = 3
SHORT_HASH_LENGTH = 8


@dataclass(frozen=True)
class Unfinished:
    """Runs started that gave no final mIoU: those a pruner stopped (``pruned`` per architecture), and how many
    architectures have no finished run at all (pruned or failed: ``unranked``)."""

    pruned: Mapping[Hashable, int] = field(default_factory=dict)
    unranked: int = 0


@dataclass(frozen=True)
class Evidence:
    """What the report says about who is best: the rules weighed by, the race's standing, the probabilities and
    the verdict."""

    rules: RaceRules
    standing: Standing
    probabilities: BestProbabilities
    verdict: str
    decided: bool


def weigh(observations: Observations, rules: RaceRules, names: Mapping[Hashable, str],
          unfinished: Unfinished = Unfinished()) -> Evidence:
    """The evidence of the runs so far; ``names``: how the verdict names each architecture; ``unfinished``:
    the runs that gave no final mIoU, which the verdict accounts for."""
    model = fit(observations, rules.test)
    race = standing(observations, rules)
    text, decided = _verdict(observations, rules, model, race, names)
    pruned = {key: count for key, count in unfinished.pruned.items() if count}
    if pruned:
        stopped = (f"a pruner stopped {sum(pruned.values())} run{'s' * (sum(pruned.values()) != 1)} of "
                   f"{len(pruned)} architecture{'s' * (len(pruned) != 1)} before the end, so their mIoU is unknown "
                   f"and P(best) is over the finished runs only")
        text = (f"undecided: {stopped}; among those, {text.removeprefix('decided: ')}" if decided
                else f"{text}; {stopped}")
        decided = False
    if unfinished.unranked:
        text += (f" ({unfinished.unranked} architecture{'s' * (unfinished.unranked != 1)} without a finished run "
                 f"{'are' if unfinished.unranked != 1 else 'is'} not ranked)")
    return Evidence(rules, race, race.probabilities, text, decided)


def _verdict(observations: Observations, rules: RaceRules, model: MeanModel, race: Standing,
             names: Mapping[Hashable, str]) -> tuple[str, bool]:
    arms = observations.arms
    probabilities = race.probabilities
    if not arms:
        return "undecided: no architecture has a complete run yet", False
    if len(arms) <= rules.top:
        listed = _listing([names[key] for key in arms])
        return f"decided: {listed} {'is' if len(arms) == 1 else 'are'} all there is to rank", True
    level = f"{rules.confidence:.0%}"
    method = f"{rules.test} test at {level}" if rules.rule == "test" else f"{rules.test} model"
    if np.isnan(probabilities.p_best).all():
        return ("undecided: no architecture has a measured seed-to-seed spread (one seed each); a second seed "
                "for the leaders would measure it"), False
    leaders = [names[arms[index]] for index in race.leaders]
    trained = f"of the {len(arms)} architectures trained"
    if race.decided:
        if rules.top == 1:
            return (f"decided: {leaders[0]} is best {trained} with P = "
                    f"{probabilities.p_best[race.leaders[0]]:.2f} ({method})"), True
        return (f"decided: the top {rules.top} {trained} are {_listing(leaders)} with P = "
                f"{probabilities.p_leaders:.2f} ({method})"), True
    contenders = _contenders(rules, race)
    boundary = race.leaders[-1]  # the weakest of the top k, against the contenders just outside
    challengers = [index for index in contenders if index not in race.leaders]
    needed = [model.seeds_to_separate(boundary, index, rules.confidence) for index in challengers]
    shown = [names[arms[index]] for index in contenders[:LISTED_CONTENDERS + rules.top - 1]]
    others = len(contenders) - len(shown)
    listed = _listing(shown + ([f"{others} others"] if others else []))
    if not needed or any(math.isnan(value) for value in needed):
        return f"undecided between {listed}: their spread is not measured yet", False
    if math.isinf(max(needed)):
        return f"undecided between {listed}: their means are equal at the observed spread", False
    have = min(int(observations.runs[index]) for index in (boundary, *challengers))
    more = max(1, math.ceil(max(needed)) - have)
    return (f"undecided between {listed}: about {more} more seed{'s' * (more != 1)} each would separate them "
            f"at the observed spread ({rules.test} test at {level})"), False


def _contenders(rules: RaceRules, race: Standing) -> tuple[int, ...]:
    """Best estimate first: the race's contenders (``test``), or those the posterior gives P(top k) >= 1 -
    confidence, and at least the likeliest one outside the leaders (``posterior``: its race may be over with
    every other architecture at ``max``, yet undecided)."""
    if rules.rule == "test":
        return race.contenders
    order = [int(index) for index in np.argsort(-race.means, kind="stable")]
    p_top = np.nan_to_num(race.probabilities.p_top, nan=1.0)
    outside = [index for index in order if index not in race.leaders]
    likeliest = max(outside, key=lambda index: p_top[index]) if outside else None
    return tuple(index for index in order
                 if index in race.leaders or p_top[index] >= 1 - rules.confidence or index == likeliest)


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class RaceStep:
    """One run as the race saw it come in: the architecture's runs, mean and interval just after it."""

    arm: int
    runs: int
    mean: float
    low: float
    high: float


def race_history(observations: Observations, rules: RaceRules) -> list[RaceStep]:
    """Each run in order, with its architecture's estimate refitted on every run up to it (what the race knew)."""
    steps = []
    for count in range(1, len(observations.value) + 1):
        known = observations.first(count)
        arm = known.arms.index(observations.arms[observations.arm[count - 1]])
        model = fit(known, rules.test)
        low, high = model.interval(rules.confidence)
        steps.append(RaceStep(arm=observations.arms.index(known.arms[arm]), runs=int(known.runs[arm]),
                              mean=float(model.means[arm]), low=float(low[arm]), high=float(high[arm])))
    return steps


@dataclass(frozen=True)
class RunsEvidence:
    """The evidence of a trials table: its runs as observations, their keys' columns, how each is named."""

    observations: Observations
    key_columns: list[str]
    names: dict[Hashable, str]
    evidence: Evidence


def runs_evidence(trials: pd.DataFrame, rules: RaceRules) -> RunsEvidence:
    """Every COMPLETE run's mIoU by architecture (arch hash and choices) and seed, in trial order; PRUNED and
    FAIL runs as ``Unfinished``."""
    runs = seed_runs(trials)
    runs = runs[runs["miou"].notna()]
    key_columns = architecture_keys(trials)
    keys = row_keys(runs, key_columns)
    observations = Observations.from_records(zip(keys, runs["seed"].astype(int), runs["miou"].astype(float)))
    names = {key: _name(key, key_columns) for key in observations.arms}
    pruned = trials[trials["state"] == "PRUNED"]
    started = trials[trials["state"].isin(["PRUNED", "FAIL"])]
    unranked = set(row_keys(started, key_columns)) - set(observations.arms)
    unfinished = Unfinished(Counter(row_keys(pruned, key_columns)), len(unranked))
    return RunsEvidence(observations, key_columns, names, weigh(observations, rules, names, unfinished))


def _name(key: tuple, columns: list[str]) -> str:
    """``72d1f3c5`` or ``72d1f3c5 (width 16, depth 3)``: the short hash, and the choices that are set."""
    choices = [f"{column.removeprefix(CHOICE_PREFIX)} {value}" for column, value in zip(columns[1:], key[1:])
               if value is not None]
    return f"{str(key[0])[:SHORT_HASH_LENGTH]}" + (f" ({', '.join(choices)})" if choices else "")
