"""Racing seeds in a study's storage: the race read back from recorded trials (as after kill -9), its rounds
queued, and a small racing grid study run end to end with training faked."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from archsearch.cli.main import main
from archsearch.race.decision import RaceRules
from archsearch.run import attributes
from archsearch.search import load_study
from archsearch.search.racing import point_key, race_over, race_round, race_state

WIDTHS = CategoricalDistribution([8, 16, 24])


def recorded(study: optuna.Study, width: int, seed: int, miou: float | None, state=TrialState.COMPLETE,
             **attrs) -> None:
    """A trial as a run records it: its point, seed and (complete) mIoU; no training."""
    user_attrs = {attributes.SEED: seed, **({"miou": miou} if miou is not None else {}), **attrs}
    study.add_trial(create_trial(state=state, params={"width": width}, distributions={"width": WIDTHS},
                                 value=miou if state == TrialState.COMPLETE else None, user_attrs=user_attrs))


@pytest.fixture
def config(tiny_study):
    return load_study(tiny_study, ["seeds={race: {min: 2, max: 4}}", "sampler=grid"])


def test_the_race_state_is_read_from_the_trials_alone():
    study = optuna.create_study(direction="maximize")
    recorded(study, 8, 0, 0.30)
    recorded(study, 8, 1, 0.31)
    recorded(study, 16, 0, 0.50)
    recorded(study, 16, 1, None, state=TrialState.PRUNED)
    recorded(study, 24, 0, None, state=TrialState.FAIL)  # lost: no reason, it runs again as another trial
    recorded(study, 24, 0, None, state=TrialState.FAIL, fail_reason="CUDA out of memory")
    state = race_state(study.get_trials())
    assert state.observations.arms == ((("width", 8),), (("width", 16),))
    assert list(state.observations.value) == [0.30, 0.31, 0.50]
    assert state.tried == {(("width", 8),): {0, 1}, (("width", 16),): {0, 1}, (("width", 24),): {0}}
    assert state.busy == set()


def test_a_round_queues_the_contenders_next_seeds_once_and_a_resumed_run_sees_the_same_race(config):
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="race", direction="maximize")
    for width, values in ((8, (0.30, 0.31)), (16, (0.50, 0.52)), (24, (0.51, 0.50))):
        for seed, miou in enumerate(values):
            recorded(study, width, seed, miou)
    turn = race_round(study, config)
    assert (turn.queued, turn.waiting) == (2, 0)
    queued = {(point_key(trial), trial.user_attrs[attributes.SEED])
              for trial in study.get_trials(states=(TrialState.WAITING,))}
    assert queued == {((("width", 16),), 2), ((("width", 24),), 2)}  # width 8 is shown worse; the two leaders get seed 2
    # Killed after queuing: the run that resumes finds the queue and queues nothing more.
    resumed = optuna.load_study(study_name="race", storage=storage)
    assert race_round(resumed, config).queued == 0 and not race_over(resumed, config)
    # A trial of the round left RUNNING (its process died) keeps its point busy: no second seed for it.
    state = race_state([*resumed.get_trials(states=(TrialState.COMPLETE,)),
                        *(trial for trial in resumed.get_trials(states=(TrialState.WAITING,))
                          if point_key(trial) == (("width", 16),))])
    assert state.busy == {(("width", 16),)}


def test_the_race_is_over_when_the_leader_is_separated_or_every_contender_has_max_seeds(config):
    study = optuna.create_study(direction="maximize")
    for seed in range(4):
        recorded(study, 16, seed, 0.5 + 0.01 * seed)
        recorded(study, 24, seed, 0.5 + 0.01 * (3 - seed))
    assert race_over(study, config)  # tied at 4 seeds each, the maximum
    separated = optuna.create_study(direction="maximize")
    for seed in range(2):
        recorded(separated, 8, seed, 0.2 + 0.01 * seed)
        recorded(separated, 16, seed, 0.6 + 0.01 * seed)
    assert race_over(separated, config)


def test_a_racing_study_parses_and_its_bad_values_are_named(tiny_study):
    config = load_study(tiny_study, ["seeds={race: {min: 3, max: 5, confidence: 0.9, top: 2, test: welch}}"])
    assert config.race == RaceRules(minimum=3, maximum=5, confidence=0.9, top=2, test="welch", rule="posterior")
    assert load_study(tiny_study, ["seeds={race: {rule: test}}"]).race.rule == "test"
    assert config.seeds == (0, 1, 2, 3, 4) and config.initial_seeds == (0, 1, 2)
    assert load_study(tiny_study).race is None
    for change, path in (("seeds={race: {min: 1}}", "seeds.race.min"), ("seeds={race: {min: 4, max: 3}}",
                                                                         "seeds.race.max"),
                         ("seeds={race: {test: t}}", "seeds.race.test"), ("seeds={race: {seed: 1}}", "seeds.race.seed"),
                         ("seeds={race: {rule: bayes}}", "seeds.race.rule")):
        with pytest.raises(Exception) as caught:
            load_study(tiny_study, [change])
        assert caught.value.path == path


def test_a_racing_grid_study_runs_end_to_end_and_stops_when_decided(tiny_study, tmp_path, monkeypatch):
    """Training faked: width 32 is far better than 16, so after the first two seeds the race is decided."""
    from archsearch.search import trial as trial_module
    from archsearch.train.trainer import TrainResult

    def fake_training(model, train_loader, val_loader, config, on_evaluation=None):
        width = sum(parameter.numel() for parameter in model.parameters())
        miou = 0.2 + 0.4 * (width > 12000) + 0.001 * config.seed
        return TrainResult(miou=miou, per_class_iou=(miou,), pixel_accuracy=0.5, steps=1, train_seconds=0.01,
                           eval_seconds=0.01, final_loss=0.1, history=((1, miou),))

    monkeypatch.setattr(trial_module, "train_and_evaluate", fake_training)
    out = tmp_path / "run"
    one_pattern = ["parameters.pattern={choice: {short: '[[1],[1,2]]'}}", "parameters.group_width={choice: [8]}",
                   "parameters.width={choice: [16, 32]}", "sampler=grid", "trials=20",
                   "seeds={race: {min: 2, max: 5}}"]
    assert main(["run", str(tiny_study), "--out", str(out), *(f"--set={change}" for change in one_pattern)]) == 0
    frame = pd.read_csv(out / "trials.csv")
    assert len(frame) == 4 and set(frame["seed"]) == {0, 1}  # 2 points x 2 seeds: decided, 16 trials saved
    assert main(["run", str(tiny_study), "--out", str(out), *(f"--set={change}" for change in one_pattern)]) == 0
    assert len(pd.read_csv(out / "trials.csv")) == 4  # resumed: the race is over, nothing more to train
    assert main(["report", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "**decided:" in report and "Seeds raced: 2 for every architecture" in report
    assert (out / "race.png").is_file()


def test_a_dry_run_says_how_seeds_are_raced(tiny_study, tmp_path, capsys):
    assert main(["run", str(tiny_study), "--out", str(tmp_path / "run"), "--dry-run",
                 "--set", "seeds={race: {min: 2, max: 4, confidence: 0.9}}"]) == 0
    expected = "seeds raced: 2 each, up to 4 for the contenders (posterior rule, paired model at 90%, top 1)"
    assert expected in capsys.readouterr().out
