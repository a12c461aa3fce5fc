"""A study checked against this machine and its own data before a run directory is made.

What a study file cannot know by itself: whether its storage's database driver is installed,
whether its thread counts fit the CPUs this process may use, whether its crops and inputs fit
this machine's memory, and whether its training set holds one batch. Each found here is exit 2
with nothing written, rather than a half-made run directory or a failed first trial.
"""

from __future__ import annotations

import math

from archsearch.errors import SpecError
from archsearch.resources import available_memory_bytes, check_threads, format_bytes
from archsearch.study.config import StudyConfig
from archsearch.storage_url import hide_secret, masked

IMAGE_CHANNELS = 3
LABEL_BYTES = 8  # int64 class indices
FLOAT_BYTES = 4


def check_before_run(config: StudyConfig, *, read_data: bool = True) -> None:
    """Every check that needs no run directory; call before making one (``read_data`` False: none that reads
    or generates the data, for a dry run)."""
    check_storage_driver(config)
    if config.training is not None:  # `training: none` (a search on zero-cost proxies) trains nothing
        check_threads(config.training.num_threads, path="training.num_threads", source=config.source)
    if config.latency is not None and config.placement is None:  # placed: the target's CPUs, not these
        check_threads(config.latency.num_threads, path="latency.num_threads", source=config.source)
    if read_data:
        check_batch_fits_training_set(config)


def check_synthetic_data(config: StudyConfig) -> None:
    """A synthetic set past the generator's caps, refused from its parameters alone (a dry run generates nothing)."""
    import inspect

    from archsearch.data.synthetic import synthetic_parameters

    if config.dataset.name != "synthetic":
        return
    accepted = inspect.signature(synthetic_parameters).parameters
    options = {key: value for key, value in config.dataset.options.items() if key in accepted}
    try:
        synthetic_parameters(**options)
    except SpecError as error:
        raise error.under("dataset").with_source(config.source) from None


def check_sizes_fit(config: StudyConfig) -> None:
    """Crops and inputs so large that no network could fit them in this machine's memory, refused before any
    sample is read or padded (a 100000x100000 crop would otherwise allocate 120 GB to find out).

    The figure is a lower bound that holds for every point of the space: the batch of images and labels and the
    logits at full resolution (with their gradients when training). A size that passes may still not fit a given
    network; each trial's own estimate (``arch.memory``) then fails that trial alone.
    """
    from archsearch.data.registry import class_names

    classes = len(class_names(config.dataset.name)) or 1
    if config.training is not None:
        key = "augmentation.crop_size" if config.augmentation.crop_size is not None else "input_size"
        per_pixel = IMAGE_CHANNELS * FLOAT_BYTES + LABEL_BYTES + 2 * classes * FLOAT_BYTES
        _check_batch_fits(config, key, tuple(config.augmentation.crop_size or config.input_size),
                          config.training.batch_size, per_pixel, config.training.device,
                          f"training batches of {{batch}} crops of {{size}} with {classes}-class logits and their "
                          "gradients")
    if config.latency is not None and config.placement is None:  # placed: timed in the target's memory
        latency = config.latency
        key = "latency.input_size" if "input_size" in (config.raw.get("latency") or {}) else "input_size"
        per_pixel = (latency.input_channels + classes) * latency.dtype_bytes
        _check_batch_fits(config, key, latency.input_size, latency.batch_size, per_pixel, latency.device,
                          f"timing batches of {{batch}} inputs of {{size}} with {classes}-class logits")


def _check_batch_fits(config: StudyConfig, key: str, size: tuple[int, int], batch: int, per_pixel: int,
                      device: str, what: str) -> None:
    height, width = size
    needed = batch * height * width * per_pixel
    available = available_memory_bytes(device)
    if needed <= available:
        return
    side = math.isqrt(available // (batch * per_pixel))
    where = "" if device == "cpu" else f" on {device}"
    described = what.format(batch=batch, size=f"{height}x{width}")
    raise SpecError(f"{described} need at least {format_bytes(needed)} of memory{where} whatever the network, more "
                    f"than the {format_bytes(available)} available", path=key, value=[height, width],
                    allowed=f"a size of at most {height * width * available // needed:,} pixels at batch {batch} "
                            f"(e.g. {side}x{side}), or a smaller batch", source=config.source)


def check_storage_driver(config: StudyConfig) -> None:
    """A storage URL whose database driver is not installed (``postgresql://`` without its driver, say)."""
    if config.storage is None:
        return
    import sqlalchemy
    import sqlalchemy.exc

    try:
        sqlalchemy.create_engine(config.storage).dispose()  # loads the dialect and its driver; connects to nothing
    except (ImportError, sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as error:
        reason = hide_secret(" ".join(str(error).split()), config.storage)[:300]
        raise SpecError(f"cannot use this storage: {type(error).__name__}: {reason}", path="storage",
                        value=masked(config.storage),
                        allowed="a URL whose database driver is installed (e.g. pip install 'psycopg[binary]' "
                                "for postgresql://), or null for SQLite in the run directory",
                        source=config.source) from None


def check_batch_fits_training_set(config: StudyConfig) -> None:
    """Training drops the last incomplete batch, so a batch larger than the training set trains on nothing."""
    from archsearch.study.datasets import study_datasets

    if config.training is None:
        return
    train, _ = study_datasets(config)
    if config.training.batch_size > len(train):
        raise SpecError("larger than the training set, so no batch would be drawn", path="training.batch_size",
                        value=config.training.batch_size,
                        allowed=f"at most {len(train)} (the images in the training split)", source=config.source)
