"""Intervals in reports: Student-t intervals over seeds, Welch ties with the best, '1 seed' for one run."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from archsearch.report.ranking import summarize
from archsearch.report.write import write_report
from tests.report.test_report import trial, write_run

ROWS = [
    trial(0, "aaaa1111", seed=0, miou=0.60, latency_ms=10.0),
    trial(1, "aaaa1111", seed=1, miou=0.64, latency_ms=12.0),
    trial(2, "aaaa1111", seed=2, miou=0.65, latency_ms=11.0),
    trial(3, "bbbb2222", seed=0, miou=0.70, latency_ms=20.0),
    trial(4, "bbbb2222", seed=1, miou=0.72, latency_ms=21.0),
    trial(5, "cccc3333", seed=0, miou=0.55, latency_ms=30.0),
    trial(6, "dddd4444", seed=0, miou=0.68, latency_ms=25.0),
    trial(7, "dddd4444", seed=1, miou=0.72, latency_ms=26.0),
]


def test_summary_carries_intervals_and_ties(tmp_path):
    summary = summarize(pd.DataFrame(ROWS)).set_index("arch_hash")
    assert summary.at["aaaa1111", "miou_ci_low"] == pytest.approx(0.63 - 0.06573, abs=1e-4)
    assert summary.at["bbbb2222", "miou_ci_high"] == pytest.approx(0.71 + 0.12706, abs=1e-4)
    assert pd.isna(summary.at["cccc3333", "miou_ci_low"])
    assert bool(summary.at["bbbb2222", "tied_with_best"])
    assert bool(summary.at["dddd4444", "tied_with_best"]) and not bool(summary.at["aaaa1111", "tied_with_best"])
    assert pd.isna(summary.at["cccc3333", "tied_with_best"])


def test_report_shows_intervals_ties_and_single_seeds(tmp_path):
    files = write_report(write_run(tmp_path / "run", ROWS))
    markdown = files.markdown.read_text()
    assert "Student-t" in markdown and "Welch" in markdown
    rows = {line.split("|")[2].strip(): line for line in markdown.splitlines() if line.startswith("| ")}
    assert "| best |" in rows["bbbb2222"] and "[0.5829, 0.8371]" in rows["bbbb2222"]
    assert "| ≈ |" in rows["dddd4444"]
    assert "≈" not in rows["aaaa1111"] and "[0.5643, 0.6957]" in rows["aaaa1111"]
    assert "1 seed" in rows["cccc3333"]
    table = pd.read_csv(files.table).set_index("arch_hash")
    assert table.at["aaaa1111", "miou_ci_low"] == pytest.approx(0.5643, abs=1e-4)
    assert math.isnan(table.at["cccc3333", "miou_ci_high"])


def test_a_single_seed_study_says_so(tmp_path):
    rows = [trial(0, "a", miou=0.5, latency_ms=5.0), trial(1, "b", miou=0.7, latency_ms=9.0)]
    files = write_report(write_run(tmp_path / "run", rows))
    markdown = files.markdown.read_text()
    assert "no interval" in markdown
    assert all("1 seed" in line for line in markdown.splitlines() if line.startswith("| ") and "| b |" in line)
    table = pd.read_csv(files.table)
    assert table["miou_ci_low"].isna().all() and list(table["tied_with_best"].fillna("untested")) == [
        True, "untested"]
