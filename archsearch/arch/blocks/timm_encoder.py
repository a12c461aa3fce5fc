"""Any timm model as an encoder: ``timm.create_model(name, features_only=True, pretrained=False)``.

The spec names the model and the feature levels it hands on (``out_indices``, timm's own
numbering: 0 is the stem's output); the block returns one map per index, finest first, and
the first is the one a chain hands on (one index makes it an ordinary block). Its
channels and strides come from timm's ``feature_info``. BiSeNetV1's context path is timm's
``resnet18``: the same parameters and key names as mmsegmentation's ResNet-18 (``conv1``,
``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``...).

Rules a black box needs: the receptive field is measured once per model (the extent of the
input gradient of one output pixel, with positive weights and max pools read as average
pools so that no path is cut off), and the deploy form folds every conv+BN pair that
``torch.fx`` finds in the traced graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor, nn

from archsearch.arch.blocks.registry import BlockConfig, NormSettings, register_block, require
from archsearch.arch.receptive_field import ReceptiveField

MAX_FIELD_WIDTH = 4096  # widest strip the receptive field is measured on; wider fields are reported clipped


def create_encoder(model: str, out_indices: tuple[int, ...], in_channels: int) -> nn.Module:
    """timm's feature extractor, never downloading weights (archsearch runs offline)."""
    import timm

    return timm.create_model(model, features_only=True, pretrained=False, out_indices=out_indices,
                             in_chans=in_channels)


@lru_cache(maxsize=None)
def feature_levels(model: str) -> tuple[tuple[int, int], ...]:
    """(channels, stride) of every feature level timm offers for ``model``, built on the meta device."""
    import timm

    with torch.device("meta"):
        info = timm.create_model(model, features_only=True, pretrained=False).feature_info
    return tuple(zip(info.channels(), info.reduction()))


class TimmEncoder(nn.Module):
    """A timm feature extractor whose forward gives the declared levels; ``fold_batchnorm`` fuses conv+BN."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> list[Tensor]:
        return list(self.body(x))

    def fold_batchnorm(self) -> "TimmEncoder":
        from torch.fx.experimental.optimization import fuse

        return TimmEncoder(fuse(self.body.eval()))


@register_block("timm_encoder")
@dataclass(frozen=True, kw_only=True)
class TimmEncoderConfig(BlockConfig):
    """A timm model by name with the feature levels it hands on (ascending ``out_indices``)."""

    model: str
    out_indices: tuple[int, ...]

    def validate(self) -> None:
        import timm

        require(timm.is_model(self.model), "not a timm model", path="model", value=self.model,
                allowed="a name from timm.list_models(), e.g. resnet18, regnety_006")
        levels = len(feature_levels(self.model))
        require(len(self.out_indices) >= 1, "needs at least one feature level", path="out_indices",
                value=list(self.out_indices), allowed=f"indices 0..{levels - 1}")
        require(list(self.out_indices) == sorted(set(self.out_indices)), "indices must be distinct and ascending",
                path="out_indices", value=list(self.out_indices))
        require(all(0 <= index < levels for index in self.out_indices), f"{self.model} has {levels} feature levels",
                path="out_indices", value=list(self.out_indices), allowed=f"0..{levels - 1}")

    def feature_channels(self) -> list[int]:
        return [feature_levels(self.model)[index][0] for index in self.out_indices]

    def feature_strides(self) -> list[int]:
        return [feature_levels(self.model)[index][1] for index in self.out_indices]

    def output_channels(self, in_channels: int) -> int:
        return self.feature_channels()[0]

    @property
    def stride(self) -> int:
        return self.feature_strides()[0]

    def output_features(self, in_channels: int) -> list[tuple[int, int]]:
        return list(zip(self.feature_channels(), self.feature_strides()))

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        # timm's own BatchNorm settings (eps 1e-5, momentum 0.1) stand; the spec's norm does not reach inside.
        return TimmEncoder(create_encoder(self.model, self.out_indices, in_channels))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        return self.receptive_fields(field)[0]

    def receptive_fields(self, field: ReceptiveField) -> list[ReceptiveField]:
        return [field.window(measured_field(self.model, index), stride)
                for index, stride in zip(self.out_indices, self.feature_strides())]


@lru_cache(maxsize=None)
def measured_field(model: str, index: int) -> int:
    """Width in input pixels of the window one pixel of level ``index`` sees (see the module's docstring)."""
    encoder = create_encoder(model, (index,), 1).eval()
    _make_every_path_count(encoder)
    width = 512
    while True:
        extent, clipped = _gradient_extent(encoder, width)
        if not clipped or width >= MAX_FIELD_WIDTH:
            return extent
        width *= 2


def _make_every_path_count(encoder: nn.Module) -> None:
    for name, module in list(encoder.named_modules()):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                module.weight.fill_(1.0 / module.weight[0].numel())
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()  # timm zeroes some (a residual's last BN), which would cut a path
        if isinstance(module, nn.MaxPool2d):
            parent = encoder.get_submodule(name.rpartition(".")[0]) if "." in name else encoder
            setattr(parent, name.rpartition(".")[2],
                    nn.AvgPool2d(module.kernel_size, module.stride, module.padding, ceil_mode=module.ceil_mode))


def _gradient_extent(encoder: nn.Module, width: int) -> tuple[int, bool]:
    """Columns of a 1 x width strip that reach the middle output pixel, and whether they touch an edge."""
    images = torch.ones(1, 1, 16, width, requires_grad=True)
    output = encoder(images)[-1]
    output[0, :, output.shape[2] // 2, output.shape[3] // 2].sum().backward()
    columns = torch.nonzero(images.grad[0, 0].abs().sum(dim=0) > 0).flatten()
    first, last = int(columns[0]), int(columns[-1])
    return last - first + 1, first == 0 or last == width - 1
