"""Autograding: what grade cells call, what an assignment's checks file is written with, and the
hardened grader (`python -m cnnlib grade`).

A grade cell's hidden tests are one line::

    from cnnlib.grading import hidden_tests
    hidden_tests("test_same_padding", globals())

which runs the checks that `solutions/<assignment>/checks.py` defines for that cell (see
`cnnlib.grading.authoring`, and the README's "Writing an assignment"). The checks compare the
student's functions with the reference on fixed edge cases and on random inputs that are the same
for every submission, and a failure names the call, what came back and what was expected.
`check_function` / `check_table` do the same on inputs a cell gives them directly.
"""

from cnnlib.grading.authoring import Assignment, Check, load_checks
from cnnlib.grading.cases import (
    conv_cost_cases,
    conv_geometry_cases,
    receptive_field_cases,
    same_padding_cases,
)
from cnnlib.grading.checks import CheckFailure, call_repr, check_function, check_table
from cnnlib.grading.compare import Accuracy, Close, Table
from cnnlib.grading.held_out import HeldOut, perturbed_digits
from cnnlib.grading.hidden import hidden_tests
from cnnlib.grading.probes import Backward, Call, Forward, ForwardBackward, Probe

__all__ = [
    "Accuracy",
    "Assignment",
    "Backward",
    "Call",
    "Check",
    "CheckFailure",
    "Close",
    "Forward",
    "ForwardBackward",
    "HeldOut",
    "Probe",
    "Table",
    "call_repr",
    "check_function",
    "check_table",
    "conv_cost_cases",
    "conv_geometry_cases",
    "hidden_tests",
    "load_checks",
    "perturbed_digits",
    "receptive_field_cases",
    "same_padding_cases",
]
