"""Fidelity: a run's estimates against its mIoU, two runs against each other, and `archsearch fidelity`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.report.fidelity import agreement, run_fidelity
from tests.report.test_report import trial, write_run

ESTIMATE = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
REFERENCE = np.array([1.0, 3.0, 2.0, 5.0, 4.0])  # tau 0.6, rho 0.8 against ESTIMATE (tests/test_statistics.py)


def test_agreement_needs_three_architectures():
    with pytest.raises(SpecError, match="too few"):
        agreement(np.array([1.0, 2.0]), np.array([2.0, 1.0]), estimate_name="x", against="y")
    result = agreement(ESTIMATE, REFERENCE, estimate_name="x", against="y")
    assert (result.n, result.quarter, result.top1) == (5, 1, 0.0)


def five_architectures(proxy_sign: float = 1.0, flip: bool = False) -> list[dict]:
    """Five architectures, two seeds each; seeds average to mIoU 0.1, 0.3, 0.2, 0.5, 0.4 (flip: reversed)."""
    means = [0.1, 0.3, 0.2, 0.5, 0.4]
    if flip:
        means = means[::-1]
    rows = []
    for index, mean in enumerate(means):
        for seed, offset in ((0, -0.01), (1, 0.01)):
            row = trial(len(rows), f"arch{index}", seed=seed, miou=mean + offset, macs=(index + 1) * 10**9)
            row["proxy.synflow"] = proxy_sign * (index + 1)
            row["miou_at.10"] = mean / 2 if index != 2 else 0.0
            rows.append(row)
    return rows


def test_one_run_compares_every_recorded_estimate_with_its_mIoU(tmp_path):
    agreements, skipped = run_fidelity(write_run(tmp_path / "run", five_architectures()))
    by_name = {item.estimate: item for item in agreements}
    assert list(by_name) == ["proxy.synflow", "params_train", "params_deploy", "macs", "miou_at.10"]
    assert by_name["proxy.synflow"].kendall_tau == pytest.approx(0.6)  # the hand-worked order above
    assert by_name["macs"].spearman == pytest.approx(0.8)
    assert math.isnan(by_name["params_deploy"].kendall_tau)  # the same count for all five
    assert skipped == []


def test_cli_two_runs_json(tmp_path, capsys):
    short = write_run(tmp_path / "short", five_architectures())
    long = write_run(tmp_path / "long", five_architectures()[:8] + [trial(20, "other", miou=0.9)])
    assert main(["fidelity", str(short), str(long), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert set(result) >= {"estimate", "against", "n", "kendall_tau", "kendall_ci", "spearman", "top1", "top3"}
    assert result["n"] == 4 and result["kendall_tau"] == pytest.approx(1.0)  # arch0..arch3, same order
    assert result["top1"] == 1.0 and result["kendall_ci"] == pytest.approx([1.0, 1.0])


def test_cli_one_run_table(tmp_path, capsys):
    assert main(["fidelity", str(write_run(tmp_path / "run", five_architectures(proxy_sign=-1.0)))]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("proxy.synflow"))
    assert "-0.600" in line and "n/a" not in line


def test_cli_too_few_common_architectures_exit_2(tmp_path, capsys):
    first = write_run(tmp_path / "a", five_architectures())
    second = write_run(tmp_path / "b", [trial(0, "arch0", miou=0.5), trial(1, "arch1", miou=0.6),
                                        trial(2, "zzz", miou=0.7)])
    assert main(["fidelity", str(first), str(second)]) == 2
    error = capsys.readouterr().err
    assert "2 complete architecture(s) in common" in error and len(error.strip().splitlines()) == 1
    assert main(["fidelity", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
