"""Busy neighbours for benchmarks: a process spinning on the last core, or N unpinned spinning processes.

Every child is killed when its block ends, whatever ends it (an exception, Ctrl-C); on Linux the
kernel also kills it if the benchmark itself dies (PR_SET_PDEATHSIG), so no spinner outlives it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SPIN = "while True:\n    pass\n"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGKILL when the benchmark process exits."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the finally blocks below still kill the children
        pass


@contextmanager
def busy_core() -> Iterator[int]:
    """Spin a child process on the last core this process may use; yields the core; the child is killed after."""
    core = max(os.sched_getaffinity(0))
    code = f"import os\nos.sched_setaffinity(0, {{{core}}})\n{SPIN}"
    process = subprocess.Popen([sys.executable, "-c", code], preexec_fn=die_with_parent)
    try:
        yield core
    finally:
        process.kill()
        process.wait()


@contextmanager
def busy_processes(count: int) -> Iterator[list[int]]:
    """Start ``count`` unpinned ``while True: pass`` processes (the scheduler places them); yields their pids."""
    processes: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            processes.append(subprocess.Popen([sys.executable, "-c", SPIN], preexec_fn=die_with_parent))
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()


def exit_on_terminate() -> None:
    """SIGTERM ends the benchmark as Ctrl-C does, through every ``finally`` (busy processes are killed)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def load_average() -> float:
    """The one-minute load average, printed next to every figure measured on a shared machine."""
    return os.getloadavg()[0]
