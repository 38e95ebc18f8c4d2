"""Keep freed memory in the process: glibc's allocator, tuned for training loops.

PyTorch's CPU tensors come straight from ``malloc``. With glibc's defaults a freed
block of a few megabytes (one activation of a batch of images) is handed back to
the kernel, by ``munmap`` or by trimming the top of the heap, and the next training
step asks for the same memory again: every 4 KiB page of it is then faulted in and
zero-filled by the kernel. On the image presets that was more than a million page
faults per epoch of a PGD model and a third of its CPU time
(``benchmarks/bench_allocator.py``). Two ``mallopt`` settings stop the round trip:

- ``M_MMAP_THRESHOLD`` = :data:`MMAP_THRESHOLD_BYTES`: blocks up to 32 MiB (glibc's
  largest setting on 64-bit) come from the heap, not from fresh mappings;
- ``M_TRIM_THRESHOLD`` = :data:`TRIM_THRESHOLD_BYTES`: the heap's free top is kept
  for reuse instead of being returned.

A process then keeps the memory of its peak step (its resident size stays at its
peak instead of dropping between steps). The numbers a computation produces do not
change: tensors stay 64-byte aligned and no kernel sees a different input. Applied
by ``python -m manifold_lab.run`` (the driver process) and in every worker process
the backends start; never on import of the library, whose users' processes are
theirs to configure.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "keep_freed_memory"]

#: Blocks up to this size are taken from the heap (glibc's maximum on 64-bit systems).
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: Free memory at the heap's top kept before any is returned to the system.
TRIM_THRESHOLD_BYTES = 2**30

#: ``mallopt`` parameter numbers (glibc's ``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Tune glibc's ``malloc`` in this process (module docstring); True if applied.

    Returns False, changing nothing, where the C library is not glibc (macOS,
    Windows, musl): there the defaults stay.

    Examples
    --------
    >>> keep_freed_memory() in (True, False)
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        # The symbols already loaded into this process (as backends.workers._die_with_parent reads prctl).
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):  # glibc only
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on an invalid value.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
