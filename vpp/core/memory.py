"""Giving freed memory back to the system (glibc only; elsewhere nothing changes).

glibc serves a large allocation (a numpy array of a few hundred kB and up) from its own
mapping, and hands the mapping back when the array is freed; but each such free raises the
size from which it does so (up to 32 MB), so after the first plan the planner's big
temporaries (per-device tables of thousands of columns) come from the heap, and the heap
keeps its high-water mark. At 5,000 devices that was about 100 MB per agent process held
after every re-plan. :func:`return_large_frees` fixes the size: large arrays are mapped and
unmapped as they come and go. Only where memory comes from changes, not what is computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("vpp.memory")

#: ``M_MMAP_THRESHOLD`` of glibc's ``mallopt``.
_M_MMAP_THRESHOLD = -3
#: Allocations from this size [bytes] get a mapping of their own (glibc's starting value).
MMAP_THRESHOLD_BYTES = 128 * 1024


def return_large_frees(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold_bytes`` for this process; True when set
    (False: not glibc). Call it once, early, in a long-running process."""
    if threshold_bytes <= 0:
        raise ValueError(f"threshold_bytes: must be > 0, got {threshold_bytes}")
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        # musl and others have no such knob; glibc reports whether it took the value.
        glibc = hasattr(libc, "gnu_get_libc_version")
        ok = glibc and bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):
        return False
    if not ok:
        log.info("allocator kept its mmap threshold (not glibc)")
    return ok
