"""A study with a ``supernet:`` section: one supernet trained first, trials ranked on its subnets."""

import json
import shutil

import pandas as pd
import pytest
import torch
import yaml

from archsearch import build, deploy, load_spec, load_weights
from archsearch.arch.checkpoints import load_weights_any_form

from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.report.supernet import RETRAINED, agreement, load_retrained, retrained_section
from archsearch.search import load_study
from archsearch.supernet.training import checkpoint_step
from tests.helpers.paths import FIXTURES

SUPERNET = {"iterations": 3, "sampling": "sandwich", "calibration_batches": 1, "coverage": 4, "retrain_top": 1}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def study_file(tmp_path, **changes):
    shutil.copy(FIXTURES / "tiny_space.yaml", tmp_path / "tiny_space.yaml")
    data = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    data.update({"supernet": SUPERNET, "objectives": [{"metric": "supernet_miou", "direction": "maximize"}],
                 "trials": 3, **changes})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_trials_evaluate_subnets_of_the_study_supernet_and_export(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", str(study_file(tmp_path)), "--out", str(run_dir)]) == 0
    assert checkpoint_step(run_dir / "supernet" / "checkpoint.pt") == SUPERNET["iterations"]
    frame = pd.read_csv(run_dir / "trials.csv")
    complete = frame[frame["state"] == "COMPLETE"]
    assert len(complete) >= 1 and complete["miou"].isna().all()
    assert complete["supernet_miou"].between(0.0, 1.0).all()
    retrained = pd.read_csv(run_dir / "supernet" / "retrained.csv")  # the best point, trained stand-alone
    best = complete.sort_values(["supernet_miou", "number"], ascending=[False, True]).iloc[0]
    assert list(retrained["arch_hash"]) == [best["arch_hash"]] and retrained["miou"].between(0.0, 1.0).all()
    assert (run_dir / "supernet" / "retrained" / f"{best['arch_hash']}.safetensors").is_file()
    assert main(["report", str(run_dir)]) == 0
    ranked = pd.read_csv(run_dir / "report.csv")
    assert list(ranked["supernet_miou"]) == sorted(ranked["supernet_miou"], reverse=True)
    retrained_miou = ranked.set_index("arch_hash")["standalone_miou"]  # both rankings: the retrained point's too
    assert retrained_miou[best["arch_hash"]] == retrained["miou"][0] and retrained_miou.notna().sum() == 1
    markdown = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Supernet ranking against stand-alone training" in markdown and best["arch_hash"] in markdown
    assert main(["export", str(run_dir), "--out", str(tmp_path / "exported")]) == 0
    card = json.loads((tmp_path / "exported" / "card.json").read_text(), parse_constant=rejected)  # strict JSON
    assert card["trial"] == best["number"] and card["arch_hash"] == best["arch_hash"]
    assert card["miou"] is None and card["supernet_miou"] == pytest.approx(best["supernet_miou"])
    assert "supernet mIoU" in (tmp_path / "exported" / "card.md").read_text(encoding="utf-8")
    exported = load_weights_any_form(build(load_spec(tmp_path / "exported" / "arch.yaml"),
                                           num_classes=card["num_classes"]),
                                     tmp_path / "exported" / "model.safetensors").eval()
    subnet = deploy(load_weights(build(load_spec(tmp_path / "exported" / "arch.yaml"),
                                       num_classes=card["num_classes"]),
                                 run_dir / "weights" / f"trial_{best['number']}.safetensors")).eval()
    image = torch.rand(1, 3, 32, 64)
    with torch.no_grad():  # the package holds the trial's subnet, inherited weights and recalibrated statistics
        torch.testing.assert_close(exported(image), subnet(image), rtol=1e-4, atol=1e-5)


def rejected(constant):
    raise ValueError(f"{constant} is not JSON")


@pytest.mark.parametrize("changes, path", [
    ({"supernet": None}, "objectives[0].metric"),
    ({"objectives": [{"metric": "miou", "direction": "maximize"}]}, "objectives[0].metric"),
    ({"supernet": {"iterations": 0}}, "supernet.iterations"),
    ({"supernet": {"iterations": 2, "sampling": "greedy"}}, "supernet.sampling"),
    ({"supernet": {"iterations": 2, "retrain_top": -1}}, "supernet.retrain_top"),
])
def test_a_wrong_supernet_section_is_an_error_naming_its_key(tmp_path, changes, path):
    with pytest.raises(SpecError) as raised:
        load_study(study_file(tmp_path, **changes))
    assert raised.value.path == path


def test_the_report_gives_kendall_tau_between_the_supernet_and_stand_alone_rankings(tmp_path):
    (tmp_path / "supernet").mkdir()
    pd.DataFrame({"trial": [4, 1, 7, 2], "arch_hash": ["a", "b", "c", "d"], "supernet_miou": [0.3, 0.5, 0.4, 0.2],
                  "miou": [0.62, 0.60, 0.55, 0.50], "train_seconds": 1.0}).to_csv(tmp_path / RETRAINED, index=False)
    retrained = load_retrained(tmp_path)
    assert list(retrained["arch_hash"]) == ["b", "c", "a", "d"]  # the supernet's order
    assert list(retrained["standalone_rank"]) == [2, 3, 1, 4]
    section = "\n".join(retrained_section(retrained))
    assert "Kendall's tau between the two rankings: 0.33" in section  # 4 concordant, 2 discordant pairs of 6
    assert "over 4 points" in section
    assert "at least two" in agreement(retrained.head(1))
    assert load_retrained(tmp_path / "elsewhere") is None
