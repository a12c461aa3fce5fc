"""Keep freed memory in the process while timing, as a deployed model's allocator does.

glibc hands a freed block above its mmap threshold back to the kernel, and the next call's
activations fault every page in again. Its threshold only grows as such blocks are freed, so a
network's time depended on what the process had freed before: the same 3->32 convolution at
256x512 took 7.2 ms with 2017 page faults per call, or 1.2 ms with none, on the 2-core VM. A
deployment reuses its activation memory (an arena, a caching allocator); so does a timing here.
"""

from __future__ import annotations

import ctypes
import functools
import platform

MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""glibc's largest mmap threshold on 64-bit, where its own dynamic threshold stops growing:
blocks below it come from the heap and are reused."""
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES
"""Free memory kept at the heap's top before it goes back to the kernel (glibc pairs 2x the threshold)."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def keep_freed_memory() -> bool:
    """Fix glibc's thresholds for this process (once); False where the C library is not glibc.

    The values are where glibc's dynamic thresholds end up in a long-running process, set from
    the start, so training in the same process sees the allocator it would see anyway.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and \
        bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
