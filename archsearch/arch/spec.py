"""ArchSpec: a segmentation network as plain data, parsed and checked from YAML.

A spec has a stem (one path; none: the stages' branches read the image), stages over one or
more resolution branches (fused at stage ends; an empty branch rests for a stage), an optional
context module on the coarsest branch, an optional merge that joins the final branches (else
they are summed), a head, and training-only auxiliary heads (``aux_head``, ``aux_heads``) on
any stage's branch. Block lists may say ``repeat: N`` and ``each: {field: pattern}``; the
parsed spec holds every block expanded, so two ways of writing one network are equal and
share one hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from archsearch.arch.blocks.context import ContextConfig
from archsearch.arch.blocks.fusion import FusionConfig
from archsearch.arch.blocks.heads import HeadConfig
from archsearch.arch.blocks.merge import MergeConfig
from archsearch.arch.blocks.registry import BlockConfig, NormSettings, parse_block, to_plain
from archsearch.arch.initialise import DEFAULT_INIT, INIT_SCHEMES
from archsearch.errors import SpecError
from archsearch.schema import coerce, parse_dataclass, unknown_key
from archsearch.io import read_yaml
from archsearch.arch.patterns import MAX_PATTERN_LENGTH, expand_pattern
from archsearch.arch.topology import AuxHeadSpec, Shapes, StageSpec, Topology, compile_topology


_TOPOLOGY_CACHE = "_compiled_topology"


@dataclass(frozen=True)
class ArchSpec:
    name: str
    stem: tuple[BlockConfig, ...]
    stages: tuple[StageSpec, ...]
    head: HeadConfig
    context: ContextConfig | None = None
    aux_head: AuxHeadSpec | None = None
    merge: MergeConfig | None = None
    aux_heads: tuple[AuxHeadSpec, ...] = ()
    in_channels: int = 3
    norm: NormSettings = NormSettings()
    init: str = DEFAULT_INIT
    description: str = field(default="", compare=False)
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_branches(self) -> int:
        return max((len(stage.branches) for stage in self.stages), default=1)

    def topology(self) -> Topology:
        """The compiled plan that shapes, builds, runs, counts and times this network.

        Compiled once per spec: a spec is immutable, so every walk (shapes, build, MACs, the
        latency predictor) shares one plan. The cache lives outside the dataclass fields, so it
        never takes part in equality, hashing or ``dataclasses.replace``, and is not pickled.
        """
        cached = self.__dict__.get(_TOPOLOGY_CACHE)
        if cached is None:
            cached = compile_topology(in_channels=self.in_channels, stem=self.stem, stages=self.stages,
                                      context=self.context, head=self.head, aux_head=self.aux_head,
                                      merge=self.merge, aux_heads=self.aux_heads)
            object.__setattr__(self, _TOPOLOGY_CACHE, cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != _TOPOLOGY_CACHE}

    def shapes(self) -> Shapes:
        return self.topology().shapes()

    def architecture_dict(self) -> dict[str, Any]:
        """Everything that decides the network, every block expanded; the basis of the hash.

        ``init`` is not in it: it decides the starting weights, not the function, size, cost or
        latency, which the hash keys (latency cache, analyses, exported files); a study's recipe
        fingerprint holds it through its space (see ``run/guard.py``).
        """
        return {
            "in_channels": self.in_channels,
            "norm": to_plain(self.norm),
            "stem": [block.to_dict() for block in self.stem],
            "stages": [_stage_dict(stage, compact=False) for stage in self.stages],
            "context": to_plain(self.context),
            "head": self.head.to_dict(),
            "aux_head": _aux_dict(self.aux_head),
            **self._graph_dict(),
        }

    def _graph_dict(self) -> dict[str, Any]:
        """A merge and several auxiliary heads, only where a spec has them (earlier specs keep their hashes)."""
        data: dict[str, Any] = {}
        if self.merge is not None:
            data["merge"] = self.merge.to_dict()
        if self.aux_heads:
            data["aux_heads"] = [_aux_dict(aux) for aux in self.aux_heads]
        return data

    @property
    def arch_hash(self) -> str:
        """A stable id: the same architecture, however written or named, has the same hash."""
        canonical = json.dumps(self.architecture_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        """YAML-ready data; runs of identical blocks are written back as ``repeat``."""
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        data["in_channels"] = self.in_channels
        data["norm"] = to_plain(self.norm)
        data["init"] = self.init
        data["stem"] = _compact_blocks(self.stem)
        data["stages"] = [_stage_dict(stage, compact=True) for stage in self.stages]
        if self.context is not None:
            data["context"] = self.context.to_dict()
        data["head"] = self.head.to_dict()
        if self.aux_head is not None:
            data["aux_head"] = _aux_dict(self.aux_head)
        data.update(self._graph_dict())
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=110)


def _stage_dict(stage: StageSpec, *, compact: bool) -> dict[str, Any]:
    encode = _compact_blocks if compact else (lambda blocks: [block.to_dict() for block in blocks])
    data: dict[str, Any] = {"branches": [encode(branch) for branch in stage.branches]}
    if stage.fusion is not None or not compact:
        data["fusion"] = to_plain(stage.fusion)
    if stage.input_activation or not compact:
        data["input_activation"] = stage.input_activation
    return data


def _aux_dict(aux: AuxHeadSpec | None) -> dict[str, Any] | None:
    if aux is None:
        return None
    data = {"stage": aux.stage, "branch": aux.branch, "head": aux.head.to_dict()}
    return {**data, "output": aux.output} if aux.output else data


def _compact_blocks(blocks: tuple[BlockConfig, ...]) -> list[dict[str, Any]]:
    compact: list[dict[str, Any]] = []
    index = 0
    while index < len(blocks):
        run = 1
        while index + run < len(blocks) and blocks[index + run] == blocks[index]:
            run += 1
        entry = blocks[index].to_dict()
        compact.append({"repeat": run, **entry} if run > 1 else entry)
        index += run
    return compact


# ---------------------------------------------------------------- parsing

TOP_LEVEL_KEYS = ("name", "description", "metadata", "in_channels", "norm", "init", "stem", "stages", "context",
                  "head", "aux_head", "merge", "aux_heads")
AUX_KEYS = ("stage", "branch", "output", "head")
STAGE_KEYS = ("branches", "blocks", "fusion", "input_activation")


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in allowed:
            raise unknown_key(key, allowed, f"{path}." if path else "")


def parse_block_list(data: Any, path: str, *, allow_empty: bool = False) -> tuple[BlockConfig, ...]:
    """A list of blocks; an item may carry ``repeat: N`` and ``each: {field: pattern}``.

    ``allow_empty``: an empty list passes its input on (a stem-less network, a branch resting for a stage).
    """
    if not isinstance(data, list) or (not data and not allow_empty):
        raise SpecError("expected a non-empty list of blocks", path=path, value=data,
                        allowed="[{block: NAME, ...}, {repeat: N, block: NAME, ...}, ...]")
    expanded: list[BlockConfig] = []
    for index, item in enumerate(data):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            raise SpecError("a block must be a mapping", path=item_path, value=item,
                            allowed="{block: NAME, ...fields}")
        fields = dict(item)
        repeat = fields.pop("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise SpecError("repeat must be a positive integer", path=f"{item_path}.repeat", value=repeat)
        each = fields.pop("each", None)
        variants = [fields] if each is None else _each_variants(fields, each, f"{item_path}.each")
        if len(expanded) + repeat * len(variants) > MAX_PATTERN_LENGTH:
            raise SpecError("too many blocks in one list", path=f"{item_path}.repeat", value=repeat,
                            allowed=f"at most {MAX_PATTERN_LENGTH} blocks in a list")
        for variant in variants:
            config = parse_block(variant, item_path)
            if not isinstance(config, BlockConfig):
                raise SpecError("this block cannot stand in a block list", path=f"{item_path}.block",
                                value=config.name, allowed="conv, rep, dblock, basic, bottleneck")
            expanded.extend([config] * repeat)
    return tuple(expanded)


def _each_variants(fields: dict[str, Any], each: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(each, Mapping) or not each:
        raise SpecError("each must map field names to patterns", path=path, value=each,
                        allowed="{dilations: '[[1],[1,2]] + 4*[[1,4]]'}")
    patterns = {key: expand_pattern(value, f"{path}.{key}") for key, value in each.items()}
    lengths = {len(values) for values in patterns.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise SpecError("every pattern in each must give the same, non-zero number of values", path=path,
                        value={key: len(values) for key, values in patterns.items()})
    count = lengths.pop()
    return [{**fields, **{key: values[index] for key, values in patterns.items()}} for index in range(count)]


def _parse_stage(data: Any, path: str) -> StageSpec:
    if not isinstance(data, Mapping):
        raise SpecError("a stage must be a mapping", path=path, value=data, allowed=", ".join(STAGE_KEYS))
    _check_keys(data, STAGE_KEYS, path)
    if ("branches" in data) == ("blocks" in data):
        raise SpecError("a stage needs exactly one of 'branches' (a list of block lists) or 'blocks'",
                        path=path, value=sorted(data))
    if "blocks" in data:
        branches = (parse_block_list(data["blocks"], f"{path}.blocks"),)
    else:
        raw = data["branches"]
        if not isinstance(raw, list) or not raw:
            raise SpecError("expected a non-empty list of block lists", path=f"{path}.branches", value=raw)
        branches = tuple(parse_block_list(branch, f"{path}.branches[{index}]", allow_empty=True)
                         for index, branch in enumerate(raw))
    fusion = coerce(data.get("fusion"), FusionConfig | None, f"{path}.fusion")
    input_activation = coerce(data.get("input_activation", False), bool, f"{path}.input_activation")
    return StageSpec(branches=branches, fusion=fusion, input_activation=input_activation)


def parse_spec(data: Any, *, source: str = "") -> ArchSpec:
    """Parse and check a spec mapping; every error names ``source``, the key path and the bad value."""
    try:
        spec = _parse_spec(data)
        spec.topology()
        return spec
    except SpecError as error:
        raise error.with_source(source) from None


def _parse_spec(data: Any) -> ArchSpec:
    if not isinstance(data, Mapping):
        raise SpecError("a spec must be a mapping", value=type(data).__name__, allowed=", ".join(TOP_LEVEL_KEYS))
    _check_keys(data, TOP_LEVEL_KEYS, "")
    for key in ("name", "stages", "head"):
        if key not in data:
            raise SpecError("missing required key", path=key, allowed=", ".join(TOP_LEVEL_KEYS))
    stages_data = data["stages"]
    if not isinstance(stages_data, list) or not stages_data:
        raise SpecError("expected a non-empty list of stages", path="stages", value=stages_data)
    aux = data.get("aux_head")
    aux = None if aux is None else _parse_aux_head(aux, "aux_head")
    aux_heads = data.get("aux_heads") or []
    if not isinstance(aux_heads, list):
        raise SpecError("expected a list of auxiliary heads", path="aux_heads", value=aux_heads,
                        allowed="[{stage, branch, output, head}, ...]")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise SpecError("expected a mapping", path="metadata", value=metadata)
    norm_data = data.get("norm")
    init = coerce(data.get("init", DEFAULT_INIT), str, "init")
    if init not in INIT_SCHEMES:
        raise SpecError("unknown initialisation scheme", path="init", value=init, allowed=", ".join(INIT_SCHEMES))
    return ArchSpec(
        name=coerce(data["name"], str, "name"),
        description=coerce(data.get("description", ""), str, "description"),
        metadata=dict(metadata),
        in_channels=coerce(data.get("in_channels", 3), int, "in_channels"),
        norm=NormSettings() if norm_data is None else parse_dataclass(NormSettings, norm_data, "norm"),
        init=init,
        stem=parse_block_list(data.get("stem", []), "stem", allow_empty=True),
        stages=tuple(_parse_stage(stage, f"stages[{index}]") for index, stage in enumerate(stages_data)),
        context=coerce(data.get("context"), ContextConfig | None, "context"),
        head=coerce(data["head"], HeadConfig, "head"),
        aux_head=aux,
        merge=coerce(data.get("merge"), MergeConfig | None, "merge"),
        aux_heads=tuple(_parse_aux_head(item, f"aux_heads[{index}]") for index, item in enumerate(aux_heads)),
    )


def _parse_aux_head(data: Any, path: str) -> AuxHeadSpec:
    """A training-only head on a stage's branch; ``output`` picks another map of the branch's last block."""
    if not isinstance(data, Mapping):
        raise SpecError("expected a mapping", path=path, value=data, allowed=", ".join(AUX_KEYS))
    _check_keys(data, AUX_KEYS, path)
    return AuxHeadSpec(stage=coerce(data.get("stage"), int, f"{path}.stage"),
                       branch=coerce(data.get("branch", 0), int, f"{path}.branch"),
                       output=coerce(data.get("output", 0), int, f"{path}.output"),
                       head=coerce(data.get("head"), HeadConfig, f"{path}.head"))


# ---------------------------------------------------------------- files


def load_spec(path: str | Path) -> ArchSpec:
    """Load a spec YAML file."""
    return parse_spec(read_yaml(Path(path)), source=str(path))


def save_spec(spec: ArchSpec, path: str | Path) -> None:
    Path(path).write_text(spec.to_yaml(), encoding="utf-8")
