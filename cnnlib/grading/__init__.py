"""Autograding support: checks that grade cells call, and the inputs they use.

A grade cell compares the student's function with the reference from `cnnlib` on fresh inputs::

    from cnnlib import arithmetic
    from cnnlib.grading import check_function, conv_geometry_cases
    check_function(conv_output_size, arithmetic.conv_output_size, conv_geometry_cases(seed=1))
"""

from cnnlib.grading.cases import (
    conv_cost_cases,
    conv_geometry_cases,
    receptive_field_cases,
    same_padding_cases,
)
from cnnlib.grading.checks import CheckFailure, call_repr, check_function, check_table

__all__ = [
    "CheckFailure",
    "call_repr",
    "check_function",
    "check_table",
    "conv_cost_cases",
    "conv_geometry_cases",
    "receptive_field_cases",
    "same_padding_cases",
]
