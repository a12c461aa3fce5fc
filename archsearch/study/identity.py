"""A study's identity: its name, its space, and the fingerprint (recipe) of the settings its trials are measured with.

The run directory's guard (``run.guard``) compares identities before a run starts; each trial
records its recipe (``search.lifecycle``). Both read it here, below either of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Mapping

from archsearch.study.config import StudyConfig

# Where and how fast a trial trains, not what it learns: processes of one study may differ in these.
SPEED_ONLY_TRAINING = ("num_threads", "adapt_threads", "device", "channels_last", "compile", "num_workers")


def plain(value: Any) -> Any:
    """JSON-able data with sorted string keys, lists for tuples, strings for paths."""
    if is_dataclass(value) and not isinstance(value, type):
        value = value.to_dict() if hasattr(value, "to_dict") else asdict(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in sorted(value.items(), key=lambda pair: str(pair[0]))}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:
        return "nan"
    return value


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class StudyIdentity:
    """What a run directory holds: a study (name, space) and the recipe its trials are measured with."""

    study: str
    space: str
    settings: dict[str, Any]

    @classmethod
    def of(cls, config: StudyConfig) -> "StudyIdentity":
        training = None if config.training is None else {  # None: a search on proxies trains nothing
            key: value for key, value in plain(config.training).items() if key not in SPEED_ONLY_TRAINING}
        settings = {
            "space": {"parameters": plain(config.space.parameters), "template": plain(config.space.template)},
            "fix": plain(config.fix),
            "dataset": plain(config.dataset),
            "augmentation": plain(config.augmentation),
            "input_size": plain(config.input_size),
            "training": training,
            "latency": plain(config.latency),
            "constraints": plain(config.constraints),
            "screening": plain(config.screening),
            "objectives": plain(config.objectives),
        }
        if config.supernet is not None:  # only then: the recipes of studies without one keep their fingerprints
            settings["supernet"] = plain(config.supernet)
        if config.placement is not None:  # the node that times (not how long a timing waits for it), likewise
            settings["placement"] = plain(config.placement.resources)
        return cls(study=config.name, space=config.space.name, settings=settings)

    @property
    def recipe(self) -> str:
        """The fingerprint of the settings: trials with equal recipes were measured alike."""
        return digest(self.settings)
