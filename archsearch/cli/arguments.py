"""Argument types and exit statuses shared by every command."""

from __future__ import annotations

import argparse

EXIT_UNFINISHED = 1
EXIT_BAD_INPUT = 2
EXIT_NOTHING_FITS = 3


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. 1024x2048) as a pair of positive ints."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"expected HxW with positive integers, e.g. 1024x2048 (got {text!r})")
    return int(parts[0]), int(parts[1])


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (got {text!r})")
    return int(text)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number (got {text!r})") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (got {text!r})")
    return value


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a trial number, an integer >= 0 (got {text!r})")
    return int(text)
