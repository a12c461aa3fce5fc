"""Peak inference memory of a network's deploy form: batch 1, one forward pass, in MB (10**6 bytes).

What an edge deployment budgets: the weights, the input and the activations alive at the worst
moment of a forward pass. On CUDA it is measured by the caching allocator's own peak
(``torch.cuda.max_memory_allocated`` over the pass, weights and input included). On the CPU, where
PyTorch keeps no such counter, every tensor the pass creates is counted while it is alive: a
``TorchDispatchMode`` adds the bytes of each new storage an operator returns and a finalizer takes
them off when its tensor is freed, so the peak is that of the tensors themselves (exact for what
PyTorch allocates; the allocator's own slack and a backend's scratch space are not seen).
"""

from __future__ import annotations

import weakref
from itertools import chain

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from archsearch.arch.build import build
from archsearch.arch.deploy import deploy
from archsearch.arch.spec import ArchSpec

BYTES_PER_MB = 10**6


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of the tensors operators created and that are still alive, and their peak."""

    def __init__(self, baseline: int) -> None:
        super().__init__()
        self.live = baseline
        self.peak = baseline
        self._counted: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(output):
            if isinstance(tensor, torch.Tensor):
                self._count(tensor)
        return output

    def _count(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        address = storage.data_ptr()
        if address == 0 or address in self._counted:  # empty, or a view or in-place result of a counted one
            return
        size = storage.nbytes()
        self._counted.add(address)
        self.live += size
        self.peak = max(self.peak, self.live)
        weakref.finalize(tensor, self._free, address, size)

    def _free(self, address: int, size: int) -> None:
        self._counted.discard(address)
        self.live -= size


def _bytes(tensors) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def peak_inference_mb(spec: ArchSpec, input_size: tuple[int, int], *, num_classes: int,
                      device: str = "cpu") -> float:
    """The deploy form's peak memory for one image of ``input_size`` (fp32), measured on ``device``."""
    model = deploy(build(spec, num_classes=num_classes)).eval().to(device)
    weights = _bytes(chain(model.parameters(), model.buffers()))
    with torch.no_grad():
        image = torch.zeros(1, spec.in_channels, *input_size, device=device)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device) - weights - _bytes([image])
            model(image)
            torch.cuda.synchronize(device)
            return (torch.cuda.max_memory_allocated(device) - before) / BYTES_PER_MB
        with LiveTensorBytes(weights + _bytes([image])) as counter:
            model(image)
        return counter.peak / BYTES_PER_MB
