"""The supernet: one set of shared weights that runs any point of its space.

A point's forward is its own network (``archsearch.build`` of the point's spec, on the meta
device, so it costs no memory) run by ``torch.func.functional_call`` with the shared tensors'
slices in place of its weights. The walk is therefore the point's topology itself, and the
stand-alone network that ``extract`` gives computes exactly what the supernet computes on that
path.
"""

from __future__ import annotations

import copy
import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from archsearch.arch.build import build
from archsearch.arch.network import SegmentationNetwork
from archsearch.space.sampling import Space
from archsearch.supernet.layout import Params, PointLayout, layout_of, point_key, tag_space
from archsearch.supernet.recalibrate import average_statistics, images_of
from archsearch.supernet.weights import SharedWeights, entry_key, role_of, top_left
from archsearch.train.config import DECAY_EXEMPTIONS
from archsearch.train.optim import decay_exempt

RUNNING_STATISTICS = {"running_mean": 0.0, "running_var": 1.0, "num_batches_tracked": 0}
"""What resetting a BatchNorm's statistics sets each of its buffers to."""


@dataclass(frozen=True, eq=False)
class Entry:
    """One state-dict entry of a point's network: its shared tensor's key, its shape, how it starts, and the
    weight-decay exemption rules that keep it out of decay in the point's own network."""

    key: str
    shape: torch.Size
    role: str
    parameter: bool
    dtype: torch.dtype
    decay_exempt: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class PointPlan:
    """A point's layout, its network on the meta device and its state-dict entries."""

    layout: PointLayout
    network: SegmentationNetwork
    entries: dict[str, Entry]

    @property
    def parameter_count(self) -> int:
        return sum(entry.shape.numel() for entry in self.entries.values() if entry.parameter)


class Supernet(nn.Module):
    """Weights shared among a space's points; ``forward(images, params)`` runs the point ``params``.

    Points are parameter values as a space's sampling gives them (``SampledPoint.params``).
    ``register`` grows the shared tensors to what a point needs; ``compile_supernet`` registers
    a covering sample of the space first, so training rarely meets a point that grows them.
    """

    def __init__(self, space: Space, *, num_classes: int = 19, cache_size: int = 64) -> None:
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self.weights = SharedWeights()
        self._tagged = tag_space(space)
        self._plans: OrderedDict[tuple, PointPlan] = OrderedDict()
        self._cache_size = cache_size
        self._registered: set[tuple] = set()
        self.largest: dict | None = None
        self.smallest: dict | None = None

    # ------------------------------------------------------------ points

    def plan(self, params: Params) -> PointPlan:
        """The point's layout, meta-device network and entries (cached for the last ``cache_size`` points)."""
        identity = point_key(params)
        if identity in self._plans:
            self._plans.move_to_end(identity)
            return self._plans[identity]
        layout = layout_of(self._tagged, params)
        with torch.device("meta"):
            network = build(layout.spec, num_classes=self.num_classes)
        owners = dict(network.named_modules())
        entries = {}
        for tensors, parameter in ((network.named_parameters(), True), (network.named_buffers(), False)):
            for name, tensor in tensors:
                share_key, entry = layout.key_of(name)
                owner_name, leaf = name.rsplit(".", 1)
                owner = owners[owner_name]
                exempt = frozenset(rule for rule in DECAY_EXEMPTIONS if parameter and decay_exempt(owner, leaf, rule))
                entries[name] = Entry(entry_key(share_key, entry, tensor.shape), tensor.shape,
                                      role_of(owner, entry, tensor), parameter, tensor.dtype, exempt)
        plan = PointPlan(layout, network, entries)
        self._plans[identity] = plan
        if len(self._plans) > self._cache_size:
            self._plans.popitem(last=False)
        return plan

    def register(self, params: Params) -> bool:
        """Grow the shared tensors to what the point needs; True when any tensor was added or replaced.

        Tensors only grow, so a point registered once fits for good and is not checked again.
        """
        identity = point_key(params)
        if identity in self._registered:
            return False
        device = self._device()
        grown = False
        for entry in self.plan(params).entries.values():
            grown |= self.weights.ensure(entry.key, entry.shape, entry.role, parameter=entry.parameter,
                                         dtype=entry.dtype, device=device, decay_exempt=entry.decay_exempt)
        self._registered.add(identity)
        return grown

    def state_of(self, params: Params) -> dict[str, Tensor]:
        """The point's state dict as views of the shared tensors (its weights and BatchNorm statistics)."""
        self.register(params)
        return {name: top_left(self.weights.tensor(entry.key), entry.shape)
                for name, entry in self.plan(params).entries.items()}

    def undecayed(self, exempt: str) -> list[nn.Parameter]:
        """The shared parameters the rule ``exempt`` (a recipe's ``weight_decay_exempt``) keeps out of decay: those
        it exempts in the points' own networks, by their names there."""
        return [parameter for key, parameter in self.weights.named_parameters() if exempt in self.weights.exempt[key]]

    # ------------------------------------------------------------ running a path

    def forward(self, images: Tensor, params: Params, return_aux: bool = False) -> Tensor | tuple:
        """Run the point ``params`` on ``images`` with the shared weights (as its own network would)."""
        plan = self.plan(params)
        if plan.network.training != self.training:
            plan.network.train(self.training)
        return functional_call(plan.network, self.state_of(params), (images,), {"return_aux": return_aux},
                               strict=True)

    def recalibrate(self, params: Params, batches: Iterable) -> int:
        """Re-estimate the point's BatchNorm statistics on ``batches`` (their plain average); batches used.

        The statistics are shared tensors, so this is per path: evaluate (or extract) the point
        before recalibrating another one.
        """
        plan = self.plan(params)
        with torch.no_grad():
            for name, tensor in self.state_of(params).items():
                leaf = name.rsplit(".", 1)[-1]
                if leaf in RUNNING_STATISTICS and not plan.entries[name].parameter:
                    tensor.fill_(RUNNING_STATISTICS[leaf])
        norms = [module for module in plan.network.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
        count = 0
        with average_statistics(norms, self):
            for batch in batches:
                self(images_of(batch).to(self._device()), params)
                count += 1
        return count

    def _device(self) -> torch.device:
        tensors = itertools.chain(self.weights.parameters(), self.weights.buffers())
        return next((tensor.device for tensor in tensors), torch.device("cpu"))


def extract(supernet: Supernet, params: Params) -> SegmentationNetwork:
    """The stand-alone network of ``build(point)`` holding the supernet's weights for it (copies, not views).

    In eval mode its outputs equal the supernet's on that path; it deploys, times and exports
    like any other built network.
    """
    network = copy.deepcopy(supernet.plan(params).network)  # on the meta device: a copy of its structure only
    state = {name: tensor.detach().clone() for name, tensor in supernet.state_of(params).items()}
    network.load_state_dict(state, assign=True)
    return network.train(supernet.training)
