"""Atomic file writes (a reader never sees a half-written spec, weights file or table) and YAML reading.

Torch is imported only to write weights, so that reading a file does not cost its import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import yaml

from archsearch.errors import SpecError

if TYPE_CHECKING:
    from torch import Tensor


def read_yaml(path: Path) -> Any:
    """Read a YAML file; a missing or malformed file is a SpecError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", source=str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise SpecError(f"cannot read file: {error.__class__.__name__}", source=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"not valid YAML{where}: {getattr(error, 'problem', error)}", source=str(path)) from None


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_state_dict(path: Path, state_dict: Mapping[str, Tensor]) -> None:
    """``.safetensors`` via safetensors (contiguous copies), anything else via torch.save."""
    tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import save_file
        write_atomic(path, lambda temporary: save_file(tensors, str(temporary)))
    else:
        import torch
        write_atomic(path, lambda temporary: torch.save(tensors, temporary))
