"""The training recipe of one trial, checked field by field when it is built.

A study file holds the recipe under ``training:``; :meth:`TrainConfig.from_dict` turns
that mapping into a config and names the offending key path in every error, so a typo
in a YAML file is reported as ``studies/x.yaml: training.lr: ...`` rather than as a
crash halfway through a search.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

from archsearch.devices import check_device_name
from archsearch.errors import SpecError
from archsearch.train.schedules import WARMUP_STYLES

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("poly", "cosine")
LOSSES = ("cross_entropy", "ohem")
DECAY_EXEMPTIONS = ("none", "norms_and_biases", "batchnorm")
OHEM_NORMALISATIONS = ("weight_sum", "kept_pixels")
AMP_DTYPES = ("bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """How an architecture is trained and evaluated; defaults follow DDRNet/RDRNet.

    The budget is ``iterations`` (optimizer steps) or ``epochs`` (passes over the
    training loader), exactly one of them. ``warmup_iterations`` steps ramp the learning
    rate up linearly before the ``schedule`` decays it to zero at the end of the budget.
    ``ohem_threshold`` and ``ohem_min_kept`` apply only to ``loss: ohem``; ``momentum``
    and ``nesterov`` only to ``optimizer: sgd``. ``eval_every`` adds intermediate
    evaluations (reported for pruning) to the one at the end; None means only that one.
    ``eval_every_epochs`` and ``eval_last_epochs`` add evaluations at the ends of epochs (every
    N-th, and each of the last K: RegSeg's schedule); every trial records its best evaluation too.
    ``num_threads`` None leaves torch's thread count as it is.

    Speed: ``amp`` runs forward and loss under ``torch.autocast`` in bf16 or fp16 (fp16
    with a gradient scaler); ``channels_last`` stores images and weights NHWC (faster
    convolutions on tensor cores); ``compile`` wraps the model in ``torch.compile``.
    ``num_workers`` data-loading processes (None: :func:`default_workers` decides) feed
    the trainer. ``warmup_factor`` is the learning rate's share at the first warmup step
    (None: ``1 / (warmup_iterations + 1)``); ``warmup_style`` ``multiplied`` multiplies the ramp into
    a decay over the whole budget (RegSeg) instead of decaying after it. ``weight_decay_exempt``:
    ``batchnorm`` leaves BatchNorm parameters undecayed (RegSeg's ``bn_weight_decay: False``),
    ``norms_and_biases`` every norm weight and bias. ``ohem_normalisation`` ``kept_pixels``
    averages the kept pixels' weighted losses over their count (mmseg's OhemCrossEntropy),
    ``weight_sum`` over the sum of their class weights.

    ``processes`` > 1 trains one trial as that many processes (torch.distributed, one device each;
    archsearch.train.distributed): ``batch_size`` is split evenly among them, each normalises its
    own share in BatchNorm (``sync_batchnorm``: over all of them) and keeps its own OHEM pixels.
    """

    iterations: int | None = None
    epochs: int | None = None
    batch_size: int = 8
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    weight_decay_exempt: str = "none"
    schedule: str = "poly"
    poly_power: float = 0.9
    warmup_iterations: int = 0
    warmup_factor: float | None = None
    warmup_style: str = "sequential"
    loss: str = "cross_entropy"
    ohem_threshold: float = 0.7
    ohem_min_kept: int = 100_000
    ohem_normalisation: str = "weight_sum"
    class_weights: tuple[float, ...] | None = None
    aux_weight: float = 0.4
    ignore_index: int = 255
    eval_every: int | None = None
    eval_every_epochs: int | None = None
    eval_last_epochs: int = 0
    seed: int = 0
    num_threads: int | None = None
    device: str = "cpu"
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    num_workers: int | None = None
    processes: int = 1
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        for field in fields(self):
            checked = _FIELD_CHECKS[field.name](field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, checked)
        self._check_combinations()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "", *,
                  path: str = "training") -> TrainConfig:
        """Build a config from plain data (a YAML mapping) found at ``path`` in ``source``."""
        if not isinstance(data, Mapping):
            raise SpecError("training settings must be a mapping", path=path, value=data,
                            allowed="a mapping of setting names to values", source=source)
        known = [field.name for field in fields(cls)]
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SpecError(f"unknown training setting{hint}", path=f"{path}.{key}",
                                allowed=", ".join(known), source=source)
        try:
            return cls(**data)
        except SpecError as error:
            raise error.under(path).with_source(source) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` turns back into an equal config."""
        return {field.name: _plain(getattr(self, field.name)) for field in fields(self)}

    def total_steps(self, batches_per_epoch: int | None) -> int:
        """The step budget: ``iterations``, or ``epochs`` times the loader's length."""
        if self.iterations is not None:
            return self.iterations
        if batches_per_epoch is None:
            raise SpecError("the training loader has no length, so a budget in epochs is unknown",
                            path="epochs", value=self.epochs, allowed="a budget in 'iterations'")
        total = self.epochs * batches_per_epoch
        self._check_warmup(total, f"{self.epochs} epochs x {batches_per_epoch} batches")
        return total

    def _check_combinations(self) -> None:
        if (self.iterations is None) == (self.epochs is None):
            raise SpecError("give exactly one of 'iterations' and 'epochs' as the budget",
                            path="iterations",
                            value={"iterations": self.iterations, "epochs": self.epochs},
                            allowed="iterations: N or epochs: N")
        if self.nesterov and self.optimizer != "sgd":
            raise SpecError("nesterov applies only to optimizer 'sgd'", path="nesterov",
                            value=self.nesterov, allowed=f"false with optimizer {self.optimizer!r}")
        if self.nesterov and self.momentum == 0.0:
            raise SpecError("nesterov needs a momentum", path="nesterov", value=self.nesterov,
                            allowed="false with momentum 0")
        if self.iterations is not None:
            self._check_warmup(self.iterations, "iterations")
        if self.batch_size % self.processes:
            raise SpecError("the batch must split evenly among the processes", path="batch_size",
                            value=self.batch_size, allowed=f"a multiple of processes ({self.processes})")
        if self.warmup_factor is not None and self.warmup_iterations == 0:
            raise SpecError("warmup_factor needs warmup steps", path="warmup_factor", value=self.warmup_factor,
                            allowed="null, or warmup_iterations > 0")

    def _check_warmup(self, total_steps: int, budget: str) -> None:
        if self.warmup_iterations >= total_steps:
            raise SpecError("warmup must end before the step budget does",
                            path="warmup_iterations", value=self.warmup_iterations,
                            allowed=f"fewer than the budget of {total_steps} steps ({budget})")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _integer(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
             optional: bool = False) -> int | None:
    allowed = "an integer"
    if minimum is not None:
        allowed += f" from {minimum} to {maximum}" if maximum is not None else f" >= {minimum}"
    allowed += " or null" if optional else ""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("must be an integer", path=name, value=value, allowed=allowed)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise SpecError("out of range", path=name, value=value, allowed=allowed)
    return value


def _real(name: str, value: Any, *, minimum: float = -math.inf, maximum: float = math.inf,
          exclusive_minimum: bool = False, exclusive_maximum: bool = False) -> float:
    low = f"{'>' if exclusive_minimum else '>='} {minimum}" if minimum > -math.inf else ""
    high = f"{'<' if exclusive_maximum else '<='} {maximum}" if maximum < math.inf else ""
    allowed = ("a finite number " + " and ".join(part for part in (low, high) if part)).strip()
    number = _as_number(value)
    if number is not None and not math.isfinite(number):  # nan, inf (YAML's .nan/.inf, or the words as text)
        raise SpecError("must be a finite number", path=name, value=value, allowed=allowed)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (it is text; write the number without quotes)" if number is not None else ""
        raise SpecError(f"must be a number{hint}", path=name, value=value, allowed=allowed)
    value = float(value)
    too_low = value <= minimum if exclusive_minimum else value < minimum
    too_high = value >= maximum if exclusive_maximum else value > maximum
    if too_low or too_high:
        raise SpecError("out of range", path=name, value=value, allowed=allowed)
    return value


def _as_number(value: Any) -> float | None:
    """The number ``value`` is, or reads as when it is text ('0.1', 'nan', '-.inf'); None otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return float(value.replace(".inf", "inf").replace(".nan", "nan"))
    except ValueError:
        return None


def _choice(name: str, value: Any, *, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SpecError("unknown choice", path=name, value=value,
                        allowed=", ".join(repr(choice) for choice in choices))
    return value


def _optional_choice(name: str, value: Any, *, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in choices:
        raise SpecError("unknown choice", path=name, value=value,
                        allowed="null, " + ", ".join(repr(choice) for choice in choices))
    return value


def _optional_fraction(name: str, value: Any) -> float | None:
    if value is None:
        return None
    return _real(name, value, minimum=0.0, maximum=1.0, exclusive_minimum=True)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SpecError("must be true or false", path=name, value=value, allowed="true, false")
    return value


def _class_weights(name: str, value: Any) -> tuple[float, ...] | None:
    allowed = "null or a list of numbers >= 0, one per class, not all 0"
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise SpecError("must be a list of numbers", path=name, value=value, allowed=allowed)
    weights = tuple(_real(f"{name}[{index}]", weight, minimum=0.0)
                    for index, weight in enumerate(value))
    if not any(weights):
        raise SpecError("needs at least one weight above 0", path=name, value=list(value),
                        allowed=allowed)
    return weights


def _device(name: str, value: Any) -> str:
    return check_device_name(value, path=name)  # the rule latency settings read device names by, too


_FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "iterations": partial(_integer, minimum=1, optional=True),
    "epochs": partial(_integer, minimum=1, optional=True),
    "batch_size": partial(_integer, minimum=1),
    "optimizer": partial(_choice, choices=OPTIMIZERS),
    "lr": partial(_real, minimum=0.0, exclusive_minimum=True),
    "momentum": partial(_real, minimum=0.0, maximum=1.0, exclusive_maximum=True),
    "nesterov": _flag,
    "weight_decay": partial(_real, minimum=0.0),
    "weight_decay_exempt": partial(_choice, choices=DECAY_EXEMPTIONS),
    "schedule": partial(_choice, choices=SCHEDULES),
    "poly_power": partial(_real, minimum=0.0),
    "warmup_iterations": partial(_integer, minimum=0),
    "warmup_factor": _optional_fraction,
    "warmup_style": partial(_choice, choices=WARMUP_STYLES),
    "loss": partial(_choice, choices=LOSSES),
    "ohem_threshold": partial(_real, minimum=0.0, maximum=1.0, exclusive_minimum=True),
    "ohem_min_kept": partial(_integer, minimum=1),
    "ohem_normalisation": partial(_choice, choices=OHEM_NORMALISATIONS),
    "class_weights": _class_weights,
    "aux_weight": partial(_real, minimum=0.0),
    "ignore_index": _integer,
    "eval_every": partial(_integer, minimum=1, optional=True),
    "eval_every_epochs": partial(_integer, minimum=1, optional=True),
    "eval_last_epochs": partial(_integer, minimum=0),
    "seed": partial(_integer, minimum=0, maximum=2**63 - 1),
    "num_threads": partial(_integer, minimum=1, optional=True),
    "device": _device,
    "amp": partial(_optional_choice, choices=AMP_DTYPES),
    "channels_last": _flag,
    "compile": _flag,
    "num_workers": partial(_integer, minimum=0, optional=True),
    "processes": partial(_integer, minimum=1),
    "sync_batchnorm": _flag,
}
