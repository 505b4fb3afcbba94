"""keep_freed_memory: large tensors come from the heap (reused after free), not from mmap."""

import os
import platform
import subprocess
import sys

import pytest

from training.allocator import keep_freed_memory

# bytes that malloc holds in mmapped blocks, before and while a 24 MiB tensor lives
MMAPPED = """
import ctypes, sys
import torch
from training.allocator import keep_freed_memory


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    assert keep_freed_memory()
before = libc.mallinfo2().hblkhd
x = torch.empty(6 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_large_tensors_come_from_the_heap_not_from_mmap():
    # glibc's defaults, whatever this process was started with: MALLOC_* variables (or
    # GLIBC_TUNABLES) change the thresholds, and a preloaded allocator replaces malloc
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD")}

    def mmapped(mode):
        out = subprocess.run([sys.executable, "-c", MMAPPED, mode], capture_output=True,
                             text=True, check=True, env=env)
        return int(out.stdout)

    # by default a fresh process serves 24 MiB with its own mmap, unmapped again on free (so
    # every such temporary is faulted in anew); with the thresholds raised it comes from the
    # heap, where a freed block is reused
    assert mmapped("default") >= 24 << 20
    assert mmapped("keep") == 0


def test_bad_limit_is_refused():
    with pytest.raises(ValueError, match="limit"):
        keep_freed_memory(0)
