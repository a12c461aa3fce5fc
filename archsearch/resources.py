"""What this machine lends a process: CPUs and memory, read once per question so that limits are checked
before any work, not discovered by an oversubscribed or swapping machine."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from archsearch.errors import ArchsearchError, SpecError


class OutOfMemory(ArchsearchError):
    """A network, input or batch needs more memory than the machine has (estimated, or an allocation failed).

    Not a SpecError: in a study, it fails the one trial whose point is too large and the study goes on.
    """


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_threads(threads: int | None, *, source: str, path: str = "") -> None:
    """More threads than CPUs only makes them wait for each other (and timings meaningless)."""
    cpus = available_cpus()
    if threads is not None and threads > cpus:
        raise SpecError(f"more threads than the {cpus} CPU{'s' * (cpus > 1)} this process may use", path=path,
                        value=threads, allowed=f"1 to {cpus}", source=source)


def available_memory_bytes(device: str = "cpu") -> int:
    """Memory a new allocation on ``device`` can get: for the CPU the kernel's MemAvailable (less where a
    cgroup limit is lower), for a CUDA device its free memory."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.mem_get_info(torch.device(device))[0]
    available = _meminfo_available()
    limit = _cgroup_room()
    candidates = [value for value in (available, limit) if value is not None]
    if not candidates:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return min(candidates)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """cgroup v2 ``memory.max`` less ``memory.current`` (None where there is no limit)."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} PiB"


def check_memory(needed_bytes: int, *, what: str, source: str, device: str = "cpu") -> None:
    """Refuse work estimated to need more memory than ``device`` has free, with the estimate."""
    available = available_memory_bytes(device)
    if needed_bytes > available:
        where = "" if device == "cpu" else f" on {device}"
        raise OutOfMemory(f"{source + ': ' if source else ''}{what} needs about {format_bytes(needed_bytes)} of "
                          f"memory{where}, more than the {format_bytes(available)} available; use a smaller width, "
                          "class count, input size or batch")


def is_allocation_failure(error: BaseException) -> bool:
    """An allocation that failed: MemoryError, torch's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    if isinstance(error, MemoryError):
        return True
    import torch

    text = str(error)
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text))


def allocation_failed(error: BaseException, *, what: str, source: str) -> OutOfMemory:
    """The one message for an allocation that failed although the estimate let the work start."""
    available = format_bytes(available_memory_bytes())
    detail = " ".join(str(error).split())[:200]
    return OutOfMemory(f"{source + ': ' if source else ''}{what} ran out of memory ({available} available now): "
                       f"{detail or type(error).__name__}; use a smaller width, class count, input size or batch")


def process_alive(pid: int) -> bool:
    """Whether a process of this machine still runs (its lock, trial or staging folder is not abandoned)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


BUSY_FIELDS = slice(1, 9)
"""A /proc/stat CPU line's times: user, nice, system, idle and iowait (not busy, taken out below), irq, softirq,
steal; guest time is already inside user."""
LOAD_WINDOW_SECONDS = 0.5


def busy_cpus_elsewhere(window_seconds: float = LOAD_WINDOW_SECONDS) -> float | None:
    """How many of this process's CPUs other processes kept busy over ``window_seconds`` (0.0 on an idle machine,
    about 1.0 next to one busy process), from the kernel's per-CPU times less this process's own; None where
    the kernel does not say (not Linux). Call it between pieces of work, so that this process's share is small."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    before = _cpu_times(cpus)
    own_before = _own_cpu_seconds()
    if before is None or own_before is None:
        return None
    time.sleep(window_seconds)
    after = _cpu_times(cpus)
    own_after = _own_cpu_seconds()
    if after is None or own_after is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = (after[0] - before[0]) / tick - (own_after - own_before)
    elapsed = (after[1] - before[1]) / tick  # busy and idle time over the CPUs: about len(cpus) x the window
    return max(0.0, busy / elapsed * len(cpus)) if elapsed > 0 else None


def threads_for_free_cpus(wanted: int, busy_elsewhere: float | None, cpus: int | None = None) -> int:
    """``wanted`` threads, or as many as the CPUs others leave free (at least 1): threads that must meet at each
    barrier lose far more than a fair share when another process holds one of their cores (README "Threads on
    a shared machine")."""
    if busy_elsewhere is None:
        return wanted
    free = (cpus or available_cpus()) - busy_elsewhere
    return max(1, min(wanted, math.floor(free + 0.5)))


def _cpu_times(cpus: list[int]) -> tuple[int, int] | None:
    """Busy and total clock ticks summed over ``cpus`` (from /proc/stat's ``cpuN`` lines)."""
    wanted = {f"cpu{cpu}" for cpu in cpus}
    busy = total = 0
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if fields and fields[0] in wanted:
            ticks = [int(value) for value in fields[BUSY_FIELDS]]
            idle = ticks[3] + ticks[4]  # idle and iowait
            busy += sum(ticks) - idle
            total += sum(ticks)
    return (busy, total) if total else None


def _own_cpu_seconds() -> float | None:
    """CPU time this process and its reaped children used (their threads included)."""
    try:
        times = os.times()
    except OSError:
        return None
    return times.user + times.system + times.children_user + times.children_system
