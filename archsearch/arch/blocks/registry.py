"""The block registry and the typed, validated configs that blocks are built from.

A block is named in YAML (``block: rep``) and every other key of its mapping is a
declared field of that block's config dataclass. Unknown keys and values of the wrong
type are errors that name the key path, never silently ignored keyword arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal, Mapping, TypeVar

from torch import nn

from archsearch.errors import SpecError
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
    norm: NormSettings | None = None

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


DataclassType = TypeVar("DataclassType")


@functools.cache
def _type_hints(target: type) -> dict[str, Any]:
    """A dataclass's field types, resolved once (resolving them is most of the cost of parsing a spec)."""
    return typing.get_type_hints(target)


def parse_dataclass(target: type[DataclassType], data: Mapping[str, Any], path: str) -> DataclassType:
    """Build a dataclass from a mapping, checking each key against the declared fields."""
    if not isinstance(data, Mapping):
        raise SpecError("expected a mapping", path=path, value=data)
    hints = _type_hints(target)
    declared = {item.name: item for item in dataclasses.fields(target)}
    unknown = [key for key in data if key not in declared]
    if unknown:
        prefix = f"{path}." if path else ""
        raise SpecError("unknown field", path=f"{prefix}{unknown[0]}", value=unknown[0],
                        allowed=", ".join(sorted(declared)))
    values = {}
    for key, value in data.items():
        values[key] = coerce(value, hints[key], f"{path}.{key}" if path else key)
    missing = [name for name, item in declared.items() if name not in values
               and item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING]
    if missing:
        raise SpecError("missing required field", path=f"{path}.{missing[0]}" if path else missing[0],
                        allowed=f"{target.__name__} needs {', '.join(missing)}")
    instance = target(**values)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        try:
            validate()
        except SpecError as error:
            raise error.under(path) if path else error
    return instance


def describe(annotation: Any) -> str:
    """A short human description of a field type for error messages."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(option) for option in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in typing.get_args(annotation))
    if origin is tuple:
        return f"a list of {describe(typing.get_args(annotation)[0])}"
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        return f"a mapping of {describe(key_type)} to {describe(value_type)}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, ComponentConfig):
        return "a block mapping"
    if dataclasses.is_dataclass(annotation):
        return "a mapping {" + ", ".join(item.name for item in dataclasses.fields(annotation)) + "}"
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any, path: str) -> Any:
    """Check ``value`` against a field's type and convert lists to tuples; raise SpecError if it does not fit."""
    if annotation is Any:  # free-form data its owner checks (a study's training section, say)
        return value
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, path)
            except SpecError as error:
                errors.append((option, error))
        # A mapping given where one option is a dataclass is meant as that one: its own error says more.
        shaped = [error for option, error in errors
                  if isinstance(value, Mapping) and dataclasses.is_dataclass(option)]
        if len(errors) == 1 or len(shaped) == 1:
            raise (shaped or [errors[0][1]])[0]
        raise SpecError("wrong type", path=path, value=value, allowed=describe(annotation))
    if origin is Literal:
        if value not in typing.get_args(annotation) or isinstance(value, bool):
            raise SpecError("not an allowed value", path=path, value=value, allowed=describe(annotation))
        return value
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        if not isinstance(value, (list, tuple)):
            raise SpecError("expected a list", path=path, value=value, allowed=describe(annotation))
        return tuple(coerce(item, item_type, f"{path}[{index}]") for index, item in enumerate(value))
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, Mapping):
            raise SpecError("expected a mapping", path=path, value=value, allowed=describe(annotation))
        return {coerce(key, key_type, f"{path}.{key}"): coerce(item, value_type, f"{path}.{key}")
                for key, item in value.items()}
    if annotation is bool:
        if not isinstance(value, bool):
            raise SpecError("expected true or false", path=path, value=value, allowed="bool")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError("expected an integer", path=path, value=value, allowed="int")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError("expected a number", path=path, value=value, allowed="float")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise SpecError("expected a string", path=path, value=value, allowed="str")
        return value
    if isinstance(annotation, type) and issubclass(annotation, ComponentConfig):
        config = parse_block(value, path)
        if not isinstance(config, annotation):
            raise SpecError("this block cannot stand here", path=f"{path}.block", value=config.name,
                            allowed=", ".join(sorted(name for name, cls in BLOCKS.items()
                                                     if issubclass(cls, annotation))))
        return config
    if dataclasses.is_dataclass(annotation):
        return parse_dataclass(annotation, value, path)
    raise TypeError(f"unsupported field type {annotation!r} at {path}")


def require(condition: bool, message: str, *, path: str, value: Any, allowed: str = "") -> None:
    """Raise a SpecError unless ``condition`` holds; used by configs' ``validate`` and ``check``."""
    if not condition:
        raise SpecError(message, path=path, value=value, allowed=allowed)
