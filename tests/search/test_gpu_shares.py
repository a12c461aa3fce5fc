"""GPU shares: with Ray, `resources: {gpu: 0.25}` runs four trials at once on one GPU, each on the GPU Ray
assigned it. A local Ray that declares one GPU stands in for the machine (no CUDA needed to place trials)."""

from __future__ import annotations

import logging
import time

import pytest

ray = pytest.importorskip("ray")

from archsearch.search import load_study  # noqa: E402
from archsearch.search.ray.driver import trial_resources, trial_slots  # noqa: E402
from archsearch.search.ray.trial import trial_device  # noqa: E402


@pytest.fixture
def one_gpu_ray():
    try:
        ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    except Exception as error:  # a sandbox without shared memory or sockets
        pytest.skip(f"Ray cannot start here: {type(error).__name__}: {error}")
    yield
    ray.shutdown()


@ray.remote
class Gathering:
    """Counts arrivals; a trial waits here until all four are running at once."""

    def __init__(self) -> None:
        self.arrived = 0

    def arrive(self) -> None:
        self.arrived += 1

    def count(self) -> int:
        return self.arrived


def occupy_share(gathering, expected: int) -> list[int]:
    gathering.arrive.remote()
    deadline = time.monotonic() + 240
    while ray.get(gathering.count.remote()) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError("the other trials never ran alongside this one")
        time.sleep(0.05)
    return ray.get_gpu_ids()


def test_a_quarter_gpu_places_four_trials_on_one_gpu(tiny_study, one_gpu_ray):
    config = load_study(tiny_study, ["resources={cpu: 1, gpu: 0.25}"])
    resources = trial_resources(config)
    assert resources == {"cpu": 1, "gpu": 0.25} and trial_slots(config) == 4
    gathering = Gathering.remote()
    share = ray.remote(occupy_share).options(num_cpus=resources["cpu"], num_gpus=resources["gpu"])
    gpu_ids = ray.get([share.remote(gathering, 4) for _ in range(4)], timeout=300)  # four workers start on 2 cores
    assert [list(map(int, ids)) for ids in gpu_ids] == [[0]] * 4  # four at once, all on GPU 0
    assert trial_slots(load_study(tiny_study, ["resources={cpu: 1, gpu: 0.5}"])) == 2


def test_a_trial_with_a_gpu_share_trains_on_the_gpu_ray_gave_it(tiny_study):
    shared = load_study(tiny_study, ["resources={gpu: 0.25}", "training.device=cuda:3"])
    assert trial_device(shared) == "cuda"
    assert trial_device(load_study(tiny_study, ["training.device=cpu"])) == "cpu"


def test_a_trial_of_several_processes_asks_for_resources_per_process(tiny_study):
    config = load_study(tiny_study, ["resources={cpu: 2, gpu: 1}", "training.processes=2"])
    assert trial_resources(config) == {"cpu": 4, "gpu": 2}
