"""Official checkpoints (the authors' key layouts) and our own weights load into the matching preset."""

from __future__ import annotations

import pytest
import torch

from archsearch import build, deploy
from archsearch.arch.checkpoints import load_weights, load_weights_any_form, rename_keys
from archsearch.errors import SpecError
from archsearch.io import write_state_dict
from tests.helpers.official_layouts import (bisenetv1_layout, bisenetv2_layout, ddrnet_layout, pidnet_layout,
                                            rdrnet_layout, regseg_layout)

EXP48 = [[1], [1, 2]] + 4 * [[1, 4]] + 7 * [[1, 14]]
SMALL = [4, 3, [5, 4], [5, 4], [1, 1]]
LARGE = [6, 5, [7, 6], [7, 6], [2, 2]]

OFFICIAL = {
    "rdrnet-s-simple": (lambda: rdrnet_layout(32, SMALL, 64), "rdrnet-mmseg"),
    "rdrnet-s": (lambda: rdrnet_layout(32, SMALL, 128), "rdrnet-mmseg"),
    "rdrnet-m": (lambda: rdrnet_layout(64, SMALL, 128), "rdrnet-mmseg"),
    "rdrnet-l": (lambda: rdrnet_layout(64, LARGE, 256), "rdrnet-mmseg"),
    "ddrnet-23-slim": (lambda: ddrnet_layout(32, 64), "ddrnet-mmseg"),
    "ddrnet-23": (lambda: ddrnet_layout(64, 128), "ddrnet-mmseg"),
    "regseg": (lambda: regseg_layout(EXP48), "regseg"),
    "regseg-large": (lambda: regseg_layout(EXP48, large=True), "regseg"),
    "pidnet-s": (lambda: pidnet_layout(32, 96, 2, 3, 128), "pidnet-mmseg"),
    "pidnet-m": (lambda: pidnet_layout(64, 96, 2, 3, 128), "pidnet-mmseg"),
    "pidnet-l": (lambda: pidnet_layout(64, 112, 3, 4, 256), "pidnet-l-mmseg"),
    "bisenetv1": (bisenetv1_layout, "bisenetv1-mmseg"),
    "bisenetv2": (bisenetv2_layout, "bisenetv2-mmseg"),
}


def official_state_dict(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.rand(shape, generator=generator) if shape else torch.tensor(7) for key, shape in layout.items()}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_layout_loads_into_the_preset_one_to_one(name):
    layout_factory, checkpoint_format = OFFICIAL[name]
    official = official_state_dict(layout_factory())
    renamed = rename_keys(official, checkpoint_format)
    model = build(name)
    assert len(renamed) == len(official)  # no two official keys land on one of ours
    assert set(renamed) == set(model.state_dict())
    load_weights(model, {"state_dict": official, "meta": {"note": "mmseg wraps weights"}})
    loaded = model.state_dict()
    for official_key, our_key in zip(official, renamed):
        assert torch.equal(loaded[our_key], official[official_key]), (official_key, our_key)


def test_specific_official_tensors_land_where_they_belong():
    official = official_state_dict(rdrnet_layout(32, SMALL, 128))
    model = load_weights(build("rdrnet-s"), official)
    pairs = {
        "backbone.stem.0.path_3x3.conv.weight": model.stem[0].conv3x3.conv.weight,
        "backbone.semantic_branch_layers.1.0.path_1x1.conv2.bn.bias": model.stages[1].branches[1][0].serial1x1[1].bn.bias,
        "backbone.down_2.1.conv.weight": model.stages[1].fusion.transforms["0_to_1"][1].conv.weight,
        "backbone.spp.processes.parallel2.bn.weight": model.context.processes.parallel[1].bn.weight,
        "backbone.detail_branch_layers.2.0.downsample.1.running_var": model.stages[2].branches[0][0].downsample.bn.running_var,
        "decode_head.conv_seg.bias": model.head.classifier.bias,
        "decode_head.aux_head.1.weight": model.aux_head.bn.weight,
    }
    for key, tensor in pairs.items():
        assert torch.equal(tensor, official[key]), key


def test_pidnet_and_bisenet_official_tensors_land_where_they_belong():
    official = official_state_dict(pidnet_layout(64, 112, 3, 4, 256))
    model = load_weights(build("pidnet-l"), official)
    pairs = {
        "backbone.stem.4.2.conv2.bn.weight": model.stem[7].body[1].bn.weight,
        "backbone.d_branch_layers.1.conv1.conv.weight": model.stages[1].branches[1][0].body[0].conv.weight,
        "backbone.pag_2.f_i.conv.weight": model.stages[1].fusion.pag.f_i.conv.weight,
        "backbone.diff_1.bn.running_var": model.stages[0].fusion.diff.bn.running_var,
        "backbone.dfm.conv.bn.bias": model.merge.conv.bn.bias,
        "decode_head.conv_seg.weight": model.head.classifier.weight,  # BaseDecodeHead's conv_seg, not cls_seg
        "decode_head.d_cls_seg.weight": model.aux_heads[1].classifier.weight,
        "decode_head.p_head.norm.weight": model.aux_heads[0].bn.weight,
    }
    official_v1 = official_state_dict(bisenetv1_layout())
    v1 = load_weights(build("bisenetv1"), official_v1)
    pairs_v1 = {
        "backbone.context_path.backbone.layer3.0.downsample.0.weight":
            v1.stages[0].branches[1][0].encoder.body.layer3[0].downsample[0].weight,
        "backbone.spatial_path.layer4.conv.weight": v1.stages[0].branches[0][3].conv.weight,
        "auxiliary_head.1.conv_seg.bias": v1.aux_heads[1].classifier.bias,
    }
    for key, tensor in pairs.items():
        assert torch.equal(tensor, official[key]), key
    for key, tensor in pairs_v1.items():
        assert torch.equal(tensor, official_v1[key]), key


def test_regseg_single_and_split_dilation_convs_map():
    official = official_state_dict(regseg_layout(EXP48))
    model = load_weights(build("regseg"), official)
    assert torch.equal(model.stages[2].branches[0][1].conv2.convs[0].weight, official["body.stage16.1.conv2.weight"])
    assert torch.equal(model.stages[2].branches[0][2].conv2.convs[1].weight,
                       official["body.stage16.2.conv2.convs.1.weight"])
    assert torch.equal(model.head.refines[1].bn.bias, official["decoder.conv4.bn.bias"])


def test_wrong_number_of_classes_names_the_tensor_and_both_shapes():
    official = official_state_dict(rdrnet_layout(32, SMALL, 128, classes=11))
    with pytest.raises(SpecError, match=r"head.classifier.(weight|bias): checkpoint tensor has the wrong shape"):
        load_weights(build("rdrnet-s"), official)


def test_checkpoint_of_another_network_is_refused_with_the_keys_named():
    official = official_state_dict(ddrnet_layout(32, 64))
    with pytest.raises(SpecError, match="keys do not fit this network: .* missing"):
        load_weights(build("rdrnet-s"), official)


def test_missing_num_batches_tracked_is_tolerated_but_nothing_else():
    official = official_state_dict(regseg_layout(EXP48))
    without_counters = {key: value for key, value in official.items() if not key.endswith("num_batches_tracked")}
    load_weights(build("regseg"), without_counters)
    del without_counters["decoder.classifier.bias"]
    with pytest.raises(SpecError, match="1 missing"):
        load_weights(build("regseg"), without_counters)


def test_files_round_trip_in_both_forms(tmp_path):
    torch.manual_seed(0)
    model = build("regseg-exp43-decoder12").eval()
    images = torch.randn(1, 3, 64, 64)
    for form in (model, deploy(model)):
        for suffix in (".safetensors", ".pt"):
            path = tmp_path / f"weights{suffix}"
            write_state_dict(path, form.state_dict())
            reloaded = load_weights_any_form(build("regseg-exp43-decoder12"), path).eval()
            with torch.no_grad():
                assert torch.allclose(reloaded(images), form(images), atol=1e-6)


def test_unreadable_checkpoints_are_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(SpecError, match="garbage.pth: not a readable PyTorch checkpoint"):
        load_weights(build("regseg"), garbage)
    with pytest.raises(SpecError, match="no such checkpoint file"):
        load_weights(build("regseg"), tmp_path / "absent.pth")
    odd = tmp_path / "odd.pt"
    torch.save({"epoch": 3}, odd)
    with pytest.raises(SpecError, match="not a state dict of tensors"):
        load_weights(build("regseg"), odd)


def small_network() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_an_empty_checkpoint_file_is_called_empty(tmp_path, suffix):
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(SpecError) as error:
        load_weights(small_network(), empty)
    assert str(error.value).startswith(f"{empty}: the file is empty, not a checkpoint")
    assert "EOFError" not in str(error.value)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_integer_tensors_for_float_parameters_are_refused_naming_the_key(tmp_path, dtype):
    state = small_network().state_dict()
    state["0.weight"] = torch.ones_like(state["0.weight"], dtype=dtype)
    path = tmp_path / "weights.safetensors"
    write_state_dict(path, state)
    with pytest.raises(SpecError) as error:
        load_weights(small_network(), path)
    assert error.value.path == "0.weight" and str(dtype).removeprefix("torch.") in str(error.value)
    assert "float32" in error.value.allowed


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_load_widened_exactly_with_a_note(tmp_path, dtype):
    from archsearch.arch.checkpoints import WidenedWeightsWarning

    state = {key: value.to(dtype) if value.is_floating_point() else value
             for key, value in small_network().state_dict().items()}
    path = tmp_path / "weights.safetensors"
    write_state_dict(path, state)
    with pytest.warns(WidenedWeightsWarning, match=f"{path}: 6 tensors stored in {str(dtype)[6:]} were widened exactly "
                                                   "to float32"):
        model = load_weights(small_network(), path)
    for key, value in model.state_dict().items():
        assert value.dtype == (torch.float32 if state[key].is_floating_point() else state[key].dtype)
        assert torch.equal(value, state[key].to(value.dtype))
