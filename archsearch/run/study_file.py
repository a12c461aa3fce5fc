"""study.yaml: the study as run, written when a run starts and read back by report and export.

It is read through the study file's own sections (``study.config.parse_record``), so a
report or an export accepts every study that ``archsearch run`` accepts; the space and the
data it names need not be reachable from where the run directory is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archsearch.io import read_yaml
from archsearch.io import write_text_atomic
from archsearch.race.decision import RaceRules
from archsearch.study.config import RacingSeeds, parse_record

STUDY_FILE = "study.yaml"


@dataclass(frozen=True)
class StudyHeading:
    """What a report or an export needs from study.yaml: its name, what it optimises, its input size, its race."""

    name: str
    objectives: list[tuple[str, str]]
    input_size: tuple[int, int]
    race: RaceRules | None = None  # seeds raced (``seeds: {race: ...}``): its test, confidence and top k


def write_study_file(run_root: Path, raw: dict[str, Any]) -> None:
    write_text_atomic(Path(run_root) / STUDY_FILE, yaml.safe_dump(raw, sort_keys=False))


def load_study_heading(run_dir: Path) -> StudyHeading:
    path = Path(run_dir) / STUDY_FILE
    study = parse_record(read_yaml(path), source=str(path))
    return StudyHeading(name=study.name or Path(run_dir).name, objectives=study.objective_pairs(),
                        input_size=study.input_size,
                        race=study.seeds.race.rules() if isinstance(study.seeds, RacingSeeds) else None)
