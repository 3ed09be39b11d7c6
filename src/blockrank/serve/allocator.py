"""A bound on glibc's malloc arenas for the long-running service (issue #20).

glibc gives each new thread its own malloc arena, up to eight per core, and returns little of an arena's
free memory to the system. Under a service's many short-lived request threads the resident memory then
swings by the size of whole arenas: a 10-minute soak moved -5.0% / +7.4% around its median with glibc's
default, and -3.3% / +4.6% with two arenas, at the same latency (docs/results.md, "HTTP service soak").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
SERVICE_ARENAS = 2


def cap_malloc_arenas(n: int = SERVICE_ARENAS) -> bool:
    """Let glibc's malloc use at most ``n`` arenas from now on; ``n <= 0`` leaves glibc's default.

    Returns whether the cap was set. It is not where the C library is not glibc, and it is left to the user
    when ``MALLOC_ARENA_MAX`` is set in the environment (glibc read it at start-up)."""
    if n <= 0 or "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return mallopt(M_ARENA_MAX, n) == 1
