"""Argument types and exit statuses shared by every command."""

from __future__ import annotations

import argparse
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

EXIT_UNFINISHED = 1
EXIT_BAD_INPUT = 2
EXIT_NOTHING_FITS = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``kill``, a container stopping), handled as Ctrl-C is: the running trial is queued
    again rather than left RUNNING in the storage."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises Terminated in the main thread; the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


MAX_PORT = 65535


def port_number(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535: the socket layer would raise OverflowError past it."""
    if not text.isdigit() or int(text) > MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to {MAX_PORT} (0: any free one) "
                                         f"(got {text!r})")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a trial number, an integer >= 0 (got {text!r})")
    return int(text)


def output_path(text: str) -> Path:
    """An output path; an empty one would be the current directory (``Path("")`` is ``.``), so it is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path (got {text!r})")
    return Path(text)


class CommandParser(argparse.ArgumentParser):
    """A command's parser that may add its arguments only when that command is used or its help shown.

    ``add_arguments`` (a function of the parser) runs on first use, so a command whose help needs
    a heavy import (torch, for its defaults) does not slow down ``archsearch --help`` or other commands.
    """

    def __init__(self, *args, add_arguments=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def _complete(self) -> None:
        if self._add_arguments is not None:
            add, self._add_arguments = self._add_arguments, None
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()
