"""Mixed precision, memory format and compilation of one training run, from its config.

A recipe names ``amp: bf16 | fp16``; this module turns that into torch's own tools
(``torch.autocast``, ``torch.amp.GradScaler``) so the trainer's loop has one code path
whatever the precision.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn

from archsearch.train.config import TrainConfig

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast for forward and loss, and the gradient scaler fp16 needs (a no-op otherwise).

    fp16 has a narrow exponent range, so small gradients underflow to 0 without loss
    scaling; bf16 keeps fp32's range and needs no scaler.
    """

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        self.device_type = device.type
        self.dtype = _DTYPES.get(config.amp) if config.amp is not None else None
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")

    def autocast(self) -> AbstractContextManager:
        """Forward passes (training and evaluation) run in this context."""
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def images(self, images: Tensor) -> Tensor:
        """Images in the run's memory format (NHWC with ``channels_last``)."""
        return images.contiguous(memory_format=self.memory_format)

    def prepare(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Move the model to ``device`` in the run's memory format (in place; returns it)."""
        return model.to(device, memory_format=self.memory_format)

    def step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and optimizer step, through the scaler when fp16 needs one."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def compiled(model: nn.Module, config: TrainConfig) -> nn.Module:
    """``torch.compile(model)`` when the recipe asks for it; the compiled module shares the parameters."""
    return torch.compile(model) if config.compile else model
