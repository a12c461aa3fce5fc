"""Write a deploy-form model as ONNX and check it in ONNX Runtime against PyTorch on a random input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.latency.backends import export_onnx

_INPUT_SEED = 0
# Float32 outputs of a conv net agree to ~1e-5 of their scale; beyond 1e-3 the graph computes something else.
RELATIVE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class OnnxCheck:
    """How the ONNX file was made and how far its output is from PyTorch's on one random input."""

    exporter: str
    input_shape: tuple[int, ...]
    max_abs_diff: float
    output_scale: float
    runtime: str


def write_checked_onnx(model: nn.Module, input_shape: tuple[int, int, int, int], path: Path) -> OnnxCheck:
    """Export ``model`` (eval mode, CPU, fp32) at ``input_shape`` to ``path``; raise if ONNX Runtime disagrees."""
    generator = torch.Generator().manual_seed(_INPUT_SEED)
    images = torch.randn(input_shape, generator=generator)
    model = model.eval()
    with torch.no_grad():
        expected = model(images).numpy()
    try:
        exporter = export_onnx(model, images, path)
    except ArchsearchError as error:
        raise ArchsearchError(f"cannot write model.onnx ({error})") from error
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one run on one input: threads would only add start-up and contention
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    max_abs_diff = float(np.max(np.abs(actual - expected)))
    output_scale = float(np.max(np.abs(expected)))
    if not max_abs_diff <= RELATIVE_TOLERANCE * max(output_scale, 1.0):
        raise ArchsearchError(f"the ONNX model's output differs from PyTorch's by {max_abs_diff:.3g} "
                              f"(output scale {output_scale:.3g}, tolerance {RELATIVE_TOLERANCE:g} of it)")
    return OnnxCheck(exporter=exporter, input_shape=tuple(input_shape), max_abs_diff=max_abs_diff,
                     output_scale=output_scale,
                     runtime=f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)")
