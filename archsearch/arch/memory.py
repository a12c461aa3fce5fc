"""How much memory a network needs to be built, timed or trained, estimated on PyTorch's meta device.

The meta device gives every tensor its shape and no storage, so an out_channels of 10**7, 10**8
classes or a 10**5-pixel input are sized in a moment instead of found by a swapping machine.
The figures are estimates from sizes alone: weights (exact), the input and the two largest
activations a forward pass holds at once (for building and timing, nearly a lower bound), and
for training weights with gradients and optimizer state plus every activation a backward pass
keeps (an in-place activation shares its input's storage and is not counted). One let through
can still fail, which ``resources.allocation_failed`` then reports in the same words.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from archsearch.arch.build import build
from archsearch.arch.spec import ArchSpec
from archsearch.resources import OutOfMemory, allocation_failed, check_memory, is_allocation_failure

FLOAT_BYTES = 4
# Weights, their gradients and two optimizer moments (AdamW; SGD with momentum keeps one).
TRAINING_COPIES_OF_WEIGHTS = 4


@dataclass(frozen=True)
class MemoryNeeds:
    """Counts of values (not bytes) for one image at ``input_size``."""

    parameters: int
    input_values: int
    largest_activation: int
    activations: int

    def build_bytes(self, *, deploy: bool = False) -> int:
        """The train form's weights, and the deploy form's beside them while it is made."""
        return self.parameters * FLOAT_BYTES * (2 if deploy else 1)

    def inference_bytes(self, *, batch_size: int = 1, dtype_bytes: int = FLOAT_BYTES) -> int:
        """Weights (the deploy copy placed for timing), the input and two of the largest activations."""
        per_image = self.input_values + 2 * self.largest_activation
        return self.parameters * (FLOAT_BYTES + dtype_bytes) + batch_size * per_image * dtype_bytes

    def training_bytes(self, *, batch_size: int) -> int:
        """Weights with gradients and optimizer state, and every activation kept for the backward pass."""
        return (self.parameters * TRAINING_COPIES_OF_WEIGHTS
                + batch_size * (self.input_values + self.activations)) * FLOAT_BYTES


def memory_needs(spec: ArchSpec, input_size: tuple[int, int], *, num_classes: int) -> MemoryNeeds:
    """Parameters and activation sizes of the train form, from one forward pass on the meta device.

    Sizes beyond what PyTorch can even describe (a tensor of more than 2**63 bytes) are OutOfMemory too.
    """
    try:
        return _meta_needs(spec, input_size, num_classes)
    except RuntimeError as error:
        if "overflow" not in str(error).lower():
            raise
        raise OutOfMemory(f"{spec.name} with {num_classes} classes at {input_size[0]}x{input_size[1]} has tensors "
                          f"too large to address: {' '.join(str(error).split())[:200]}; use a smaller width, "
                          "class count or input size") from None


def _meta_needs(spec: ArchSpec, input_size: tuple[int, int], num_classes: int) -> MemoryNeeds:
    with torch.device("meta"):
        model = build(spec, num_classes=num_classes)
    sizes: list[int] = []

    def record(module: torch.nn.Module, inputs, output) -> None:
        if getattr(module, "inplace", False):
            return  # its output is its input's storage
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor):
                sizes.append(tensor.numel())

    leaves = [module for module in model.modules() if not any(True for _ in module.children())]
    handles = [leaf.register_forward_hook(record) for leaf in leaves]
    images = torch.empty(1, spec.in_channels, *input_size, device="meta")
    try:
        with torch.no_grad():
            # eval: BatchNorm of a 1x1 pooled map takes a batch of one; the logits are resized outside any leaf
            record(model, images, model.eval()(images, return_aux=True))
    finally:
        for handle in handles:
            handle.remove()
    return MemoryNeeds(parameters=sum(parameter.numel() for parameter in model.parameters()),
                       input_values=images.numel(), largest_activation=max(sizes, default=0),
                       activations=sum(sizes))


def check_fits_building(spec: ArchSpec, input_size: tuple[int, int], *, num_classes: int, deploy: bool = False,
                        source: str = "") -> None:
    needs = memory_needs(spec, input_size, num_classes=num_classes)
    check_memory(needs.build_bytes(deploy=deploy), what=f"building {spec.name} with {num_classes} classes",
                 source=source)


def check_fits_inference(spec: ArchSpec, input_size: tuple[int, int], *, num_classes: int, batch_size: int = 1,
                         dtype_bytes: int = FLOAT_BYTES, device: str = "cpu", source: str = "") -> None:
    needs = memory_needs(spec, input_size, num_classes=num_classes)
    check_memory(needs.inference_bytes(batch_size=batch_size, dtype_bytes=dtype_bytes),
                 what=f"running {spec.name} on {batch_size}x{spec.in_channels}x{input_size[0]}x{input_size[1]}",
                 source=source, device=device)


def check_fits_training(spec: ArchSpec, input_size: tuple[int, int], *, num_classes: int, batch_size: int,
                        device: str = "cpu", source: str = "") -> None:
    needs = memory_needs(spec, input_size, num_classes=num_classes)
    check_memory(needs.training_bytes(batch_size=batch_size),
                 what=f"training {spec.name} on batches of {batch_size}x{input_size[0]}x{input_size[1]}",
                 source=source, device=device)


@contextmanager
def allocation_guard(*, what: str, source: str = "") -> Iterator[None]:
    """Turn an allocation that fails anyway into the one OutOfMemory message."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        if not is_allocation_failure(error):
            raise
        raise allocation_failed(error, what=what, source=source) from None
