"""The supernet's shared tensors: one per share key and entry, at the largest shape any point asks for.

A point's entry is the tensor's top-left slice: its first output channels (dim 0) and first
input channels (dim 1); kernels and other trailing dimensions are part of the key, so a 1x1
and a 3x3 choice at one place are two tensors, never a crop of one another. Slices are views,
so a subnet's gradients and BatchNorm statistics land in the shared tensors.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def entry_key(share_key: str, entry: str, shape: torch.Size) -> str:
    """The name of a shared tensor: share key, entry name, and the kernel size for tensors that have one."""
    kernel = "x".join(str(size) for size in shape[2:])
    return f"{share_key}/{entry}" + (f"@{kernel}" if kernel else "")


def top_left(tensor: Tensor, shape: torch.Size) -> Tensor:
    """The slice of ``tensor`` of ``shape``: the first entries of dims 0 and 1, the rest whole."""
    if tensor.dim() == 0 or tensor.shape == shape:
        return tensor
    return tensor[tuple(slice(0, size) for size in shape[:2])]


class SharedWeights(nn.Module):
    """Parameters and buffers by entry key, grown to the largest shape registered for each."""

    def __init__(self) -> None:
        super().__init__()
        self.roles: dict[str, str] = {}
        self.exempt: dict[str, frozenset[str]] = {}
        """The weight-decay exemption rules (``weight_decay_exempt``) that exempt each entry."""

    def tensor(self, key: str) -> Tensor:
        return self._parameters[key] if key in self._parameters else self._buffers[key]

    def shapes(self) -> dict[str, tuple[list[int], str, bool, list[str]]]:
        """Every entry's shape, role, whether it is a parameter and its decay exemptions: what a checkpoint needs to
        rebuild the store."""
        return {key: (list(self.tensor(key).shape), role, key in self._parameters, sorted(self.exempt[key]))
                for key, role in self.roles.items()}

    def ensure(self, key: str, shape: torch.Size, role: str, *, parameter: bool, dtype: torch.dtype,
               device: torch.device | None = None, decay_exempt: frozenset[str] = frozenset()) -> bool:
        """Make the entry hold at least ``shape``; True when a tensor was added or replaced by a larger one."""
        if key in self.roles:
            current = self.tensor(key)
            if current.dim() != len(shape) or tuple(current.shape[2:]) != tuple(shape[2:]):
                raise ValueError(f"entry {key!r} has shape {tuple(current.shape)}, asked for {tuple(shape)}")
            wanted = torch.Size([max(old, new) for old, new in zip(current.shape, shape)])
            if wanted == current.shape:
                return False
        else:
            current, wanted = None, torch.Size(shape)
        device = current.device if current is not None else device
        fresh = initial_tensor(wanted, role, dtype=dtype if current is None else current.dtype, device=device)
        if current is not None:
            with torch.no_grad():
                top_left(fresh, current.shape).copy_(current)
        self.roles[key] = role
        self.exempt[key] = decay_exempt
        if parameter:
            self._parameters[key] = nn.Parameter(fresh)
        else:
            self._buffers[key] = fresh
        return True

    def rebuild(self, shapes: dict[str, tuple[list[int], str, bool, list[str]]]) -> None:
        """Make every entry of ``shapes`` (from :meth:`shapes`) at its saved shape, before loading saved values."""
        for key, (shape, role, parameter, exempt) in shapes.items():
            self.ensure(key, torch.Size(shape), role, parameter=parameter, dtype=torch.float32,
                        decay_exempt=frozenset(exempt))


def role_of(owner: nn.Module, entry: str, tensor: Tensor) -> str:
    """How an entry starts: as a norm's scale or shift, a running statistic, a kernel, or a bias."""
    leaf = entry.rsplit(":", 1)[-1]
    if isinstance(owner, NORM_TYPES):
        return {"weight": "ones", "bias": "zeros", "running_mean": "zeros", "running_var": "ones",
                "num_batches_tracked": "count"}[leaf]
    if tensor.dim() >= 2:
        return "kernel"
    if leaf == "bias":
        return "zeros"
    raise TypeError(f"the supernet cannot share {entry!r} of {type(owner).__name__}: no rule initializes it")


def initial_tensor(shape: torch.Size, role: str, *, dtype: torch.dtype, device: torch.device | None) -> Tensor:
    """A new entry: kernels as torch initializes a conv (Kaiming uniform, a = sqrt(5)), norms at identity."""
    if role == "count":
        return torch.zeros(shape, dtype=torch.int64, device=device)
    tensor = torch.empty(shape, dtype=dtype, device=device)
    if role == "kernel":
        nn.init.kaiming_uniform_(tensor, a=math.sqrt(5))
    elif role == "ones":
        nn.init.ones_(tensor)
    else:
        nn.init.zeros_(tensor)
    return tensor
