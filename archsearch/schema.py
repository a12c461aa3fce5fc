"""The one schema every config is parsed through: study sections, training, latency, augmentation, blocks.

A config is a frozen dataclass whose field types say what a value may be (``int``, ``float``,
``Literal[...]``, ``tuple[...]``, nested dataclasses, ``X | None``) and, with ``Annotated[..., Range(...)]``,
its bounds. ``parse_dataclass`` reads plain YAML data into one (unknown keys, wrong types, missing
fields, bounds, then the config's own ``validate``); ``check_fields`` checks a config built in Python the
same way (a ``__post_init__`` calls it). Every error is a SpecError in one wording, naming the key path,
the bad value and what is allowed; the caller adds the file. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping, TypeVar

from archsearch.errors import SpecError

UNKNOWN_FIELD = "unknown field"


@dataclass(frozen=True)
class Range:
    """Bounds on a number field: ``Annotated[float, Range(minimum=0.0, exclusive_minimum=True)]``."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    why: str = ""  # said after "out of range" where a bound is not obvious

    def describe(self, kind: str) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '>='} {_number_text(self.minimum, kind)}")
        if self.maximum is not None:
            parts.append(f"{'<' if self.exclusive_maximum else '<='} {_number_text(self.maximum, kind)}")
        noun = "an integer" if kind == "int" else "a finite number"
        return " ".join([noun, " and ".join(parts)]).strip()

    def holds(self, value: float) -> bool:
        low = self.minimum is None or (value > self.minimum if self.exclusive_minimum else value >= self.minimum)
        high = self.maximum is None or (value < self.maximum if self.exclusive_maximum else value <= self.maximum)
        return low and high


def _number_text(bound: float, kind: str) -> str:
    return f"{int(bound):,}" if kind == "int" else f"{float(bound):g}" if abs(bound) >= 1e6 else str(float(bound))


Parsed = TypeVar("Parsed")


def parse_dataclass(target: type[Parsed], data: Any, path: str) -> Parsed:
    """Build the dataclass ``target`` from a mapping found at ``path``: declared keys only, each value checked
    against its field's type and bounds, required fields present, then ``target.validate()`` if it has one."""
    if not isinstance(data, Mapping):
        raise SpecError("expected a mapping", path=path, value=data,
                        allowed=f"a mapping of {', '.join(item.name for item in dataclasses.fields(target))}")
    hints = _type_hints(target)
    declared = {item.name: item for item in dataclasses.fields(target)}
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in declared:
            raise unknown_key(key, declared, prefix)
    values = {key: coerce(value, hints[key], f"{prefix}{key}") for key, value in data.items()}
    missing = [name for name, item in declared.items() if name not in values
               and item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING]
    if missing:
        raise SpecError("missing required field", path=f"{prefix}{missing[0]}",
                        allowed=f"{target.__name__} needs {', '.join(missing)}")
    try:
        instance = target(**values)
        validate = getattr(instance, "validate", None)
        if validate is not None:
            validate()
    except SpecError as error:
        raise error.under(path) if path else error
    return instance


@functools.cache
def _type_hints(target: type) -> dict[str, Any]:
    """A dataclass's field types, resolved once (resolving them is most of the cost of parsing a spec)."""
    return typing.get_type_hints(target, include_extras=True)


def unknown_key(key: Any, declared: Mapping[str, Any] | tuple[str, ...], prefix: str = "") -> SpecError:
    """The one error for a key a config does not declare, with the closest declared name as a hint."""
    names = sorted(declared)
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return SpecError(f"{UNKNOWN_FIELD}{hint}", path=f"{prefix}{key}", value=key, allowed=", ".join(names))


def check_fields(instance: Any) -> None:
    """Check (and normalise: lists to tuples, integers to floats) every field of a dataclass built in Python,
    as ``parse_dataclass`` checks data; for a frozen config's ``__post_init__``."""
    hints = _type_hints(type(instance))
    for item in dataclasses.fields(instance):
        value = coerce(getattr(instance, item.name), hints[item.name], item.name)
        object.__setattr__(instance, item.name, value)


def describe(annotation: Any) -> str:
    """A short human description of a field type for error messages."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *extras = typing.get_args(annotation)
        bounds = next((extra for extra in extras if isinstance(extra, Range)), None)
        text = bounds.describe("int" if _base(inner) is int else "float") if bounds else describe(inner)
        return text + (" or null" if _optional(inner) else "")
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
    description = getattr(annotation, "FIELD_DESCRIPTION", None)
    if description is not None:
        return description
    if dataclasses.is_dataclass(annotation):
        return "a mapping {" + ", ".join(item.name for item in dataclasses.fields(annotation)) + "}"
    return getattr(annotation, "__name__", str(annotation))


def _optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        and type(None) in typing.get_args(annotation)


def _base(annotation: Any) -> Any:
    """``int`` of ``int | None``; the annotation itself otherwise."""
    if _optional(annotation):
        options = [option for option in typing.get_args(annotation) if option is not type(None)]
        return options[0] if len(options) == 1 else annotation
    return annotation


def coerce(value: Any, annotation: Any, path: str) -> Any:
    """Check ``value`` against a field's type and convert lists to tuples; raise SpecError if it does not fit.

    A class with a ``parse_field(value, path)`` classmethod (a block config) parses its own values.
    """
    if annotation is Any:  # free-form data its owner checks (dataset options, say)
        return value
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *extras = typing.get_args(annotation)
        try:
            value = coerce(value, inner, path)
        except SpecError as error:  # allowed: the bounds, not only the type
            raise SpecError(error.message, path=error.path, value=error.value, allowed=describe(annotation)) from None
        for bounds in (extra for extra in extras if isinstance(extra, Range)):
            if value is not None and not bounds.holds(value):
                raise SpecError(f"out of range: {bounds.why}" if bounds.why else "out of range", path=path, value=value, allowed=describe(annotation))
        return value
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
        shaped = [error for option, error in errors if isinstance(value, Mapping) and dataclasses.is_dataclass(option)]
        if len(shaped) == 1 and len(errors) > 1:
            raise shaped[0]
        if len(errors) == 1:
            error = errors[0][1]
            if error.path != path:  # inside the value (a section's field): null is no choice there
                raise error
            raise SpecError(error.message, path=error.path, value=error.value,
                            allowed=error.allowed + (" or null" if type(None) in options else ""))
        raise SpecError("wrong type", path=path, value=value, allowed=describe(annotation))
    if origin is Literal:
        if value not in typing.get_args(annotation) or isinstance(value, bool):
            raise SpecError("not an allowed value", path=path, value=value, allowed=describe(annotation))
        return value
    if origin is tuple:
        item_types = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise SpecError("expected a list", path=path, value=value, allowed=describe(annotation))
        return tuple(coerce(item, item_types[0], f"{path}[{index}]") for index, item in enumerate(value))
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, Mapping):
            raise SpecError("expected a mapping", path=path, value=value, allowed=describe(annotation))
        return {coerce(key, key_type, f"{path}.{key}"): coerce(item, value_type, f"{path}.{key}")
                for key, item in value.items()}
    if annotation is bool:
        if not isinstance(value, bool):
            raise SpecError("expected true or false", path=path, value=value, allowed="true, false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError("expected an integer", path=path, value=value, allowed="an integer")
        return value
    if annotation is float:
        return _float(value, path)
    if annotation is str:
        if not isinstance(value, str):
            raise SpecError("expected a string", path=path, value=value, allowed="a string")
        return value
    parse_field = getattr(annotation, "parse_field", None)
    if parse_field is not None:
        return parse_field(value, path)
    if dataclasses.is_dataclass(annotation):
        if dataclasses.is_dataclass(value) and isinstance(value, annotation):
            return value  # built in Python, checked when it was
        return parse_dataclass(annotation, value, path)
    raise TypeError(f"unsupported field type {annotation!r} at {path}")


def _float(value: Any, path: str) -> float:
    """A finite number; text that reads as one gets a hint, since YAML reads a quoted number as text."""
    number = _as_number(value)
    if number is not None and not math.isfinite(number):  # nan, inf (YAML's .nan/.inf, or the words as text)
        raise SpecError("expected a finite number", path=path, value=value, allowed="a finite number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (it is text; write the number without quotes)" if number is not None else ""
        raise SpecError(f"expected a number{hint}", path=path, value=value, allowed="a finite number")
    return float(value)


def _as_number(value: Any) -> float | None:
    """The number ``value`` is, or reads as when it is text ('0.1', 'nan', '-.inf'); None otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return float(value.replace(".inf", "inf").replace(".nan", "nan"))
    except ValueError:
        return None


def require(condition: bool, message: str, *, path: str, value: Any, allowed: str = "") -> None:
    """Raise a SpecError unless ``condition`` holds; used by configs' ``validate`` and ``check``."""
    if not condition:
        raise SpecError(message, path=path, value=value, allowed=allowed)
