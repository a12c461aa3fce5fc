"""A study's data: its train and val splits as the study file names them, and the check that they can be read.

Trials train on them (``search.trial``) and the checks before a run read them (``run.preflight``,
``archsearch run``); both take them from here.
"""

from __future__ import annotations

from archsearch.data import build_dataset
from archsearch.data.registry import PREPARATION
from archsearch.errors import SpecError
from archsearch.study.config import StudyConfig


def study_datasets(study: StudyConfig):
    """The study's train split (with its augmentation) and val split (``dataset.train_split`` and
    ``dataset.val_split``, default train and val; ``train+val`` joins two)."""
    dataset = study.dataset
    options = dict(dataset.options)
    train_split, val_split = options.pop("train_split", "train"), options.pop("val_split", "val")
    try:
        train = build_dataset(dataset.name, dataset.root, train_split,
                              study.augmentation.train_transforms(study.input_size), **options)
        val = build_dataset(dataset.name, dataset.root, val_split, study.augmentation.eval_transforms(), **options)
    except SpecError as error:
        if error.source or error.path not in options:
            raise
        raise error.under("dataset").with_source(study.source) from None  # an option as the study file names it
    return train, val


def check_data(study: StudyConfig) -> None:
    """Build both splits and read their first sample: bad data is bad input, found before any trial runs."""
    dataset = study.dataset
    if dataset.name != "synthetic" and not dataset.root.is_dir():
        raise SpecError(f"no such data directory: {dataset.name} was looked for in {dataset.root}", path="dataset.root",
                        value=str(dataset.root), allowed=f"a directory holding it: {PREPARATION[dataset.name]}",
                        source=study.source)
    for split in study_datasets(study):
        split[0]
