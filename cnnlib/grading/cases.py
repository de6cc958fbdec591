"""Inputs for graded checks: the edge cases a formula gets wrong first, then seeded random ones.

Seeded so that every submission is checked on the same inputs: an assignment's checks file passes
the seed the grader derives from the course secret and the grade cell (see `secret`), so students
cannot know the random inputs in advance. Each generator returns keyword-argument dicts, the cases
of a `Call` check (or of `check_function`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "conv_cost_cases",
    "conv_geometry_cases",
    "receptive_field_cases",
    "same_padding_cases",
]

# (size, kernel, stride, pad): a stride that does not divide, padding larger than the kernel,
# 1x1 kernels, a kernel as large as the input, a stride larger than the kernel.
_EDGE_GEOMETRIES = [
    (6, 3, 2, 0), (10, 3, 3, 0), (227, 11, 4, 0), (224, 7, 2, 3), (56, 3, 2, 0),
    (5, 1, 1, 3), (4, 3, 1, 5), (7, 2, 1, 4),
    (7, 1, 1, 0), (7, 1, 2, 0), (1, 1, 1, 0),
    (5, 5, 1, 0), (5, 5, 3, 0), (3, 5, 1, 1),
    (10, 2, 3, 0), (9, 1, 4, 2),
]  # fmt: skip


def conv_geometry_cases(
    seed: int, n: int = 200, *, dilation: bool = False, strict: bool = False
) -> list[dict]:
    """Geometries for `conv_output_size`: edge cases first, then `n` random ones.

    dilation=True adds dilations 1..3 (and kernels too large for the padded input, which must
    raise ValueError); strict=True passes strict=True, so non-dividing strides must raise.
    """
    rng = np.random.default_rng(seed)
    cases = []
    for size, kernel, stride, pad in _EDGE_GEOMETRIES:
        if not dilation and kernel > size + 2 * pad:
            continue  # only the dilation check asks for errors on oversized kernels
        cases.append({"size": size, "kernel": kernel, "stride": stride, "pad": pad})
    while len(cases) < len(_EDGE_GEOMETRIES) + n:
        case = {
            "size": int(rng.integers(1, 100)),
            "kernel": int(rng.integers(1, 12)),
            "stride": int(rng.integers(1, 6)),
            "pad": int(rng.integers(0, 6)),
        }
        if dilation:
            case["dilation"] = int(rng.integers(1, 4))
        k_eff = case.get("dilation", 1) * (case["kernel"] - 1) + 1
        if not dilation and k_eff > case["size"] + 2 * case["pad"]:
            continue
        cases.append(case)
    if strict:
        cases = [{**case, "strict": True} for case in cases]
    return cases


def same_padding_cases() -> list[dict]:
    """Kernels 1..15 with dilations 1..4: odd effective sizes have an answer, even ones raise."""
    return [{"kernel": k, "dilation": d} for k in range(1, 16) for d in range(1, 5)]


def receptive_field_cases(seed: int, n: int = 150) -> list[dict]:
    """Stacks of (kernel, stride) and (kernel, stride, dilation) layers, 1 to 7 layers deep."""
    rng = np.random.default_rng(seed)
    cases = [
        {"layers": [(3, 1)] * 3},
        {"layers": [(3, 1), (2, 2), (3, 1), (2, 2)]},
        {"layers": [(11, 4), (3, 2), (5, 1), (3, 2)]},
        {"layers": [(1, 1)]},
        {"layers": [(3, 1, 1), (3, 1, 2), (3, 1, 4)]},
    ]
    for _ in range(n):
        depth = int(rng.integers(1, 8))
        with_dilation = bool(rng.integers(0, 2))
        layers = []
        for _ in range(depth):
            k, s = int(rng.integers(1, 8)), int(rng.integers(1, 4))
            layers.append((k, s, int(rng.integers(1, 4))) if with_dilation else (k, s))
        cases.append({"layers": layers})
    return cases


def conv_cost_cases(seed: int, n: int = 150, *, output_size: bool = False) -> list[dict]:
    """Conv layers for `conv_params` (output_size=False: with `bias`) or `conv_macs` (True).

    Kernels and output sizes are square ints or rectangular (H, W) tuples.
    """
    rng = np.random.default_rng(seed)

    def square_or_pair(low, high):
        if rng.integers(0, 3) == 0:
            return (int(rng.integers(low, high)), int(rng.integers(low, high)))
        return int(rng.integers(low, high))

    cases = []
    for _ in range(n):
        case = {
            "in_channels": int(rng.integers(1, 513)),
            "out_channels": int(rng.integers(1, 513)),
            "kernel": square_or_pair(1, 12),
        }
        if output_size:
            case["output_size"] = square_or_pair(1, 230)
        else:
            case["bias"] = bool(rng.integers(0, 2))
        cases.append(case)
    return cases
