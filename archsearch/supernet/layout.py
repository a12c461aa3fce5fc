"""Where each module of a point comes from in its space: the key that shares it among the space's points.

Every block mapping of a space (in the template and in parameter values) is tagged with its
path before a point is resolved, so the resolved spec still says which template item made each
block. A block's share key is that item's path, its block name and its place in the item's
expansion (``each`` variant, ``repeat`` index): a depth choice then uses the item's first d
blocks, a block behind an ``if`` (a branch, a boundary path) or a choice of whole mappings (a
decoder, a fusion) is its own alternative module, and a width or dilation choice changes shapes
or nothing at the same key. Parameters are then shared by name under that key (see ``weights``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping

from archsearch.arch.patterns import expand_pattern
from archsearch.arch.spec import ArchSpec, parse_spec
from archsearch.errors import SpecError
from archsearch.io import parse_expression
from archsearch.space.expressions import PART
from archsearch.space.sampling import NODE_KEYS, FixedSuggester, Primitive, Space, resolve

SLOT = "__slot__"
"""The key a tagged block mapping carries its template path under (removed before parsing)."""

UNSHAREABLE_BLOCKS = ("timm_encoder",)
"""Blocks whose weights are a whole pretrained model: two of its configs share no meaningful slice."""

Params = Mapping[str, Primitive]


@dataclass(frozen=True, eq=False)
class PointLayout:
    """A point's concrete spec and, for every module prefix of its built network, the key that shares it."""

    spec: ArchSpec
    keys: dict[str, str]

    def key_of(self, name: str) -> tuple[str, str]:
        """The share key of the module that holds state-dict entry ``name``, and the entry's name inside it."""
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in self.keys:
                return self.keys[prefix], ":".join(parts[cut:])
        raise KeyError(f"no share key for {name!r}")


def point_key(params: Params) -> tuple[tuple[str, Primitive], ...]:
    """A hashable identity of a point's parameter values."""
    return tuple(sorted(params.items()))


def tag_space(space: Space) -> Space:
    """The space with every block mapping tagged with its path; raises SpecError for a choice it cannot share."""
    check_shareable(space)
    parameters = {name: _tag(node, f"parameters/{name}") for name, node in space.parameters.items()}
    return replace(space, parameters=parameters, template=_tag(space.template, "spec"))


def _tag(node: Any, path: str) -> Any:
    if isinstance(node, list):
        return [_tag(item, f"{path}[{index}]") for index, item in enumerate(node)]
    if not isinstance(node, Mapping):
        return node
    tagged = {key: _tag(value, f"{path}/{key}") for key, value in node.items()}
    if "block" in node and not any(kind in node for kind in NODE_KEYS):
        tagged[SLOT] = path
    return tagged


def layout_of(tagged: Space, params: Params) -> PointLayout:
    """Resolve ``params`` in a tagged space: the point's spec and the share key of each of its modules.

    Raises SpecError when the point is invalid (the same reason ``sample`` gives).
    """
    resolved = resolve(tagged, FixedSuggester(dict(params)))
    if resolved.data is None:
        raise SpecError("invalid point of the space", value=dict(params), allowed=resolved.invalid_reason or "")
    data = resolved.data
    keys: dict[str, str] = {}
    seen: dict[str, int] = {}

    def place(prefix: str, key: str) -> None:
        count = seen.get(key, 0)
        seen[key] = count + 1
        keys[prefix] = key if count == 0 else f"{key}#{count}"

    for prefix, key in _chain_keys("stem", data.get("stem") or []):
        place(prefix, key)
    for stage_index, stage in enumerate(data.get("stages") or []):
        branches = [stage["blocks"]] if "blocks" in stage else stage.get("branches") or []
        for branch_index, items in enumerate(branches):
            for prefix, key in _chain_keys(f"stages.{stage_index}.branches.{branch_index}", items or []):
                place(prefix, key)
        if isinstance(stage.get("fusion"), Mapping):
            place(f"stages.{stage_index}.fusion", _component_key(stage["fusion"], f"stages.{stage_index}.fusion"))
    for name in ("context", "merge", "head"):
        if isinstance(data.get(name), Mapping):
            place(name, _component_key(data[name], name))
    if isinstance(data.get("aux_head"), Mapping):
        place("aux_head", _component_key(data["aux_head"].get("head"), "aux_head"))
    for index, aux in enumerate(data.get("aux_heads") or []):
        place(f"aux_heads.{index}", _component_key(aux.get("head"), f"aux_heads.{index}"))
    spec = parse_spec(_untagged(data), source=f"{tagged.source or tagged.name} (supernet point)")
    return PointLayout(spec=spec, keys=keys)


def _chain_keys(module_path: str, items: list[Any]) -> Iterator[tuple[str, str]]:
    """(module prefix, share key) of every block a block list expands into, in the order the spec expands it."""
    index = 0
    for item in items:
        if not isinstance(item, Mapping):
            return  # parse_spec reports it
        slot = f"{item.get(SLOT, module_path)}|{item.get('block')}"
        repeat = item.get("repeat", 1)
        each = item.get("each")
        variants = len(expand_pattern(next(iter(each.values())), module_path)) if isinstance(each, Mapping) and each \
            else 1
        for variant in range(variants):
            for copy in range(repeat if isinstance(repeat, int) else 1):
                yield f"{module_path}.{index}", f"{slot}|v{variant}r{copy}"
                index += 1


def _component_key(data: Any, module_path: str) -> str:
    if not isinstance(data, Mapping):
        return module_path
    return f"{data.get(SLOT, module_path)}|{data.get('block')}"


def _untagged(node: Any) -> Any:
    if isinstance(node, list):
        return [_untagged(item) for item in node]
    if isinstance(node, Mapping):
        return {key: _untagged(value) for key, value in node.items() if key != SLOT}
    return node


# ---------------------------------------------------------------- what cannot be shared


def check_shareable(space: Space) -> None:
    """Raise SpecError naming a parameter that reaches what weight sharing cannot share.

    The image's channel count (``in_channels``) is the data's, one for every point; a block whose
    weights are a whole pretrained model (``timm_encoder``) has no slice in common with another
    of its configs. Everything else is shared by slicing or held as alternative modules.
    """
    parameters = space.parameters
    for name in sorted(_names_in(space.template.get("in_channels"), parameters)):
        raise SpecError("the supernet cannot share this choice: every point must read the same image channels",
                        path=f"parameters.{name}", value=parameters[name], source=space.source,
                        allowed="a fixed in_channels")
    for mapping in _block_mappings(space.template, parameters):
        for field, value in mapping.items():
            if field == "block" and isinstance(value, str) and "${" not in value:
                continue
            for name in sorted(_names_in(value, parameters)):
                if any(block in UNSHAREABLE_BLOCKS for block in _block_names(mapping, parameters)):
                    raise SpecError("the supernet cannot share this choice: it changes a pretrained encoder "
                                    f"({', '.join(UNSHAREABLE_BLOCKS)}), whose configs share no weights",
                                    path=f"parameters.{name}", value=parameters[name], source=space.source,
                                    allowed="a fixed encoder")


def _block_mappings(node: Any, parameters: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every block mapping of the template and of the parameters' values."""
    for root in (node, *parameters.values()):
        stack = [root]
        while stack:
            current = stack.pop()
            if isinstance(current, list):
                stack.extend(current)
            elif isinstance(current, Mapping):
                if "block" in current:
                    yield current
                stack.extend(current.values())


def _block_names(mapping: Mapping[str, Any], parameters: Mapping[str, Any]) -> set[str]:
    """The block names a mapping can take: its literal name, or every option of the parameters in it."""
    value = mapping.get("block")
    if isinstance(value, str) and "${" not in value:
        return {value}
    names: set[str] = set()
    for name in _names_in(value, parameters):
        options = parameters[name].get("choice", []) if isinstance(parameters[name], Mapping) else []
        names.update(str(option) for option in (options.values() if isinstance(options, Mapping) else options))
    return names


def _names_in(value: Any, parameters: Mapping[str, Any]) -> set[str]:
    """The parameters an expression, or any string in a structure, refers to, through other parameters too."""
    found: set[str] = set()
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, list):
            pending.extend(current)
        elif isinstance(current, Mapping):
            pending.extend(current.values())
        elif isinstance(current, str):
            for text in PART.findall(current) if "${" in current else [current]:  # an if's condition has no ${}
                for name in _expression_names(text):
                    if name in parameters and name not in found:
                        found.add(name)
                        pending.append(parameters[name])
    return found


def _expression_names(text: str) -> set[str]:
    try:
        body = parse_expression(text.strip())
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(body) if isinstance(node, ast.Name)}
