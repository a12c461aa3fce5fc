"""Named networks: one YAML file each in this folder, nothing else decides what a name means."""

from __future__ import annotations

import fnmatch
from importlib import resources
from pathlib import Path

from archsearch.errors import SpecError


def _folder() -> Path:
    return Path(str(resources.files("archsearch.arch.presets")))


def preset_names(pattern: str | None = None) -> list[str]:
    """Preset names, optionally filtered by a shell-style pattern (``rdrnet-*``)."""
    names = sorted(path.stem for path in _folder().glob("*.yaml"))
    if pattern is None:
        return names
    if not any(char in pattern for char in "*?["):
        pattern = f"*{pattern}*"
    return [name for name in names if fnmatch.fnmatch(name, pattern)]


def preset_path(name: str) -> Path:
    path = _folder() / f"{name}.yaml"
    if not path.is_file():
        raise SpecError("unknown preset", value=name, allowed=", ".join(preset_names()))
    return path
