import os
import subprocess
import sys
import textwrap

import pytest

from blockrank.serve.allocator import cap_malloc_arenas

# Eight threads alive at once each make their first malloc; glibc's malloc_info then lists one <heap> per arena.
COUNT_ARENAS = textwrap.dedent(
    """
    import ctypes, ctypes.util, sys, tempfile, threading
    from blockrank.serve.allocator import cap_malloc_arenas
    print(cap_malloc_arenas(int(sys.argv[1])))
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    all_in, done = threading.Barrier(9), threading.Barrier(9)
    def work():
        all_in.wait()
        libc.malloc(256)
        done.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    all_in.wait()
    done.wait()
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        fp = libc.fopen(f.name.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        print(open(f.name).read().count("<heap nr="))
    """
)


def arenas(cap: int, env: dict[str, str] | None = None) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", COUNT_ARENAS, str(cap)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | (env or {}),
    ).stdout.split()
    return out[0], int(out[1])


glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc")


@glibc
def test_the_cap_bounds_the_arenas_threads_get():
    applied, capped = arenas(2)
    _, default = arenas(0)
    assert applied == "True" and capped <= 2 < default


@glibc
def test_the_environment_variable_wins():
    applied, count = arenas(2, {"MALLOC_ARENA_MAX": "3"})
    assert applied == "False" and count <= 3


def test_zero_leaves_the_default():
    assert cap_malloc_arenas(0) is False


def test_serve_caps_by_default():
    from blockrank.cli import build_parser
    from blockrank.serve.allocator import SERVICE_ARENAS

    args = build_parser().parse_args(["serve"])
    assert args.malloc_arenas == SERVICE_ARENAS == 2
