"""A run directory guards its study: which study it holds, with which recipe, and that its storage agrees.

``fingerprint.yaml`` records the study's name and space, every setting that changes what a trial
measures (the space's parameters and template, fixed values, data, augmentation, input size,
training, latency, constraints, objectives) and a fingerprint of them. Before a run starts:

- another study's directory (a different name or space) is refused: nothing of it is touched;
- changed settings are refused, naming each difference, unless the continuation is deliberate
  (``allow_changed``); then the new recipe is added to the file, and each trial records the
  fingerprint of the recipe it was trained with (the ``recipe`` column of trials.csv);
- the storage is read (read-only) and compared with the directory: trials the directory has
  rows or weights for must be in the storage, and trial 0 must be the one recorded, so an emptied,
  replaced or foreign storage is refused before Optuna would create a fresh study over it;
- the study in a storage belongs to one run directory: the fingerprint holds a random ``run_id``
  and the study a user attribute (``run_directory``: that id and the directory's path), so a storage
  named explicitly for another ``--out`` is refused rather than shared by two run directories;
- a run directory whose fingerprint is gone while its storage holds trials is not taken for a new
  one: the fingerprint is rebuilt only when the settings are those the storage's last trial records
  (its ``recipe``), so deleting the file does not disable the settings check (a run made before
  fingerprints and recipes has none to compare, and is adopted with the settings it is resumed with).
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from archsearch.errors import SpecError
from archsearch.io import read_yaml, write_text_atomic
from archsearch.run.attributes import RECIPE, STUDY_RUN_DIRECTORY
from archsearch.run.study_file import STUDY_FILE
from archsearch.study.config import StudyConfig
from archsearch.study.identity import StudyIdentity, digest
from archsearch.storage_url import hide_secret, masked

FINGERPRINT_FILE = "fingerprint.yaml"
ALLOW_FLAG = "--allow-changed-settings"
LISTED_DIFFERENCES = 12


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """``key.path: old -> new`` for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            here = f"{path}.{key}" if path else key
            found += differences(old.get(key, "(absent)"), new.get(key, "(absent)"), here)
        return found
    if old == new:
        return []
    return [f"{path}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- the storage, read without writing


@dataclass(frozen=True)
class StorageView:
    """What the storage holds of one study: its trial count, trial 0's start (None when there is none), the run
    directory it belongs to (``{id, path}``, None before one is recorded) and its last trial's recipe."""

    trials: int
    first_started: str | None
    owner: dict[str, str] | None = None
    last_recipe: str | None = None


def read_storage(url: str, study_name: str) -> StorageView:
    """Count the study's trials with plain read-only SQL (Optuna's schema), creating and changing nothing."""
    if url.startswith("sqlite"):
        return _read_sqlite(url, study_name)
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table("studies"):
                return StorageView(0, None)
            rows, owner, recipes = (connection.execute(sqlalchemy.text(query), {"name": study_name}).fetchall()
                                    for query in _QUERIES)
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = hide_secret(" ".join(str(error).split()), url)[:300]
        raise SpecError(f"cannot read the study's storage: {reason}", path="storage", value=masked(url)) from None
    finally:
        engine.dispose()
    return _view(rows, owner, recipes)


_QUERIES = (
    "SELECT t.number, t.datetime_start FROM trials t JOIN studies s ON t.study_id = s.study_id "
    "WHERE s.study_name = :name ORDER BY t.number",
    "SELECT a.value_json FROM study_user_attributes a JOIN studies s ON a.study_id = s.study_id "
    f"WHERE s.study_name = :name AND a.key = '{STUDY_RUN_DIRECTORY}'",
    "SELECT a.value_json FROM trial_user_attributes a JOIN trials t ON a.trial_id = t.trial_id "
    f"JOIN studies s ON t.study_id = s.study_id WHERE s.study_name = :name AND a.key = '{RECIPE}' "
    "ORDER BY t.number",
)


def _read_sqlite(url: str, study_name: str) -> StorageView:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or not Path(database).is_file() or Path(database).stat().st_size == 0:
        return StorageView(0, None)
    try:
        connection = sqlite3.connect(f"file:{Path(database).resolve()}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as error:
        raise SpecError(f"cannot read the study's storage: {error}", path="storage", value=masked(url)) from None
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"studies", "trials"} <= tables:
            return StorageView(0, None)
        rows, owner, recipes = (connection.execute(query.replace(":name", "?"), (study_name,)).fetchall()
                                for query in _QUERIES)
    except sqlite3.Error as error:  # not a database, or a damaged one
        raise SpecError(f"cannot read the study's storage: {error}", path="storage", value=masked(url)) from None
    finally:
        connection.close()
    return _view(rows, owner, recipes)


def _view(rows: list, owner: list, recipes: list) -> StorageView:
    first = next((str(started) for number, started in rows if number == 0 and started is not None), None)
    owned = json.loads(owner[0][0]) if owner else None
    return StorageView(trials=len(rows), first_started=first, owner=owned if isinstance(owned, dict) else None,
                       last_recipe=json.loads(recipes[-1][0]) if recipes else None)


# ---------------------------------------------------------------- the run directory's own record


def recorded_trial_numbers(root: Path) -> set[int]:
    """Trials the directory holds something of: rows of trials.csv and weights files."""
    numbers = {int(match.group(1)) for path in (root / "weights").glob("trial_*.safetensors")
               if (match := re.fullmatch(r"trial_(\d+)\.safetensors", path.name))}
    table = root / "trials.csv"
    if table.is_file():
        lines = table.read_text(encoding="utf-8", errors="replace").splitlines()[1:]
        numbers |= {int(line.split(",", 1)[0]) for line in lines if line.split(",", 1)[0].isdigit()}
    return numbers


def read_record(root: Path) -> dict[str, Any] | None:
    path = root / FINGERPRINT_FILE
    if not path.is_file():
        return None
    data = read_yaml(path)
    if not (isinstance(data, dict) and isinstance(data.get("recipes"), list) and data["recipes"]
            and all(isinstance(recipe, dict) for recipe in data["recipes"])):
        raise SpecError("not a run directory's fingerprint file", source=str(path),
                        allowed="the file `archsearch run` writes (or remove the run directory)")
    return data


def run_directory_owner(root: Path) -> dict[str, str] | None:
    """What the storage's study records of the run directory it belongs to: the fingerprint's ``run_id`` and the
    directory's path (None for a directory without a fingerprint)."""
    record = read_record(root)
    if record is None or not record.get("run_id"):
        return None
    return {"id": str(record["run_id"]), "path": str(Path(root).resolve())}


def legacy_study(root: Path) -> tuple[str, str] | None:
    """(name, space file) of a run directory made before fingerprints, from its study.yaml."""
    path = root / STUDY_FILE
    if not path.is_file():
        return None
    data = read_yaml(path)
    if not isinstance(data, dict):
        return None
    return str(data.get("name", "")), str(data.get("space", ""))


# ---------------------------------------------------------------- the check


def _part_of_a_starting_run(entry: Path) -> bool:
    """What a run that is starting in the directory (another process of the study) has made before its
    fingerprint: the layout's folders, the locks and atomic writes' temporaries."""
    return entry.name in ("specs", "weights") or entry.name.startswith(".") and entry.name.endswith((".lock", ".tmp"))


def check_run_directory_target(root: Path, *, flag: str) -> None:
    """A run writes only into a new or empty folder, or into a run directory (one with a fingerprint or a
    study.yaml); a folder of other files (a user's own trials.csv, say) is refused before anything is written."""
    root = Path(root)
    if not root.is_dir() or (root / FINGERPRINT_FILE).is_file() or (root / STUDY_FILE).is_file():
        return
    strangers = sorted(entry.name for entry in root.iterdir() if not _part_of_a_starting_run(entry))
    if strangers:
        listed = ", ".join(strangers[:5]) + (" ..." if len(strangers) > 5 else "")
        raise SpecError(f"not a run directory (no {FINGERPRINT_FILE} or {STUDY_FILE}), and it holds other files: "
                        f"{listed}", source=flag, value=str(root),
                        allowed="a new or empty folder, or a run directory `archsearch run` made (nothing was changed)")


@dataclass(frozen=True)
class GuardDecision:
    """What ``check_run_directory`` found; ``record`` writes it once the run may go on."""

    root: Path
    identity: StudyIdentity
    record_data: dict[str, Any]  # as written: the storage's URL masked
    changed: list[str]
    storage_url: str  # the URL to connect with (its password, if any, only in memory)

    @property
    def recipe(self) -> str:
        return self.identity.recipe

    def record(self) -> None:
        """Write the fingerprint. Under the run directory's lock, keeping the ``run_id`` a process of the study
        that started beside this one wrote first, so that both name the one study in the storage alike."""
        from archsearch.run.directory import RunDirectory

        with RunDirectory(self.root).lock("fingerprint"):
            written = read_record(self.root) if (self.root / FINGERPRINT_FILE).is_file() else None
            if written is not None and written.get("run_id"):
                self.record_data["run_id"] = written["run_id"]
            write_text_atomic(self.root / FINGERPRINT_FILE, yaml.safe_dump(self.record_data, sort_keys=False))

    def record_first_trial(self) -> None:
        """After a run: the start of the storage's trial 0, by which a later start knows this storage again."""
        if self.record_data["first_trial_started"] is None:
            view = read_storage(self.storage_url, self.identity.study)
            if view.first_started is not None:
                self.record_data["first_trial_started"] = view.first_started
                self.record()


def check_run_directory(config: StudyConfig, root: Path, storage_url: str, *,
                        allow_changed: bool = False) -> GuardDecision:
    """Everything the run directory and the storage say against this run; raises SpecError (changing nothing)
    when the run would overwrite another study, mix recipes unasked, or build over a storage that lost trials."""
    root = Path(root)
    identity = StudyIdentity.of(config)
    record = read_record(root) if root.is_dir() else None
    where = f"run directory {root}"
    if record is not None:
        _check_same_study(record.get("study"), record.get("space"), identity, where)
    elif root.is_dir() and (legacy := legacy_study(root)) is not None and legacy[0] != identity.study:
        _check_same_study(legacy[0], None, identity, where)
    view = read_storage(storage_url, config.name)
    _check_storage(root, record, view, storage_url, where)
    run_id = _check_owner(root, record, view, storage_url, where)

    recipes = list(record["recipes"]) if record is not None else []
    current = recipes[-1] if recipes else None
    changed = differences(current["settings"], identity.settings) if current is not None else []
    if record is None and view.trials:
        changed = _rebuilt_changes(view, identity, where, allow_changed, config.source)
    if changed and not allow_changed:
        listed = changed[:LISTED_DIFFERENCES] + ([f"... {len(changed) - LISTED_DIFFERENCES} more"]
                                                 if len(changed) > LISTED_DIFFERENCES else [])
        raise SpecError(f"{where} holds trials measured with other settings: {'; '.join(listed)}",
                        allowed=f"the settings it was run with, another --out, or {ALLOW_FLAG} to continue with "
                                "these (each trial records its recipe in trials.csv)", source=config.source)
    if current is None or current["recipe"] != identity.recipe:
        recipes.append({"recipe": identity.recipe, "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "settings": identity.settings})
    data = {"study": identity.study, "space": identity.space, "run_id": run_id, "fingerprint": digest([identity.study, identity.space,
                                                                                     identity.recipe]),
            "recipe": identity.recipe, "storage": masked(storage_url),
            "first_trial_started": (record or {}).get("first_trial_started") or view.first_started,
            "recipes": recipes}
    return GuardDecision(root=root, identity=identity, record_data=data, changed=changed, storage_url=storage_url)


def _check_same_study(study: Any, space: Any, identity: StudyIdentity, where: str) -> None:
    if study != identity.study or (space is not None and space != identity.space):
        held = f"study {study!r}" + (f" (space {space!r})" if space is not None else "")
        raise SpecError(f"{where} belongs to another study: it holds {held}, this is study {identity.study!r} "
                        f"(space {identity.space!r})", allowed="another --out (nothing of it was changed)")


def _check_storage(root: Path, record: dict[str, Any] | None, view: StorageView, url: str, where: str) -> None:
    numbers = recorded_trial_numbers(root) if root.is_dir() else set()
    beyond = sorted(number for number in numbers if number >= view.trials)
    if beyond:
        listed = ", ".join(map(str, beyond[:10])) + (" ..." if len(beyond) > 10 else "")
        raise SpecError(f"{where} has rows or weights of trials {listed}, but its storage holds "
                        f"{view.trials} trial{'s' * (view.trials != 1)} of the study (emptied or replaced?)",
                        path="storage", value=masked(url),
                        allowed="the storage this run directory was made with, or another --out "
                                "(nothing was changed)")
    recorded_first = (record or {}).get("first_trial_started")
    if recorded_first and view.first_started and recorded_first != view.first_started:
        raise SpecError(f"{where} was made with another storage: its trial 0 started at {recorded_first}, the "
                        f"storage's at {view.first_started}", path="storage", value=masked(url),
                        allowed="the storage this run directory was made with, or another --out "
                                "(nothing was changed)")


def foreign_study(owner: dict[str, Any], where: str, url: str) -> SpecError:
    """The error for a storage whose study belongs to another run directory (``owner``: its ``{id, path}``)."""
    return SpecError(f"the storage's study belongs to the run directory {owner.get('path')}, not to {where}",
                     path="storage", value=url, allowed="the storage this run directory was made with, or none "
                                                        "(a study.db of its own); nothing was changed")


def _check_owner(root: Path, record: dict[str, Any] | None, view: StorageView, url: str, where: str) -> str:
    """The run directory's id, once the storage's study is known to be its own (or no run directory's yet)."""
    mine = (record or {}).get("run_id")
    owner = view.owner
    if owner is not None:
        if owner.get("id") == mine or (mine is None and owner.get("path") == str(root.resolve())):
            return str(owner["id"])
        raise foreign_study(owner, where, url)
    if record is None and view.trials and not recorded_trial_numbers(root):
        raise SpecError(f"the storage holds {view.trials} trial{'s' * (view.trials != 1)} of the study, and "
                        f"{where} holds nothing of them (another run's storage?)", path="storage", value=url,
                        allowed="the storage of this run directory, or a storage without this study; "
                                "nothing was changed")
    return str(mine or uuid.uuid4().hex)


def _rebuilt_changes(view: StorageView, identity: StudyIdentity, where: str, allow_changed: bool,
                     source: str) -> list[str]:
    """A run directory without its fingerprint (deleted) whose storage holds trials: its fingerprint is rebuilt
    only for the settings of the storage's last trial (its recipe), else refused unless ``allow_changed``. A run
    made before fingerprints (its trials record no recipe, its study no run directory) has nothing to compare
    with: its fingerprint is made from these settings, as when it was first guarded."""
    if view.last_recipe == identity.recipe or (view.last_recipe is None and view.owner is None):
        return []
    measured = f"recipe {view.last_recipe}" if view.last_recipe else "settings it did not record"
    if not allow_changed:
        raise SpecError(f"{where} has no {FINGERPRINT_FILE} (deleted?), and its storage's trials were measured "
                        f"with other settings ({measured}; these settings are recipe {identity.recipe})",
                        allowed=f"the settings its trials were measured with (the fingerprint is then rebuilt), "
                                f"another --out, or {ALLOW_FLAG} to continue with these", source=source)
    return [f"recipe: {view.last_recipe or '(not recorded)'} -> {identity.recipe}"]
