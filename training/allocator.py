"""Keep freed memory in the process instead of handing it back to the OS (glibc only).

glibc's ``malloc`` serves every allocation above a threshold (128 KiB at first, adapting up to
32 MiB) with a fresh ``mmap`` and unmaps it on ``free``. PyTorch's CPU tensors go through
``malloc``, so a training step that makes and drops the same large temporaries every time
faults each of their pages in anew (the A2C update at 600 envs: thousands of minor page
faults per update). :func:`keep_freed_memory` raises the mmap and trim
thresholds with ``mallopt``, so freed blocks stay in the heap and are reused. The process then
keeps up to ``limit`` bytes of freed memory.

The training scripts and benchmarks call it at start-up (``--no-keep-memory`` turns it off);
the library itself never changes the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Raise glibc's mmap and trim thresholds to ``limit`` bytes.

    Returns True when they were set; False where the C library is not glibc (macOS, musl,
    Windows), where nothing is changed.
    """
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive number of bytes, got {limit!r}")
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    # mallopt caps the mmap threshold at HEAP_MAX/2 (32 MiB on 64-bit) and returns 0 above it
    mmap_threshold = min(limit, 32 << 20)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
                and libc.mallopt(_M_TRIM_THRESHOLD, limit)
                and libc.mallopt(_M_TOP_PAD, min(limit, 64 << 20)))


def add_keep_memory_flag(parser) -> None:
    """Add ``--no-keep-memory`` to a script's ``argparse`` parser (see :func:`from_args`)."""
    parser.add_argument("--no-keep-memory", action="store_true",
                        help="leave glibc's malloc thresholds alone (by default freed memory "
                             "is kept for reuse: fewer page faults, training/allocator.py)")


def from_args(args) -> bool:
    """:func:`keep_freed_memory` unless ``args.no_keep_memory``; returns whether it was set."""
    return False if args.no_keep_memory else keep_freed_memory()
