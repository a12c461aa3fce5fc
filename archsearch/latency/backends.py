"""Ways to run a deploy-form model: eager PyTorch, torch.compile, ONNX Runtime.

Each backend turns (model, input) into a ``Runner``: one inference call ready to
time. A backend that cannot run raises an error that says why; none of them quietly
runs something else in its place, since the number would then describe another setup.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn

from archsearch.errors import ArchsearchError, SpecError
from archsearch.latency.settings import LatencySettings

_ONNX_INPUT_NAME = "images"
_ONNX_NUMPY_DTYPES = {"fp32": np.float32, "fp16": np.float16}


@dataclass(frozen=True)
class Runner:
    """One inference call to time, and how to describe and time it.

    ``on_torch_stream`` is true when the call queues its GPU work on torch's current
    CUDA stream, so that CUDA events recorded around it bracket that work.
    """

    step: Callable[[], object]
    label: str
    on_torch_stream: bool


def prepare_runner(model: nn.Module, images: torch.Tensor, settings: LatencySettings,
                   device: torch.device) -> Runner:
    """Ready ``model`` (already on ``device``, in eval mode) for ``settings.backend``."""
    return _BACKENDS[settings.backend](model, images, settings, device)


def _eager_runner(model: nn.Module, images: torch.Tensor, settings: LatencySettings,
                  device: torch.device) -> Runner:
    return Runner(step=lambda: model(images), label="eager", on_torch_stream=True)


def _compiled_runner(model: nn.Module, images: torch.Tensor, settings: LatencySettings,
                     device: torch.device) -> Runner:
    # Start from empty caches: after a few recompiles of one forward, dynamo stops
    # compiling and runs it eagerly, which would time the wrong thing without a word.
    torch.compiler.reset()
    compiled = torch.compile(model)
    try:
        compiled(images)
    # Compilation fails in many layers (dynamo, inductor, the C++/Triton toolchain),
    # each with its own exception type; the model itself already ran eagerly.
    except Exception as error:
        raise ArchsearchError(f"backend 'compile' is unavailable: torch.compile failed for this model "
                              f"on {device}: {_first_line(error)}") from error
    return Runner(step=lambda: compiled(images), label="compile (inductor)", on_torch_stream=True)


def _onnxruntime_runner(model: nn.Module, images: torch.Tensor, settings: LatencySettings,
                        device: torch.device) -> Runner:
    provider = _onnxruntime_provider(settings, device)
    with tempfile.TemporaryDirectory(prefix="archsearch-latency-") as folder:
        path = Path(folder) / "model.onnx"
        exporter = export_onnx(model, images, path)
        session = _open_session(path, provider, settings, device)
    label = f"onnxruntime ({provider}, {exporter} exporter)"
    if device.type == "cuda":
        return Runner(step=_DeviceBoundSession(session, images, settings, device), label=label,
                      on_torch_stream=False)
    feeds = {_ONNX_INPUT_NAME: images.numpy()}
    return Runner(step=lambda: session.run(None, feeds), label=label, on_torch_stream=False)


def export_onnx(model: nn.Module, images: torch.Tensor, path: Path) -> str:
    """Write ``model`` traced on ``images`` to ``path``; return the exporter that worked.

    The TorchScript exporter goes first: it is fast and handles conv nets well. The
    dynamo exporter is the fallback for models it cannot trace, and for torch
    versions that have dropped it.
    """
    names = {"input_names": [_ONNX_INPUT_NAME], "output_names": ["output"]}
    try:
        with warnings.catch_warnings():
            # The exporter is deprecated but chosen knowingly (see above), and the graph
            # is meant for this one input shape, so shape branches frozen by tracing are fine.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(model, (images,), str(path), dynamo=False, **names)
        return "torchscript"
    except Exception as torchscript_error:  # tracing can fail with many exception types
        try:
            torch.onnx.export(model, (images,), str(path), dynamo=True, verbose=False, **names)
        except Exception as dynamo_error:
            raise ArchsearchError(
                "backend 'onnxruntime' cannot export this model to ONNX: torchscript exporter: "
                f"{_first_line(torchscript_error)}; dynamo exporter: {_first_line(dynamo_error)}"
            ) from dynamo_error
        return "dynamo"


def _onnxruntime_provider(settings: LatencySettings, device: torch.device) -> str:
    provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    available = onnxruntime.get_available_providers()
    if provider not in available:
        raise SpecError(f"this onnxruntime build has no {provider} for backend 'onnxruntime'",
                        path="device", value=settings.device,
                        allowed=f"a device served by one of {', '.join(available)}")
    return provider


def _open_session(path: Path, provider: str, settings: LatencySettings,
                  device: torch.device) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = settings.num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    provider_entry = (provider, {"device_id": device.index}) if device.type == "cuda" else provider
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=[provider_entry])
    # onnxruntime's errors derive from Exception directly, one class per status code.
    except Exception as error:
        raise ArchsearchError(f"onnxruntime cannot load this model in {settings.dtype} with "
                              f"{provider}: {_first_line(error)}") from error
    # onnxruntime falls back to the CPU when a GPU provider fails to start; refuse that.
    if session.get_providers()[0] != provider:
        raise ArchsearchError(f"onnxruntime did not start {provider} (it would run on "
                              f"{', '.join(session.get_providers())}); check its CUDA/cuDNN libraries")
    return session


class _DeviceBoundSession:
    """An onnxruntime session reading and writing GPU memory directly, as deployments do.

    Binding the torch input buffer avoids a host-to-device copy per call that a
    deployed pipeline with frames already on the GPU would not pay. The session keeps
    a reference to ``images`` because onnxruntime holds only its raw pointer.
    """

    def __init__(self, session: onnxruntime.InferenceSession, images: torch.Tensor,
                 settings: LatencySettings, device: torch.device) -> None:
        self.session = session
        self.images = images.contiguous()
        self.binding = session.io_binding()
        self.binding.bind_input(name=_ONNX_INPUT_NAME, device_type="cuda", device_id=device.index,
                                element_type=_ONNX_NUMPY_DTYPES[settings.dtype],
                                shape=tuple(self.images.shape), buffer_ptr=self.images.data_ptr())
        for output in session.get_outputs():
            self.binding.bind_output(output.name, "cuda", device.index)

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)
        self.binding.synchronize_outputs()


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


_BACKENDS: dict[str, Callable[[nn.Module, torch.Tensor, LatencySettings, torch.device], Runner]] = {
    "eager": _eager_runner,
    "compile": _compiled_runner,
    "onnxruntime": _onnxruntime_runner,
}
