"""The course around the library: a lecture's set-up in one call, the exercise convention, the
course map, and running notebooks headless (the tests, the site and the timings use the same code).

In a lecture::

    from cnnlib import course
    QUICK, DEVICE = course.setup(torch_threads=1)   # prints quick mode, device and threads

`cnnlib.course.exercises` knows what an exercise looks like (question, empty cell, a markdown
answer tagged ``answer`` holding ``<details>`` and fenced python blocks), `cnnlib.course.run`
executes a notebook top to bottom with its answers run in place, and `cnnlib.course.catalog`
reads `lectures/course.yml` and the measured run times into the course map.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from cnnlib import quick_mode

__all__ = ["Setup", "setup"]


class Setup(NamedTuple):
    quick: bool
    device: object  # a torch.device, or None when the lecture asked for no torch


def setup(torch_threads: int | None = None, device: bool = True) -> Setup:
    """Quick mode, the device and the CPU threads of a lecture, chosen once and printed in one line.

    torch_threads: how many CPU threads torch may use, or None to keep torch's choice. Lectures
        whose networks are tiny (batches of a few dozen, weights in the thousands) pass 1: on a
        CPU, splitting such small products across threads costs more than it saves, and far more
        when other programs share the cores. A GPU is not affected.
    device: pick the device with `cnnlib.torch.device()` (CUDA, else Apple MPS, else the CPU);
        False for a lecture that needs no torch, which then is not even imported.

    Returns (quick, device). The quick mode comes from CNNLIB_QUICK (set by the tests and CI):
    smaller data and fewer epochs, the same code.
    """
    if torch_threads is not None and (not isinstance(torch_threads, int) or torch_threads < 1):
        raise ValueError(f"torch_threads must be a positive int or None, got {torch_threads!r}")
    quick = quick_mode()
    parts = [f"quick mode: {quick}"]
    chosen = None
    if device or torch_threads is not None:
        import torch

        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        parts.append(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
        if device:
            from cnnlib.torch import device as pick_device

            chosen = pick_device(verbose=False)
            parts.append(f"device: {chosen}")
    if os.environ.get("CNNLIB_DEVICE"):
        parts.append(f"(CNNLIB_DEVICE={os.environ['CNNLIB_DEVICE']})")
    print("; ".join(parts))
    return Setup(quick, chosen)
