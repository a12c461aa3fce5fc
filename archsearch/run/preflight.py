"""A study checked against this machine and its own data before a run directory is made.

What a study file cannot know by itself: whether its storage's database driver is installed,
whether its thread counts fit the CPUs this process may use, and whether its training set
holds one batch. Each found here is exit 2 with nothing written, rather than a half-made run
directory or a failed first trial.
"""

from __future__ import annotations

from archsearch.errors import SpecError
from archsearch.resources import check_threads
from archsearch.search.config import StudyConfig
from archsearch.storage_url import hide_secret, masked


def check_before_run(config: StudyConfig) -> None:
    """Every check that needs no run directory; call before making one."""
    check_storage_driver(config)
    if config.training is not None:  # `training: none` (a search on zero-cost proxies) trains nothing
        check_threads(config.training.num_threads, path="training.num_threads", source=config.source)
    if config.latency is not None:
        check_threads(config.latency.num_threads, path="latency.num_threads", source=config.source)
    check_batch_fits_training_set(config)


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
    from archsearch.search.trial import study_datasets

    if config.training is None:
        return
    train, _ = study_datasets(config)
    if config.training.batch_size > len(train):
        raise SpecError("larger than the training set, so no batch would be drawn", path="training.batch_size",
                        value=config.training.batch_size,
                        allowed=f"at most {len(train)} (the images in the training split)", source=config.source)
