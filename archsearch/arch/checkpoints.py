"""Load weights into a built network: our own state dicts, or the authors' published checkpoints.

An official checkpoint's keys are renamed by the regex rules of its format
(``presets/checkpoints/<format>.yaml``, which may ``include`` other formats' rules; a preset names
its format in ``metadata``); then the
key sets and every shape must agree exactly, or the error says which key does not fit.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from archsearch.errors import SpecError
from archsearch.io import read_yaml

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def _formats_folder() -> Path:
    return Path(__file__).parent / "presets" / "checkpoints"


def checkpoint_formats() -> list[str]:
    return sorted(path.stem for path in _formats_folder().glob("*.yaml"))


@lru_cache(maxsize=None)
def key_rules(checkpoint_format: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """The ordered (pattern, replacement) rules of a checkpoint format."""
    path = _formats_folder() / f"{checkpoint_format}.yaml"
    if not path.is_file():
        raise SpecError("unknown checkpoint format", path="metadata.checkpoint_format", value=checkpoint_format,
                        allowed=", ".join(checkpoint_formats()))
    data = read_yaml(path)
    own = tuple((re.compile(pattern), replacement) for pattern, replacement in data["rules"])
    # A format may include others' rules (sizes of one family share most of theirs); its own apply first.
    return own + tuple(rule for included in data.get("include", []) for rule in key_rules(included))


def rename_keys(state_dict: Mapping[str, Tensor], checkpoint_format: str) -> dict[str, Tensor]:
    rules = key_rules(checkpoint_format)
    renamed = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


def read_state_dict(source: str | Path | Mapping[str, Any], *, trust: bool = False) -> dict[str, Tensor]:
    """A flat state dict from a .pth/.pt/.safetensors file or a mapping, unwrapping ``state_dict``/``model``.

    ``.pth`` files load with ``weights_only`` unless ``trust`` is set, since unpickling runs code.
    """
    if isinstance(source, Mapping):
        data: Any = source
        name = "<state dict>"
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise SpecError("no such checkpoint file", source=name)
        data = _load_file(path, trust)
    for _ in range(3):
        if isinstance(data, Mapping) and not _is_state_dict(data):
            wrapped = next((data[key] for key in WRAPPER_KEYS if key in data and isinstance(data[key], Mapping)), None)
            if wrapped is None:
                break
            data = wrapped
    if not isinstance(data, Mapping) or not _is_state_dict(data):
        raise SpecError("not a state dict of tensors (nor one wrapped under "
                        f"{', '.join(WRAPPER_KEYS)})", source=name)
    return {key.removeprefix("module."): value for key, value in data.items()}


def _is_state_dict(data: Mapping[str, Any]) -> bool:
    return bool(data) and all(isinstance(key, str) and isinstance(value, Tensor) for key, value in data.items())


def _load_file(path: Path, trust: bool) -> Any:
    if path.stat().st_size == 0:
        raise SpecError("the file is empty, not a checkpoint", source=str(path),
                        allowed="a state dict saved by torch.save or safetensors")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as error:  # noqa: BLE001 - SafetensorError, OSError, or whatever a damaged header gives
            raise SpecError(f"cannot read safetensors file: {error}", source=str(path)) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as error:
        if trust or not zipfile.is_zipfile(path):
            raise SpecError(f"not a readable PyTorch checkpoint: {_first_line(error)}", source=str(path)) from None
        raise SpecError("the checkpoint holds more than tensors; pass --trust-checkpoint (API: trust=True) "
                        "if you trust its source, since unpickling it runs code", source=str(path)) from None
    except EOFError:
        raise SpecError("not a readable PyTorch checkpoint: the file ends early (cut off while copied?)",
                        source=str(path)) from None
    except Exception as error:  # noqa: BLE001 - a damaged pickle makes torch.load raise almost anything
        raise SpecError(f"not a readable PyTorch checkpoint: {_first_line(error)}", source=str(path)) from None


def _first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type when the message is empty."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def load_weights(model: nn.Module, source: str | Path | Mapping[str, Any], *, checkpoint_format: str | None = None,
                 trust: bool = False) -> nn.Module:
    """Load ``source`` into ``model`` in place; official key layouts are renamed first.

    With no ``checkpoint_format``, keys that already match the model load as they are and
    otherwise the format the model's spec names (``metadata.checkpoint_format``) is tried.
    """
    return _load(model, read_state_dict(source, trust=trust), _source_name(source), checkpoint_format)


def load_weights_any_form(model: nn.Module, source: str | Path | Mapping[str, Any], *,
                          trust: bool = False) -> nn.Module:
    """Load into the train form, or, if the weights are a deploy form's (as exports are), into the deploy form."""
    from archsearch.arch.deploy import deploy

    state_dict = read_state_dict(source, trust=trust)
    deployed = deploy(model)
    if set(state_dict) == set(deployed.state_dict()) != set(model.state_dict()):
        return _load(deployed, state_dict, _source_name(source), None)
    return _load(model, state_dict, _source_name(source), None)


def _source_name(source: str | Path | Mapping[str, Any]) -> str:
    return "<state dict>" if isinstance(source, Mapping) else str(source)


def _load(model: nn.Module, state_dict: dict[str, Tensor], source_name: str,
          checkpoint_format: str | None) -> nn.Module:
    expected = model.state_dict()
    if checkpoint_format is None and not _matches(state_dict, expected):
        spec = getattr(model, "spec", None)
        checkpoint_format = spec.metadata.get("checkpoint_format") if spec is not None else None
    if checkpoint_format is not None:
        state_dict = rename_keys(state_dict, checkpoint_format)
    _check_fits(state_dict, expected, source_name)
    _check_dtypes(state_dict, expected, source_name)
    for key, value in expected.items():
        if key not in state_dict:  # only num_batches_tracked may be missing (checked above)
            state_dict[key] = value
    model.load_state_dict(state_dict, strict=True)
    return model


def _matches(state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> bool:
    return set(state_dict) == set(expected)


def _check_fits(state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: str) -> None:
    missing = [key for key in expected if key not in state_dict and not key.endswith("num_batches_tracked")]
    unexpected = [key for key in state_dict if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
        raise SpecError("checkpoint keys do not fit this network: " + "; ".join(parts), source=source,
                        allowed="a checkpoint of this architecture, in archsearch's layout or the preset's "
                                f"checkpoint format ({', '.join(checkpoint_formats())})")
    for key, value in state_dict.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise SpecError("checkpoint tensor has the wrong shape", source=source, path=key,
                            value=list(value.shape), allowed=str(list(expected[key].shape)))



class WidenedWeightsWarning(UserWarning):
    """Half-precision (or other floating-point) weights were loaded into the network's own float type."""


def _check_dtypes(state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: str) -> None:
    """Integer or boolean tensors for floating-point weights are refused (copying would invent values from
    counts or masks); floating-point tensors of another precision load converted, with a warning that says so
    (fp16/bf16 widen to fp32 exactly, as published half-precision checkpoints are meant to be read)."""
    converted: dict[tuple[torch.dtype, torch.dtype], int] = {}
    for key, value in state_dict.items():
        wanted = expected[key].dtype
        if not wanted.is_floating_point or value.dtype == wanted:
            continue
        if not value.dtype.is_floating_point:
            raise SpecError(f"checkpoint tensor is {_name(value.dtype)}, not floating point", source=source,
                            path=key, allowed=f"a floating-point tensor (the network's is {_name(wanted)})")
        converted[value.dtype, wanted] = converted.get((value.dtype, wanted), 0) + 1
    for (stored, wanted), count in converted.items():
        how = "widened exactly" if stored.itemsize < wanted.itemsize else "converted"
        tensors = f"{count} tensors stored in {_name(stored)} were" if count != 1 else \
            f"1 tensor stored in {_name(stored)} was"
        warnings.warn(f"{source}: {tensors} {how} to {_name(wanted)}", WidenedWeightsWarning, stacklevel=4)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
