"""Whether values, and narrower definitions, lie inside a space's parameters.

A study's ``fix`` values and its ``parameters`` (definitions that replace the space's to search fewer
values) are checked here once, when the study is read: a value the space does not have would fail
every trial that draws it (every trial, for a fixed one), so it is refused before any trial, naming
the values and what the space allows. A list of labels narrows a labelled choice to those entries.
Bounds written as expressions of other parameters are known only when a point is drawn; values
under them are not checked here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from archsearch.space.sampling import Primitive, Space, SpaceError, node_kind, option_label

MAX_LISTED = 10  # values named in a message


def check_fixed(space: Space, fixed: Mapping[str, Any]) -> dict[str, Primitive]:
    """The fixed values as sampling takes them (a structured option as its label); SpaceError at
    ``fix.<name>`` for a value outside its parameter's definition."""
    return {name: _fixed_value(space.parameters[name], value, f"fix.{name}") for name, value in fixed.items()}


def narrowed_parameters(space: Space, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The space's parameters with the study's definitions in their place; SpaceError at
    ``parameters.<name>`` naming the values a definition adds to the space's."""
    merged = dict(space.parameters)
    for name, definition in parameters.items():
        merged[name] = _narrowed(space.parameters[name], definition, f"parameters.{name}")
    return merged


# ---------------------------------------------------------------- one value


def _fixed_value(definition: Mapping[str, Any], value: Any, path: str) -> Primitive:
    kind = node_kind(definition, path)
    if kind == "choice":
        options = definition["choice"]
        if isinstance(options, Mapping):  # a labelled choice is fixed by its label
            labels = {str(label): label for label in options}
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) in labels:
                return str(value)
        else:
            wanted = _key(option_label(value))
            for option in options:
                if _key(option_label(option)) == wanted:
                    return option_label(option)
        raise SpaceError("not one of the space's choices", path=path, value=value, allowed=_allowed(definition))
    if not _inside(definition, value):
        raise SpaceError("outside the space's range", path=path, value=value, allowed=_allowed(definition))
    return value


def _inside(definition: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value`` is one the definition can give (True where its bounds are expressions)."""
    kind = node_kind(definition, "")
    if kind == "choice":
        options = definition["choice"]
        wanted = _key(option_label(value))
        return any(_key(option_label(option)) == wanted
                   for option in (options.values() if isinstance(options, Mapping) else options))
    if kind == "int":
        if not _is_integer(value):
            return False
        bounds = _plain_bounds(definition, "int")
        if bounds is None:
            return True
        (low, high), step = bounds, definition.get("step", 1)
        return low <= value <= high and (not _is_integer(step) or step < 1 or (value - low) % step == 0)
    if not _is_number(value):
        return False
    bounds = _plain_bounds(definition, "float")
    if bounds is None:
        return True
    (low, high), grid, step = bounds, definition.get("grid"), definition.get("step")
    if not _within(value, low, high):
        return False
    if grid:
        return any(_is_number(point) and math.isclose(value, point, rel_tol=1e-9) for point in grid)
    if _is_number(step) and step > 0:
        steps = (value - low) / step
        return math.isclose(steps, round(steps), abs_tol=1e-9)
    return True


# ---------------------------------------------------------------- a narrower definition


def _narrowed(space_definition: Mapping[str, Any], definition: Any, path: str) -> Any:
    space_kind = node_kind(space_definition, path)
    kind = node_kind(definition, path)
    if kind not in ("choice", "int", "float"):
        return definition  # not a choice node: reading the merged space says so
    options = space_definition["choice"] if space_kind == "choice" else None
    if isinstance(options, Mapping) and kind == "choice" and isinstance(definition["choice"], list):
        return _labelled(options, definition["choice"], path, space_definition)
    if kind == "float" and "grid" not in definition and "step" not in definition:
        _check_continuous(space_definition, definition, path)
        return definition
    outside = list(islice((value for value in _values(definition) if not _inside(space_definition, value)),
                          MAX_LISTED + 1))
    if outside:
        raise SpaceError("adds values the space does not have", path=path, value=outside[:MAX_LISTED],
                         allowed=_allowed(space_definition))
    return definition


def _labelled(options: Mapping[Any, Any], labels: list[Any], path: str,
              space_definition: Mapping[str, Any]) -> dict[str, Any]:
    """``{choice: [label, ...]}`` over a labelled choice: those of its entries."""
    by_label = {str(label): label for label in options}
    unknown = [label for label in labels if isinstance(label, bool) or not isinstance(label, (str, int))
               or str(label) not in by_label]
    if unknown:
        raise SpaceError("adds values the space does not have", path=path, value=unknown,
                         allowed=f"labels of the space's choice: {_allowed(space_definition)}")
    return {"choice": {by_label[str(label)]: options[by_label[str(label)]] for label in labels}}


def _check_continuous(space_definition: Mapping[str, Any], definition: Mapping[str, Any], path: str) -> None:
    """A float range without grid or step is inside only a float range that holds it."""
    bounds, space_bounds = _plain_bounds(definition, "float"), None
    space_kind = node_kind(space_definition, path)
    if space_kind == "float":
        space_bounds = _plain_bounds(space_definition, "float")
        if space_bounds is None or bounds is None:
            return
        if "grid" not in space_definition and "step" not in space_definition:
            if not (_within(bounds[0], *space_bounds) and _within(bounds[1], *space_bounds)):
                raise SpaceError("reaches beyond the space's range", path=path, value=list(bounds),
                                 allowed=_allowed(space_definition))
            return
    what = {"choice": "choices", "int": "integers"}.get(space_kind) or (
        "grid" if "grid" in space_definition else "steps")
    raise SpaceError(f"reaches beyond the space's {what}", path=path,
                     value=list(bounds) if bounds is not None else definition["float"],
                     allowed=f"{_allowed(space_definition)} (a float range needs grid: [...] or step here)")


def _values(definition: Mapping[str, Any]) -> Iterator[Any]:
    """Every value a definition can give, lazily (none where its bounds are expressions)."""
    kind = node_kind(definition, "")
    if kind == "choice":
        options = definition["choice"]
        yield from (options.values() if isinstance(options, Mapping) else options)
        return
    bounds = _plain_bounds(definition, kind)
    if bounds is None:
        return
    low, high = bounds
    if kind == "int":
        step = definition.get("step", 1)
        if _is_integer(step) and step >= 1 and _is_integer(low) and _is_integer(high):
            yield from range(low, high + 1, step)
        return
    grid, step = definition.get("grid"), definition.get("step")
    if grid:
        yield from (point for point in grid if _is_number(point))
    elif _is_number(step) and step > 0:
        yield from (low + index * step for index in range(int(round((high - low) / step)) + 1))


# ---------------------------------------------------------------- small helpers


def _plain_bounds(definition: Mapping[str, Any], kind: str) -> tuple[float, float] | None:
    """``(low, high)`` when both are numbers written out, low <= high; None for expressions (or a malformed
    node, which sampling reports)."""
    bounds = definition.get(kind)
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(bound) for bound in bounds)):
        return None
    return (bounds[0], bounds[1]) if bounds[0] <= bounds[1] else None


def _within(value: float, low: float, high: float) -> bool:
    return (low <= value <= high or math.isclose(value, low, rel_tol=1e-9)
            or math.isclose(value, high, rel_tol=1e-9))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _key(label: Primitive) -> tuple[str, Any]:
    """Equality of options as YAML means it: 1 and 1.0 are one value, true and 1 are not."""
    if isinstance(label, bool):
        return ("bool", label)
    if isinstance(label, (int, float)):
        return ("number", float(label))
    return ("other", label)


def _allowed(definition: Mapping[str, Any]) -> str:
    """What a definition allows, in words."""
    kind = node_kind(definition, "")
    if kind == "choice":
        options = definition["choice"]
        return ", ".join(str(option if isinstance(options, Mapping) else option_label(option))
                         for option in _first(options))
    low, high = definition[kind]
    if kind == "int":
        step = definition.get("step", 1)
        return f"an integer from {low} to {high}" + (f" in steps of {step}" if step != 1 else "")
    if definition.get("grid"):
        return "one of " + ", ".join(str(point) for point in _first(definition["grid"]))
    step = definition.get("step")
    return f"a number from {low} to {high}" + (f" in steps of {step}" if step else "")


def _first(items: Iterable[Any], count: int = 3 * MAX_LISTED) -> list[Any]:
    listed = list(islice(iter(items), count + 1))
    return listed[:count] + (["..."] if len(listed) > count else [])
