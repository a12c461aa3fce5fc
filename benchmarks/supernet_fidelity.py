"""How far can a weight-sharing supernet's ranking be trusted, and what does it cost? (issue 27's targets)

On the 16 RDRNet architectures of studies/fidelity_long.yaml's grid:
- every architecture trained stand-alone with the study's schedule, seeds 0 and 1 (the floor: how
  well one seed ranks the other);
- one supernet over exactly that grid, trained with the same schedule (``--sampling``), then each
  subnet extracted, BatchNorm-recalibrated on a few training batches and evaluated;
- tau(supernet, stand-alone seed 0) against tau(seed 1, seed 0), with bootstrap intervals;
- the cost ratio: supernet training + recalibration + evaluation of the 16 over the 16 stand-alone
  trainings of seed 0;
- extract_max_rel_err: the largest relative difference between the supernet on a path and the
  extracted network (eval mode, after recalibration) over the 16 and random points of spaces/rdrnet.yaml;
- rank_1000_seconds: the time to rank 1000 subnets of spaces/rdrnet.yaml (sample, extract,
  recalibrate, evaluate on the val split) at the study's input size, measured on ``--rank-points``
  points and scaled to 1000; the latency-ratio screening is not part of it (see the README), and the
  peak resident memory of the process is printed beside it.

``--quick`` shrinks the schedule, the data and the images (same keys, under 10 minutes on 2 cores);
its figures are a smoke test of the protocol, not the fidelity result. The last line is one JSON object.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/supernet_fidelity.py --quick

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
    torch.manual_seed(seed)
    spec = sample(study.space, FixedSuggester({**study.fix, **params})).spec
    config = replace(study.training, seed=seed)
    model = build(spec, num_classes=datasets[0].num_classes)
    train_loader = make_loader(datasets[0], config.batch_size, shuffle=True, seed=seed, drop_last=True)
    val_loader = make_loader(datasets[1], config.batch_size, shuffle=False, seed=seed)
    started = time.perf_counter()
    result = train_and_evaluate(model, train_loader, val_loader, config)
    return result.miou, time.perf_counter() - started


def relative_error(supernet, params, image, calibration):
    supernet.recalibrate(params, calibration)
    with torch.no_grad():
        expected = supernet.eval()(image, params)
        actual = extract(supernet, params).eval()(image)
    return float((actual - expected).abs().max() / expected.abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run (smoke test of the protocol)")
    parser.add_argument("--sampling", choices=["uniform", "sandwich"], default="sandwich")
    parser.add_argument("--calibration-batches", type=int, default=4)
    parser.add_argument("--rank-points", type=int, default=None, help="points timed for rank_1000_seconds")
    parser.add_argument("--extract-points", type=int, default=None, help="random rdrnet.yaml points checked")
    arguments = parser.parse_args()
    study = load_study(STUDY, RDRNET_PARTS + (QUICK if arguments.quick else []))
    torch.set_num_threads(study.training.num_threads or 1)
    rank_points = arguments.rank_points or (10 if arguments.quick else 50)
    extract_points = arguments.extract_points or (6 if arguments.quick else 32)
    datasets = study_datasets(study)
    num_classes = datasets[0].num_classes
    grid = enumerate_grid_with_fixed(study)
    print(f"{len(grid)} architectures, {study.training.iterations} iterations, input {study.input_size}, "
          f"sampling {arguments.sampling}{' (quick)' if arguments.quick else ''}", flush=True)

    standalone = {0: [], 1: []}
    standalone_seconds = 0.0
    for index, params in enumerate(grid):
        for seed in (0, 1):
            miou, seconds = train_standalone(study, params, seed, datasets)
            standalone[seed].append(miou)
            standalone_seconds += seconds if seed == 0 else 0.0
        print(f"  stand-alone {index}: seed 0 {standalone[0][-1]:.4f}, seed 1 {standalone[1][-1]:.4f}", flush=True)

    space = grid_space(study)
    config = replace(study.training, seed=0)
    started = time.perf_counter()
    loader = make_loader(datasets[0], config.batch_size, shuffle=True, seed=0, drop_last=True)
    supernet = train_supernet(space, loader, config, iterations=config.iterations, sampling=arguments.sampling,
                              num_classes=num_classes, coverage=16)
    train_seconds = time.perf_counter() - started
    calibration = calibration_batches(make_loader(datasets[0], config.batch_size, shuffle=True, seed=0,
                                                  drop_last=True), arguments.calibration_batches)
    val_loader = make_loader(datasets[1], config.batch_size, shuffle=False, seed=0)
    supernet_miou = []
    for params in grid:
        miou, _ = evaluate_subnet(supernet, {**study.fix, **params}, calibration, val_loader,
                                  num_classes=num_classes, ignore_index=config.ignore_index)
        supernet_miou.append(miou)
    supernet_seconds = time.perf_counter() - started
    print(f"  supernet: {train_seconds:.1f} s training, {supernet_seconds - train_seconds:.1f} s evaluating the 16",
          flush=True)

    image = calibration[0][0][:1]
    errors = [relative_error(supernet, {**study.fix, **params}, image, calibration[:2]) for params in grid]
    rdrnet = load_space(ROOT / "spaces" / "rdrnet.yaml")
    wide = compile_supernet(rdrnet, num_classes=num_classes, coverage=8)
    torch.manual_seed(0)
    errors += [relative_error(wide, params, image, calibration[:2])
               for params in random_points(rdrnet, extract_points, random.Random(5))]

    started = time.perf_counter()
    for params in random_points(rdrnet, rank_points, random.Random(6)):
        evaluate_subnet(wide, params, calibration, val_loader, num_classes=num_classes)
    rank_seconds = (time.perf_counter() - started) / rank_points * 1000
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    reference = np.array(standalone[0])
    tau_supernet = kendall_tau(np.array(supernet_miou), reference)
    tau_floor = kendall_tau(np.array(standalone[1]), reference)
    print(f"tau(supernet, stand-alone) {tau_supernet:.3f} "
          f"CI {bootstrap_interval(kendall_taus, np.array(supernet_miou), reference)}")
    print(f"tau(seed 1, seed 0)        {tau_floor:.3f} "
          f"CI {bootstrap_interval(kendall_taus, np.array(standalone[1]), reference)}")
    print(f"supernet mIoU {np.round(supernet_miou, 4).tolist()}")
    print(f"cost: supernet {supernet_seconds:.1f} s vs stand-alone {standalone_seconds:.1f} s; "
          f"extract max rel err {max(errors):.2e} over {len(errors)} points; ranking {rank_points} points: "
          f"{rank_seconds:.0f} s per 1000 (scaled), peak RSS {peak_mib:.0f} MiB")
    print(json.dumps({"tau_supernet": tau_supernet, "tau_floor": tau_floor,
                      "cost_ratio": supernet_seconds / standalone_seconds, "extract_max_rel_err": max(errors),
                      "rank_1000_seconds": rank_seconds, "peak_rss_mib": peak_mib, "quick": arguments.quick,
                      "sampling": arguments.sampling}))


if __name__ == "__main__":
    sys.exit(main())
