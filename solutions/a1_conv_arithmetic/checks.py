"""Trusted checks of a1_conv_arithmetic: how each grade cell is graded (never released).

Every check compares the student's function with `cnnlib.arithmetic` on the edge cases of
`cnnlib.grading.cases` and on random cases drawn from the seed the grader gives it (the same for
every submission). While the student's code is checked, `cnnlib.arithmetic` raises, so an answer
that calls it gets nothing.
"""

import dataclasses

import numpy as np

from cnnlib import arithmetic
from cnnlib.grading import Assignment, Call, Table, cases

assignment = Assignment(blocked=["arithmetic.py"])

assignment.check(
    "test_conv_output_size_floor", Call("conv_output_size"),
    cases=lambda seed: cases.conv_geometry_cases(seed, n=300),
    reference=arithmetic.conv_output_size,
    hint="H' = (H + 2*pad - K) // stride + 1; pad is added on both sides",
)
assignment.check(
    "test_conv_output_size_dilation", Call("conv_output_size"),
    cases=lambda seed: cases.conv_geometry_cases(seed, n=300, dilation=True),
    reference=arithmetic.conv_output_size,
    hint="K_eff = dilation*(K - 1) + 1; raise ValueError when K_eff > H + 2*pad",
)
assignment.check(
    "test_conv_output_size_strict", Call("conv_output_size"),
    cases=lambda seed: cases.conv_geometry_cases(seed, n=300, strict=True),
    reference=arithmetic.conv_output_size,
    hint="with strict=True, raise ValueError exactly when (H + 2*pad - K_eff) % stride != 0",
)
assignment.check(
    "test_same_padding", Call("same_padding"),
    cases=lambda seed: cases.same_padding_cases(),
    reference=arithmetic.same_padding,
    hint="P = (K_eff - 1) / 2 with K_eff = dilation*(K - 1) + 1; even K_eff raises ValueError",
)
assignment.check(
    "test_receptive_field", Call("receptive_field"),
    cases=lambda seed: cases.receptive_field_cases(seed, n=200),
    reference=arithmetic.receptive_field,
    hint="each layer adds (K_eff - 1) times the product of the strides *before* it",
)
assignment.check(
    "test_conv_params", Call("conv_params"),
    cases=lambda seed: cases.conv_cost_cases(seed, n=200),
    reference=arithmetic.conv_params,
    hint="C_out*C_in*KH*KW weights, plus C_out biases only when bias=True",
)
assignment.check(
    "test_conv_macs", Call("conv_macs"),
    cases=lambda seed: cases.conv_cost_cases(seed, n=200, output_size=True),
    reference=arithmetic.conv_macs,
    hint="(C_out*H'*W') outputs times (C_in*KH*KW) multiply-adds per output",
)

LENET5 = [
    arithmetic.Conv(20, 5, pad=2), arithmetic.Pool(2), arithmetic.Conv(50, 5, pad=2),
    arithmetic.Pool(2), arithmetic.Linear(500), arithmetic.Linear(10),
]


def lenet5_reference(input_shape=(1, 28, 28)):
    return [dataclasses.asdict(row) for row in arithmetic.layer_table(input_shape, LENET5)]


def lenet5_cases(seed, n=12):
    rng = np.random.default_rng(seed)
    shapes = [(1, 28, 28), (1, 32, 32), (3, 64, 48), (1, 9, 9), (2, 17, 30)]
    while len(shapes) < n:
        shapes.append((int(rng.integers(1, 4)), int(rng.integers(4, 70)), int(rng.integers(4, 70))))
    return [{"input_shape": shape} for shape in shapes]


assignment.check(
    "test_lenet5_table", Call("lenet5_table"),
    cases=lenet5_cases, reference=lenet5_reference, compare=Table(),
    # a mistake in an earlier function costs its own cell's points, not these as well
    plug_in=("conv_output_size", "conv_params", "conv_macs"),
    hint="compute every row from input_shape with your own functions above",
)
