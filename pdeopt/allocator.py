"""The C allocator kept from returning the sweeps' large temporaries to the operating system.

A layer's NumPy expressions allocate and free temporaries the size of a state block (4 MB at
the benchmarks' size S, 16 MB at M). glibc serves blocks above its mmap threshold with fresh
``mmap`` pages and trims freed memory at the top of the heap, so every such temporary is
page-faulted in again: measured here, ``z * z`` on 4 MB takes 8 ms with glibc's defaults and
1.5 ms with the settings below (``benchmarks/roofline.py``: the parabolic layer's adjoint at S
from 33 to 21 ms). :func:`keep_freed_memory` sets

- ``M_MMAP_THRESHOLD`` to 32 MiB (glibc's largest): blocks up to that come from the heap;
- ``M_TRIM_THRESHOLD`` to 2 GiB and ``M_TOP_PAD`` to 64 MiB: freed memory stays in the
  process for the next temporary.

pdeopt calls it once on import; ``PDEOPT_KEEP_FREED_MEMORY=0`` in the environment leaves the
allocator alone. The cost is that the resident size does not shrink after a peak.
"""

import ctypes
import ctypes.util
import os

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_SETTINGS = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, (2 << 30) - 1),
             (_M_TOP_PAD, 64 << 20))


def keep_freed_memory() -> bool:
    """Tune glibc's ``malloc`` as the module docstring says; ``True`` if it was tuned (glibc
    found and ``PDEOPT_KEEP_FREED_MEMORY`` not ``0``)."""
    if os.environ.get("PDEOPT_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in _SETTINGS)
