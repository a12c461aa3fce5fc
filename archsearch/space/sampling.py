"""Search spaces: a spec template in which any value may be a choice, an expression or a condition.

```yaml
name: rdrnet
parameters:                      # named choices, sampled the first time something refers to them
  width: {choice: [8, 16, 24]}
  extra_depth: {int: [0, 2]}
spec:                            # an ArchSpec with ${expressions}, inline choices and if-nodes
  stem: [{block: rep, out_channels: '${width}', stride: 2}]
  head: {block: ddr_head, channels: '${4 * width}'}
  ...
```

Choice nodes: ``{choice: [a, b]}`` or ``{choice: {label: value}}``; ``{int: [lo, hi], step: s, log: b}``;
``{float: [lo, hi], log: b, step: s, grid: [...]}``. ``{if: expr, then: x, else: y}`` takes a branch
(in a list, a false ``if`` without ``else`` drops the item). A parameter nobody refers to is never
sampled, so conditions make parameters conditional. Sampling gives a concrete ArchSpec, or the
reason the point is invalid.
"""

from __future__ import annotations

import ast
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

from archsearch.errors import SpecError
from archsearch.space.expressions import PART, ExpressionSyntaxError, condition, substitute
from archsearch.io import parse_expression, read_yaml
from archsearch.schema import UNKNOWN_FIELD

if TYPE_CHECKING:  # a space is read and checked without torch; a sampled point is parsed (and built) with it
    from archsearch.arch.spec import ArchSpec

Primitive = str | int | float | bool | None
NODE_KEYS = {"choice": {"choice"}, "int": {"int", "step", "log"}, "float": {"float", "step", "log", "grid"},
             "if": {"if", "then", "else"}}
SPACE_KEYS = ("name", "description", "parameters", "spec")
MAX_GRID_POINTS = 100_000


class SpaceError(SpecError):
    """The space file itself is wrong (not merely an invalid point of it)."""


class Suggester(Protocol):
    """Where sampled values come from: an Optuna trial, fixed values, a grid walk or a random generator."""

    def categorical(self, name: str, options: Sequence[Primitive]) -> Primitive: ...

    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int: ...

    def real(self, name: str, low: float, high: float, step: float | None, log: bool,
             grid: Sequence[float] | None) -> float: ...


@dataclass(frozen=True)
class Space:
    name: str
    parameters: Mapping[str, Any]
    template: Mapping[str, Any]
    source: str = ""
    description: str = ""


@dataclass(frozen=True)
class SampledPoint:
    """The sampled values by parameter name (labels for structured choices) and the spec, or why it is invalid."""

    params: dict[str, Primitive]
    spec: ArchSpec | None = None
    invalid_reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.spec is not None


def parse_space(data: Any, *, source: str = "") -> Space:
    try:
        if not isinstance(data, Mapping):
            raise SpaceError("a space must be a mapping", value=type(data).__name__, allowed=", ".join(SPACE_KEYS))
        for key in data:
            if key not in SPACE_KEYS:
                raise SpaceError(UNKNOWN_FIELD, path=str(key), value=key, allowed=", ".join(SPACE_KEYS))
        if "spec" not in data or not isinstance(data["spec"], Mapping):
            raise SpaceError("needs a spec template (a mapping)", path="spec", value=data.get("spec"))
        parameters = data.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise SpaceError("expected a mapping of names to choice nodes", path="parameters", value=parameters)
        for name, definition in parameters.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise SpaceError("parameter names must be identifiers", path=f"parameters.{name}", value=name)
            if node_kind(definition, f"parameters.{name}") not in ("choice", "int", "float"):
                raise SpaceError("a parameter must be a choice node", path=f"parameters.{name}", value=definition,
                                 allowed="{choice: [...]}, {int: [lo, hi]}, {float: [lo, hi]}")
        name = data.get("name", Path(source).stem if source else "space")
        if not isinstance(name, str):
            raise SpaceError("expected a string", path="name", value=name)
        return Space(name=name, parameters=dict(parameters), template=dict(data["spec"]), source=source,
                     description=str(data.get("description", "")))
    except SpecError as error:
        raise error.with_source(source) from None


def load_space(path: str | Path) -> Space:
    return parse_space(read_yaml(Path(path)), source=str(path))


def node_kind(node: Any, path: str) -> str | None:
    """'choice', 'int', 'float' or 'if' for a node of that kind, None for plain data."""
    if not isinstance(node, Mapping):
        return None
    for kind, allowed in NODE_KEYS.items():
        if kind in node:
            extra = set(node) - allowed
            if extra:
                raise SpaceError(f"a {kind} node takes only {', '.join(sorted(allowed))}", path=path,
                                 value=sorted(extra)[0])
            return kind
    return None


def option_label(option: Any) -> Primitive:
    if option is None or isinstance(option, (str, int, float, bool)):
        return option
    return json.dumps(option, separators=(",", ":"))


class _Omitted:
    """What a false ``if`` without ``else`` gives: the item disappears from its list or mapping."""


OMITTED = _Omitted()


class _Resolver:
    def __init__(self, space: Space, suggester: Suggester) -> None:
        self.space = space
        self.suggester = suggester
        self.values: dict[str, Any] = {}
        self.params: dict[str, Primitive] = {}
        self.resolving: set[str] = set()

    def lookup(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name not in self.space.parameters:
            raise SpaceError("unknown name in expression", path=f"parameters.{name}", value=name,
                             allowed=", ".join(self.space.parameters) or "no parameters are defined")
        if name in self.resolving:
            raise SpaceError("parameter refers to itself", path=f"parameters.{name}", value=name)
        self.resolving.add(name)
        self.values[name] = self.sample(name, self.space.parameters[name], f"parameters.{name}")
        self.resolving.discard(name)
        return self.values[name]

    def sample(self, name: str, node: Mapping[str, Any], path: str) -> Any:
        kind = node_kind(node, path)
        if kind == "choice":
            options = node["choice"]
            if isinstance(options, Mapping):
                labels, values = [str(label) for label in options], list(options.values())
            elif isinstance(options, list):
                labels, values = [option_label(option) for option in options], list(options)
            else:
                raise SpaceError("choice needs a list or a mapping of labels to values", path=path, value=options)
            if not labels or len(set(labels)) != len(labels):
                raise SpaceError("choice needs distinct options", path=path, value=options)
            label = self.suggester.categorical(name, labels)
            self.params[name] = label
            return self.resolve(values[labels.index(label)], f"{path}.choice[{labels.index(label)}]")
        bounds = self.resolve(node[kind], f"{path}.{kind}")
        if not (isinstance(bounds, list) and len(bounds) == 2):
            raise SpaceError("expected [low, high]", path=f"{path}.{kind}", value=bounds)
        low, high = bounds
        log = bool(node.get("log", False))
        if kind == "int":
            step = self.resolve(node.get("step", 1), f"{path}.step")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, step)) or low > high \
                    or step < 1:
                raise SpaceError("int needs integers low <= high and step >= 1", path=path, value=[low, high, step])
            value: Any = self.suggester.integer(name, low, high, step, log)
        else:
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
                raise SpaceError("float needs numbers low <= high", path=path, value=[low, high])
            value = self.suggester.real(name, float(low), float(high), node.get("step"), log, node.get("grid"))
        self.params[name] = value
        return value

    def resolve(self, node: Any, path: str) -> Any:
        if isinstance(node, str):
            return substitute(node, self.lookup, path)
        if isinstance(node, list):
            items = [self.resolve(item, f"{path}[{index}]") for index, item in enumerate(node)]
            return [item for item in items if item is not OMITTED]
        kind = node_kind(node, path)
        if kind in ("choice", "int", "float"):
            return self.sample(path.removeprefix("spec."), node, path)
        if kind == "if":
            test = node["if"]
            taken = condition(test, self.lookup, f"{path}.if") if isinstance(test, str) else bool(test)
            if taken:
                return self.resolve(node.get("then"), f"{path}.then")
            return self.resolve(node["else"], f"{path}.else") if "else" in node else OMITTED
        if isinstance(node, Mapping):
            items = {key: self.resolve(value, f"{path}.{key}" if path else str(key)) for key, value in node.items()}
            return {key: value for key, value in items.items() if value is not OMITTED}
        return node


@dataclass(frozen=True)
class ResolvedData:
    """The sampled values and the resolved spec data (plain YAML data, not yet parsed), or why it is invalid."""

    params: dict[str, Primitive]
    data: dict[str, Any] | None = None
    invalid_reason: str | None = None


def resolve(space: Space, suggester: Suggester) -> ResolvedData:
    """Resolve the space's template at one point; structural errors in the space raise SpaceError."""
    resolver = _Resolver(space, suggester)
    try:
        data = resolver.resolve(space.template, "spec")
    except SpaceError as error:
        raise error.with_source(space.source) from None
    except ExpressionSyntaxError as error:
        raise SpaceError(error.message, path=error.path, value=error.value, allowed=error.allowed,
                         source=space.source) from None
    except SpecError as error:
        return ResolvedData(dict(resolver.params), invalid_reason=str(error))
    data.setdefault("name", space.name)
    return ResolvedData(dict(resolver.params), data=data)


def sample(space: Space, suggester: Suggester) -> SampledPoint:
    """Sample one point; structural errors in the space raise SpaceError, invalid points are returned."""
    resolved = resolve(space, suggester)
    if resolved.data is None:
        return SampledPoint(resolved.params, invalid_reason=resolved.invalid_reason)
    from archsearch.arch.spec import parse_spec

    try:
        spec = parse_spec(resolved.data, source=f"{space.source or space.name} (sampled)")
    except SpecError as error:
        return SampledPoint(resolved.params, invalid_reason=str(error))
    return SampledPoint(resolved.params, spec=spec)


@dataclass
class FixedSuggester:
    """Replays given values (a trial's params); a name it lacks is an error naming the name."""

    values: Mapping[str, Primitive]

    def _get(self, name: str) -> Any:
        if name not in self.values:
            raise SpaceError("no value given for this parameter", path=name, allowed=", ".join(self.values))
        return self.values[name]

    def categorical(self, name: str, options: Sequence[Primitive]) -> Primitive:
        value = self._get(name)
        if value not in options:
            raise SpaceError("value is not one of the options", path=name, value=value,
                             allowed=", ".join(map(str, options)))
        return value

    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return int(self._get(name))

    def real(self, name: str, low: float, high: float, step: float | None, log: bool,
             grid: Sequence[float] | None) -> float:
        return float(self._get(name))


@dataclass
class RandomSuggester:
    """Uniform random values from a seeded generator (screening, predictor checks, tests)."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def categorical(self, name: str, options: Sequence[Primitive]) -> Primitive:
        return self.rng.choice(list(options))

    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        if log and low > 0:
            value = math.exp(self.rng.uniform(math.log(low), math.log(high + 1)))
            return min(high, low + int((value - low) // step) * step)
        return self.rng.randrange(low, high + 1, step)

    def real(self, name: str, low: float, high: float, step: float | None, log: bool,
             grid: Sequence[float] | None) -> float:
        if grid:
            return float(self.rng.choice(list(grid)))
        if step:
            return low + self.rng.randrange(int(round((high - low) / step)) + 1) * step
        if log and low > 0:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)


class _GridWalker:
    """One walk of the odometer over a define-by-run space: ``chosen[i]`` picks the i-th decision's option."""

    def __init__(self, chosen: list[int], fixed: Mapping[str, Primitive]) -> None:
        self.chosen = chosen
        self.fixed = fixed
        self.counts: list[int] = []
        self.taken: list[int] = []
        self.names: list[str] = []

    def _pick(self, options: Sequence[Any], name: str) -> Any:
        if name in self.fixed:
            return self.fixed[name]
        position = len(self.taken)
        index = self.chosen[position] if position < len(self.chosen) else 0
        self.counts.append(len(options))
        self.taken.append(index)
        self.names.append(name)
        return options[index]

    def categorical(self, name: str, options: Sequence[Primitive]) -> Primitive:
        return self._pick(options, name)

    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return self._pick(range(low, high + 1, step), name)

    def real(self, name: str, low: float, high: float, step: float | None, log: bool,
             grid: Sequence[float] | None) -> float:
        if grid:
            return float(self._pick(list(grid), name))
        if step:
            count = int(round((high - low) / step)) + 1
            return self._pick([low + index * step for index in range(count)], name)
        if name in self.fixed:
            return self.fixed[name]
        raise SpaceError("a float parameter needs grid: [...] or step to be enumerated", path=name,
                         value=[low, high])


def enumerate_grid(space: Space, fixed: Mapping[str, Primitive] | None = None) -> list[dict[str, Primitive]]:
    """Every point of a space (conditional parameters included), as parameter values in walk order.

    ``fixed`` parameters keep their given value and are not enumerated. The grid is counted first
    (``grid_size``) where the space allows, so that one past MAX_GRID_POINTS is refused at once
    instead of after walking 100,000 points.
    """
    counted = grid_size(space, fixed)
    if counted is not None and counted[0] > MAX_GRID_POINTS:
        raise _grid_too_large(space, f"{counted[0]:,} points", counted[1])
    points: list[dict[str, Primitive]] = []
    chosen: list[int] = []
    while True:
        walker = _GridWalker(chosen, fixed or {})
        points.append(resolve(space, walker).params)  # the walk only: no network is parsed (nor torch loaded)
        if len(points) > MAX_GRID_POINTS:
            raise _grid_too_large(space, f"more than {MAX_GRID_POINTS:,} points",
                                  dict(zip(walker.names, walker.counts)))
        position = len(walker.taken) - 1
        while position >= 0 and walker.taken[position] + 1 >= walker.counts[position]:
            position -= 1
        if position < 0:
            return points
        chosen = walker.taken[:position] + [walker.taken[position] + 1]


def _grid_too_large(space: Space, size: str, factors: Mapping[str, int]) -> SpaceError:
    named = " x ".join(f"{name} ({count})" for name, count in factors.items())
    return SpaceError(f"the grid has {size}: {named}", source=space.source,
                      allowed=f"at most {MAX_GRID_POINTS:,} points: fix some parameters in the study "
                              "(fix: {name: value}), narrow them (parameters: {name: {choice: [...]}}), or use a "
                              "sampler that draws points (random, tpe)")


def grid_size(space: Space, fixed: Mapping[str, Primitive] | None = None) -> tuple[int, dict[str, int]] | None:
    """The number of grid points and each enumerated decision's option count, by arithmetic alone; None where
    conditions decide which parameters are asked (then only the walk can count them).

    The grid is a plain product when every decision is always reached: no choice inside a choice's
    options or an ``if``'s branches, no bounds that are expressions, and every name an option or a
    branch refers to also referred to where it is always evaluated. A parameter nobody refers to is
    not part of the grid.
    """
    fixed = fixed or {}
    scan = _DecisionScan(space)
    try:
        scan.visit(space.template, "spec", always=True)
        pending = list(scan.always)
        while pending:
            name = pending.pop()
            if name in space.parameters and name not in scan.factors:
                scan.decision(name, space.parameters[name], always=True)
                pending += [new for new in scan.always if new not in scan.factors and new in space.parameters]
    except _Conditional:
        return None
    if not scan.conditional <= scan.always:
        return None
    order = {name: index for index, name in enumerate(space.parameters)}  # the file's order, then inline choices
    factors = {name: scan.factors[name] for name in sorted(scan.factors, key=lambda name: order.get(name, len(order)))
               if name not in fixed}
    return math.prod(factors.values()), factors


class _Conditional(Exception):
    """The space's decisions depend on values: its grid cannot be counted by multiplying."""


class _DecisionScan:
    """Walks a space's template and parameters (without sampling) for what ``grid_size`` multiplies."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.factors: dict[str, int] = {}
        self.always: set[str] = set()  # parameter names referred to where they are always evaluated
        self.conditional: set[str] = set()  # those referred to in an option or a branch

    def visit(self, node: Any, path: str, *, always: bool) -> None:
        if isinstance(node, str):
            (self.always if always else self.conditional).update(self._names(PART.findall(node)))
            return
        if isinstance(node, list):
            for index, item in enumerate(node):
                self.visit(item, f"{path}[{index}]", always=always)
            return
        kind = node_kind(node, path)
        if kind in ("choice", "int", "float"):
            self.decision(path.removeprefix("spec."), node, always=always)
        elif kind == "if":
            test = node["if"]
            if isinstance(test, str):
                (self.always if always else self.conditional).update(
                    self._names([PART.sub(lambda match: f"({match.group(1)})", test)]))
            for branch in ("then", "else"):
                self.visit(node.get(branch), f"{path}.{branch}", always=False)
        elif isinstance(node, Mapping):
            for key, value in node.items():
                self.visit(value, f"{path}.{key}", always=always)

    def decision(self, name: str, node: Mapping[str, Any], *, always: bool) -> None:
        if not always:
            raise _Conditional
        kind = node_kind(node, name)
        if kind == "choice":
            options = node["choice"]
            values = list(options.values()) if isinstance(options, Mapping) else options
            if not isinstance(values, list):
                raise _Conditional  # malformed: the walk reports it
            for index, value in enumerate(values):
                self.visit(value, f"{name}.choice[{index}]", always=False)
            self.factors[name] = len(values)
            return
        self.factors[name] = self._range_count(kind, node)

    @staticmethod
    def _range_count(kind: str, node: Mapping[str, Any]) -> int:
        bounds, step = node[kind], node.get("step")
        if not (isinstance(bounds, list) and len(bounds) == 2
                and all(isinstance(value, (int, float)) and not isinstance(value, bool)
                        for value in (*bounds, *([step] if step is not None else [])))):
            raise _Conditional  # bounds that are expressions (or malformed): the walk asks for them
        low, high = bounds
        if kind == "int":
            return len(range(low, high + 1, step or 1)) if isinstance(low, int) and isinstance(high, int) else 0
        if node.get("grid"):
            return len(node["grid"])
        if step:
            return int(round((high - low) / step)) + 1
        raise _Conditional  # not enumerable: the walk says so

    def _names(self, expressions: list[str]) -> set[str]:
        names: set[str] = set()
        for text in expressions:
            try:
                tree = parse_expression(text.strip())
            except SyntaxError:
                raise _Conditional from None  # the walk reports the error
            names.update(node.id for node in ast.walk(tree)
                         if isinstance(node, ast.Name) and node.id in self.space.parameters)
        return names
