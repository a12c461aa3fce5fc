"""``archsearch run`` and ``archsearch report``: a study from its file to a ranked table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from archsearch.cli.arguments import (EXIT_NOTHING_FITS, EXIT_UNFINISHED, output_path, positive_int,
                                      sigterm_as_interrupt)
from archsearch.errors import SpecError
from archsearch.study.config import BACKENDS
from archsearch.study.metrics import MIOU_KINDS, PLOT_X_METRICS, SHOWN_METRICS

if TYPE_CHECKING:  # the study's types only; the command imports torch when it runs
    from archsearch.study.config import StudyConfig

def default_run_dir(study_name: str) -> Path:
    return Path("runs") / study_name


def with_environment_threads(config: StudyConfig) -> StudyConfig:
    """``OMP_NUM_THREADS``, where the user set it, over the study's ``training.num_threads`` (archsearch.runtime)."""
    from dataclasses import replace
    from archsearch.resources import check_threads
    from archsearch.runtime import THREADS_VARIABLE, training_threads

    if config.training is None:
        return config
    threads = training_threads(config.training.num_threads)
    if threads == config.training.num_threads:
        return config
    check_threads(threads, source=THREADS_VARIABLE)
    print(f"archsearch: training with {threads} thread{'s' * (threads > 1)} ({THREADS_VARIABLE} in the environment; "
          f"the study says {config.training.num_threads})", file=sys.stderr)
    return replace(config, training=replace(config.training, num_threads=threads))


def command_run(arguments: argparse.Namespace) -> int:
    with sigterm_as_interrupt():  # a run ended by SIGTERM queues its trial again, as Ctrl-C does
        return run_study(arguments)


def run_study(arguments: argparse.Namespace) -> int:
    from archsearch.search import RunDirectory, load_study
    from archsearch.search.backends import get_backend
    from archsearch.run.trials_table import trial_state
    from archsearch.io import check_output_directory
    from archsearch.run.guard import check_run_directory, check_run_directory_target
    from archsearch.run.preflight import check_before_run, check_sizes_fit, check_synthetic_data
    from archsearch.study.datasets import check_data

    flags = {"training.device": ("--device", arguments.device)} if arguments.device is not None else {}
    config = load_study(arguments.study, arguments.set or (), flags)
    config = config.with_overrides(trials=arguments.trials, backend=arguments.backend)
    config = with_environment_threads(config)
    check_sizes_fit(config)  # crops no network could fit stop before a sample is padded to them
    check_synthetic_data(config)  # so does a synthetic set past its caps, before any scene is drawn
    backend = get_backend(config.backend)
    backend.check(config)  # and sampler, pruner or scheduler options their classes refuse
    if arguments.dry_run:  # reads and generates no data: the recipe can be viewed without it
        from archsearch.cli.dry_run import print_dry_run
        from archsearch.data.registry import class_names
        check_before_run(config, read_data=False)
        return print_dry_run(config, len(class_names(config.dataset.name)))
    check_data(config)  # unreadable data stops here, with status 2, before anything is written
    check_before_run(config)  # and storage drivers, thread counts, a batch larger than the training set
    try:
        backend.check_devices(config)  # Ray places trials on its workers' devices; Optuna trains here
    except SpecError as error:
        if arguments.device is not None:  # the flag is the user's name for the key
            raise SpecError(error.message, value=error.value, allowed=error.allowed, source="--device") from None
        raise error.under("training").with_source(config.source) from None
    out = arguments.out or default_run_dir(config.name)
    check_output_directory(out, flag="--out")
    check_run_directory_target(out, flag="--out" if arguments.out else "run directory")
    guard = check_run_directory(config, out, config.storage or RunDirectory(out).default_storage,
                                allow_changed=arguments.allow_changed_settings)
    run_dir = RunDirectory(out).create()
    guard.record()
    run_dir.save_study({**config.raw, "trials": config.trials, "backend": config.backend})
    console = Console(stderr=True)
    console.print(f"study [bold]{config.name}[/]: {config.trials} trials, space {config.space.name}, "
                  f"run directory {run_dir.root}")
    if guard.changed:
        console.print(f"[yellow]continuing with changed settings (recipe {guard.recipe}): "
                      f"{'; '.join(guard.changed)}[/]")
    if not console.is_terminal or not backend.reports_progress:  # a log file, nohup, CI: a bar would show at the end
        outcome = backend.run(config, run_dir, address=arguments.ray_address,
                              on_trial_end=lambda trial, finished, requested: print(trial_line(trial), file=sys.stderr,
                                                                                   flush=True))
    else:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.fields[last]}"), console=console, transient=False) as progress:
            task = progress.add_task("trials", total=config.trials, last="")

            def on_trial_end(trial, finished: int, requested: int) -> None:
                miou = trial.user_attrs.get("miou")
                last = f"#{trial.number} {trial_state(trial).lower()}" + (f" mIoU {miou:.3f}" if miou else "")
                progress.update(task, completed=finished, total=requested, last=last)

            outcome = backend.run(config, run_dir, on_trial_end=on_trial_end, address=arguments.ray_address)
    guard.record_first_trial()
    print_trials_table(run_dir.trials_csv)
    counts = state_counts(run_dir.trials_csv)
    if outcome.completed == 0 and (message := nothing_fits(config, run_dir.trials_csv)):
        console.print(f"[yellow]{message}[/]")
        return EXIT_NOTHING_FITS
    if not outcome.done:
        console.print(f"[yellow]study not finished: {outcome.finished} of {outcome.requested} trials finished "
                      f"({counts})[/]")
        return EXIT_UNFINISHED
    ended = (f"the race ended after {outcome.finished} trials (at most {outcome.requested})" if outcome.race_over
             else f"{outcome.finished} of {outcome.requested} trials finished")
    console.print(f"study finished: {ended} ({counts}); `archsearch report {run_dir.root}` ranks them")
    return 0


def trial_line(trial) -> str:
    """One ended trial (an Optuna FrozenTrial) as a line of a log: number, state, arch, seed, mIoU, time."""
    from archsearch.run.trials_table import trial_state

    attrs = trial.user_attrs
    state = trial_state(trial)
    miou = f" mIoU {attrs['miou']:.4f}" if state == "COMPLETE" and attrs.get("miou") is not None else ""
    seconds = trial.duration.total_seconds() if trial.duration is not None else 0.0
    return (f"trial {trial.number}: {state} arch {attrs.get('arch_hash') or '-'} seed {attrs.get('seed', '-')}"
            f"{miou} {seconds:.1f} s")


COUNTED_STATES = {"COMPLETE": "complete", "INFEASIBLE": "infeasible", "PRUNED": "pruned", "FAIL": "failed",
                  "RUNNING": "running", "WAITING": "waiting"}


def state_counts(trials_csv: Path) -> str:
    """Every state of trials.csv counted apart: ``3 complete, 1 infeasible, 0 pruned, 1 failed, 2 waiting``
    (running only when some are)."""
    import pandas as pd

    counts = pd.read_csv(trials_csv, usecols=["state"])["state"].value_counts()
    return ", ".join(f"{int(counts.get(state, 0))} {word}" for state, word in COUNTED_STATES.items()
                     if state != "RUNNING" or counts.get(state, 0))
def nothing_fits(config, trials_csv: Path) -> str | None:
    """The message for a run in which no measured point met the latency budget, or None."""
    from archsearch.run.trials_table import load_trials

    return config.budget.nothing_fits(load_trials(trials_csv.parent).to_dict("records"))


def print_trials_table(trials_csv: Path) -> None:
    from archsearch.run.trials_table import load_trials

    frame = load_trials(trials_csv.parent)
    table = Table(title=f"trials ({trials_csv})")
    shown = [metric for metric in SHOWN_METRICS if metric != "miou"]
    columns = ["number", "state", "arch_hash", "seed", *shown, "latency_predicted_ms", "latency_margin", "miou",
               "train_seconds"]
    columns += [c for c in frame.columns if c.startswith("param.")]
    columns = [column for column in columns if column in frame.columns
               and any(_cell(value) for value in frame[column])]
    for column in columns:
        table.add_column(column.removeprefix("param."), justify="right" if column != "state" else "left")
    for _, row in frame.iterrows():
        table.add_row(*[_cell(row[column]) for column in columns])
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _cell(value) -> str:
    import pandas as pd

    if pd.isna(value):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def command_report(arguments: argparse.Namespace) -> int:
    from archsearch.io import check_output_directory
    from archsearch.report.write import check_report_target, write_report

    if not arguments.run.is_dir():
        raise SpecError("no such run directory", value=str(arguments.run), allowed="a directory `archsearch run` wrote")
    check_output_directory(arguments.out or arguments.run, flag="--out" if arguments.out else "RUN")
    if arguments.out is not None and not arguments.force:
        check_report_target(arguments.out, arguments.run)
    files = write_report(arguments.run, arguments.out, x_metric=arguments.x, miou=arguments.miou)
    print(files.markdown.read_text(encoding="utf-8"))
    race = f", {files.race}" if files.race.exists() else ""
    print(f"wrote {files.markdown}, {files.table}, {files.plot}{race}")
    return 0


def add_study_commands(commands: argparse._SubParsersAction) -> None:
    running = commands.add_parser("run", help="run (or resume) a study")
    running.add_argument("study", type=Path, metavar="STUDY", help="a study YAML file")
    running.add_argument("--trials", type=positive_int, metavar="N", help="number of trials (overrides the file)")
    running.add_argument("--out", type=output_path, metavar="DIR", help="run directory (default runs/<study name>)")
    running.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="override a study value, e.g. --set training.iterations=50 (repeatable)")
    running.add_argument("--backend", choices=BACKENDS, help="where trials run (default: the study's)")
    running.add_argument("--allow-changed-settings", action="store_true",
                         help="continue a run directory with settings that change what a trial measures "
                              "(each trial records its recipe in trials.csv; reports say when they differ)")
    running.add_argument("--ray-address", metavar="ADDRESS",
                         help="attach to this Ray cluster (default: RAY_ADDRESS, else a local Ray)")
    running.add_argument("--device", metavar="DEVICE",
                         help="train on this device, e.g. cuda:1 (one GPU per process; overrides training.device)")
    running.add_argument("--dry-run", action="store_true",
                         help="print the resolved study, its first point's spec and counts; train nothing")
    running.set_defaults(handler=command_run)

    reporting = commands.add_parser("report", help="rank a run's trials: Markdown, CSV and a Pareto plot")
    reporting.add_argument("run", type=Path, metavar="RUN", help="a run directory")
    reporting.add_argument("--out", type=output_path, metavar="DIR", help="where to write (default: the run directory)")
    reporting.add_argument("--force", action="store_true",
                           help="replace report files already in DIR (another run's report, say)")
    reporting.add_argument("--x", choices=PLOT_X_METRICS,
                           help="the plot's x axis (default: the latency ratio if measured, else latency, else MACs)")
    reporting.add_argument("--miou", choices=MIOU_KINDS,
                           help="rank by each trial's final mIoU or its best evaluation "
                                "(default: miou_best when the study's first objective is, else miou)")
    reporting.set_defaults(handler=command_report)
