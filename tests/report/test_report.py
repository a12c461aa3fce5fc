"""Report: trials.csv typing and errors, seed grouping, Pareto front, atomic report files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import OutputError, SpecError
from archsearch.report.ranking import pareto_front, summarize
from archsearch.report.write import write_report
from archsearch.run.study_file import load_study_heading
from archsearch.run.trials_table import REQUIRED_COLUMNS, load_trials

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OBJECTIVES = [{"metric": "miou", "direction": "maximize"}, {"metric": "latency_ms", "direction": "minimize"}]


def trial(number, arch_hash, *, seed=0, state="COMPLETE", miou=None, latency_ms=None, macs=1_000_000_000,
          fail_reason="", **choices):
    return {"number": number, "state": state, "arch_hash": arch_hash, "seed": seed, "params_train": 2_000_000,
            "params_deploy": 1_500_000, "macs": macs, "receptive_field": 99, "output_stride": 8,
            "latency_ms": latency_ms, "miou": miou, "train_seconds": 12.5, "fail_reason": fail_reason,
            **{f"param.{name}": value for name, value in choices.items()}}


def write_run(run_dir: Path, rows: list[dict], objectives=OBJECTIVES, name="unit") -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(run_dir / "trials.csv", index=False)
    latency = {"latency": {}} if any(objective["metric"] == "latency_ms" for objective in objectives) else {}
    (run_dir / "study.yaml").write_text(yaml.safe_dump({"name": name, "space": "space.yaml", "training": {},
                                                        "objectives": objectives, **latency}))
    return run_dir


SEEDED_ROWS = [
    trial(0, "aaaa1111", seed=0, miou=0.60, latency_ms=10.0, width=32, block="dblock"),
    trial(1, "aaaa1111", seed=1, miou=0.64, latency_ms=12.0, width=32, block="dblock"),
    trial(2, "aaaa1111", seed=2, miou=0.65, latency_ms=11.0, width=32, block="dblock"),
    trial(3, "bbbb2222", seed=0, miou=0.70, latency_ms=20.0, width=64, block="rep"),
    trial(4, "bbbb2222", seed=1, miou=0.72, latency_ms=21.0, width=64, block="rep"),
    trial(5, "cccc3333", seed=0, miou=0.55, latency_ms=30.0, width=48, block="rep"),
    trial(6, "dddd4444", state="FAIL", fail_reason="CUDA out of memory", width=16, block="rep"),
    trial(7, "eeee5555", state="INFEASIBLE", latency_ms=99.0, fail_reason="latency 99 ms over budget 30 ms",
          width=128, block="rep"),
    trial(8, "ffff6666", state="PRUNED", width=16, block="dblock"),
]


# ----- load_trials ----------------------------------------------------------------------------------------


def test_load_trials_types_columns_and_keeps_empty_values_missing(tmp_path):
    trials = load_trials(write_run(tmp_path / "run", SEEDED_ROWS))
    assert str(trials["number"].dtype) == "Int64" and str(trials["macs"].dtype) == "Int64"
    assert trials["miou"].dtype == np.float64
    assert str(trials["param.width"].dtype) == "Int64"
    assert set(trials["param.block"]) == {"dblock", "rep"}
    assert trials.loc[trials["state"] == "FAIL", "miou"].isna().all()
    assert trials.loc[trials["state"] == "COMPLETE", "fail_reason"].eq("").all()


def test_missing_run_dir_and_missing_trials_file_are_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="no such run directory"):
        load_trials(tmp_path / "absent")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(SpecError, match="trials.csv"):
        write_report(tmp_path / "empty_run")


def test_missing_column_error_names_file_and_column(tmp_path):
    run_dir = write_run(tmp_path / "run", SEEDED_ROWS)
    pd.read_csv(run_dir / "trials.csv").drop(columns=["latency_ms"]).to_csv(run_dir / "trials.csv", index=False)
    with pytest.raises(SpecError) as error:
        load_trials(run_dir)
    message = str(error.value)
    assert "trials.csv" in message and "missing column latency_ms" in message
    assert "required columns " + ", ".join(REQUIRED_COLUMNS) in message


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("miou", "high", "line 3, column miou: not a number"),
    ("macs", "1.5", "line 3, column macs: not a whole number"),
    ("state", "DONE", "line 3, column state: unknown trial state"),
])
def test_bad_values_name_line_and_column(tmp_path, column, value, expected):
    run_dir = write_run(tmp_path / "run", SEEDED_ROWS)
    frame = pd.read_csv(run_dir / "trials.csv", dtype=str, keep_default_na=False)
    frame.loc[1, column] = value
    frame.to_csv(run_dir / "trials.csv", index=False)
    with pytest.raises(SpecError, match=expected):
        load_trials(run_dir)


def test_empty_and_unparsable_files_are_spec_errors(tmp_path):
    run_dir = write_run(tmp_path / "run", SEEDED_ROWS)
    (run_dir / "trials.csv").write_text("")
    with pytest.raises(SpecError, match="empty"):
        load_trials(run_dir)
    (run_dir / "trials.csv").write_text(",".join(REQUIRED_COLUMNS) + "\n" + ",".join(["1"] * 20) + "\n")
    with pytest.raises(SpecError, match="cannot read it as CSV"):
        load_trials(run_dir)


def test_bad_objective_in_study_yaml_names_its_path(tmp_path):
    run_dir = write_run(tmp_path / "run", SEEDED_ROWS, objectives=[{"metric": "fps", "direction": "maximize"}])
    with pytest.raises(SpecError, match=r"study.yaml: objectives\[0\].metric: unknown metric"):
        load_study_heading(run_dir)


# ----- summarize ------------------------------------------------------------------------------------------


def test_seeds_are_grouped_with_numpy_mean_and_sample_std(tmp_path):
    summary = summarize(load_trials(write_run(tmp_path / "run", SEEDED_ROWS)))
    assert list(summary["arch_hash"]) == ["bbbb2222", "aaaa1111", "cccc3333"]
    assert list(summary["runs"]) == [2, 3, 1]
    first = summary.set_index("arch_hash")
    for arch_hash, values in {"aaaa1111": [0.60, 0.64, 0.65], "bbbb2222": [0.70, 0.72]}.items():
        assert first.at[arch_hash, "miou_mean"] == pytest.approx(np.mean(values))
        assert first.at[arch_hash, "miou_std"] == pytest.approx(np.std(values, ddof=1))
    assert np.isnan(first.at["cccc3333", "miou_std"])
    assert first.at["aaaa1111", "latency_ms"] == 11.0
    assert first.at["bbbb2222", "param.width"] == 64 and first.at["bbbb2222", "param.block"] == "rep"
    assert "miou" not in summary.columns


def test_single_seed_keeps_one_row_per_trial(tmp_path):
    rows = [trial(0, "a", miou=0.5, latency_ms=5.0), trial(1, "b", miou=0.7, latency_ms=9.0),
            trial(2, "c", miou=0.6, latency_ms=7.0), trial(3, "d", state="FAIL", fail_reason="nan loss")]
    summary = summarize(load_trials(write_run(tmp_path / "run", rows)))
    assert list(summary["arch_hash"]) == ["b", "c", "a"]
    assert list(summary["miou"]) == [0.7, 0.6, 0.5]
    assert list(summary["number"]) == [1, 2, 0]
    assert "miou_mean" not in summary.columns


def test_grouping_can_be_turned_off(tmp_path):
    summary = summarize(load_trials(write_run(tmp_path / "run", SEEDED_ROWS)), group_seeds=False)
    assert len(summary) == 6 and list(summary["miou"]) == sorted(summary["miou"], reverse=True)


def test_a_choice_that_leaves_the_architecture_alone_keeps_runs_apart(tmp_path):
    rows = [trial(0, "a", miou=0.5, lr=0.1), trial(1, "a", miou=0.6, lr=0.01), trial(2, "a", seed=1, miou=0.7, lr=0.01)]
    summary = summarize(load_trials(write_run(tmp_path / "run", rows)))
    assert list(summary["runs"]) == [2, 1] and list(summary["param.lr"]) == [0.01, 0.1]


def test_a_repeated_run_counts_once():
    """Same architecture, choices and seed: one run, the first; another seed is another run."""
    rows = [trial(0, "a", miou=0.5), trial(1, "a", miou=0.5), trial(2, "a", seed=1, miou=0.7), trial(3, "b", miou=0.4)]
    summary = summarize(pd.DataFrame(rows))
    assert list(summary["arch_hash"]) == ["a", "b"] and list(summary["runs"]) == [2, 1]
    assert summary["miou_mean"][0] == pytest.approx(0.6)


# ----- pareto_front ---------------------------------------------------------------------------------------


def test_pareto_front_by_hand_with_ties_and_dominated_points():
    frame = pd.DataFrame({
        "miou":       [0.70, 0.70, 0.60, 0.75, 0.65, 0.60, 0.75, np.nan],
        "latency_ms": [10.0, 10.0, 12.0, 20.0, 10.0,  5.0, 25.0, 1.0],
    })
    # 0 and 1 tie (both on the front); 2 dominated by 0; 4 dominated by 0 (same latency, less mIoU);
    # 6 dominated by 3 (same mIoU, slower); 7 has no mIoU, so it is neither on the front nor dominates.
    front = pareto_front(frame, [("miou", "maximize"), ("latency_ms", "minimize")])
    assert list(front) == [True, True, False, True, False, True, False, False]
    assert front.name == "pareto" and front.index.equals(frame.index)


def test_one_objective_gives_the_best_rows():
    frame = pd.DataFrame({"miou": [0.5, 0.8, 0.8, 0.3]}, index=[10, 11, 12, 13])
    assert list(pareto_front(frame, [("miou", "maximize")])) == [False, True, True, False]
    assert list(pareto_front(frame, [("miou", "minimize")])) == [False, False, False, True]


def test_pareto_front_rejects_unknown_columns_and_directions():
    frame = pd.DataFrame({"miou": [0.5]})
    with pytest.raises(SpecError, match="no such column"):
        pareto_front(frame, [("fps", "maximize")])
    with pytest.raises(SpecError, match="unknown direction"):
        pareto_front(frame, [("miou", "up")])


def dominates(better: np.ndarray, worse: np.ndarray) -> bool:
    """Costs (smaller is better): no worse anywhere, better somewhere."""
    return bool((better <= worse).all() and (better < worse).any())


@settings(max_examples=150, deadline=None)
@given(points=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=25),
       directions=st.tuples(st.sampled_from(["maximize", "minimize"]), st.sampled_from(["maximize", "minimize"])))
def test_front_is_exactly_the_non_dominated_rows(points, directions):
    frame = pd.DataFrame(points, columns=["first", "second"], dtype=float)
    front = pareto_front(frame, list(zip(["first", "second"], directions))).to_numpy()
    costs = frame.to_numpy() * np.array([-1.0 if direction == "maximize" else 1.0 for direction in directions])
    assert front.any()
    for row in range(len(frame)):
        if front[row]:
            assert not any(dominates(costs[other], costs[row]) for other in range(len(frame)))
        else:
            assert any(front[other] and dominates(costs[other], costs[row]) for other in range(len(frame)))


# ----- write_report ---------------------------------------------------------------------------------------


def test_report_files_rank_best_first_and_list_failures(tmp_path):
    files = write_report(write_run(tmp_path / "run", SEEDED_ROWS, name="demo"))
    assert files.plot.read_bytes().startswith(PNG_MAGIC)
    markdown = files.markdown.read_text()
    assert "9 trials: 6 complete, 1 failed, 1 pruned, 1 infeasible." in markdown
    ranking = markdown.split("## Ranking")[1]
    assert ranking.index("bbbb2222") < ranking.index("aaaa1111") < ranking.index("cccc3333")
    assert "0.7100 ± 0.0141" in markdown
    failures = markdown.split("## Failed and infeasible trials")[1]
    assert "CUDA out of memory" in failures and "latency 99 ms over budget 30 ms" in failures
    assert "ffff6666" not in failures
    table = pd.read_csv(files.table)
    assert list(table["arch_hash"]) == ["bbbb2222", "aaaa1111", "cccc3333"]
    assert list(table["pareto"]) == [True, True, False]
    assert sorted(os.listdir(files.markdown.parent)) == ["pareto.png", "race.png", "report.csv", "report.md", "study.yaml",
                                                        "trials.csv"]


def test_report_goes_to_another_directory_and_plots_macs_without_latency(tmp_path):
    rows = [trial(0, "a", miou=0.5, macs=2_000_000_000), trial(1, "b", miou=0.7, macs=5_000_000_000),
            trial(2, "c", miou=0.6, macs=6_000_000_000)]
    run_dir = write_run(tmp_path / "run", rows, objectives=[{"metric": "miou", "direction": "maximize"},
                                                            {"metric": "macs", "direction": "minimize"}])
    files = write_report(run_dir, tmp_path / "out")
    assert files.markdown.parent == tmp_path / "out" and not (run_dir / "report.md").exists()
    markdown = files.markdown.read_text()
    assert "![mIoU against macs](pareto.png)" in markdown and "| 1 | 1 | b |" in markdown
    assert "Failed" not in markdown
    assert list(pd.read_csv(files.table)["pareto"]) == [True, False, True]


def test_a_single_objective_report_marks_the_plotted_front(tmp_path):
    rows = [trial(0, "a", miou=0.5, latency_ms=5.0), trial(1, "b", miou=0.7, latency_ms=20.0),
            trial(2, "c", miou=0.6, latency_ms=30.0), trial(3, "d", miou=0.55, latency_ms=8.0)]
    files = write_report(write_run(tmp_path / "run", rows, objectives=[{"metric": "miou", "direction": "maximize"}]))
    assert list(pd.read_csv(files.table)["arch_hash"]) == ["b", "c", "d", "a"]
    assert list(pd.read_csv(files.table)["pareto"]) == [True, False, True, True]
    assert "On the Pareto front of mIoU against latency_ms, as plotted: 3 of 4" in files.markdown.read_text()


def test_a_run_with_nothing_complete_still_gets_a_report(tmp_path):
    rows = [trial(0, "a", state="FAIL", fail_reason="diverged"), trial(1, "b", state="RUNNING")]
    files = write_report(write_run(tmp_path / "run", rows))
    markdown = files.markdown.read_text()
    assert "2 trials: 1 failed, 1 running." in markdown and "No trial has completed" in markdown
    assert "diverged" in markdown
    assert files.plot.read_bytes().startswith(PNG_MAGIC)


def test_pipes_and_newlines_in_reasons_do_not_break_the_table(tmp_path):
    rows = [trial(0, "a", miou=0.5, latency_ms=3.0), trial(1, "b", state="FAIL", fail_reason="shape a|b\nmismatch")]
    markdown = write_report(write_run(tmp_path / "run", rows)).markdown.read_text()
    assert "| FAIL | 1 | 1 | shape a\\|b mismatch |" in markdown


def test_unknown_x_metric_is_refused(tmp_path):
    with pytest.raises(SpecError, match="x_metric"):
        write_report(write_run(tmp_path / "run", SEEDED_ROWS), x_metric="miou")


def test_a_failed_write_leaves_the_old_report_whole(tmp_path, monkeypatch):
    run_dir = write_run(tmp_path / "run", SEEDED_ROWS)
    (run_dir / "report.md").write_text("old report\n")
    original_write_bytes = Path.write_bytes

    def write_half_then_fail(self, data, *args, **kwargs):
        original_write_bytes(self, data[: len(data) // 2], *args, **kwargs)
        if self.name.startswith(".report.md."):
            raise OSError("disk full")  # after the table and the plot were written in full

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    with pytest.raises(OutputError, match="cannot write .*report.md: disk full"):
        write_report(run_dir)
    monkeypatch.undo()
    assert (run_dir / "report.md").read_text() == "old report\n"
    assert not (run_dir / "report.csv").exists() and not (run_dir / "pareto.png").exists()  # none renamed in
    assert not [name for name in os.listdir(run_dir) if name.endswith(".tmp")]


def test_repeated_failure_reasons_share_one_row(tmp_path):
    rows = [trial(0, "a", miou=0.5, latency_ms=3.0),
            *(trial(number, f"x{number}", state="FAIL", fail_reason="CUDA out of memory") for number in (1, 2, 3)),
            trial(4, "y", state="FAIL"), trial(5, "z", state="INFEASIBLE", fail_reason="over budget")]
    failures = write_report(write_run(tmp_path / "run", rows)).markdown.read_text().split("## Failed")[1]
    assert "| FAIL | 3 | 1, 2, 3 | CUDA out of memory |" in failures
    assert "| FAIL | 1 | 4 | (no reason given) |" in failures and "| INFEASIBLE | 1 | 5 | over budget |" in failures


def test_a_large_study_keeps_the_table_and_the_labels_short(tmp_path):
    rows = [trial(number, f"{number:04d}hash", miou=0.3 + number / 200, latency_ms=1.0 + number)
            for number in range(60)]
    files = write_report(write_run(tmp_path / "run", rows))
    markdown = files.markdown.read_text()
    assert "Top 50 of 60 shown" in markdown and "0059hash" in markdown and "0009hash" not in markdown
    assert files.plot.read_bytes().startswith(PNG_MAGIC)


def test_the_report_ranks_by_the_best_evaluation_when_asked_or_when_the_study_reports_it(tmp_path):
    rows = [{**trial(0, "aaaa1111", miou=0.70), "miou_best": 0.71, "miou_best_step": 900},
            {**trial(1, "bbbb2222", miou=0.65), "miou_best": 0.75, "miou_best_step": 500}]
    final = write_report(write_run(tmp_path / "final", rows, objectives=[{"metric": "miou", "direction": "maximize"}]))
    assert pd.read_csv(final.table)["arch_hash"].tolist() == ["aaaa1111", "bbbb2222"]
    asked = write_report(tmp_path / "final", tmp_path / "asked", miou="miou_best")
    assert pd.read_csv(asked.table)["arch_hash"].tolist() == ["bbbb2222", "aaaa1111"]
    assert "best evaluation" in asked.markdown.read_text()
    study = write_run(tmp_path / "best", rows, objectives=[{"metric": "miou_best", "direction": "maximize"}])
    assert pd.read_csv(write_report(study).table)["miou"].tolist() == [0.75, 0.71]
    with pytest.raises(SpecError, match="miou"):
        write_report(study, miou="mean")
