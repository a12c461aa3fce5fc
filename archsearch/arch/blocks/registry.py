"""The block registry and the typed, validated configs that blocks are built from.

A block is named in YAML (``block: rep``) and every other key of its mapping is a
declared field of that block's config dataclass, parsed by the one schema (``archsearch.schema``).
Unknown keys and values of the wrong type are errors that name the key path, never silently
ignored keyword arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, TypeVar

from torch import nn

from archsearch.errors import SpecError
from archsearch.schema import parse_dataclass, require  # noqa: F401 (require: the blocks' checks take it from here)
from archsearch.arch.receptive_field import ReceptiveField


@dataclass(frozen=True)
class NormSettings:
    """BatchNorm settings; RDRNet's backbone uses eps 1e-3 and momentum 0.03, torch's defaults elsewhere."""

    eps: float = 1e-5
    momentum: float = 0.1

    def make(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)


@dataclass(frozen=True, kw_only=True)
class ComponentConfig:
    """Base of every registered config: a name in YAML, declared fields, a canonical mapping.

    ``norm`` overrides the BatchNorm settings the component inherits from its spec.
    """

    name: ClassVar[str] = ""
    FIELD_DESCRIPTION: ClassVar[str] = "a block mapping"
    norm: NormSettings | None = None

    @classmethod
    def parse_field(cls, value: Any, path: str) -> "ComponentConfig":
        """A field typed with a config class holds a block mapping of that kind (the schema asks here)."""
        config = parse_block(value, path)
        if not isinstance(config, cls):
            raise SpecError("this block cannot stand here", path=f"{path}.block", value=config.name,
                            allowed=", ".join(sorted(name for name, block in BLOCKS.items() if issubclass(block, cls))))
        return config

    def resolved_norm(self, inherited: NormSettings) -> NormSettings:
        return self.norm if self.norm is not None else inherited

    def to_dict(self) -> dict[str, Any]:
        """Canonical mapping: the block name and every field, defaults included."""
        data: dict[str, Any] = {"block": self.name}
        for spec_field in dataclasses.fields(self):
            data[spec_field.name] = to_plain(getattr(self, spec_field.name))
        return data


@dataclass(frozen=True, kw_only=True)
class BlockConfig(ComponentConfig):
    """A block of a stem or stage: one input, one output, built from its input channels."""

    def output_channels(self, in_channels: int) -> int:
        """Channels this block produces from ``in_channels``."""
        return getattr(self, "out_channels")

    @property
    def stride(self) -> int:  # a dataclass field overrides this where a block has a stride
        return 1

    def output_features(self, in_channels: int) -> list[tuple[int, int]]:
        """(channels, stride) of each map the block gives, relative to its input; several only as a chain's
        last block (an encoder's levels), the first being what the chain hands on."""
        return [(self.output_channels(in_channels), self.stride)]

    def check(self, in_channels: int) -> None:
        """Raise SpecError (with a path relative to the block) if the block cannot take this input."""

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        raise NotImplementedError

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        raise NotImplementedError

    def receptive_fields(self, field: ReceptiveField) -> list[ReceptiveField]:
        """The field of each map ``output_features`` lists."""
        return [self.receptive_field(field)]


BLOCKS: dict[str, type[ComponentConfig]] = {}

ConfigType = TypeVar("ConfigType", bound=type[ComponentConfig])


def register_block(name: str) -> Callable[[ConfigType], ConfigType]:
    """Register a block config under ``name``; a second registration of a name is a bug."""

    def decorate(config_class: ConfigType) -> ConfigType:
        if name in BLOCKS:
            raise ValueError(f"block {name!r} is registered twice")
        config_class.name = name
        BLOCKS[name] = config_class
        return config_class

    return decorate


def to_plain(value: Any) -> Any:
    """Turn configs, tuples and settings into plain YAML/JSON data."""
    if isinstance(value, ComponentConfig):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: to_plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    return value


def parse_block(data: Any, path: str) -> ComponentConfig:
    """Parse one block mapping (``{block: NAME, field: value, ...}``) into its config."""
    if not isinstance(data, Mapping):
        raise SpecError("a block must be a mapping with a 'block' key", path=path, value=data,
                        allowed="{block: NAME, ...fields}")
    name = data.get("block")
    if not isinstance(name, str) or name not in BLOCKS:
        raise SpecError("unknown block", path=f"{path}.block", value=name,
                        allowed=", ".join(sorted(BLOCKS)))
    fields = {key: value for key, value in data.items() if key != "block"}
    return parse_dataclass(BLOCKS[name], fields, path)
