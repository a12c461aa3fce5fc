"""How likely each architecture is the best (or among the top k), and the report's one-line verdict.

The method: draws from the posterior of the architectures' mean mIoUs under a flat prior
(a multivariate Student-t around the estimates, see ``race.model``, with the study's race test,
``paired`` by default), and the share of draws in which an architecture is the best (P(best)) or
among the k best (P(top k)). The verdict is the race's own rule (``race.decision``): decided when
the test at the stated confidence leaves no more than k contenders; otherwise it names the
contenders and how many more seeds each would separate them at the spread seen so far.
Seeded, so a report reads the same twice. No torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Mapping

import numpy as np
import pandas as pd

from archsearch.race.decision import RaceRules, Standing, standing
from archsearch.race.model import MeanModel, Observations, fit
from archsearch.report.ranking import architecture_keys, row_keys, seed_runs
from archsearch.run.trials_table import CHOICE_PREFIX

SAMPLES = 20000
DRAW_SEED = 0
LISTED_CONTENDERS = 3
SHORT_HASH_LENGTH = 8


@dataclass(frozen=True)
class BestProbabilities:
    """Per architecture (``Observations.arms`` order): P(best), P(top k); ``p_leaders``: P(the estimated top k
    are exactly the top k). NaN where the runs measure no spread (one seed each, or welch with one seed)."""

    p_best: np.ndarray
    p_top: np.ndarray
    p_leaders: float


def best_probabilities(model: MeanModel, top: int, *, samples: int = SAMPLES, seed: int = DRAW_SEED
                       ) -> BestProbabilities:
    arms = len(model.means)
    draws = model.draws(samples, np.random.default_rng(seed))
    defined = ~np.isnan(draws).any(axis=0)
    p_best, p_top = np.full(arms, np.nan), np.full(arms, np.nan)
    if not defined.any():
        return BestProbabilities(p_best, p_top, math.nan)
    columns = np.flatnonzero(defined)
    order = columns[np.argsort(-draws[:, columns], axis=1, kind="stable")]
    k = min(top, len(columns))
    p_best[columns] = np.bincount(order[:, 0], minlength=arms)[columns] / samples
    p_top[columns] = np.bincount(order[:, :k].ravel(), minlength=arms)[columns] / samples
    leaders = np.sort(np.argsort(-model.means, kind="stable")[:k])
    p_leaders = float((np.sort(order[:, :k], axis=1) == leaders).all(axis=1).mean()) if defined.all() else math.nan
    return BestProbabilities(p_best, p_top, p_leaders)


@dataclass(frozen=True)
class Evidence:
    """What the report says about who is best: the rules weighed by, the race's standing, the probabilities and
    the verdict."""

    rules: RaceRules
    standing: Standing
    probabilities: BestProbabilities
    verdict: str
    decided: bool


def weigh(observations: Observations, rules: RaceRules, names: Mapping[Hashable, str]) -> Evidence:
    """The evidence of the runs so far; ``names``: how the verdict names each architecture."""
    model = fit(observations, rules.test)
    race = standing(observations, rules)
    probabilities = best_probabilities(model, rules.top)
    text, decided = _verdict(observations, rules, model, race, probabilities, names)
    return Evidence(rules, race, probabilities, text, decided)


def _verdict(observations: Observations, rules: RaceRules, model: MeanModel, race: Standing,
             probabilities: BestProbabilities, names: Mapping[Hashable, str]) -> tuple[str, bool]:
    arms = observations.arms
    if not arms:
        return "undecided: no architecture has a complete run yet", False
    if len(arms) <= rules.top:
        listed = _listing([names[key] for key in arms])
        return f"decided: {listed} {'is' if len(arms) == 1 else 'are'} all there is to rank", True
    level = f"{rules.confidence:.0%}"
    if np.isnan(probabilities.p_best).all():
        return ("undecided: no architecture has a measured seed-to-seed spread (one seed each); a second seed "
                "for the leaders would measure it"), False
    leaders = [names[arms[index]] for index in race.leaders]
    if race.decided:
        if rules.top == 1:
            return (f"decided: {leaders[0]} is best with P = {probabilities.p_best[race.leaders[0]]:.2f} "
                    f"({rules.test} test at {level})"), True
        return (f"decided: the top {rules.top} are {_listing(leaders)} with P = {probabilities.p_leaders:.2f} "
                f"({rules.test} test at {level})"), True
    contenders = race.contenders
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
    """Every COMPLETE run's mIoU by architecture (arch hash and choices) and seed, in trial order."""
    runs = seed_runs(trials)
    runs = runs[runs["miou"].notna()]
    key_columns = architecture_keys(trials)
    keys = row_keys(runs, key_columns)
    observations = Observations.from_records(zip(keys, runs["seed"].astype(int), runs["miou"].astype(float)))
    names = {key: _name(key, key_columns) for key in observations.arms}
    return RunsEvidence(observations, key_columns, names, weigh(observations, rules, names))


def _name(key: tuple, columns: list[str]) -> str:
    """``72d1f3c5`` or ``72d1f3c5 (width 16, depth 3)``: the short hash, and the choices that are set."""
    choices = [f"{column.removeprefix(CHOICE_PREFIX)} {value}" for column, value in zip(columns[1:], key[1:])
               if value is not None]
    return f"{str(key[0])[:SHORT_HASH_LENGTH]}" + (f" ({', '.join(choices)})" if choices else "")
