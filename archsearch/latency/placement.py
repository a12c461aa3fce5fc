"""Where a study's timings run: in the trial's own process, or on the cluster node that holds the target device.

A point is deployed on a device chosen for deployment (an edge board, an inference GPU), usually not
the one that trains it. ``latency: {placement: {resources: {NAME: AMOUNT}}}`` names the Ray resources
that device's node offers; every timing of the study then runs there (the Ray backend's
``search.ray.placement``), while training stays where its trial runs. Timing code asks a
``TimingSite`` to call a timing function and gets back its result and the ``TimingPlace`` that ran it;
``LocalSite`` is this process. The timing code (the cache, the reference, the predictor) takes a
``run`` (``call_here`` by default) through which it calls its timing functions. Nothing here imports
torch or Ray: a study file reads it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

from archsearch.schema import Range, require

MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
DEFAULT_TIMEOUT_SECONDS = 600.0
RAY_RESERVED = ("memory", "object_store_memory")

Result = TypeVar("Result")
RunTiming = Callable[..., Any]
"""``run(function, *args, **kwargs)``: calls a timing function where the timings run, returns its result."""


def call_here(function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
    """Run a timing function in this process: the timing code's default ``run``."""
    return function(*args, **kwargs)


@dataclass(frozen=True)
class TimingPlacement:
    """``latency.placement``: the Ray resources a node must offer to time this study's points, and how long a
    timing waits while no node offers them (the target's node left the cluster) before its trial fails.

    A timing asks for exactly ``resources``, so a node offering one unit of a resource (``ray start
    --resources='{"jetson_orin": 1}'``) times one point at a time: Ray's own accounting serialises the
    timings on each target, across every trial and every study that shares the cluster. ``CPU`` and
    ``GPU`` are Ray's own resources (a timing asks for no CPU unless ``CPU`` is named here).
    """

    resources: dict[str, Annotated[float, Range(0.0, exclusive_minimum=True)]]
    timeout_seconds: Annotated[float, Range(0.0, MAX_TIMEOUT_SECONDS, exclusive_minimum=True,
                                            why="a target waited for longer than a week is a typo")] = \
        DEFAULT_TIMEOUT_SECONDS

    def validate(self) -> None:
        require(bool(self.resources), "expected at least one resource the target's node offers", path="resources",
                value={}, allowed='a mapping of resource names to amounts, e.g. {jetson_orin: 1}')
        for name in self.resources:
            require(bool(name) and name not in RAY_RESERVED and not name.startswith("node:"),
                    "not a resource a timing can ask for", path=f"resources.{name}", value=name,
                    allowed="a custom resource given to `ray start --resources`, or CPU, GPU")

    def describe(self) -> str:
        """The resources as a user wrote them, e.g. ``{jetson_orin: 1}``."""
        return "{" + ", ".join(f"{name}: {amount:g}" for name, amount in sorted(self.resources.items())) + "}"

    def offered_by(self, node_resources: dict[str, float]) -> bool:
        """Whether a node with these total resources can run a timing."""
        return all(node_resources.get(name, 0.0) >= amount for name, amount in self.resources.items())


@dataclass(frozen=True)
class TimingPlace:
    """The node that ran a timing: its Ray node id (None outside Ray) and host name. Recorded with the point
    (``latency_node_id``, ``latency_host``), beside the device's name (``latency_device``)."""

    node_id: str | None
    host: str


class TargetLost(RuntimeError):
    """No node offered the placement's resources for its timeout: the target's node left the cluster.

    Not bad input: the trial fails with this reason and the study goes on (its next timings wait again).
    """


class TimingSite(Protocol):
    """Runs timing functions where the study's target is (see the module's docstring)."""

    def call(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> tuple[Result, TimingPlace]:
        """``function(*args, **kwargs)`` run on the target: its result and the place that ran it."""


class LocalSite:
    """Timings run in this process (no placement, or the Optuna backend)."""

    def call(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> tuple[Result, TimingPlace]:
        return function(*args, **kwargs), TimingPlace(node_id=None, host=socket.gethostname())
