"""Failures inside a trial are recorded with their reason and the study goes on; the exit status says how
the study ended: 0 finished, 1 not finished (no trial completed), 2 bad input (which stops the study),
130 interrupted (the interrupted trial is queued again).

tests/search/test_study_run.py covers invalid points and a diverging training everywhere; these add
the failures a long search meets once in a while, on one trial among others.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from archsearch.cli.main import main
from archsearch.latency import point as latency_point
from archsearch.errors import SpecError
from archsearch.search import trial as trial_module
from archsearch.train import TrainingDiverged

# Every point valid (group width 8), two iterations per trial: failures come only from what a test injects.
VALID = ["--set", "fix={group_width: 8}", "--set", "training.iterations=2"]


def run(study, run_dir, *extra: str) -> int:
    return main(["run", str(study), "--out", str(run_dir), *VALID, *extra])


def trials(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "trials.csv")


def last_line(err: str) -> str:
    """The error message (the run prints its progress to stderr before it)."""
    return err[err.rindex("archsearch: error: "):] if "archsearch: error: " in err else err


def fail_call(monkeypatch, name: str, error: BaseException, *, on_calls=(1,), module=trial_module):
    """Make ``<module>.<name>`` (by default in archsearch.search.trial) raise ``error`` on the given calls
    (1-based), else work."""
    original = getattr(module, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) in on_calls:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


@pytest.mark.parametrize(("error", "reason"), [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
     "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 MiB"), "RuntimeError: CUDA out of memory."),
    (TrainingDiverged(step=7, loss=float("nan")), "TrainingDiverged: training diverged: the loss is nan at step 7"),
    (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
], ids=["oom", "cuda-oom-runtime-error", "nan-loss", "bug"])
def test_a_failing_training_is_recorded_and_the_study_goes_on(tiny_study, tmp_path, monkeypatch, capsys, error,
                                                              reason):
    fail_call(monkeypatch, "train_and_evaluate", error, on_calls=(2,))
    assert run(tiny_study, tmp_path / "run", "--trials", "3") == 0
    frame = trials(tmp_path / "run")
    assert list(frame["state"]) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert frame.loc[1, "fail_reason"].startswith(reason)
    assert frame.loc[1, "params_train"] > 0  # what was measured before the failure is kept
    assert not (tmp_path / "run" / "weights" / "trial_1.safetensors").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_real_nan_loss_fails_every_trial_and_the_exit_status_says_unfinished(tiny_study, tmp_path, capsys):
    status = run(tiny_study, tmp_path / "run", "--trials", "2", "--set", "training.lr=1.0e+30",
                 "--set", "training.iterations=10")
    assert status == 1
    frame = trials(tmp_path / "run")
    assert list(frame["state"]) == ["FAIL", "FAIL"]
    assert all(reason.startswith("TrainingDiverged: training diverged: the loss is") for reason in frame["fail_reason"])
    assert "study not finished: 2 of 2 trials finished (0 complete, 0 infeasible, 0 pruned, 2 failed, 0 waiting)" \
        in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("stage", ["build", "analyze", "cached_latency"])
def test_a_network_that_cannot_be_built_analyzed_or_timed_fails_alone(tiny_study, tmp_path, monkeypatch, stage):
    extra = []
    if stage == "cached_latency":
        extra = ["--set", "latency={device: cpu, warmup_seconds: 0, min_warmup_iterations: 1, "
                          "time_budget_seconds: 0, min_repeats: 2, max_repeats: 2}"]
    module = latency_point if stage == "cached_latency" else trial_module
    fail_call(monkeypatch, stage, RuntimeError(f"{stage} broke for this network"), module=module)
    assert run(tiny_study, tmp_path / "run", "--trials", "2", *extra) == 0
    frame = trials(tmp_path / "run")
    assert list(frame["state"]) == ["FAIL", "COMPLETE"]
    assert frame.loc[0, "fail_reason"] == f"RuntimeError: {stage} broke for this network"


def test_bad_input_found_inside_a_trial_stops_the_study_with_status_2(tiny_study, tmp_path, monkeypatch, capsys):
    """A SpecError is the user's input (data, settings, the space), not a property of the point: no other
    trial would do better, so the study stops at once and says what to fix."""
    fail_call(monkeypatch, "train_and_evaluate", SpecError("needs one weight per class of the model",
                                                           path="class_weights", value=[1.0]), on_calls=(2,))
    assert run(tiny_study, tmp_path / "run", "--trials", "4") == 2
    err = capsys.readouterr().err
    assert last_line(err).startswith("archsearch: error: class_weights: needs one weight per class")
    assert "Traceback" not in err
    frame = trials(tmp_path / "run")  # rewritten when the study stopped
    assert list(frame["state"]) == ["COMPLETE", "FAIL"]
    assert frame.loc[1, "fail_reason"].startswith("SpecError: class_weights")


def test_a_space_error_met_only_when_sampling_is_bad_input(tiny_study, tmp_path, capsys):
    """A structural error in a branch of the space that only some points take is still the space's fault."""
    space = tmp_path / "tiny_space.yaml"
    space.write_text(space.read_text().replace(
        "out_channels: '${width}', group_width: '${group_width}'",
        "out_channels: {if: '${width} > 16', then: '${width}', else: '${no_such_parameter}'}, "
        "group_width: '${group_width}'"))
    status = run(tiny_study, tmp_path / "run", "--trials", "6")
    err = capsys.readouterr().err
    assert status == 2, err
    assert last_line(err).startswith("archsearch: error: ") and "no_such_parameter" in err and "Traceback" not in err


def test_an_interrupted_trial_is_queued_again_and_retried(tiny_study, tmp_path, monkeypatch, capsys):
    fail_call(monkeypatch, "train_and_evaluate", KeyboardInterrupt(), on_calls=(2,))
    run_dir = tmp_path / "run"
    assert run(tiny_study, run_dir, "--trials", "3") == 130
    assert "archsearch: interrupted" in capsys.readouterr().err
    frame = trials(run_dir)
    assert list(frame["state"]) == ["COMPLETE", "FAIL", "WAITING"]
    assert frame.loc[1, "fail_reason"] == "interrupted; queued again"
    monkeypatch.undo()
    assert run(tiny_study, run_dir, "--trials", "3") == 0
    frame = trials(run_dir)
    assert list(frame["state"]) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    params = [column for column in frame.columns if column.startswith("param.")]
    assert frame.loc[2, params].equals(frame.loc[1, params]) and frame.loc[2, "seed"] == frame.loc[1, "seed"]


def test_a_full_disk_stops_the_run_naming_the_path_and_the_trial_is_retried(tiny_study, tmp_path, monkeypatch,
                                                                            capsys):
    import errno

    import safetensors.torch

    fail_call(monkeypatch, "save_file", OSError(errno.ENOSPC, "No space left on device"), on_calls=(2,),
              module=safetensors.torch)
    run_dir = tmp_path / "run"
    assert run(tiny_study, run_dir, "--trials", "3") == 2
    err = capsys.readouterr().err
    weights = run_dir / "weights" / "trial_1.safetensors"
    assert last_line(err) == f"archsearch: error: cannot write {weights}: No space left on device\n", err
    assert "study finished" not in err and "Traceback" not in err
    frame = trials(run_dir)
    assert list(frame["state"]) == ["COMPLETE", "FAIL", "WAITING"]
    assert frame.loc[1, "fail_reason"] == f"stopped: cannot write {weights}: No space left on device; queued again"
    monkeypatch.undo()
    assert run(tiny_study, run_dir, "--trials", "3") == 0
    frame = trials(run_dir)
    assert list(frame["state"]) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    params = [column for column in frame.columns if column.startswith("param.")]
    assert frame.loc[2, params].equals(frame.loc[1, params]) and frame.loc[2, "seed"] == frame.loc[1, "seed"]


def test_sigterm_is_an_interruption_and_the_trial_is_retried(tiny_study, tmp_path, monkeypatch, capsys):
    import os
    import signal

    handler = signal.getsignal(signal.SIGTERM)
    original = trial_module.train_and_evaluate
    calls = []

    def terminated(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(trial_module, "train_and_evaluate", terminated)
    run_dir = tmp_path / "run"
    assert run(tiny_study, run_dir, "--trials", "3") == 143
    assert "archsearch: terminated" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == handler  # the run's handler is gone with the run
    frame = trials(run_dir)
    assert list(frame["state"]) == ["COMPLETE", "FAIL", "WAITING"]
    assert frame.loc[1, "fail_reason"] == "interrupted; queued again"
