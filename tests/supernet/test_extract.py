"""Exact extraction: a subnet pulled out of the supernet computes what the supernet computes on its path."""

import random

import pytest
import torch

from archsearch.arch.deploy import deploy
from archsearch.space.sampling import RandomSuggester, sample
from archsearch.supernet.network import extract
from archsearch.supernet.paths import compile_supernet
from archsearch.supernet.recalibrate import recalibrate_batchnorm

SIZE = 64


def batches(seed: int, count: int = 2):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, SIZE, SIZE, generator=generator) for _ in range(count)]


def valid_point(space, seed: int):
    rng = random.Random(seed)
    return next(point for point in iter(lambda: sample(space, RandomSuggester(rng)), None) if point.valid)


def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.fixture(scope="module", params=["rdrnet_space", "regseg_space"])
def trained(request):
    """A supernet over a narrowed shipped space after a few SGD steps on random paths (so no weight is fresh)."""
    space = request.getfixturevalue(request.param)
    torch.manual_seed(0)
    supernet = compile_supernet(space, num_classes=3, coverage=2)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.01)
    rng = random.Random(1)
    for images in batches(5, 2):
        params = sample(space, RandomSuggester(rng)).params
        loss = supernet.train()(images, params).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return space, supernet


def test_extracted_subnets_equal_the_supernet_on_their_path(trained):
    space, supernet = trained
    rng, image = random.Random(7), batches(9, 1)[0]
    checked = 0
    for _ in range(8):
        point = sample(space, RandomSuggester(rng))
        if not point.valid:
            continue
        supernet.recalibrate(point.params, batches(11))
        with torch.no_grad():
            expected = supernet.eval()(image, point.params)
            subnet = extract(supernet, point.params).eval()
            assert subnet.spec == point.spec
            assert relative_error(subnet(image), expected) < 1e-5
        checked += 1
    assert checked >= 6


def test_extracted_subnets_deploy(trained):
    space, supernet = trained
    point = valid_point(space, 2)
    supernet.recalibrate(point.params, batches(3))
    subnet = extract(supernet, point.params).eval()
    image = batches(4, 1)[0]
    with torch.no_grad():
        assert relative_error(deploy(subnet)(image), subnet(image)) < 1e-4


def test_recalibrating_the_path_equals_recalibrating_the_extracted_network(trained):
    space, supernet = trained
    point = valid_point(space, 4)
    stale = extract(supernet, point.params)
    supernet.recalibrate(point.params, batches(6))
    recalibrate_batchnorm(stale, batches(6))
    fresh = extract(supernet, point.params).state_dict()
    for name, value in stale.state_dict().items():
        if name.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(value, fresh[name], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def rdrnet_supernet(rdrnet_space):
    return compile_supernet(rdrnet_space, num_classes=3, coverage=2)


def test_a_subnet_kernel_is_the_top_left_slice_of_the_shared_one(rdrnet_supernet):
    supernet = rdrnet_supernet
    narrow = {**supernet.smallest, "width": 4}
    key = supernet.plan(narrow).entries["stem.1.conv3x3.conv.weight"].key
    shared = supernet.weights.tensor(key)
    assert shared.shape[:2] == (8, 8)  # the widest point's
    kernel = extract(supernet, narrow).state_dict()["stem.1.conv3x3.conv.weight"]
    assert kernel.shape[:2] == (4, 4) and torch.equal(kernel, shared[:4, :4])


def test_a_subnet_trains_only_its_slice(rdrnet_supernet):
    supernet = rdrnet_supernet
    narrow = {**supernet.smallest, "width": 4}
    supernet.train()(batches(1, 1)[0], narrow).sum().backward()
    key = supernet.plan(narrow).entries["stem.1.conv3x3.conv.weight"].key
    gradient = supernet.weights.tensor(key).grad
    assert gradient[:4, :4].abs().sum() > 0 and gradient[4:].abs().sum() == 0 and gradient[:, 4:].abs().sum() == 0


def test_the_first_blocks_of_a_repeat_are_shared_by_deeper_points(rdrnet_supernet):
    supernet = rdrnet_supernet
    shallow = {**supernet.largest, "stage2_depth": 2}
    deep = {**supernet.largest, "stage2_depth": 4}
    shallow_state, deep_state = extract(supernet, shallow).state_dict(), extract(supernet, deep).state_dict()
    for block in ("stem.2", "stem.3"):  # the repeated item's first two blocks
        name = f"{block}.conv3x3.conv.weight"
        assert torch.equal(shallow_state[name], deep_state[name])
    assert torch.equal(shallow_state["stem.4.conv3x3.conv.weight"], deep_state["stem.6.conv3x3.conv.weight"])
    assert not torch.equal(deep_state["stem.4.conv3x3.conv.weight"], deep_state["stem.2.conv3x3.conv.weight"])


def test_dilation_choices_run_on_the_same_kernels(regseg_space):
    supernet = compile_supernet(regseg_space, num_classes=3, coverage=2)
    base = {**supernet.smallest, "dilation_pattern": "exp30"}  # 5*[[1,4]] + 8*[[1,10]]
    other = {**base, "dilation_pattern": "exp52"}  # [[1],[1,2],[1,4]] + 10*[[1,6]]
    name = "stages.2.branches.0.8.conv2.convs.1.weight"  # block 8: dilation 10 in one, 6 in the other
    assert torch.equal(extract(supernet, base).state_dict()[name], extract(supernet, other).state_dict()[name])
