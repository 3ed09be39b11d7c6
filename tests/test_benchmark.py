"""Measurement helpers of the speed benchmark."""

from __future__ import annotations

import torch

from blockrank.eval.benchmark import PeakMemory


def test_peak_memory_counts_memory_that_malloc_kept_from_an_earlier_call():
    mib = 2**20 // 4  # float32 elements per MiB
    for size in (24, 16):  # the first free raises glibc's mmap threshold, so the second block stays in the heap
        block = torch.ones(size * mib)
        del block
    with PeakMemory(torch.device("cpu")) as mem:
        block = torch.ones(16 * mib)  # may reuse the freed heap block: RSS rises only if it was given back
    del block
    assert 14 <= mem.mb <= 24
