"""The one device rule that training and latency timing share: which names are devices, and which are here.

A name is checked where a setting is read (``check_device_name``), so that a file written on one
machine may describe a run on another; presence is checked before work starts (``present_device``):
a trial trained or timed on another device than the one asked for would be meaningless, so a missing
device is an error, never a quiet switch to the CPU.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from archsearch.errors import SpecError

if TYPE_CHECKING:  # a name is checked without torch (reading a study); presence needs it
    import torch

DEVICE_KINDS: tuple[str, ...] = ("cpu", "cuda", "mps")
_NAME = re.compile(r"(?P<kind>[a-z]+)(?::(?P<index>\d+))?")


def _written(kinds: tuple[str, ...]) -> str:
    names = {"cpu": ["'cpu'"], "cuda": ["'cuda'", "'cuda:N'"], "mps": ["'mps'"]}
    return ", ".join(name for kind in kinds for name in names[kind])


def check_device_name(value: Any, *, path: str = "device", kinds: tuple[str, ...] = DEVICE_KINDS) -> str:
    """``value`` if it names a device of one of ``kinds`` ('cpu', 'cuda', 'cuda:N', 'mps'); else SpecError."""
    allowed = _written(kinds)
    if not isinstance(value, str) or not value:
        raise SpecError("expected a device name", path=path, value=value, allowed=allowed)
    match = _NAME.fullmatch(value)
    kind = match["kind"] if match is not None else None
    if kind not in DEVICE_KINDS or (match["index"] is not None and kind != "cuda"):
        raise SpecError("not a known device", path=path, value=value, allowed=allowed)
    if kind not in kinds:
        raise SpecError(f"{kind} devices are not supported here", path=path, value=value, allowed=allowed)
    return value


def present_device(name: Any, *, path: str = "device", kinds: tuple[str, ...] = DEVICE_KINDS) -> "torch.device":
    """The torch device ``name`` names, or a SpecError if it is not a device of ``kinds`` or not on this machine."""
    import torch

    device = torch.device(check_device_name(name, path=path, kinds=kinds))
    if device.type == "cpu":
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise SpecError("an MPS device was asked for but torch.backends.mps.is_available() is False",
                            path=path, value=name, allowed=_present(kinds))
        return device
    if not torch.cuda.is_available():
        raise SpecError("a CUDA device was asked for but torch.cuda.is_available() is False", path=path,
                        value=name, allowed=_present(kinds))
    count = torch.cuda.device_count()
    index = 0 if device.index is None else device.index
    if index >= count:
        raise SpecError(f"only {count} CUDA device(s) are present", path=path, value=name,
                        allowed=_present(kinds))
    return torch.device("cuda", index)


def _present(kinds: tuple[str, ...]) -> str:
    """The devices of ``kinds`` this machine has, as they are written."""
    import torch

    names = ["'cpu'"]
    if "cuda" in kinds and torch.cuda.is_available() and torch.cuda.device_count():
        names += ["'cuda'"] + [f"'cuda:{index}'" for index in range(torch.cuda.device_count())]
    if "mps" in kinds and torch.backends.mps.is_available():
        names.append("'mps'")
    return ", ".join(names) + " on this machine"
