"""The training recipe of one trial, checked field by field when it is built.

A study file holds the recipe under ``training:``; :meth:`TrainConfig.from_dict` turns
that mapping into a config and names the offending key path in every error, so a typo
in a YAML file is reported as ``studies/x.yaml: training.lr: ...`` rather than as a
crash halfway through a search.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

from archsearch.devices import check_device_name
from archsearch.errors import SpecError
from archsearch.schema import Range, check_fields, parse_dataclass
from archsearch.train.schedules import WARMUP_STYLES

Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["poly", "cosine"]
Loss = Literal["cross_entropy", "ohem"]
AmpDtype = Literal["bf16", "fp16"]
DecayExemption = Literal["none", "norms_and_biases", "batchnorm"]
OhemNormalisation = Literal["weight_sum", "kept_pixels"]
WarmupStyle = Literal[WARMUP_STYLES]  # type: ignore[valid-type]
OPTIMIZERS: tuple[str, ...] = typing.get_args(Optimizer)
SCHEDULES: tuple[str, ...] = typing.get_args(Schedule)
LOSSES: tuple[str, ...] = typing.get_args(Loss)
AMP_DTYPES: tuple[str, ...] = typing.get_args(AmpDtype)
DECAY_EXEMPTIONS: tuple[str, ...] = typing.get_args(DecayExemption)
OHEM_NORMALISATIONS: tuple[str, ...] = typing.get_args(OhemNormalisation)
AT_LEAST_ONE = Range(1)
POSITIVE = Range(0.0, exclusive_minimum=True)
NOT_NEGATIVE = Range(0.0)


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
    ``num_threads`` None leaves torch's thread count as it is. ``adapt_threads``: a study's trial trains with
    fewer threads than that when other processes keep CPUs busy as it starts (measured over half a second;
    README "Threads on a shared machine"); the count it chose is in trials.csv's ``runtime`` column.

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

    iterations: Annotated[int | None, AT_LEAST_ONE] = None
    epochs: Annotated[int | None, AT_LEAST_ONE] = None
    batch_size: Annotated[int, AT_LEAST_ONE] = 8
    optimizer: Optimizer = "sgd"
    lr: Annotated[float, POSITIVE] = 0.01
    momentum: Annotated[float, Range(0.0, 1.0, exclusive_maximum=True)] = 0.9
    nesterov: bool = False
    weight_decay: Annotated[float, NOT_NEGATIVE] = 5e-4
    weight_decay_exempt: DecayExemption = "none"
    schedule: Schedule = "poly"
    poly_power: Annotated[float, NOT_NEGATIVE] = 0.9
    warmup_iterations: Annotated[int, Range(0)] = 0
    warmup_factor: Annotated[float | None, Range(0.0, 1.0, exclusive_minimum=True)] = None
    warmup_style: WarmupStyle = "sequential"
    loss: Loss = "cross_entropy"
    ohem_threshold: Annotated[float, Range(0.0, 1.0, exclusive_minimum=True)] = 0.7
    ohem_min_kept: Annotated[int, AT_LEAST_ONE] = 100_000
    ohem_normalisation: OhemNormalisation = "weight_sum"
    class_weights: tuple[Annotated[float, NOT_NEGATIVE], ...] | None = None
    aux_weight: Annotated[float, NOT_NEGATIVE] = 0.4
    ignore_index: int = 255
    eval_every: Annotated[int | None, AT_LEAST_ONE] = None
    eval_every_epochs: Annotated[int | None, AT_LEAST_ONE] = None
    eval_last_epochs: Annotated[int, Range(0)] = 0
    seed: Annotated[int, Range(0, 2**63 - 1)] = 0
    num_threads: Annotated[int | None, AT_LEAST_ONE] = None
    adapt_threads: bool = False
    device: str = "cpu"
    amp: AmpDtype | None = None
    channels_last: bool = False
    compile: bool = False
    num_workers: Annotated[int | None, Range(0)] = None
    processes: Annotated[int, AT_LEAST_ONE] = 1
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        check_fields(self)  # a config built in Python is checked as one read from a file
        check_device_name(self.device)  # the rule latency settings read device names by, too
        self._check_combinations()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "", *,
                  path: str = "training") -> TrainConfig:
        """Build a config from plain data (a YAML mapping) found at ``path`` in ``source``."""
        try:
            return parse_dataclass(cls, data, path)
        except SpecError as error:
            raise error.with_source(source) from None

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
        if self.class_weights is not None and not any(self.class_weights):
            raise SpecError("needs at least one weight above 0", path="class_weights", value=list(self.class_weights),
                            allowed="null or a list of numbers >= 0, one per class, not all 0")
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
