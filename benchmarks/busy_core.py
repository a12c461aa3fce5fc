"""A busy neighbour for latency benchmarks: a process spinning on the last core while the block runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def busy_core() -> Iterator[int]:
    """Spin a child process on the last core this process may use; yields the core; the child is killed after."""
    core = max(os.sched_getaffinity(0))
    code = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True:\n    pass\n"
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield core
    finally:
        process.kill()
        process.wait()
