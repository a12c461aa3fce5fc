"""Timings placed on the Ray node that holds the study's target (``latency.placement``), training left where it is.

The driver starts one ``TimingWorker`` actor per study run (``timing_worker``): it asks for the
placement's resources (and no CPU unless they name it), so it lives on a node that offers them and holds
them while the study runs, and it runs one call at a time, so the timings of the study's trials on the
target are serialised. An actor rather than a task per timing: a node that offers no CPU for trials
(``ray start --num-cpus=0``, so that none trains there) keeps no idle Ray worker, and every task would
start a fresh process that imports torch (seconds on a board) while holding the target; the actor
imports it once. It is named after the run's resources, so the trials' workers find it (``RaySite``),
and it ends with the run (or its driver). A second study that names the same target waits until the
first one's run ends.

When the target's node leaves the cluster, Ray restarts the actor (and the call it was running) once a
node offers the resources again; ``RaySite`` waits for that up to the placement's ``timeout_seconds`` of
no node offering them, then gives the call up and raises ``TargetLost``, so that one trial fails with
the reason and the study goes on.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ray

from archsearch.errors import SpecError
from archsearch.latency.placement import Result, TargetLost, TimingPlace, TimingPlacement

POLL_SECONDS = 0.5
IGNORED_RESOURCES = ("memory", "object_store_memory")
NAMED_ARGUMENTS = {"CPU": "num_cpus", "GPU": "num_gpus"}
"""Resources that Ray takes as arguments of their own, not in an actor's ``resources`` mapping."""
WORKER_PREFIX = "archsearch-timing-"
CALL_RETRIES = 3
"""How often a call is run again after the actor died under it: a node that left and came back, not a timing
that crashes its process every time (which would otherwise restart forever while the node stays)."""


class TimingWorker:
    """The study's process on the target's node: runs timing functions there, one at a time."""

    def call(self, function: Callable[..., Result], args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> tuple[Result, TimingPlace]:
        place = TimingPlace(node_id=ray.get_runtime_context().get_node_id(), host=socket.gethostname())
        return function(*args, **kwargs), place


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
                            "`ray start --address=HEAD:6379 --num-cpus=0 --resources='{\"NAME\": 1}'` (README: "
                            "\"Train on the cluster, time on the device\")", source=source)


def worker_name(placement: TimingPlacement) -> str:
    """The actor's name: one per set of resources (the trials' workers look it up by it)."""
    return WORKER_PREFIX + hashlib.sha256(placement.describe().encode()).hexdigest()[:12]


def worker_options(placement: TimingPlacement) -> dict[str, Any]:
    """The actor's options: the placement's resources (no CPU unless named), outside any placement group, restarted
    whenever a node offers them again (with the call it was running, up to CALL_RETRIES times)."""
    options: dict[str, Any] = {"name": worker_name(placement), "num_cpus": 0, "scheduling_strategy": "DEFAULT",
                               "max_restarts": -1, "max_task_retries": CALL_RETRIES}
    for name, amount in placement.resources.items():
        if name in NAMED_ARGUMENTS:
            options[NAMED_ARGUMENTS[name]] = amount
        else:
            options.setdefault("resources", {})[name] = amount
    return options


@contextmanager
def timing_worker(placement: TimingPlacement | None) -> Iterator[None]:
    """The study's TimingWorker on the target's node while the run's trials run (nothing without a placement)."""
    if placement is None:
        yield
        return
    worker = ray.remote(TimingWorker).options(**worker_options(placement)).remote()
    try:
        yield
    finally:
        ray.kill(worker, no_restart=True)  # the target is free for the next study


class RaySite:
    """Runs timing functions on the study's TimingWorker (see the module's docstring)."""

    def __init__(self, placement: TimingPlacement) -> None:
        self.placement = placement

    def call(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> tuple[Result, TimingPlace]:
        call = ray.get_actor(worker_name(self.placement)).call.remote(function, args, kwargs)
        absent_since: float | None = None
        while not ray.wait([call], timeout=POLL_SECONDS)[0]:
            if offering_nodes(self.placement):
                absent_since = None
                continue
            now = time.monotonic()
            absent_since = now if absent_since is None else absent_since
            if now - absent_since >= self.placement.timeout_seconds:
                ray.cancel(call)  # not run if the target comes back: its trial has failed
                raise TargetLost(f"no node of the Ray cluster offered {self.placement.describe()} for "
                                 f"{self.placement.timeout_seconds:g} s (latency.placement.timeout_seconds): the "
                                 f"target's node left the cluster, and this point's timing "
                                 f"({getattr(function, '__name__', function)}) was given up")
        try:
            return ray.get(call)
        except ray.exceptions.RayTaskError as error:  # the timing's own error, as if it had been raised here
            raise error.cause from None
