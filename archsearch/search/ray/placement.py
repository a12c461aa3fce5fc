"""Timings placed on the Ray node that holds the study's target (``latency.placement``), training left where it is.

Each timing is one Ray task that asks for the placement's resources (and no CPU unless they name it),
so it runs on a node offering them and Ray's resource accounting serialises the timings on each
target: a node started with ``--resources='{"jetson_orin": 1}'`` runs one timing at a time, whichever
trial, process or study sent it. A task (not an actor per target) needs no naming or restarting: when
the target's node leaves the cluster, Ray retries the lost task once a node offers the resources again,
and the task that times the point stays pending meanwhile; ``RaySite`` waits for that up to the
placement's ``timeout_seconds`` of no node offering them, then cancels it and raises ``TargetLost``, so
that one trial fails with the reason and the study goes on.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import ray

from archsearch.errors import SpecError
from archsearch.latency.placement import Result, TargetLost, TimingPlace, TimingPlacement

POLL_SECONDS = 0.5
IGNORED_RESOURCES = ("memory", "object_store_memory")


def _run_here(function: Callable[..., Result], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Result, TimingPlace]:
    """The task body: the timing function, and the node and host it ran on."""
    place = TimingPlace(node_id=ray.get_runtime_context().get_node_id(), host=socket.gethostname())
    return function(*args, **kwargs), place


_on_target = ray.remote(_run_here)


def offering_nodes(placement: TimingPlacement) -> list[dict[str, Any]]:
    """The cluster's live nodes (``ray.nodes()`` entries) that offer the placement's resources."""
    return [node for node in ray.nodes() if node.get("Alive") and placement.offered_by(node.get("Resources", {}))]


def cluster_offer() -> str:
    """What each live node offers, for a message: ``10.0.0.2: CPU 16, GPU 1; 10.0.0.3: CPU 8, jetson_orin 1``."""
    nodes = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        resources = {name: amount for name, amount in node.get("Resources", {}).items()
                     if name not in IGNORED_RESOURCES and not name.startswith("node:")}
        listed = ", ".join(f"{name} {amount:g}" for name, amount in sorted(resources.items())) or "nothing"
        nodes.append(f"{node.get('NodeManagerAddress', '?')}: {listed}")
    return "; ".join(nodes) or "no live node"


def check_placement_offered(placement: TimingPlacement | None, source: str) -> None:
    """Before any trial: a placement that no live node offers would leave every timing waiting; say so now."""
    if placement is None or offering_nodes(placement):
        return
    raise SpecError(f"no node of the Ray cluster offers the resources {placement.describe()} that every timing "
                    f"asks for (the cluster offers, by node: {cluster_offer()})", path="latency.placement.resources",
                    value=placement.resources,
                    allowed="resources a live node offers; join the target's machine to the cluster with "
                            "`ray start --address=HEAD:6379 --resources='{\"NAME\": 1}'` (README: \"Train on the "
                            "cluster, time on the device\")", source=source)


class RaySite:
    """Runs timing functions as Ray tasks on a node offering ``placement``'s resources (see the module's
    docstring); ``clock`` and ``poll_seconds`` let tests shorten the wait."""

    def __init__(self, placement: TimingPlacement, *, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.placement = placement
        self.poll_seconds = poll_seconds
        self.clock = clock

    def call(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> tuple[Result, TimingPlace]:
        task = _on_target.options(**self.placement.ray_options()).remote(function, args, kwargs)
        absent_since: float | None = None
        while not ray.wait([task], timeout=self.poll_seconds)[0]:
            if offering_nodes(self.placement):
                absent_since = None
                continue
            now = self.clock()
            absent_since = now if absent_since is None else absent_since
            if now - absent_since >= self.placement.timeout_seconds:
                ray.cancel(task, force=True)
                raise TargetLost(f"no node of the Ray cluster offered {self.placement.describe()} for "
                                 f"{self.placement.timeout_seconds:g} s (latency.placement.timeout_seconds): the "
                                 f"target's node left the cluster, and {getattr(function, '__name__', 'a timing')} "
                                 f"of this point was given up")
        try:
            return ray.get(task)
        except ray.exceptions.RayTaskError as error:  # the timing's own error, as if it had been raised here
            raise error.cause from None
