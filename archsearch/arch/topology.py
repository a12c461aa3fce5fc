"""The one plan of a network: which tensors every node reads, what it makes, and from which config.

A spec is compiled once into a small graph of nodes in the order the network runs them. Each
node reads named tensors (``Ref``: a node's name and output index; ``IMAGE`` is the input
image), so a branch may fork from the image or from any earlier branch, a fusion may read any
number of branches, a merge joins the final branches into one map, and an auxiliary head may
read any stage's branch (or another map of its last block, an encoder's level). Shape checks, the
built module and its forward, the receptive field and the latency predictor's units all walk
this plan; what a node does is said once, by its ``NodeKind`` in ``NODE_KINDS``.

Adding a block needs nothing here (a block is a ``BlockConfig`` inside a ``blocks`` node). A new
kind of node (a cross-branch connection, another fusion) is one ``NodeKind`` and the line of
``compile_topology`` that places it; a new branch rule is a change to ``branch_source``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, NamedTuple

from torch import Tensor, nn

from archsearch.arch.blocks.context import ContextConfig
from archsearch.arch.blocks.fusion import FusionConfig
from archsearch.arch.blocks.heads import HeadConfig
from archsearch.arch.blocks.layers import resize_to
from archsearch.arch.blocks.merge import MergeConfig
from archsearch.arch.blocks.registry import BlockConfig, ComponentConfig, NormSettings, require
from archsearch.arch.receptive_field import ReceptiveField, widest
from archsearch.errors import SpecError


@dataclass(frozen=True)
class StageSpec:
    """Blocks per branch, then an optional fusion. A branch not in the previous stage forks from its coarsest."""

    branches: tuple[tuple[BlockConfig, ...], ...]
    fusion: FusionConfig | None = None
    input_activation: bool = False


@dataclass(frozen=True)
class AuxHeadSpec:
    """A training-only head on one branch's output after one stage (DDRNet: detail branch after stage 4)."""

    stage: int
    branch: int
    head: HeadConfig
    output: int = 0


class Ref(NamedTuple):
    """One tensor of the plan: output ``index`` of the node named ``node`` (a tuple, so torch.compile traces it)."""

    node: str
    index: int = 0


IMAGE = Ref("image")
"""The input image, which any node may read (BiSeNet's two paths both start from it)."""


@dataclass(frozen=True)
class Feature:
    """Channels and stride (input pixels per feature pixel) of one tensor; ``channels`` None: one per class."""

    channels: int | None
    stride: int


@dataclass(frozen=True, eq=False)
class Node:
    """One step of the network.

    ``name`` is the node's key path in the spec (it labels errors and latency units);
    ``module_path`` is where its module sits in the built network, which fixes the state-dict
    names (nodes may share a stateless module). A ``blocks`` node is a chain of ``blocks``; any
    other node has one ``component``. ``details`` holds what else its kind needs (the head's
    branch count and maps by stride).
    """

    kind: str
    name: str
    module_path: str
    inputs: tuple[Ref, ...]
    input_features: tuple[Feature, ...]
    outputs: tuple[Feature, ...]
    component: ComponentConfig | None = None
    blocks: tuple[BlockConfig, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    training_only: bool = False

    def output(self, index: int = 0) -> Ref:
        return Ref(self.name, index)


@dataclass(frozen=True)
class Shapes:
    """Channels and strides through a spec: the stem, each stage's branches, the final map, every stride's map."""

    stem: tuple[int, int]
    stages: tuple[tuple[tuple[int, int], ...], ...]
    final: tuple[int, int]
    features: dict[int, int]


@dataclass(frozen=True, eq=False)
class Topology:
    """A compiled spec: its nodes in running order and the tensors other code asks for by role."""

    nodes: tuple[Node, ...]
    in_channels: int
    stem: Ref
    stage_outputs: tuple[tuple[Ref, ...], ...]
    final: Ref
    logits: Ref
    aux_logits: Ref | None
    more_aux_logits: tuple[Ref, ...] = ()

    def feature(self, ref: Ref) -> Feature:
        if ref == IMAGE:
            return Feature(self.in_channels, 1)
        return self.node(ref.node).outputs[ref.index]

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def shapes(self) -> Shapes:
        def pair(ref: Ref) -> tuple[int, int]:
            feature = self.feature(ref)
            return feature.channels, feature.stride

        head = self.node(self.logits.node)
        features = {stride: self.feature(ref).channels for stride, ref in head.details["feature_refs"].items()}
        final = pair(self.final)
        features[final[1]] = final[0]
        stages = tuple(tuple(pair(ref) for ref in refs) for refs in self.stage_outputs)
        return Shapes(stem=pair(self.stem), stages=stages, final=final, features=features)

    def receptive_field(self) -> ReceptiveField:
        """The theoretical receptive field of the final feature map (before the head, as RegSeg counts it)."""
        fields = {IMAGE: ReceptiveField()}
        for node in self.nodes:
            if node.training_only:
                continue
            outputs = NODE_KINDS[node.kind].receptive_fields(node, [fields[ref] for ref in node.inputs])
            fields.update({node.output(index): output for index, output in enumerate(outputs)})
        return fields[self.logits]


# ---------------------------------------------------------------- compiling a spec


def branch_source(branch_index: int, previous: list[Ref]) -> Ref:
    """The one branch rule: a branch continues the branch of its index; a new branch forks from the coarsest."""
    return previous[branch_index] if branch_index < len(previous) else previous[-1]


class PlanBuilder:
    """Adds nodes in running order; each node kind traces (and checks) its outputs from its inputs' features."""

    def __init__(self, in_channels: int) -> None:
        self.nodes: list[Node] = []
        self.features: dict[Ref, Feature] = {IMAGE: Feature(in_channels, 1)}

    def add(self, kind: str, name: str, module_path: str, inputs: tuple[Ref, ...], *,
            component: ComponentConfig | None = None, blocks: tuple[BlockConfig, ...] = (),
            training_only: bool = False, **details: Any) -> Node:
        """Add a node reading ``inputs``; raises SpecError (at the node's key path) if they do not fit it."""
        draft = Node(kind, name, module_path, tuple(inputs), tuple(self.features[ref] for ref in inputs), (),
                     component=component, blocks=blocks, details=details, training_only=training_only)
        node = replace(draft, outputs=NODE_KINDS[kind].trace(draft))
        self.nodes.append(node)
        self.features.update({node.output(index): output for index, output in enumerate(node.outputs)})
        return node

    def features_of(self, node_name: str) -> tuple[Feature, ...]:
        return next(node.outputs for node in self.nodes if node.name == node_name)

    def chain(self, name: str, module_path: str, source: Ref, blocks: tuple[BlockConfig, ...]) -> Ref:
        """A chain of blocks from ``source`` (the image or any branch); its output's reference."""
        return self.add("blocks", name, module_path, (source,), blocks=blocks).output()


def compile_topology(*, in_channels: int, stem: tuple[BlockConfig, ...], stages: tuple[StageSpec, ...],
                     context: ContextConfig | None, head: HeadConfig, aux_head: AuxHeadSpec | None,
                     merge: MergeConfig | None = None, aux_heads: tuple[AuxHeadSpec, ...] = ()) -> Topology:
    """Compile a spec's parts into its plan; raises SpecError where they do not fit together."""
    require(in_channels > 0, "must be positive", path="in_channels", value=in_channels)
    plan = PlanBuilder(in_channels)
    stem_ref = plan.chain("stem", "stem", IMAGE, stem)
    current = [stem_ref]
    by_stride = {plan.features[stem_ref].stride: stem_ref}
    stage_outputs, stage_chains = [], []
    for stage_index, stage in enumerate(stages):
        path, module = f"stages[{stage_index}]", f"stages.{stage_index}"
        require(len(stage.branches) >= len(current), "a stage cannot drop branches", path=f"{path}.branches",
                value=len(stage.branches), allowed=f"at least {len(current)}")
        if stage.input_activation:
            current = [plan.add("activation", f"{path}.input_activation[{index}]", f"{module}.input_act",
                                (ref,)).output() for index, ref in enumerate(current)]
        outputs = [plan.chain(f"{path}.branches[{index}]", f"{module}.branches.{index}", branch_source(index, current),
                              blocks) for index, blocks in enumerate(stage.branches)]
        stage_chains.append(tuple(outputs))
        if stage.fusion is not None:
            fusion = plan.add("fusion", f"{path}.fusion", f"{module}.fusion", tuple(outputs), component=stage.fusion)
            outputs = [fusion.output(index) for index in range(len(outputs))]
        by_stride.update({plan.features[ref].stride: ref for ref in outputs})
        stage_outputs.append(tuple(outputs))
        current = outputs
    if context is not None:
        current[-1] = plan.add("context", "context", "context", (current[-1],), component=context).output()
        by_stride[plan.features[current[-1]].stride] = current[-1]
    if merge is not None:  # one module joins the final branches (PIDNet's Bag, BiSeNet's FFM and BGA)
        current = [plan.add("merge", "merge", "merge", tuple(current), component=merge).output()]
        by_stride[plan.features[current[0]].stride] = current[0]
    final = plan.features[current[0]]
    for index, ref in enumerate(current[1:], start=1):
        require(plan.features[ref].channels == final.channels, "branches are summed at the end and need equal widths",
                path="context.out_channels" if index == len(current) - 1 and context else "stages",
                value=plan.features[ref].channels, allowed=str(final.channels))
    feature_refs = {stride: by_stride[stride] for stride in sorted(by_stride) if stride != final.stride}
    head_node = plan.add("head", "head", "head", (*current, *feature_refs.values()), component=head,
                         branches=len(current), feature_refs=feature_refs, final_stride=final.stride)
    aux_ref = None
    if aux_head is not None:
        aux_ref = _add_aux_head(plan, aux_head, "aux_head", "aux_head", stage_outputs, stage_chains)
    more_aux = tuple(_add_aux_head(plan, aux, f"aux_heads[{index}]", f"aux_heads.{index}", stage_outputs, stage_chains)
                     for index, aux in enumerate(aux_heads))
    return Topology(nodes=tuple(plan.nodes), in_channels=in_channels, stem=stem_ref, stage_outputs=tuple(stage_outputs),
                    final=current[0], logits=head_node.output(), aux_logits=aux_ref, more_aux_logits=more_aux)


def _add_aux_head(plan: PlanBuilder, aux: AuxHeadSpec, name: str, module_path: str,
                  stage_outputs: list[tuple[Ref, ...]], stage_chains: list[tuple[Ref, ...]]) -> Ref:
    """A training-only head on a stage's branch: its (fused) output, or another output of its chain's last block."""
    require(0 <= aux.stage < len(stage_outputs), "no such stage", path=f"{name}.stage", value=aux.stage,
            allowed=f"0..{len(stage_outputs) - 1}")
    tapped = stage_outputs[aux.stage]
    require(0 <= aux.branch < len(tapped), "no such branch", path=f"{name}.branch", value=aux.branch,
            allowed=f"0..{len(tapped) - 1}")
    source = tapped[aux.branch]
    if aux.output != 0:
        chain = stage_chains[aux.stage][aux.branch]
        outputs = len(plan.features_of(chain.node))
        require(0 <= aux.output < outputs, "the branch's last block has no such output", path=f"{name}.output",
                value=aux.output, allowed=f"0..{outputs - 1}")
        source = Ref(chain.node, aux.output)
    return plan.add("aux_head", name, module_path, (source,), component=aux.head, training_only=True).output()


# ---------------------------------------------------------------- what each kind of node does


class NodeKind:
    """What one kind of node does, said once: build, run, receptive field and its latency units.

    ``unit_kind`` names the node's latency units (None: not timed, for training-only nodes).
    """

    unit_kind: str | None = None

    def trace(self, node: Node) -> tuple[Feature, ...]:
        """The node's output features from ``node.input_features``; SpecError where they do not fit."""
        return node.input_features

    def build(self, node: Node, norm: NormSettings, num_classes: int) -> nn.Module:
        raise NotImplementedError

    def run(self, node: Node, module: nn.Module, inputs: list[Tensor], image_size: tuple[int, int]) -> list[Tensor]:
        """The node's output tensors from its input tensors (``image_size``: the input image's height and width)."""
        return [module(*inputs)]

    def receptive_fields(self, node: Node, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        raise NotImplementedError

    def units(self, node: Node) -> list[Node]:
        """The pieces the latency predictor times one by one; each reads the previous piece or the node's inputs."""
        return [node]

    def label(self, node: Node) -> str:
        return node.name

    def unit_details(self, node: Node, num_classes: int, image_size: tuple[int, int]) -> dict[str, Any]:
        """What else decides a unit's latency, besides its config and input shapes (part of its key)."""
        return {}


class _Blocks(NodeKind):
    """A chain of blocks; each block is checked against its input (errors at ``name[index]``)."""

    unit_kind = "block"

    def trace(self, node: Node) -> tuple[Feature, ...]:
        """The chain's outputs: its last block's (an encoder may give several; only a last block may)."""
        outputs = node.input_features[:1]
        for index, block in enumerate(node.blocks):
            try:
                require(len(outputs) == 1, "a block giving several maps must end its chain",
                        path="block", value=node.blocks[index - 1].name)
                block.check(outputs[0].channels)
            except SpecError as error:
                raise error.under(f"{node.name}[{index}]")
            outputs = tuple(Feature(channels, outputs[0].stride * stride)
                            for channels, stride in block.output_features(outputs[0].channels))
        return outputs

    def build(self, node: Node, norm: NormSettings, num_classes: int) -> nn.Module:
        layers, channels = [], node.input_features[0].channels
        for block in node.blocks:
            layers.append(block.build(channels, norm))
            channels = block.output_channels(channels)
        return nn.Sequential(*layers)

    def run(self, node: Node, module: nn.Module, inputs: list[Tensor], image_size: tuple[int, int]) -> list[Tensor]:
        outputs = module(*inputs)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def receptive_fields(self, node: Node, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        current = fields
        for block in node.blocks:
            current = block.receptive_fields(current[0])
        return list(current)

    def units(self, node: Node) -> list[Node]:
        pieces, source, feature = [], node.inputs[0], node.input_features[0]
        for index, block in enumerate(node.blocks):
            piece = Node("blocks", f"{node.name}[{index}]", f"{node.module_path}.{index}", (source,), (feature,), (),
                         component=block, blocks=(block,))
            piece = replace(piece, outputs=self.trace(piece))
            pieces.append(piece)
            source, feature = piece.output(), piece.outputs[0]
        return pieces

    def label(self, node: Node) -> str:
        return f"{node.name} {node.component.name}"


class _Activation(NodeKind):
    """A stage's input activation: ReLU on a branch before the stage's blocks."""

    unit_kind = "activation"

    def build(self, node: Node, norm: NormSettings, num_classes: int) -> nn.Module:
        return nn.ReLU()

    def receptive_fields(self, node: Node, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        return fields


class _Fusion(NodeKind):
    """Reads every branch of a stage and gives each back fused."""

    unit_kind = "fusion"

    def trace(self, node: Node) -> tuple[Feature, ...]:
        strides = self.strides(node)
        for finer, coarser in zip(strides, strides[1:]):
            ratio = coarser / finer
            require(ratio >= 1 and math.log2(ratio).is_integer(),
                    "fused branches must go from fine to coarse by powers of two",
                    path=f"{node.name.removesuffix('.fusion')}.branches", value=strides)
        try:
            node.component.check_branches([feature.channels for feature in node.input_features], strides)
        except SpecError as error:
            raise error.under(node.name)
        return node.input_features

    def strides(self, node: Node) -> list[int]:
        return [feature.stride for feature in node.input_features]

    def build(self, node: Node, norm: NormSettings, num_classes: int) -> nn.Module:
        return node.component.build([feature.channels for feature in node.input_features],
                                    self.strides(node), norm)

    def run(self, node: Node, module: nn.Module, inputs: list[Tensor], image_size: tuple[int, int]) -> list[Tensor]:
        return module(list(inputs))

    def receptive_fields(self, node: Node, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        return node.component.receptive_fields(fields, self.strides(node))

    def unit_details(self, node: Node, num_classes: int, image_size: tuple[int, int]) -> dict[str, Any]:
        return {"strides": self.strides(node)}


class _Context(NodeKind):
    """A context module on one branch (the coarsest): same stride, its own width."""

    unit_kind = "context"

    def trace(self, node: Node) -> tuple[Feature, ...]:
        (source,) = node.input_features
        return (Feature(node.component.output_channels(source.channels), source.stride),)

    def build(self, node: Node, norm: NormSettings, num_classes: int) -> nn.Module:
        return node.component.build(node.input_features[0].channels, norm)

    def receptive_fields(self, node: Node, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        return [node.component.receptive_field(fields[0])]


class _Merge(NodeKind):
    """Joins several branches into one map, or a few (PIDNet's Bag, BiSeNet's FFM and BGA)."""

    unit_kind = "merge"

    def trace(self, node: Node) -> tuple[Feature, ...]:
        channels, strides = self._shapes(node)
        try:
            node.component.check(channels, strides)
        except SpecError as error:
            raise error.under(node.name)
        return tuple(Feature(width, stride) for width, stride in node.component.outputs(channels, strides))

    def _shapes(self, node: Node) -> tuple[list[int], list[int]]:
        return [feature.channels for feature in node.input_features], [feature.stride for feature in node.input_features]

    def build(self, node: Node, norm: NormSettings, num_classes: int) -> nn.Module:
        return node.component.build(*self._shapes(node), norm)

    def run(self, node: Node, module: nn.Module, inputs: list[Tensor], image_size: tuple[int, int]) -> list[Tensor]:
        outputs = module(list(inputs))
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def receptive_fields(self, node: Node, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        return node.component.receptive_fields(fields)

    def unit_details(self, node: Node, num_classes: int, image_size: tuple[int, int]) -> dict[str, Any]:
        return {"strides": self._shapes(node)[1]}


class _Head(NodeKind):
    """Sums the final branches at the finest one's size, runs the head on it and the maps by stride, resizes."""

    unit_kind = "tail"

    def trace(self, node: Node) -> tuple[Feature, ...]:
        try:
            node.component.check(node.input_features[0].channels, self.feature_channels(node))
        except SpecError as error:
            raise error.under(node.name)
        return (Feature(None, 1),)

    def feature_channels(self, node: Node) -> dict[int, int]:
        """The channels of the map at every stride the head may read, the final (summed) map's included."""
        final = node.input_features[0]
        maps = node.input_features[node.details["branches"]:]
        channels = {stride: feature.channels for stride, feature in zip(node.details["feature_refs"], maps)}
        channels[final.stride] = final.channels
        return channels

    def build(self, node: Node, norm: NormSettings, num_classes: int) -> nn.Module:
        return node.component.build(node.input_features[0].channels, self.feature_channels(node), num_classes, norm)

    def run(self, node: Node, module: nn.Module, inputs: list[Tensor], image_size: tuple[int, int]) -> list[Tensor]:
        branches, maps = inputs[:node.details["branches"]], inputs[node.details["branches"]:]
        final = branches[0]
        for coarser in branches[1:]:
            final = final + resize_to(coarser, final.shape[-2:])
        features = dict(zip(node.details["feature_refs"], maps))
        features[node.details["final_stride"]] = final
        return [resize_to(module(final, features), image_size, align_corners=node.component.align_corners)]

    def receptive_fields(self, node: Node, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        branches = fields[:node.details["branches"]]
        return [widest(*[branch.at_jump(branches[0].jump) for branch in branches])]

    def label(self, node: Node) -> str:
        return "tail (branch sum, head, resize)"

    def unit_details(self, node: Node, num_classes: int, image_size: tuple[int, int]) -> dict[str, Any]:
        return {"branches": node.details["branches"], "feature_strides": list(node.details["feature_refs"]),
                "final_stride": node.details["final_stride"], "num_classes": num_classes,
                "image_size": list(image_size)}


class _AuxHead(NodeKind):
    """A training-only head on one tensor, resized to the image."""

    def trace(self, node: Node) -> tuple[Feature, ...]:
        return (Feature(node.component.fixed_output_channels, 1),)  # None: class logits

    def build(self, node: Node, norm: NormSettings, num_classes: int) -> nn.Module:
        return node.component.build(node.input_features[0].channels, {}, num_classes, norm)

    def run(self, node: Node, module: nn.Module, inputs: list[Tensor], image_size: tuple[int, int]) -> list[Tensor]:
        return [resize_to(module(inputs[0]), image_size, align_corners=node.component.align_corners)]


NODE_KINDS: dict[str, NodeKind] = {
    "blocks": _Blocks(),
    "activation": _Activation(),
    "fusion": _Fusion(),
    "context": _Context(),
    "head": _Head(),
    "aux_head": _AuxHead(),
    "merge": _Merge(),
}
