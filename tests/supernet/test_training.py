"""Supernet training: both path rules run, a run resumed from its checkpoint ends where an uninterrupted one does,
and weight decay spares what the points' own networks spare."""

import random
from dataclasses import replace

import pytest
import torch

from archsearch.space.sampling import load_space
from archsearch.supernet.network import extract
from archsearch.supernet.paths import compile_supernet, random_points, training_paths
from archsearch.supernet.training import checkpoint_step, load_supernet, evaluate_subnet, train_supernet
from archsearch.train import TrainConfig, make_loader
from archsearch.train.optim import build_optimizer
from tests.helpers.paths import FIXTURES
from tests.train.conftest import NUM_CLASSES, color_dataset

RECIPE = TrainConfig(iterations=4, batch_size=4, lr=0.05, aux_weight=0.0)


@pytest.fixture(scope="module")
def space():
    return load_space(FIXTURES / "tiny_space.yaml")


def loader():
    return make_loader(color_dataset(16, seed=1), 4, shuffle=True, seed=0, drop_last=True)


def train(space, checkpoint, **options):
    return train_supernet(space, loader(), RECIPE, iterations=4, num_classes=NUM_CLASSES, checkpoint=checkpoint,
                          coverage=4, checkpoint_every=2, **options)


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(space, tmp_path):
    whole = train(space, tmp_path / "whole.pt", sampling="uniform")
    train(space, tmp_path / "parts.pt", sampling="uniform", stop_after=2)
    assert checkpoint_step(tmp_path / "parts.pt") == 2
    resumed = train(space, tmp_path / "parts.pt", sampling="uniform")
    assert checkpoint_step(tmp_path / "parts.pt") == 4
    expected = whole.state_dict()
    for name, value in resumed.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6, msg=name)


def test_the_sandwich_rule_trains_the_largest_and_smallest_points_each_step(space, tmp_path):
    trained = train(space, tmp_path / "s.pt", sampling="sandwich")
    paths = training_paths(trained, "sandwich", 0, 3)
    assert paths[:2] == [trained.largest, trained.smallest] and len(paths) == 3
    assert training_paths(trained, "uniform", 0, 3) == paths[2:]


def test_subnets_of_a_trained_supernet_are_evaluated_from_its_checkpoint(space, tmp_path):
    train(space, tmp_path / "s.pt", sampling="uniform")
    supernet = load_supernet(tmp_path / "s.pt", space, num_classes=NUM_CLASSES)
    point = random_points(space, 1, random.Random(0))[0]
    calibration = [batch for batch, _ in zip(loader(), range(2))]
    miou, network = evaluate_subnet(supernet, point, calibration, loader(), num_classes=NUM_CLASSES)
    assert 0.0 <= miou <= 1.0 and not network.training


KILLED_RUN = """
import sys, time
from archsearch.space.sampling import load_space
from archsearch.supernet.training import train_supernet
from tests.supernet.test_training import RECIPE, loader
from tests.train.conftest import NUM_CLASSES

def slow_batches():  # slow enough to be killed between two checkpoints
    for batch in loader():
        time.sleep(0.3)
        yield batch

train_supernet(load_space(sys.argv[1]), slow_batches(), RECIPE, iterations=4, sampling="uniform",
               num_classes=NUM_CLASSES, checkpoint=__import__("pathlib").Path(sys.argv[2]), coverage=4,
               checkpoint_every=1)
"""


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_from_its_checkpoint(space, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers.paths import REPOSITORY

    checkpoint = tmp_path / "killed.pt"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(FIXTURES / "tiny_space.yaml"), str(checkpoint)],
                               cwd=REPOSITORY, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while checkpoint_step(checkpoint) < 1 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    saved = checkpoint_step(checkpoint)
    assert 1 <= saved < 4  # a whole checkpoint (written atomically), short of the end
    resumed = train(space, checkpoint, sampling="uniform")
    expected = train(space, tmp_path / "whole.pt", sampling="uniform").state_dict()
    for name, value in resumed.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("space_name, exempt", [("rdrnet_space", "norms_and_biases"), ("regseg_space", "batchnorm")])
def test_the_supernet_exempts_from_decay_what_each_stand_alone_network_would(space_name, exempt, request, tmp_path):
    space = request.getfixturevalue(space_name)
    recipe = replace(RECIPE, weight_decay=0.1, weight_decay_exempt=exempt)
    supernet = compile_supernet(space, num_classes=NUM_CLASSES, coverage=2)
    points = random_points(space, 2, random.Random(1))
    for point in points:
        supernet.register(point)
    undecayed = {id(parameter) for parameter in supernet.undecayed(exempt)}
    for point in points:
        network = extract(supernet, point)
        exempted = {id(parameter) for parameter in build_optimizer(network, recipe).param_groups[1]["params"]}
        shared = {name: supernet.weights.tensor(entry.key) for name, entry in supernet.plan(point).entries.items()}
        for name, parameter in network.named_parameters():
            assert (id(parameter) in exempted) == (id(shared[name]) in undecayed), name
    assert 0 < len(undecayed) < len(list(supernet.parameters()))


def test_supernet_training_keeps_the_exempt_group_out_of_decay_after_a_restore(space, tmp_path):
    recipe = replace(RECIPE, weight_decay=0.1, weight_decay_exempt="norms_and_biases")
    train_supernet(space, loader(), recipe, iterations=2, num_classes=NUM_CLASSES, checkpoint=tmp_path / "s.pt",
                   coverage=4, sampling="uniform")
    groups = torch.load(tmp_path / "s.pt", weights_only=False)["optimizer"]["param_groups"]
    restored = load_supernet(tmp_path / "s.pt", space, num_classes=NUM_CLASSES)
    assert [group["weight_decay"] for group in groups] == [0.1, 0.0]
    assert len(groups[1]["params"]) == len(restored.undecayed("norms_and_biases")) > 0
