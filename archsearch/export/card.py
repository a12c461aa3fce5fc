"""The model card: what an exported model is, how good, how fast and on what, as JSON and Markdown."""

from __future__ import annotations

from typing import Any


def card_markdown(card: dict[str, Any]) -> str:
    """A short human-readable page of ``card`` (the JSON card is the complete record)."""
    height, width = card["input_size"]
    lines = [
        f"# {card['name']} (trial {card['trial']} of study {card['study']})",
        "",
        f"Architecture hash `{card['arch_hash']}`, seed {card['seed']}, {card['num_classes']} classes.",
        "",
        "| | |",
        "|---|---|",
        f"| mIoU | {_miou_text(card['miou'])} |",
        *([f"| supernet mIoU (inherited weights, BatchNorm recalibrated) | {card['supernet_miou']:.4f} |"]
          if card.get("supernet_miou") is not None else []),
        f"| parameters (train form) | {card['params_train']:,} |",
        f"| parameters (deploy form) | {card['params_deploy']:,} |",
        f"| MACs at {height}x{width} | {card['macs']:,} ({card['macs'] / 1e9:.2f} G) |",
        f"| receptive field | {card['receptive_field']} px |",
        f"| output stride | {card['output_stride']} |",
        f"| latency | {_latency_text(card['latency'])} |",
        f"| ONNX vs PyTorch, max abs difference | {card['onnx']['max_abs_diff']:.3g} |",
        "",
        "## Files",
        "",
        "- `arch.yaml`: the architecture spec",
        "- `model.safetensors`: the deploy-form weights (reparameterized, BatchNorm folded)",
        f"- `model.onnx`: the deploy form at 1x{card['in_channels']}x{height}x{width}, "
        f"{card['onnx']['exporter']} exporter, checked with {card['onnx']['runtime']}",
        "",
        "Rebuild and load the weights with",
        "",
        "```",
        card["rebuild_command"],
        "```",
        "",
    ]
    return "\n".join(lines)


def _miou_text(miou: float | None) -> str:
    return "none (not trained stand-alone)" if miou is None else f"{miou:.4f}"


def _latency_text(latency: dict[str, Any] | None) -> str:
    if latency is None:
        return "not measured"
    text = f"{latency['median_ms']:.3f} ms median"
    if latency.get("device_name") is None:
        return text + " (device and settings not recorded: a run of an older archsearch)"
    settings = latency["settings"]
    height, width = settings["input_size"]
    threads = settings["num_threads"]
    if "ratio" in latency:
        text += (f" ({latency['ratio']:.3f}x {latency['reference']}, timed alongside it at "
                 f"{latency['reference_median_ms']:.3f} ms)")
    return (f"{text}, IQR {latency['iqr_ms']:.3f} ms over {latency['repeats']} runs; {latency['device_name']} "
            f"({settings['device']}, {threads} thread{'s' * (threads > 1)}), {latency['backend']}, "
            f"{settings['dtype']}, batch {settings['batch_size']}, {height}x{width}")
