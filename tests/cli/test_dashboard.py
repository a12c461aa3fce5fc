"""`archsearch dashboard`: optuna-dashboard's HTTP API on a finished tiny run, and clean errors."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request

import pytest
import yaml

from archsearch.cli.dashboard import dashboard_server
from archsearch.cli.main import main
from tests.helpers.paths import FIXTURES


@pytest.fixture
def finished_run(tmp_path, monkeypatch):
    """A two-trial tiny study with a parameter-count constraint, run to the end."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shutil.copy(FIXTURES / "tiny_space.yaml", tmp_path / "tiny_space.yaml")
    study = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    study.update(trials=2, constraints={"params_deploy": {"max": 10**9}})
    study["training"]["iterations"] = 1
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    run_dir = tmp_path / "run"
    assert main(["run", str(tmp_path / "study.yaml"), "--out", str(run_dir)]) == 0
    return run_dir


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_dashboard_serves_the_runs_study_trials_constraints_and_attributes(finished_run):
    server = dashboard_server(finished_run, port=0)  # any free localhost port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        studies = get_json(f"{base}/api/studies")["study_summaries"]
        (study,) = [study for study in studies if study["study_name"] == "tiny_study"]
        trials = get_json(f"{base}/api/studies/{study['study_id']}")["trials"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert len(trials) == 2
    complete = [trial for trial in trials if trial["state"] == "Complete"]
    assert complete
    for trial in complete:
        attributes = {attribute["key"]: attribute["value"] for attribute in trial["user_attrs"]}
        assert {"arch_hash", "params_deploy", "macs", "seed", "miou"} <= set(attributes)
        assert len(trial["constraints"]) == 1 and trial["constraints"][0] < 0  # params_deploy under its bound


def test_missing_or_unreadable_run_directory_exits_2(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["dashboard", str(tmp_path / "empty")]) == 2
    assert "study.yaml" in capsys.readouterr().err
    (tmp_path / "empty" / "study.yaml").write_text("name: x\n")
    assert main(["dashboard", str(tmp_path / "empty")]) == 2
    error = capsys.readouterr().err
    assert "study.db" in error and len(error.strip().splitlines()) == 1
    (tmp_path / "empty" / "study.db").write_text("not a database")
    assert main(["dashboard", str(tmp_path / "empty")]) == 2
    assert "cannot open the run's storage" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("host", ["999.1.1.1", "no-such-host.invalid", "192.0.2.1"])  # 192.0.2.1: not this machine's
def test_a_host_it_cannot_listen_on_is_reported_under_host(tmp_path, capsys, host):
    import optuna

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "study.yaml").write_text("name: x\n")
    optuna.create_study(storage=f"sqlite:///{run_dir / 'study.db'}", study_name="x")
    assert main(["dashboard", str(run_dir), "--host", host, "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert f"--host: cannot listen on this address" in error and host in error and "--port" not in error, error


@pytest.mark.parametrize("port", ["70000", "-1", "65536", "99999999999999999999"])
def test_a_port_out_of_range_exits_2_naming_the_range(tmp_path, capsys, port):
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", str(tmp_path), "--port", port])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--port" in err and "0 to 65535" in err and "Traceback" not in err, err


def test_the_server_refuses_a_port_out_of_range_before_opening_the_storage(tmp_path):
    from archsearch.errors import SpecError

    with pytest.raises(SpecError, match="--port: .*0 to 65535"):
        dashboard_server(tmp_path / "missing", port=70000)
