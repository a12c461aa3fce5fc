"""Atomic file writes: a reader never sees a half-written spec, weights file or table."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import Tensor


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
        write_atomic(path, lambda temporary: torch.save(tensors, temporary))
