"""Atomic directories: a reader sees the whole old directory or the whole new one, never a half-written one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from archsearch.errors import SpecError
from archsearch.io import check_output_directory, make_directories, output_error, shareable_mode

Filled = TypeVar("Filled")


def check_export_target(target: Path, *, force: bool = False) -> None:
    """Refuse, before any work, a target that exists (unless ``force``), is a file, or cannot be written."""
    target = Path(target)
    if target.exists() and not force:
        raise SpecError("the export directory already exists", source="--out", value=str(target),
                        allowed="a new directory, or --force to replace it")
    check_output_directory(target, flag="--out")


def write_directory_atomic(target: Path, fill: Callable[[Path], Filled], *, force: bool = False) -> Filled:
    """Call ``fill`` on an empty temporary directory beside ``target``, rename it to ``target``; return what fill did.

    If ``fill`` raises (or the process is interrupted) the temporary directory is removed and
    ``target`` is as it was. An existing ``target`` is an error unless ``force``; then it is
    renamed aside, the new directory renamed in, and only then the old one deleted.
    """
    target = Path(target)
    check_export_target(target, force=force)
    make_directories(target.parent)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as error:
        raise output_error(target, error) from None
    try:
        filled = fill(staging)
        _make_shareable(staging)
        _swap_in(staging, target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise output_error(target, error) from None
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
    """Temporary directories are private (0700); an export gets the modes the umask gives, as files made
    in place would."""
    os.chmod(folder, shareable_mode(directory=True))
    for path in folder.rglob("*"):
        os.chmod(path, shareable_mode(directory=path.is_dir()))
