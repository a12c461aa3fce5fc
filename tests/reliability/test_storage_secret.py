"""A storage URL's password is never written to the run directory nor printed: files and messages show
``user:***@``, and the secret comes at run time from the study, ``--set storage=``, ARCHSEARCH_STORAGE or
libpq's own environment (PGPASSWORD, .pgpass)."""

from __future__ import annotations

import pytest
import yaml

from archsearch.cli.dashboard import dashboard_server
from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.storage_url import ENVIRONMENT_VARIABLE, connection_url, masked
from tests.helpers.postgres import new_database, postgres_server
from tests.helpers.processes import write_study

SECRET = "S3cretPass"
UNREACHABLE = f"postgresql://alice:{SECRET}@127.0.0.1:1/db"  # port 1: nothing listens there


@pytest.fixture(autouse=True)
def no_secrets_around(monkeypatch, tmp_path):
    """No password reaches a test from the machine's environment or the user's ~/.pgpass."""
    for name in (ENVIRONMENT_VARIABLE, "PGPASSWORD", "PGPASSFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def refused(capsys, arguments: list[str]) -> str:
    capsys.readouterr()
    status = main(arguments)
    captured = capsys.readouterr()
    assert status == 2 and "Traceback" not in captured.err, captured.err
    assert SECRET not in captured.err + captured.out
    return captured.err


@pytest.mark.parametrize(("url", "shown"), [
    (UNREACHABLE, "alice:***@127.0.0.1:1/db"),                     # the server is not there
    (f"nosuchdriver://alice:{SECRET}@host/db", "alice:***@host/db"),  # an unknown driver
    (f"alice:{SECRET}@host/db", "alice:***@host/db"),               # not a URL at all
])
def test_run_errors_show_the_storage_masked(tiny_study, capsys, url, shown):
    err = refused(capsys, ["run", str(tiny_study), "--out", str(tiny_study.parent / "run"), "--trials", "1",
                           "--set", f"storage={url}"])
    assert shown in err and "storage" in err


def test_dashboard_on_a_server_that_is_down_shows_the_storage_masked(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "study.yaml").write_text(yaml.safe_dump({"name": "x", "space": "s.yaml", "storage": UNREACHABLE}))
    err = refused(capsys, ["dashboard", str(run_dir)])
    assert "cannot open the run's storage" in err and "alice:***@127.0.0.1:1/db" in err


def test_a_masked_url_without_its_secret_says_where_to_give_it(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "study.yaml").write_text(yaml.safe_dump({"name": "x", "space": "s.yaml",
                                                        "storage": masked(UNREACHABLE)}))
    err = refused(capsys, ["dashboard", str(run_dir)])
    assert "password" in err and ENVIRONMENT_VARIABLE in err and "--set storage=" in err


def test_the_secret_comes_from_the_environment_for_the_same_storage_only(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, UNREACHABLE)
    assert connection_url(masked(UNREACHABLE)) == UNREACHABLE
    assert connection_url("postgresql://alice@127.0.0.1:1/db") == UNREACHABLE  # no password written: the secret's
    assert connection_url(f"postgresql://alice:other@127.0.0.1:1/db") == "postgresql://alice:other@127.0.0.1:1/db"
    with pytest.raises(SpecError, match="names another storage") as raised:
        connection_url("postgresql://alice:***@127.0.0.1:1/other")
    assert SECRET not in str(raised.value) and "alice:***@127.0.0.1:1/db" in str(raised.value)


def test_a_masked_url_falls_back_on_libpq_when_it_has_a_password(monkeypatch, tmp_path):
    with pytest.raises(SpecError, match=ENVIRONMENT_VARIABLE):
        connection_url(masked(UNREACHABLE))
    monkeypatch.setenv("PGPASSWORD", SECRET)
    assert connection_url(masked(UNREACHABLE)) == "postgresql://alice@127.0.0.1:1/db"
    monkeypatch.delenv("PGPASSWORD")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".pgpass").write_text(f"127.0.0.1:1:db:alice:{SECRET}\n")
    assert connection_url(masked(UNREACHABLE)) == "postgresql://alice@127.0.0.1:1/db"


def test_urls_without_a_secret_are_kept_as_written():
    for url in ("sqlite:////tmp/x.db", "postgresql://alice@host/db", "postgresql://postgres:@/x?host=/tmp/a"):
        assert masked(url) == url and connection_url(url) == url


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


def test_run_directory_files_hold_the_url_masked_and_a_resume_reads_the_secret(postgres, tiny_study, capsys,
                                                                                no_training, monkeypatch):
    plain = new_database(postgres)  # postgresql://postgres:@/NAME?host=SOCKET_DIR (the server trusts local users)
    with_secret = plain.replace("postgres:@", f"postgres:{SECRET}@")
    run_dir = tiny_study.parent / "run"
    arguments = ["run", str(tiny_study), "--out", str(run_dir), "--trials", "1"]
    assert main([*arguments, "--set", f"storage={with_secret}"]) == 0
    output = capsys.readouterr()
    assert SECRET not in output.out + output.err
    for name in ("study.yaml", "fingerprint.yaml"):
        text = (run_dir / name).read_text()
        assert SECRET not in text and "postgres:***@" in text, name
    stored = yaml.safe_load((run_dir / "study.yaml").read_text())["storage"]

    write_study(tiny_study, storage=stored)  # a study that names the storage as the run directory shows it
    err = refused(capsys, [*arguments[:-1], "2"])
    assert "password" in err and ENVIRONMENT_VARIABLE in err and not (run_dir / "weights" / "trial_1.safetensors").exists()
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, with_secret)
    assert main([*arguments[:-1], "2"]) == 0
    output = capsys.readouterr()
    assert SECRET not in output.out + output.err and "2 of 2 trials finished" in output.err
    assert SECRET not in (run_dir / "fingerprint.yaml").read_text()

    missing = plain.replace(plain.split("?")[0].rsplit("/", 1)[1], "nosuchdatabase")
    err = refused(capsys, [*arguments, "--out", str(tiny_study.parent / "other"),
                           "--set", f"storage={missing.replace('postgres:@', f'postgres:{SECRET}@')}"])
    assert "postgres:***@" in err and "nosuchdatabase" in err


def test_a_dry_run_prints_the_storage_masked(tiny_study, capsys):
    capsys.readouterr()
    assert main(["run", str(tiny_study), "--dry-run", "--set", f"storage={UNREACHABLE}"]) == 0
    output = capsys.readouterr()
    assert SECRET not in output.out + output.err and "alice:***@127.0.0.1:1/db" in output.out


def test_a_drivers_message_loses_the_password_wherever_it_appears():
    from archsearch.storage_url import hide_secret

    message = f'connection to "127.0.0.1" failed for {UNREACHABLE}: password "{SECRET}" rejected'
    assert hide_secret(message, UNREACHABLE) == ('connection to "127.0.0.1" failed for '
                                                 'postgresql://alice:***@127.0.0.1:1/db: password "***" rejected')
    assert hide_secret("postgresql://bob:ab@host/db failed at a port", "postgresql://bob:ab@host/db") == \
        "postgresql://bob:***@host/db failed at a port"  # a short password is masked in the URL only
