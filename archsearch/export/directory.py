"""Atomic directories: a reader sees the whole old directory or the whole new one, never a half-written one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from archsearch.errors import SpecError

Filled = TypeVar("Filled")


def write_directory_atomic(target: Path, fill: Callable[[Path], Filled], *, force: bool = False) -> Filled:
    """Call ``fill`` on an empty temporary directory beside ``target``, rename it to ``target``; return what fill did.

    If ``fill`` raises (or the process is interrupted) the temporary directory is removed and
    ``target`` is as it was. An existing ``target`` is an error unless ``force``; then it is
    renamed aside, the new directory renamed in, and only then the old one deleted.
    """
    target = Path(target)
    if target.exists() and not force:
        raise SpecError("the export directory already exists", source="--out", value=str(target),
                        allowed="a new directory, or --force to replace it")
    if target.exists() and not target.is_dir():
        raise SpecError("exists and is not a directory", source="--out", value=str(target),
                        allowed="a directory path")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        filled = fill(staging)
        _make_shareable(staging)
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return filled


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rename(target, retired / target.name)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(retired / target.name, target)
        shutil.rmtree(retired, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _make_shareable(folder: Path) -> None:
    """Temporary files and directories are private (0600/0700); an export is meant to be read by others."""
    os.chmod(folder, 0o755)
    for path in folder.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
