"""``archsearch run STUDY --dry-run``: what a study would run, resolved, without training anything.

Shows every setting with its default filled in (training and augmentation), the first point
the study's sampler draws (the first grid point for a grid) as a concrete spec, and that
point's counts at the study's input size, so a recipe can be read and checked before hours
of training start.
"""

from __future__ import annotations

import optuna
import yaml

from archsearch.arch.analyze import analyze
from archsearch.runtime import current as current_runtime
from archsearch.study.config import StudyConfig
from archsearch.search.lifecycle import OptunaSuggester
from archsearch.search.optuna_driver import TrialSeededSampler, enumerate_grid_with_fixed
from archsearch.space.sampling import FixedSuggester, SampledPoint, sample


def first_point(config: StudyConfig) -> SampledPoint:
    """The point the study's first trial would train (trial 0's sampler, seeded as a run seeds it)."""
    if config.sampler == "grid":
        return sample(config.space, FixedSuggester({**config.fix, **enumerate_grid_with_fixed(config)[0]}))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [objective.direction for objective in config.objectives]
    trial = optuna.create_study(sampler=TrialSeededSampler(config), directions=directions).ask()
    return sample(config.space, OptunaSuggester(trial, dict(config.fix)))


def resolved_study(config: StudyConfig) -> dict:
    """The study as it will run: the file's values, with training and augmentation complete."""
    return {**config.raw, "trials": config.trials, "backend": config.backend,
            "augmentation": config.augmentation.to_dict(),
            "training": config.training.to_dict() if config.training is not None else None}


def print_dry_run(config: StudyConfig, num_classes: int) -> int:
    print("# resolved study")
    print(yaml.safe_dump(resolved_study(config), sort_keys=False).rstrip())
    waiting = ", ".join(f"{name}={entry['value'] or 'unset'} ({entry['source']})"
                        for name, entry in current_runtime().to_dict().items())
    print(f"# OpenMP in this process (archsearch.runtime): {waiting}")
    point = first_point(config)
    print(f"\n# first point: {point.params}")
    if point.spec is None:
        print(f"invalid point: {point.invalid_reason}")
        return 0
    print(point.spec.to_yaml().rstrip())
    counts = analyze(point.spec, config.input_size, num_classes=num_classes)
    height, width = config.input_size
    print(f"\n# counts at {height}x{width}, {num_classes} classes")
    for name in ("arch_hash", "params_train", "params_aux", "params_deploy", "macs", "receptive_field",
                 "output_stride"):
        value = getattr(counts, name)
        print(f"{name}: {value:,}" if isinstance(value, int) else f"{name}: {value}")
    race = config.race
    seeds = (f"seeds raced: {race.minimum} each, up to {race.maximum} for the contenders ({race.rule} rule, "
             f"{race.test} {'test' if race.rule == 'test' else 'model'} at {race.confidence:.0%}, top {race.top})"
             if race is not None else f"seeds {list(config.seeds)}")
    print(f"\n{config.trials} trials, {seeds}; nothing was trained, and no data was read or generated")
    return 0
