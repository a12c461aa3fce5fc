"""How far can a weight-sharing supernet's ranking be trusted, and what does it cost? (issue 27's targets)

On the 16 RDRNet architectures of studies/fidelity_long.yaml's grid:
- every architecture trained stand-alone with the study's schedule, seeds 0 and 1 (the floor: how
  well one seed ranks the other);
- a supernet over exactly that grid per ``--sampling`` rule, trained with the same schedule, then each
  subnet extracted, BatchNorm-recalibrated on a few training batches and evaluated;
- tau(supernet, stand-alone seed 0) against tau(seed 1, seed 0), with bootstrap intervals;
- the cost ratio: supernet training + recalibration + evaluation of the 16 over the 16 stand-alone
  trainings of seed 0;
- extract_max_rel_err: the largest relative difference between the supernet on a path and the
  extracted network (eval mode, after recalibration) over the 16 and random points of spaces/rdrnet.yaml;
- rank_1000_seconds: the time to rank 1000 subnets of spaces/rdrnet.yaml (sample, extract,
  recalibrate, evaluate on the val split) at the study's input size, measured on ``--rank-points``
  points and scaled to 1000 (wall-clock; its CPU time is printed beside it); the latency-ratio screening
  is not part of it (see the README), and the peak resident memory of the process is printed beside it.

The JSON's headline figures are the first ``--sampling`` rule's (``uniform`` by default); ``by_sampling``
holds each rule's. ``--supernet-seed`` trains the supernets with another seed (the stand-alone trainings
keep theirs), to see how much the supernet's own seed moves its tau.

The cost is counted in CPU seconds of the process (``cost_ratio``; the wall-clock ratio is printed beside it):
on a shared machine the wall time also counts other processes' turns, which change during the run. Finished
measurements (each supernet, each stand-alone training) are kept in ``--cache`` as they finish, so a run cut
off and started again goes on where it stopped; the stand-alone trainings run in a seeded shuffled order,
printing tau over those finished so far.

``--quick`` shrinks the schedule, the data and the images (same keys, under 10 minutes on 2 cores);
its figures are a smoke test of the protocol, not the fidelity result. The last line is one JSON object.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/supernet_fidelity.py --quick
    OMP_WAIT_POLICY=PASSIVE nice -n 10 python benchmarks/supernet_fidelity.py --threads 1   # the README's run

The README's run is kept in benchmarks/supernet_fidelity/full.json (copy it to runs/supernet_fidelity/ to
reuse it).

(On a shared machine, torch's spinning threads make two threads many times slower than one: the quick run
trains with one.)
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from archsearch.arch.build import build
from archsearch.io import write_text_atomic
from archsearch.report.statistics import bootstrap_interval, kendall_tau, kendall_taus
from archsearch.search import load_study
from archsearch.search.optuna_driver import enumerate_grid_with_fixed
from archsearch.study.datasets import study_datasets
from archsearch.space.sampling import FixedSuggester, load_space, sample
from archsearch.supernet.network import extract
from archsearch.supernet.paths import compile_supernet, random_points
from archsearch.supernet.training import calibration_batches, evaluate_subnet, train_supernet
from archsearch.train import make_loader, train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "fidelity_long.yaml"
RDRNET_PARTS = ["fix.fusion=bilateral", "fix.context=rppm"]
"""The study's grid names width x detail depth x semantic depth x rep branches (16 points); the space has since
grown fusion, boundary and context choices, which its fix does not hold, so its grid has 144 points (its trials:
16 takes the first 16 of them). RDRNet's own fusion and context keep the 16 the file describes."""
QUICK = ["training.iterations=40", "training.num_threads=1", "training.eval_every=null", "training.warmup_iterations=2",
         "training.batch_size=4", "dataset.num_train=24", "dataset.num_val=8", "dataset.height=64",
         "dataset.width=64", "augmentation.crop_size=[64,64]", "input_size=[64,64]"]


def grid_space(study):
    """The study's space with its fixed values as one-option choices: the supernet covers exactly the grid."""
    fixed = {name: {"choice": [value]} for name, value in study.fix.items()}
    return replace(study.space, parameters={**study.space.parameters, **fixed})


def train_standalone(study, params, seed, datasets):
    """One stand-alone training: its final mIoU, wall seconds and CPU seconds (every thread of the process)."""
    torch.manual_seed(seed)
    spec = sample(study.space, FixedSuggester({**study.fix, **params})).spec
    config = replace(study.training, seed=seed)
    model = build(spec, num_classes=datasets[0].num_classes)
    train_loader = make_loader(datasets[0], config.batch_size, shuffle=True, seed=seed, drop_last=True)
    val_loader = make_loader(datasets[1], config.batch_size, shuffle=False, seed=seed)
    with Clock() as clock:
        result = train_and_evaluate(model, train_loader, val_loader, config)
    return {"miou": result.miou, "wall_seconds": clock.wall, "cpu_seconds": clock.cpu}


class Clock:
    """Wall and CPU seconds of a block. On a shared machine the CPU time is the fair measure of compute: the
    wall time also counts the other processes' turns, which change while the run goes on."""

    def __enter__(self) -> "Clock":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exception) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu


class Cache:
    """Finished measurements in a JSON file, written after each one, so a run cut off resumes where it stopped.

    The file names the study overrides it was measured with; other overrides start a fresh file.
    """

    def __init__(self, path: Path, overrides: list[str]) -> None:
        self.path, self.overrides = path, overrides
        saved = json.loads(path.read_text()) if path.exists() else {}
        self.results = saved.get("results", {}) if saved.get("overrides") == overrides else {}

    def get(self, key: str, compute):
        if key not in self.results:
            self.results[key] = compute()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps({"overrides": self.overrides, "results": self.results}, indent=1))
        return self.results[key]


def relative_error(supernet, params, image, calibration):
    supernet.recalibrate(params, calibration)
    with torch.no_grad():
        expected = supernet.eval()(image, params)
        actual = extract(supernet, params).eval()(image)
    return float((actual - expected).abs().max() / expected.abs().max())


def supernet_run(study, grid, datasets, sampling, calibration_count, seed):
    """Train one supernet over the grid with the study's schedule, then recalibrate and evaluate the 16."""
    num_classes = datasets[0].num_classes
    config = replace(study.training, seed=seed)
    with Clock() as training:
        loader = make_loader(datasets[0], config.batch_size, shuffle=True, seed=seed, drop_last=True)
        supernet = train_supernet(grid_space(study), loader, config, iterations=config.iterations, sampling=sampling,
                                  num_classes=num_classes, coverage=16)
    with Clock() as evaluating:
        calibration = calibration_batches(make_loader(datasets[0], config.batch_size, shuffle=True, seed=0,
                                                      drop_last=True), calibration_count)
        val_loader = make_loader(datasets[1], config.batch_size, shuffle=False, seed=0)
        miou = [evaluate_subnet(supernet, {**study.fix, **params}, calibration, val_loader, num_classes=num_classes,
                                ignore_index=config.ignore_index)[0] for params in grid]
    print(f"  supernet ({sampling}, seed {seed}): training {training.wall:.1f} s wall / {training.cpu:.1f} s CPU, "
          f"evaluating the 16 {evaluating.wall:.1f} s / {evaluating.cpu:.1f} s; mIoU {np.round(miou, 4).tolist()}",
          flush=True)
    image = calibration[0][0][:1]
    errors = [relative_error(supernet, {**study.fix, **params}, image, calibration[:2]) for params in grid]
    return {"miou": miou, "wall_seconds": training.wall + evaluating.wall, "cpu_seconds": training.cpu + evaluating.cpu,
            "train_cpu_seconds": training.cpu, "evaluate_cpu_seconds": evaluating.cpu,
            "extract_max_rel_err": max(errors)}


def space_checks(datasets, study, extract_points, rank_points, calibration_count):
    """Exactness on random points of spaces/rdrnet.yaml, and the time to rank its subnets (scaled to 1000)."""
    num_classes = datasets[0].num_classes
    config = study.training
    calibration = calibration_batches(make_loader(datasets[0], config.batch_size, shuffle=True, seed=0,
                                                  drop_last=True), calibration_count)
    val_loader = make_loader(datasets[1], config.batch_size, shuffle=False, seed=0)
    rdrnet = load_space(ROOT / "spaces" / "rdrnet.yaml")
    wide = compile_supernet(rdrnet, num_classes=num_classes, coverage=8)
    torch.manual_seed(0)
    image = calibration[0][0][:1]
    errors = [relative_error(wide, params, image, calibration[:2])
              for params in random_points(rdrnet, extract_points, random.Random(5))]
    with Clock() as ranking:
        for params in random_points(rdrnet, rank_points, random.Random(6)):
            evaluate_subnet(wide, params, calibration, val_loader, num_classes=num_classes)
    return {"extract_max_rel_err": max(errors), "extract_points": extract_points,
            "rank_1000_seconds": ranking.wall / rank_points * 1000,
            "rank_1000_cpu_seconds": ranking.cpu / rank_points * 1000,
            "rank_points": rank_points, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def interval(estimate, reference):
    low, high = bootstrap_interval(kendall_taus, np.array(estimate), np.array(reference))
    return [round(float(low), 3), round(float(high), 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run (smoke test of the protocol)")
    parser.add_argument("--sampling", nargs="+", choices=["uniform", "sandwich"], default=["uniform", "sandwich"],
                        help="the supernets trained; the first gives the JSON's headline figures")
    parser.add_argument("--supernet-seed", type=int, default=0,
                        help="the supernets' seed (their initialisation, data order and paths; the stand-alone "
                             "trainings keep seeds 0 and 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the study's num_threads)")
    parser.add_argument("--calibration-batches", type=int, default=4)
    parser.add_argument("--rank-points", type=int, default=None, help="points timed for rank_1000_seconds")
    parser.add_argument("--extract-points", type=int, default=None, help="random rdrnet.yaml points checked")
    parser.add_argument("--cache", type=Path, default=None,
                        help="JSON of finished measurements to resume from (default runs/supernet_fidelity/"
                             "quick.json or full.json)")
    arguments = parser.parse_args()
    overrides = RDRNET_PARTS + (QUICK if arguments.quick else [])
    if arguments.threads is not None:
        overrides.append(f"training.num_threads={arguments.threads}")
    study = load_study(STUDY, overrides)
    torch.set_num_threads(study.training.num_threads or 1)
    rank_points = arguments.rank_points or (10 if arguments.quick else 50)
    extract_points = arguments.extract_points or (6 if arguments.quick else 32)
    cache = Cache(arguments.cache or ROOT / "runs" / "supernet_fidelity" / ("quick.json" if arguments.quick
                                                                            else "full.json"), overrides)
    datasets = study_datasets(study)
    grid = enumerate_grid_with_fixed(study)
    print(f"{len(grid)} architectures, {study.training.iterations} iterations, input {study.input_size}, "
          f"{study.training.num_threads} threads, sampling {' and '.join(arguments.sampling)}"
          f"{' (quick)' if arguments.quick else ''}; results kept in {cache.path}", flush=True)

    calibration = arguments.calibration_batches
    seed = arguments.supernet_seed
    supernets = {rule: cache.get(f"supernet {rule} calibration {calibration}" + (f" seed {seed}" if seed else ""),
                                 lambda rule=rule: supernet_run(study, grid, datasets, rule, calibration, seed))
                 for rule in arguments.sampling}
    standalone: dict[int, dict[int, dict]] = {0: {}, 1: {}}
    order = random.Random(0).sample(range(len(grid)), len(grid))  # a run cut off keeps a spread of the grid
    for count, index in enumerate(order, start=1):  # the long part: a run cut off keeps its finished trainings
        for seed in (0, 1):
            key = f"stand-alone {json.dumps(grid[index], sort_keys=True)} seed {seed}"
            standalone[seed][index] = cache.get(key, lambda: train_standalone(study, grid[index], seed, datasets))
        done = sorted(standalone[0])
        reference = np.array([standalone[0][done_index]["miou"] for done_index in done])
        partial = ", ".join(f"{rule} {kendall_tau(np.array(result['miou'])[done], reference):.3f}"
                            for rule, result in supernets.items()) if count > 1 else ""
        print(f"  stand-alone {count}/{len(grid)} (architecture {index}): seed 0 {standalone[0][index]['miou']:.4f}, "
              f"seed 1 {standalone[1][index]['miou']:.4f}{'; tau so far: ' + partial if partial else ''}", flush=True)
    standalone = {seed: [runs[index] for index in range(len(grid))] for seed, runs in standalone.items()}

    checks = cache.get(f"space checks {extract_points} {rank_points}",
                       lambda: space_checks(datasets, study, extract_points, rank_points, calibration))
    print(f"  rdrnet.yaml: extract max rel err {checks['extract_max_rel_err']:.2e} on {extract_points} points; ranking "
          f"{rank_points} points: {checks['rank_1000_seconds']:.0f} s wall / "
          f"{checks['rank_1000_cpu_seconds']:.0f} s CPU per "
          f"1000 (scaled), peak RSS "
          f"{checks['peak_rss_mib']:.0f} MiB", flush=True)

    reference = [run["miou"] for run in standalone[0]]
    seed1 = [run["miou"] for run in standalone[1]]
    standalone_wall = sum(run["wall_seconds"] for run in standalone[0])
    standalone_cpu = sum(run["cpu_seconds"] for run in standalone[0])
    tau_floor = kendall_tau(np.array(seed1), np.array(reference))
    print(f"tau(seed 1, seed 0), the floor: {tau_floor:.3f} CI {interval(seed1, reference)}")
    print(f"stand-alone, 16 trainings of seed 0: {standalone_wall:.1f} s wall, {standalone_cpu:.1f} s CPU")
    figures = {}
    for rule, result in supernets.items():
        tau = kendall_tau(np.array(result["miou"]), np.array(reference))
        figures[rule] = {"tau_supernet": tau, "tau_interval": interval(result["miou"], reference),
                         "top_3_overlap": len(set(np.argsort(result["miou"])[-3:]) & set(np.argsort(reference)[-3:])),
                         "best_is_best": int(np.argmax(result["miou"])) == int(np.argmax(reference)),
                         "cost_ratio": result["cpu_seconds"] / standalone_cpu,
                         "cost_ratio_wall": result["wall_seconds"] / standalone_wall,
                         "extract_max_rel_err": result["extract_max_rel_err"]}
        print(f"{rule}: tau(supernet, stand-alone) {tau:.3f} CI {figures[rule]['tau_interval']}, top-3 overlap "
              f"{figures[rule]['top_3_overlap']}/3, cost {result['cpu_seconds']:.1f} s CPU "
              f"(ratio {figures[rule]['cost_ratio']:.3f}; wall {figures[rule]['cost_ratio_wall']:.3f})")
    headline = figures[arguments.sampling[0]]
    print(json.dumps({"tau_supernet": headline["tau_supernet"], "tau_floor": tau_floor,
                      "cost_ratio": headline["cost_ratio"],
                      "extract_max_rel_err": max([checks["extract_max_rel_err"]] +
                                                 [figure["extract_max_rel_err"] for figure in figures.values()]),
                      "rank_1000_seconds": checks["rank_1000_seconds"], "peak_rss_mib": checks["peak_rss_mib"],
                      "tau_floor_interval": interval(seed1, reference), "standalone_cpu_seconds": standalone_cpu,
                      "quick": arguments.quick, "sampling": arguments.sampling[0], "supernet_seed": seed,
                      "by_sampling": figures}))


if __name__ == "__main__":
    sys.exit(main())
