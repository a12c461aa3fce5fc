"""Theoretical receptive field, counted the way the RegSeg paper counts field-of-view.

A k x k window with dilation d at a feature map whose pixels are ``jump`` input pixels
apart widens the field by (k - 1) * d * jump. Parallel paths take the widest; global
pooling (squeeze-excitation, image-level context) is not counted, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReceptiveField:
    size: float = 1.0
    jump: float = 1.0

    def window(self, kernel_size: int, stride: int = 1, dilation: int = 1) -> "ReceptiveField":
        """After a convolution or pooling window."""
        return ReceptiveField(self.size + (kernel_size - 1) * dilation * self.jump, self.jump * stride)

    def upsampled(self, factor: float) -> "ReceptiveField":
        """After resizing to a ``factor`` times finer grid: the field is unchanged, pixels are closer."""
        return ReceptiveField(self.size, self.jump / factor)

    def at_jump(self, jump: float) -> "ReceptiveField":
        """The same field seen on a grid with pixel spacing ``jump`` (after a resize)."""
        return ReceptiveField(self.size, jump)


def widest(*fields: ReceptiveField) -> ReceptiveField:
    """Where parallel paths meet (a sum or concatenation), the widest field counts."""
    return ReceptiveField(max(field.size for field in fields), fields[0].jump)
