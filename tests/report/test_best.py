"""P(best), P(top k) and the verdict on fake results, and their place in the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from archsearch.race.decision import RaceRules
from archsearch.race.model import Observations, fit
from archsearch.race.probability import best_probabilities
from archsearch.report.best import Unfinished, race_history, weigh
from archsearch.report.write import write_report
from tests.report.test_report import trial, write_run


def observations(means: dict[str, list[float]]) -> Observations:
    return Observations.from_records((key, seed, value) for key, values in means.items()
                                     for seed, value in enumerate(values))


NAMES = {key: key for key in "abcd"}


def test_p_best_sums_to_one_and_a_far_ahead_leader_is_best_almost_surely():
    found = observations({"a": [0.60, 0.62, 0.61], "b": [0.30, 0.31, 0.33], "c": [0.20, 0.22, 0.21]})
    probabilities = best_probabilities(fit(found, "paired"), top=2)
    assert probabilities.p_best.sum() == pytest.approx(1.0)
    assert probabilities.p_best[0] > 0.999 and probabilities.p_top[1] > 0.999 and probabilities.p_top[2] < 0.001
    assert probabilities.p_top.sum() == pytest.approx(2.0)


def test_p_best_agrees_with_the_normal_theory_for_two_architectures():
    """Two architectures: P(a best) = P(T_df < gap / se), the one-sided test's complement."""
    found = observations({"a": [0.50, 0.56, 0.53, 0.55], "b": [0.49, 0.51, 0.50, 0.52]})
    model = fit(found, "pooled")
    p_best = best_probabilities(model, top=1, samples=200000).p_best[0]
    assert p_best == pytest.approx(1 - model.p_not_better()[0, 1], abs=0.005)


def test_the_verdict_decides_or_says_how_many_more_seeds_would():
    decided = weigh(observations({"a": [0.60, 0.62], "b": [0.30, 0.31], "c": [0.20, 0.22]}), RaceRules(), NAMES)
    assert decided.decided
    assert decided.verdict.startswith("decided: a is best of the 3 architectures trained with P = 1.00")
    close = weigh(observations({"a": [0.60, 0.64], "b": [0.62, 0.59], "c": [0.20, 0.22]}), RaceRules(), NAMES)
    assert not close.decided and close.verdict.startswith("undecided between a and b: about ")
    more = int(close.verdict.split("about ")[1].split(" ")[0])
    # The number is the one at which the gap would be significant: with that many seeds each it is.
    model = fit(observations({"a": [0.60, 0.64], "b": [0.62, 0.59], "c": [0.20, 0.22]}), "paired")
    assert more == int(np.ceil(model.seeds_to_separate(0, 1, 0.95))) - 2
    top2 = weigh(observations({"a": [0.60, 0.62], "b": [0.50, 0.51], "c": [0.20, 0.22]}), RaceRules(top=2), NAMES)
    assert top2.verdict.startswith("decided: the top 2 of the 3 architectures trained are a and b with P = ")


def test_pruned_runs_withhold_the_decision_and_say_why():
    """A pruner stops the runs that look weak early: the finished ones are a chosen few, the pruned ones' mIoU
    unknown. The verdict claims nothing then, and says which leader the finished runs point to."""
    found = observations({"a": [0.60, 0.62], "b": [0.30, 0.31], "c": [0.20, 0.22]})
    assert weigh(found, RaceRules(), NAMES).decided
    pruned = weigh(found, RaceRules(), NAMES, Unfinished({"b": 1, "d": 2}, unranked=1))
    assert not pruned.decided
    assert pruned.verdict == ("undecided: a pruner stopped 3 runs of 2 architectures before the end, so their mIoU "
                              "is unknown and P(best) is over the finished runs only; among those, a is best of the "
                              "3 architectures trained with P = 1.00 (paired model) (1 architecture without a "
                              "finished run is not ranked)")
    close = weigh(observations({"a": [0.60, 0.64], "b": [0.62, 0.59]}), RaceRules(), NAMES, Unfinished({"a": 1}))
    assert close.verdict.startswith("undecided between a and b: about ")
    assert "a pruner stopped 1 run of 1 architecture" in close.verdict


def test_a_finished_race_that_is_still_tied_names_the_closest_and_the_seeds_it_would_need():
    """Every contender at ``max`` (the race gives nothing more) but the posterior is not sure: undecided."""
    found = observations({"a": [0.60, 0.64, 0.61, 0.63], "b": [0.62, 0.59, 0.63, 0.60], "c": [0.2, 0.21, 0.2, 0.22]})
    evidence = weigh(found, RaceRules(maximum=4), NAMES)
    assert evidence.standing.over and not evidence.decided
    assert evidence.verdict.startswith("undecided between a and b: about ")


@pytest.mark.parametrize("rule", ["posterior", "test"])
def test_an_architecture_with_one_finished_seed_and_no_spread_is_not_left_out_of_the_verdict(rule):
    """Welch gives c (one seed, the best mIoU) no spread, so no P(best); a leads the others, yet is not declared best."""
    found = Observations.from_records([("a", 0, 0.6), ("a", 1, 0.62), ("b", 0, 0.3), ("b", 1, 0.31), ("c", 0, 0.9)])
    evidence = weigh(found, RaceRules(test="welch", rule=rule), NAMES)
    assert np.isnan(evidence.probabilities.p_best[2]) and evidence.probabilities.p_best[0] > 0.9
    assert not evidence.decided and evidence.verdict == "undecided between c and a: their spread is not measured yet"


def test_one_seed_each_measures_no_spread_and_the_verdict_says_so():
    found = weigh(observations({"a": [0.6], "b": [0.5]}), RaceRules(), NAMES)
    assert not found.decided and "one seed each" in found.verdict
    assert np.isnan(found.probabilities.p_best).all()


def test_the_race_history_refits_on_the_runs_known_at_each_step():
    found = Observations.from_records([("a", 0, 0.5), ("b", 0, 0.3), ("a", 1, 0.7), ("b", 1, 0.3), ("a", 2, 0.6)])
    steps = race_history(found, RaceRules(test="welch"))
    assert [(step.arm, step.runs) for step in steps] == [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3)]
    assert steps[2].mean == pytest.approx(0.6) and np.isnan(steps[0].low)
    assert steps[4].low == pytest.approx(0.6 - 4.3027 * 0.1 / np.sqrt(3), abs=1e-4)


def test_the_report_opens_with_the_verdict_and_ranks_with_p_best(tmp_path):
    rows = [trial(number, arch, seed=seed, miou=miou, latency_ms=5.0)
            for number, (arch, seed, miou) in enumerate([("aaaa", 0, 0.60), ("bbbb", 0, 0.30), ("cccc", 0, 0.58),
                                                         ("aaaa", 1, 0.62), ("bbbb", 1, 0.31), ("cccc", 1, 0.61)])]
    files = write_report(write_run(tmp_path / "run", rows))
    lines = files.markdown.read_text().splitlines()
    assert lines[2].startswith("**undecided between aaaa and cccc: about ")
    assert "P(best) is the share of 20000 draws" in files.markdown.read_text()
    table = pd.read_csv(files.table).set_index("arch_hash")
    assert table["p_best"].sum() == pytest.approx(1.0) and table.at["bbbb", "p_best"] < 0.001
    assert table.at["aaaa", "p_best"] > table.at["cccc", "p_best"]
    assert files.race.is_file()


def test_the_report_of_a_pruned_study_claims_no_best(tmp_path):
    rows = [trial(number, arch, seed=seed, miou=miou, latency_ms=5.0, state=state)
            for number, (arch, seed, miou, state) in enumerate([
                ("aaaa", 0, 0.60, "COMPLETE"), ("bbbb", 0, 0.30, "COMPLETE"), ("cccc", 0, None, "PRUNED"),
                ("aaaa", 1, 0.62, "COMPLETE"), ("bbbb", 1, 0.31, "COMPLETE"), ("cccc", 1, None, "PRUNED")])]
    lines = write_report(write_run(tmp_path / "run", rows)).markdown.read_text().splitlines()
    assert lines[2].startswith("**undecided: a pruner stopped 2 runs of 1 architecture before the end")
    assert "(1 architecture without a finished run is not ranked)" in lines[2]
