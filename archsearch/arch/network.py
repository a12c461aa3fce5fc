"""The one network module every spec builds into: stem, multi-branch stages, context, head."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from archsearch.arch.blocks.layers import resize_to

if TYPE_CHECKING:
    from archsearch.arch.spec import ArchSpec


class Stage(nn.Module):
    """Runs each branch's blocks, then the fusion; a new branch forks from the coarsest input."""

    def __init__(self, branches: list[nn.Sequential], fusion: nn.Module | None, input_activation: bool) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.fusion = fusion
        self.input_activation = input_activation
        self.input_act = nn.ReLU() if input_activation else nn.Identity()

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        inputs = [self.input_act(x) for x in inputs]
        outputs = [branch(inputs[min(index, len(inputs) - 1)]) for index, branch in enumerate(self.branches)]
        return self.fusion(outputs) if self.fusion is not None else outputs


class SegmentationNetwork(nn.Module):
    """Logits at the input's resolution; ``return_aux`` also gives the auxiliary head's (or None)."""

    def __init__(self, *, stem: nn.Sequential, stages: list[Stage], context: nn.Module | None, head: nn.Module,
                 aux_head: nn.Module | None, aux_tap: tuple[int, int] | None, feature_strides: list[list[int]],
                 stem_stride: int, final_stride: int, spec: "ArchSpec", num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        self.num_classes = num_classes
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.context = context
        self.head = head
        self.aux_head = aux_head
        self.aux_tap = aux_tap
        self.feature_strides = feature_strides
        self.stem_stride = stem_stride
        self.final_stride = final_stride

    def forward(self, images: Tensor, return_aux: bool = False) -> Tensor | tuple[Tensor, Tensor | None]:
        x = self.stem(images)
        features = {self.stem_stride: x}
        branches = [x]
        aux_input = None
        for index, (stage, strides) in enumerate(zip(self.stages, self.feature_strides)):
            branches = stage(branches)
            features.update(zip(strides, branches))
            if return_aux and self.aux_tap is not None and self.aux_tap[0] == index:
                aux_input = branches[self.aux_tap[1]]
        if self.context is not None:
            branches = branches[:-1] + [self.context(branches[-1])]
            features[self.feature_strides[-1][-1]] = branches[-1]
        final = branches[0]
        for coarser in branches[1:]:
            final = final + resize_to(coarser, final.shape[-2:])
        features[self.final_stride] = final
        logits = resize_to(self.head(final, features), images.shape[-2:])
        if not return_aux:
            return logits
        if self.aux_head is None or aux_input is None:
            return logits, None
        return logits, resize_to(self.aux_head(aux_input), images.shape[-2:])
