"""Memory freed by a stage handed back to the system, so the next stage's peak does not stand on it.

At 20,000 containers the backtest's pass over the per-pod histograms frees hundreds of MB of arrays of a
few MB each. glibc's allocator keeps such blocks in its heap for reuse (its threshold for giving an
allocation its own mapping rises to 32 MB once large blocks are freed), and Arrow's allocator keeps what
a streamed table used: the process' resident memory stays at its high-water mark although the memory is
free. :func:`release` returns both at a stage boundary (measured: 400 MB at 21,000 containers); on a
system without glibc it does only Arrow's part. It frees nothing alive, so no result can change.

How glibc hands memory out is set per phase, as the work's shape differs (:func:`for_streaming`,
:func:`for_tables`); neither changes what is computed, only page faults and resident memory. Python's
cyclic garbage collector is paused while objects are built in bulk, and what they built is frozen (:func:`bulk`):
it frees only reference cycles, and each of its runs walks objects.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # mallopt parameters (malloc.h)


@lru_cache(maxsize=None)
def _libc(function: str):
    """glibc's ``function`` (mallopt, malloc_trim), or None (another C library, e.g. musl or macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), function) if name else None
    except (OSError, AttributeError):
        return None


def _set(**params: int) -> None:
    mallopt = _libc("mallopt")
    if mallopt is not None:
        for key, value in params.items():
            mallopt(globals()[key], value)


def for_streaming() -> None:
    """Collection: answers of tens of MB parsed by worker threads. By default glibc raises its mmap threshold
    to the size of the last big buffer freed (up to 32 MiB), so the next answers come from the workers' heaps
    and stay resident after they are freed: about 150 MiB more peak RSS at 1,000 containers. A fixed 1 MiB
    threshold and two arenas keep them mapped and returned, and glibc's default trim threshold (128 KiB; table
    work before the pulls, e.g. reading the config, may have raised it) hands the heap's free top back at once."""
    _set(M_MMAP_THRESHOLD=1 << 20, M_TRIM_THRESHOLD=128 << 10, M_ARENA_MAX=2)


def for_tables() -> None:
    """analyze, report and patch: whole-table numpy/pandas work that allocates and frees arrays of a few MB
    thousands of times. Mapped and unmapped each time (the 1 MiB threshold), every page of every array is
    a fresh page fault: 10 of analyze's 32 CPU-seconds at 21,000 containers were the kernel's. Arrays up to
    8 MiB come from the heap, and up to 64 MiB of its free top is kept for the next ones instead of being
    handed back at every free (more, and `run`'s analysis after its pulls peaks 100 MB higher at 10,000
    containers); :func:`release` hands it back at stage boundaries. Measured: analyze at 21,000 containers
    32 -> 25.5 CPU-seconds, +25 MB peak RSS; `run` at 10,000 containers +25 MB peak RSS."""
    _set(M_MMAP_THRESHOLD=8 << 20, M_TRIM_THRESHOLD=64 << 20, M_ARENA_MAX=2)


def release() -> None:
    """Hand the free memory kept by Arrow's and the C library's allocators back to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _libc("malloc_trim")
    if trim is not None:
        trim(0)


@contextmanager
def command() -> Iterator[None]:
    """A command's policy: :func:`for_tables` (the collection's pulls switch to :func:`for_streaming` while they
    run); objects frozen by :func:`bulk` are given back to the collector after it, for a caller that goes on (a
    test, a notebook)."""
    for_tables()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def bulk() -> Iterator[None]:
    """Objects built in bulk and kept (a report's cells and rows, a patch set's YAML, a forked child's answer):
    the cyclic collector is paused inside the block (it nests) and what is alive after it is frozen. A burst of
    allocations starts collection after collection, each walking the young objects, and every tenth one the
    older ones too: at 20,000 containers that tripled the time of report.html's embedded tables (4.3 s against
    0.9 s). Paused, the first collection after the block would still walk all of it (0.3 s, then 0.6 s again in
    the next generation); frozen (gc.freeze), later collections skip it. Reference counting still frees what is
    dropped; only a cycle made inside the block (a matplotlib figure, a ruamel emitter) waits for the command's
    end (:func:`command` unfreezes)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
            gc.freeze()
