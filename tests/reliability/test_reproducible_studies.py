"""Same seed, same study, same machine: the same architectures in the same order and, on the CPU, the
same metrics, for the TPE and grid samplers (tests/search/test_study_run.py covers the random sampler).

The sampler is seeded per trial number, so a study that is stopped and resumed draws what it would have
drawn in one go, instead of replaying its first draws (which trained the same points again).
"""

from __future__ import annotations

import pandas as pd

from archsearch.cli.main import main

POINT = ["param.width", "param.pattern", "param.group_width"]
COMPARED = ["number", "state", "arch_hash", "seed", *POINT, "miou", "macs"]
TPE = ["--set", "sampler={name: tpe, seed: 3, n_startup_trials: 2}", "--set", "training.iterations=2"]


def run(study, run_dir, trials: int, *extra: str) -> pd.DataFrame:
    assert main(["run", str(study), "--out", str(run_dir), "--trials", str(trials), *extra]) in (0, 1)
    return pd.read_csv(run_dir / "trials.csv")


def columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[column for column in COMPARED if column in frame.columns]]


def test_tpe_study_repeats_exactly_also_when_stopped_and_resumed(tiny_study, tmp_path):
    """Two startup trials, then TPE proper on the values they measured: one run of 5 trials, and a run
    stopped after 2 and resumed to 5, give the same points and metrics. Another seed draws others."""
    whole = run(tiny_study, tmp_path / "whole", 5, *TPE)
    assert (whole["state"] == "COMPLETE").sum() >= 2  # TPE went past its startup trials on real values
    run(tiny_study, tmp_path / "resumed", 2, *TPE)
    resumed = run(tiny_study, tmp_path / "resumed", 5, *TPE)
    pd.testing.assert_frame_equal(columns(resumed), columns(whole))
    other_seed = run(tiny_study, tmp_path / "other", 2, "--set", "sampler={name: tpe, seed: 4, n_startup_trials: 2}",
                     "--set", "training.iterations=2")
    assert not columns(other_seed)[POINT].equals(columns(whole)[POINT].iloc[:2])


def test_a_resumed_random_study_draws_what_one_run_draws(tiny_study, tmp_path):
    """Before the sampler was seeded per trial, the resumed run drew trials 0 and 1 again as its 2 and 3."""
    extra = ["--set", "sampler={name: random, seed: 0}", "--set", "training.iterations=2"]
    whole = run(tiny_study, tmp_path / "whole", 4, *extra)
    run(tiny_study, tmp_path / "resumed", 2, *extra)
    resumed = run(tiny_study, tmp_path / "resumed", 4, *extra)
    pd.testing.assert_frame_equal(columns(resumed), columns(whole))


def test_grid_study_repeats_exactly_also_when_stopped_and_resumed(tiny_study, tmp_path):
    grid = ["--set", "sampler=grid", "--set", "fix={group_width: 8, pattern: short}",
            "--set", "parameters.width={choice: [16, 32]}", "--set", "seeds=[0, 1]", "--set", "training.iterations=2"]
    whole = run(tiny_study, tmp_path / "whole", 100, *grid)
    assert len(whole) == 2 * 2 and set(whole["state"]) == {"COMPLETE"}  # widths x seeds, each once
    run(tiny_study, tmp_path / "resumed", 1, *grid)
    resumed = run(tiny_study, tmp_path / "resumed", 100, *grid)
    pd.testing.assert_frame_equal(columns(resumed), columns(whole))
