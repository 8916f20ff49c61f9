"""Keep freed memory in the process, so a training step reuses warm pages.

Training allocates and frees the same large tensors again and again. glibc's malloc
serves a block above its ``mmap`` threshold (adaptive, at most 32 MiB on 64-bit) with
a fresh ``mmap`` and unmaps it on ``free``, and it trims the free top of its heap back
to the kernel. An evaluation batch of 2048 allocates blocks of about 50 MB, so every
evaluation, and every step after a trim, page-faults its memory in again while the
kernel zeroes each page (``docs/performance.md`` counts the faults and their cost).
With ``mmap`` and trimming off, freed blocks stay in the heap and are reused warm.
The process keeps its peak memory (about 1 GB for one training run) until it exits.

Only where and how memory is allocated changes, never a computed value: results
are bit-identical with and without it (a test checks).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # an int: the largest threshold mallopt takes


def keep_freed_memory() -> bool:
    """Tell glibc's malloc never to ``mmap`` a block and never to trim the heap.

    Returns whether it took effect: False off Linux or on another C library (musl),
    where the allocator is left as it is.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # no glibc: nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
