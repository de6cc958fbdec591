"""Pick the device once, say which: CUDA if there is a GPU, else Apple's MPS, else the CPU."""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["device"]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _describe(chosen: torch.device) -> str:
    if chosen.type == "cuda":
        return torch.cuda.get_device_name(chosen)
    if chosen.type == "mps":
        return "Apple GPU, Metal Performance Shaders"
    cpu = platform.processor() or platform.machine() or "CPU"
    return f"{cpu}, {torch.get_num_threads()} threads"


def device(verbose: bool = True) -> torch.device:
    """The device to compute on: CUDA, else Apple MPS, else CPU; printed when `verbose`.

    The environment variable CNNLIB_DEVICE (e.g. ``cpu`` or ``cuda:1``) overrides the choice,
    to compare devices or to keep a shared GPU free.

    >>> dev = device()                       # doctest: +SKIP
    cnnlib: using cuda (NVIDIA H100 80GB HBM3)
    >>> model.to(dev); x = x.to(dev)         # doctest: +SKIP
    """
    requested = os.environ.get("CNNLIB_DEVICE", "").strip()
    if requested:
        try:
            chosen = torch.device(requested)
        except RuntimeError as error:
            raise ValueError(
                f"CNNLIB_DEVICE must name a torch device such as 'cpu', 'cuda' or 'mps', "
                f"got {requested!r}"
            ) from error
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"CNNLIB_DEVICE={requested!r} but CUDA is not available here")
        if chosen.type == "mps" and not _mps_available():
            raise ValueError(f"CNNLIB_DEVICE={requested!r} but MPS is not available here")
    elif torch.cuda.is_available():
        chosen = torch.device("cuda")
    elif _mps_available():
        chosen = torch.device("mps")
    else:
        chosen = torch.device("cpu")
    if verbose:
        print(f"cnnlib: using {chosen} ({_describe(chosen)})")
    return chosen
