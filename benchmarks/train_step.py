"""archsearch's training step against a plain PyTorch loop: same network, data, optimizer and precision.

archsearch's side is the trainer a trial runs (``train_and_evaluate``: precision, loss with aux head,
AdamW with warm-up and poly schedule, divergence watch, batches drawn from the loader it is given);
its time per step is the trainer's own ``train_seconds`` over its steps. The plain side is the loop
a PyTorch user writes: forward, ``F.cross_entropy`` (+ 0.4 x the aux head's), ``zero_grad``,
``backward``, ``AdamW.step``. Both get the same pre-made batches, already on the device, and start
from the same weights; they alternate within each round (order reversed every other round), so
both meet the same machine. OpenMP's variables are archsearch's (``archsearch.runtime``), set before
torch loads, for both. Prints per-round ms per step and the median of the rounds' ratios; the last
line is ``{"speed_ratio_to_plain_loop": r}`` (above 1: archsearch faster; the target is >= 0.95).

    python benchmarks/train_step.py [--short] [--model rdrnet-s-simple] [--rounds 6] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from archsearch.runtime import configure_process

configure_process()  # before torch loads, as the CLI does

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from archsearch.arch.build import build  # noqa: E402
from archsearch.train import TrainConfig, train_and_evaluate  # noqa: E402

CLASSES = 19


def batches(count: int, batch_size: int, size: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(batch_size, 3, size, size, generator=generator).to(device),
             torch.randint(0, CLASSES, (batch_size, size, size), generator=generator).to(device))
            for _ in range(count)]


def archsearch_ms(model: torch.nn.Module, data: list, config: TrainConfig) -> float:
    result = train_and_evaluate(model, data, data[:1], config)
    return result.train_seconds / result.steps * 1e3


def plain_ms(model: torch.nn.Module, data: list, config: TrainConfig, device: torch.device) -> float:
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp or "", torch.float32)
    started = time.perf_counter()
    for step in range(config.iterations):
        images, targets = data[step % len(data)]
        with torch.autocast(device.type, dtype=dtype, enabled=config.amp is not None):
            logits, aux = model(images, return_aux=True)
            loss = F.cross_entropy(logits, targets, ignore_index=255)
            if aux is not None:
                loss = loss + config.aux_weight * F.cross_entropy(aux, targets, ignore_index=255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / config.iterations * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="3 rounds of 8 steps")
    parser.add_argument("--model", default="rdrnet-s-simple", help="a preset name or spec file")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="training steps per side and round")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=96, help="square input side")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("bf16", "fp16"), default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    arguments = parser.parse_args()
    rounds = arguments.rounds or (3 if arguments.short else 6)
    steps = arguments.steps or (8 if arguments.short else 20)
    device = torch.device(arguments.device)
    threads = arguments.threads or torch.get_num_threads()
    config = TrainConfig(iterations=steps, batch_size=arguments.batch_size, optimizer="adamw", lr=1e-3,
                         weight_decay=1e-4, warmup_iterations=min(5, steps - 1), aux_weight=0.4,
                         num_threads=threads, device=arguments.device, amp=arguments.amp)
    torch.set_num_threads(threads)
    data = batches(4, arguments.batch_size, arguments.size, device)
    print(f"{arguments.model}, batch {arguments.batch_size}, {arguments.size}x{arguments.size}, {device}, "
          f"{threads} threads, amp {arguments.amp}, {steps} steps per side and round; OpenMP: "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'round':>5} {'archsearch ms':>14} {'plain ms':>9} {'ratio':>6} {'load':>5}")
    ratios = []
    for round_index in range(rounds):
        torch.manual_seed(0)
        weights = build(arguments.model, num_classes=CLASSES).state_dict()
        measured: dict[str, float] = {}
        sides = ("archsearch", "plain") if round_index % 2 == 0 else ("plain", "archsearch")
        for side in sides:
            model = build(arguments.model, num_classes=CLASSES)
            model.load_state_dict(weights)
            measured[side] = (archsearch_ms(model, data, config) if side == "archsearch"
                              else plain_ms(model, data, config, device))
        ratios.append(measured["plain"] / measured["archsearch"])
        print(f"{round_index + 1:>5} {measured['archsearch']:14.1f} {measured['plain']:9.1f} {ratios[-1]:6.3f} "
              f"{os.getloadavg()[0]:5.1f}", flush=True)
    ratio = statistics.median(ratios)
    print(f"median ratio (plain ms / archsearch ms; above 1: archsearch faster): {ratio:.3f} (target >= 0.95)")
    print(json.dumps({"speed_ratio_to_plain_loop": round(ratio, 4)}))


if __name__ == "__main__":
    main()
