"""Racing decisions on fake results (no training): who is out, who gets the next seed, when the race is decided."""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.race.decision import RaceRules, next_seeds, standing
from archsearch.race.model import Observations, fit
from archsearch.race.probability import best_probabilities, leading_after_max

SEEDS = tuple(range(8))


def runs(means: dict[str, float], seeds: int, *, noise: float = 0.01, seed_effect: float = 0.0,
         generator_seed: int = 0) -> Observations:
    """Every architecture with seeds 0..seeds-1: its mean, a seed effect shared by all, and its own noise."""
    generator = np.random.default_rng(generator_seed)
    shared = generator.normal(0, seed_effect, size=len(SEEDS)) if seed_effect else np.zeros(len(SEEDS))
    return Observations.from_records((key, seed, mean + shared[seed] + generator.normal(0, noise))
                                     for seed in range(seeds) for key, mean in means.items())


def tried_of(observations: Observations) -> dict:
    return {key: {int(seed) for arm, seed in zip(observations.arm, observations.seed) if arm == index}
            for index, key in enumerate(observations.arms)}


@pytest.mark.parametrize("rule", ["posterior", "test"])
def test_a_clearly_worse_architecture_is_out_and_a_separated_leader_decides_the_race(rule):
    observations = runs({"good": 0.60, "bad": 0.30, "worse": 0.20}, 2)
    race = standing(observations, RaceRules(rule=rule))
    assert race.decided and race.contenders == (0,) and race.leaders == (0,)
    assert list(race.out) == [False, True, True]
    assert next_seeds(observations, tried_of(observations), set(), SEEDS, RaceRules(rule=rule)) == {}


@pytest.mark.parametrize("rule", ["posterior", "test"])
def test_seeds_go_only_to_contenders_the_rule_cannot_yet_separate(rule):
    observations = runs({"a": 0.600, "b": 0.598, "c": 0.20, "d": 0.21}, 2, noise=0.01)
    chosen = next_seeds(observations, tried_of(observations), set(), SEEDS, RaceRules(rule=rule))
    assert chosen == {"a": 2, "b": 2}  # the next seed each has not had; c and d are out


def test_near_its_maximum_an_architecture_its_remaining_seeds_could_not_make_the_best_stops():
    """c trails a and b by about one standard error: the test cannot separate it, nor can P(best) (0.10); but one
    more seed (max 3) would move its mean by far less than that, so the posterior rule stops it. With room for
    many more seeds (max 1000) the chance of leading after them is P(best) itself, and c stays in."""
    observations = runs({"a": 0.60, "b": 0.60, "c": 0.575}, 2, noise=0.01, generator_seed=2)
    model = fit(observations, "paired")
    p_best = best_probabilities(model, 1).p_best
    assert p_best[2] > 0.05 and not standing(observations, RaceRules(rule="test", maximum=3)).out[2]
    assert leading_after_max(model, observations.runs, 3, 1)[2] < 0.05
    assert list(standing(observations, RaceRules(maximum=3)).out) == [False, False, True]
    assert leading_after_max(model, observations.runs, 1000, 1) == pytest.approx(p_best, abs=0.01)
    assert not standing(observations, RaceRules(maximum=1000)).out.any()
    assert next_seeds(observations, tried_of(observations), set(), SEEDS, RaceRules(maximum=3)) == {"a": 2, "b": 2}


def test_at_the_maximum_nothing_moves_and_a_tie_ends_the_race_undecided():
    observations = runs({"a": 0.60, "b": 0.60, "c": 0.40}, 4, noise=0.02)
    model = fit(observations, "paired")
    leading = leading_after_max(model, observations.runs, 4, 1)
    assert list(leading) == [float(index == int(np.argmax(model.means))) for index in range(3)]
    race = standing(observations, RaceRules(maximum=4))
    assert not race.decided and race.over and race.probabilities.p_leaders < 0.95
    assert next_seeds(observations, tried_of(observations), set(), SEEDS, RaceRules(maximum=4)) == {}


def test_the_posterior_rule_is_decided_exactly_when_the_leader_is_best_with_the_confidence():
    observations = runs({"a": 0.60, "b": 0.58, "c": 0.3}, 3, noise=0.01, generator_seed=1)
    p_best = best_probabilities(fit(observations, "paired"), 1).p_best[0]
    assert 0.5 < p_best < 1
    assert standing(observations, RaceRules(confidence=p_best - 0.01)).decided
    assert not standing(observations, RaceRules(confidence=min(p_best + 0.01, 0.999))).decided


def test_new_and_failed_points_are_brought_up_to_the_minimum_first_and_busy_ones_wait():
    observations = runs({"a": 0.6, "b": 0.59}, 2)
    newcomer = Observations.from_records([*zip(("a", "b") * 2, (0, 0, 1, 1), observations.value), ("new", 0, 0.4)])
    tried = {"a": {0, 1}, "b": {0, 1}, "new": {0, 1}}  # new's seed 1 was pruned: spent, and it has one run
    assert next_seeds(newcomer, tried, set(), SEEDS, RaceRules(minimum=3)) == {"a": 2, "b": 2, "new": 2}
    assert next_seeds(newcomer, tried, {"a"}, SEEDS, RaceRules(minimum=3)) == {"b": 2, "new": 2}


def test_no_seed_beyond_the_maximum_and_none_given_twice():
    observations = runs({"a": 0.6, "b": 0.6}, 4)
    tried = tried_of(observations)
    assert next_seeds(observations, tried, set(), SEEDS, RaceRules(maximum=4)) == {}
    tried["a"].add(4)  # seed 4 is pending for a: its next one is 5
    assert next_seeds(observations, tried, set(), SEEDS, RaceRules(maximum=8)) == {"a": 5, "b": 4}


def test_top_k_keeps_every_architecture_that_fewer_than_k_others_beat():
    observations = runs({"a": 0.60, "b": 0.58, "c": 0.45, "d": 0.20}, 3, noise=0.005)
    top1, top2 = standing(observations, RaceRules()), standing(observations, RaceRules(top=2))
    assert top1.decided and top1.contenders == (0,)
    assert top2.decided and top2.contenders == (0, 1) and list(top2.out) == [False, False, True, True]


def test_welch_cannot_test_a_single_seed_and_a_pooled_spread_can():
    observations = Observations.from_records([("a", 0, 0.6), ("a", 1, 0.61), ("b", 0, 0.2)])
    assert not standing(observations, RaceRules(test="welch")).out.any()
    assert np.isnan(fit(observations, "welch").p_not_better()[0, 1])
    assert list(standing(observations, RaceRules(test="pooled")).out) == [False, True]
    assert not standing(observations, RaceRules(test="paired")).out.any()  # seed effects leave no spread to measure


def test_pairing_by_seed_removes_a_shared_seed_effect_that_welch_counts_as_noise():
    observations = runs({"a": 0.50, "b": 0.48}, 4, noise=0.002, seed_effect=0.05, generator_seed=3)
    p_paired = fit(observations, "paired").p_not_better()[0, 1]
    p_welch = fit(observations, "welch").p_not_better()[0, 1]
    assert p_paired < 0.01 < 0.2 < p_welch


def test_intervals_and_seeds_to_separate_follow_the_student_t():
    observations = Observations.from_records([("a", 0, 0.5), ("a", 1, 0.7), ("b", 0, 0.1), ("b", 1, 0.1)])
    model = fit(observations, "welch")
    low, high = model.interval(0.95)
    assert low[0] == pytest.approx(0.6 - 12.7062 * 0.1, abs=1e-3) and high[0] == pytest.approx(0.6 + 1.27062, abs=1e-3)
    # n = (t(0.95, 1) / gap)^2 * (s_a^2 + s_b^2) with s_a^2 = 0.02, s_b^2 = 0, gap 0.5
    assert model.seeds_to_separate(0, 1, 0.95) == pytest.approx((6.3138 / 0.5) ** 2 * 0.02, rel=1e-3)
    pooled = fit(observations, "pooled")
    assert pooled.df == 2 and pooled.sigma == pytest.approx(0.1)


def test_the_standing_is_the_same_from_the_same_runs_in_another_order():
    observations = runs({"a": 0.6, "b": 0.55, "c": 0.3}, 3)
    reordered = Observations.from_records(sorted(zip((observations.arms[i] for i in observations.arm),
                                                     observations.seed, observations.value), reverse=True))
    first, second = standing(observations, RaceRules()), standing(reordered, RaceRules())
    by_key = {key: bool(out) for key, out in zip(second.arms, second.out)}
    assert {key: bool(out) for key, out in zip(first.arms, first.out)} == by_key
