"""Atomic export directories: a reader sees the whole old directory or the whole new one, never a half-written one.

Each directory written here holds a marker file (EXPORT_MARKER), and ``--force`` replaces only a directory
that holds one: never a run directory, a folder above it, or a folder someone else made.
"""

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
EXPORT_MARKER = ".archsearch-export"
MARKER_TEXT = "written by `archsearch export`; `archsearch export --force` may replace this directory\n"


def check_export_target(target: Path, *, force: bool = False, run_dir: Path | None = None) -> None:
    """Refuse, before any work, a target that exists (unless ``force`` and it is an earlier export), is a file,
    or cannot be written; never one that is ``run_dir`` or holds it."""
    target = Path(target)
    if target.exists() and not force:
        raise SpecError("the export directory already exists", source="--out", value=str(target),
                        allowed="a new directory, or --force to replace it")
    check_output_directory(target, flag="--out")
    if not target.exists():
        return
    if run_dir is not None and _holds(target, Path(run_dir)):
        raise SpecError("--force will not delete this directory: it holds the run directory being exported", source="--out",
                        value=str(target), allowed="a new directory, or an earlier export to replace")
    if not (target / EXPORT_MARKER).is_file():
        raise SpecError(f"--force will not delete this directory: it is not an export directory (it has no "
                        f"{EXPORT_MARKER} file)", source="--out", value=str(target),
                        allowed="a new directory, or a directory an earlier `archsearch export` wrote")


def _holds(folder: Path, inner: Path) -> bool:
    folder, inner = folder.resolve(), inner.resolve()
    return folder == inner or folder in inner.parents


def write_directory_atomic(target: Path, fill: Callable[[Path], Filled], *, force: bool = False) -> Filled:
    """Call ``fill`` on an empty temporary directory beside ``target``, rename it to ``target``; return what fill did.

    If ``fill`` raises (or the process is interrupted) the temporary directory is removed and
    ``target`` is as it was. An existing ``target`` is an error unless ``force`` and it holds the marker of an
    earlier export; then it is renamed aside, the new directory renamed in, and only then the old one deleted.
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
        (staging / EXPORT_MARKER).write_text(MARKER_TEXT, encoding="utf-8")
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
