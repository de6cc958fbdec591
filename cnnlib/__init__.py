"""cnnlib: the reference code of the CNN course.

`cnnlib.arithmetic` holds the shape and cost arithmetic of conv nets, `cnnlib.numpy` the NumPy
reference layers, `cnnlib.torch` their PyTorch counterparts and the case-study models, `cnnlib.data`
the datasets, `cnnlib.viz` the lecture figures and `cnnlib.grading` the autograding checks.
`cnnlib.summary(model, input_shape)` is `cnnlib.torch.summary`, importable without loading torch
until it is first used.
"""

import os

__version__ = "0.1.0"


def quick_mode() -> bool:
    """True when notebooks should shrink data and epochs (environment variable CNNLIB_QUICK=1).

    The tests and CI set it so every notebook finishes in well under a minute; a student running a
    notebook by hand gets the full experiment. The same code runs in both modes, only sizes change.
    """
    return os.environ.get("CNNLIB_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def grading_mode() -> bool:
    """True while the course's grader runs a notebook (environment variable CNNLIB_GRADING=1).

    An assignment's long training cell checks it and loads the weights the student handed in
    instead of training again, so grading takes seconds and never depends on the machine's speed:
    `if not cnnlib.grading_mode(): train(...); save(...)`.
    """
    return os.environ.get("CNNLIB_GRADING", "").strip().lower() not in ("", "0", "false", "no")


def __getattr__(name: str):
    # `cnnlib.summary` without importing torch on `import cnnlib`.
    if name == "summary":
        from cnnlib.torch.summary import summary

        return summary
    raise AttributeError(f"module 'cnnlib' has no attribute {name!r}")
