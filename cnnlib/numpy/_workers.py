"""Worker threads for the fast paths of cnnlib.numpy (convolution and pooling).

An engineering helper, not part of the lectures' math: a fast forward or backward pass cuts the
batch into blocks that do not depend on each other and hands them to a few threads. NumPy
releases the GIL while it copies, adds, compares and multiplies whole arrays, so the blocks
really run at once; and a block small enough to stay in the CPU's caches is read from main
memory once instead of once per whole-array pass.

How many threads: as many as BLAS would use (OPENBLAS_NUM_THREADS, threadpoolctl's
``threadpool_limits``, ...), so ``threadpool_limits(1)`` makes every fast path serial. While the
blocks run, BLAS is held to one thread inside each of them (a convolution's matrix products
would otherwise start BLAS's own threads on top of the workers).
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

__all__ = ["blas_single_threaded", "run_blocks", "worker_count"]

# The worker threads (made on first use) and the handle on BLAS's own thread count
_pools: dict[int, ThreadPoolExecutor] = {}
_blas: ThreadpoolController | None = None
_modules_seen = 0  # len(sys.modules) when _blas was made
_pool_lock = threading.Lock()

# BLAS's thread count is process-wide, so calls running at once (user threads each calling
# conv_forward) share one hold on it: the first to start sets one thread, the last to finish
# restores the count, and the count seen before the first hold sizes every call's workers.
_hold_lock = threading.Lock()
_hold_count = 0
_hold: object | None = None  # threadpoolctl's limiter while held
_workers_before_hold = 1


def _controller() -> ThreadpoolController:
    """threadpoolctl's view of the loaded BLAS and OpenMP libraries, made again after any new
    import: a module imported since (scipy, say) may have loaded a BLAS of its own, which the
    hold on BLAS threads must cover too. (Making one costs about 0.7 ms; counting modules,
    nothing.)"""
    global _blas, _modules_seen
    if _blas is None or len(sys.modules) != _modules_seen:
        _blas, _modules_seen = ThreadpoolController(), len(sys.modules)
    return _blas


def worker_count() -> int:
    """Threads for the fast paths: as many as BLAS would use (set by OPENBLAS_NUM_THREADS,
    threadpoolctl.threadpool_limits, ...), or the CPUs if no BLAS reports a count. While
    another call holds BLAS to one thread, the count from before that hold."""
    with _hold_lock:
        if _hold_count:
            return _workers_before_hold
    counts = [lib["num_threads"] for lib in _controller().info() if lib["user_api"] == "blas"]
    return max(counts) if counts else (os.cpu_count() or 1)


@contextmanager
def blas_single_threaded(available: int):
    """BLAS held to one thread inside the blocks, shared by calls that overlap in time.

    threadpoolctl's own limiter restores the count it found on entry; two overlapping calls
    would each find a count, and the later one, finding 1, would leave BLAS single-threaded
    for good. Here only the first call in sets the limit and only the last call out lifts it.
    """
    global _hold, _hold_count, _workers_before_hold
    with _hold_lock:
        if _hold_count == 0:
            _workers_before_hold = available
            _hold = _controller().limit(limits=1, user_api="blas")
        _hold_count += 1
    try:
        yield
    finally:
        with _hold_lock:
            _hold_count -= 1
            if _hold_count == 0:
                _hold.restore_original_limits()
                _hold = None


def run_blocks(block_function, blocks) -> list:
    """[block_function(block) for block in blocks], the blocks spread over worker threads.

    Each worker does whole blocks, copies and matrix products alike, with BLAS held to one
    thread inside it. The results come back in the order of `blocks`, so a caller that sums
    them in that order gets the same numbers with any thread count. The limit on BLAS is
    process-wide while the blocks run (threadpoolctl cannot limit one thread alone), held
    jointly by calls from several user threads (see blas_single_threaded).
    """
    available = worker_count()
    workers = min(available, len(blocks))
    if workers <= 1:
        return [block_function(block) for block in blocks]
    with _pool_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="cnnlib-workers")
        pool = _pools[workers]
    with blas_single_threaded(available):
        return list(pool.map(block_function, blocks))
