"""Numerical gradients: the centred difference that every backward pass is checked against.

For a scalar function f and a small step h, the centred difference

    df/dx_i ≈ (f(x + h e_i) - f(x - h e_i)) / (2h)

has error O(h²) (the forward difference has O(h)), so with h = 1e-5 in float64 the truncation
error is ~1e-10 and round-off ~1e-16 / 1e-5 = 1e-11: analytic and numeric gradients of a smooth
layer agree to a relative error of about 1e-8 or better. Gradient checks therefore run in float64.

The functions take a zero-argument ``f`` that closes over the array ``x`` and perturb ``x`` *in
place* (restoring every entry afterwards), so ``f`` sees the change without being told about it::

    x = rng.standard_normal((4, 5))
    dx_num = numeric_gradient_array(lambda: relu_forward(x)[0], x, dout)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from ._checks import check_float_array, check_positive_int

__all__ = [
    "check_layer_gradients",
    "grad_check_sparse",
    "numeric_gradient",
    "numeric_gradient_array",
    "rel_error",
]


def rel_error(a, b) -> float:
    """Largest elementwise relative error ``max |a - b| / max(1e-8, |a| + |b|)``.

    The denominator is the sum of magnitudes, so the result lies in [0, 1] and is symmetric in
    a and b; the floor of 1e-8 keeps entries where both are ~0 from dividing by zero (there
    the error is effectively absolute). Rule of thumb in float64: < 1e-7 is a correct gradient
    of a smooth function, ~1e-4 is suspicious unless there is a kink nearby, > 1e-2 is wrong.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"rel_error needs a and b of the same shape, got {a.shape} and {b.shape}"
        )
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _evaluate_either_side(evaluate: Callable, x: np.ndarray, index, h: float):
    """(evaluate() with x[index] + h, evaluate() with x[index] - h), leaving x as it was."""
    original = x[index]
    try:
        x[index] = original + h
        f_plus = evaluate()
        x[index] = original - h
        f_minus = evaluate()
    finally:
        x[index] = original
    return f_plus, f_minus


def _centred_difference(evaluate: Callable[[], float], x: np.ndarray, index, h: float) -> float:
    """(evaluate at x[index] + h - evaluate at x[index] - h) / 2h, leaving x as it was."""
    f_plus, f_minus = _evaluate_either_side(evaluate, x, index, h)
    return (f_plus - f_minus) / (2.0 * h)


def _bind(f: Callable, x: np.ndarray) -> Callable:
    """``f`` as a zero-argument function.

    The course's convention is ``f()`` closing over x; a function written the older way,
    ``f(x)`` (as in many course notes), is also accepted and is called with the perturbed x.
    """
    try:
        inspect.signature(f).bind()
    except TypeError:
        return lambda: f(x)
    except ValueError:  # builtins without a signature: call them as they are
        return f
    return f


def _check_perturbable(x) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"x must be a NumPy array (it is perturbed in place), got {type(x).__name__}"
        )
    check_float_array("x", x)


def numeric_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred-difference gradient of the scalar ``f()`` with respect to every entry of ``x``.

    f: takes no arguments, closes over x, returns a number (``f(x)`` is accepted too).
    x: float array of any shape; perturbed in place one entry at a time and restored.
    Returns grad with grad.shape == x.shape (float64). Costs 2 * x.size calls of f.
    """
    _check_perturbable(x)
    f = _bind(f, x)
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        grad[index] = _centred_difference(lambda: float(f()), x, index, h)
    return grad


def numeric_gradient_array(
    f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Gradient of ``sum(f() * dout)`` with respect to ``x``: what a layer's backward returns.

    f: takes no arguments, closes over x, returns an array of dout's shape (a layer's output).
    dout: the upstream gradient. By the chain rule, dL/dx = sum_j dout_j * d out_j / dx, which
    is exactly the derivative of the scalar sum(out * dout) with dout held fixed.
    Returns grad with grad.shape == x.shape (float64).

    The two perturbed outputs are subtracted elementwise *before* they are weighted and summed:
    outputs that do not depend on the perturbed entry then cancel exactly, instead of adding
    their round-off to the sum (which matters for layers with many outputs).
    """
    _check_perturbable(x)
    f = _bind(f, x)
    dout = np.asarray(dout, dtype=np.float64)

    def output() -> np.ndarray:
        out = np.array(f(), dtype=np.float64)  # a copy: f may reuse its output buffer
        if out.shape != dout.shape:
            raise ValueError(
                f"dout must have the shape of f()'s output {out.shape}, got {dout.shape}"
            )
        return out

    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        out_plus, out_minus = _evaluate_either_side(output, x, index, h)
        grad[index] = np.sum((out_plus - out_minus) * dout) / (2.0 * h)
    return grad


def grad_check_sparse(
    f: Callable[[], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | None = 0,
    verbose: bool = False,
) -> np.ndarray:
    """Compare ``analytic_grad`` with the centred difference at ``num_checks`` random entries.

    For big parameters (a conv layer's weights) a full numeric gradient is too slow; a handful of
    random coordinates catches almost every mistake. Coordinates are drawn with replacement from
    ``np.random.default_rng(seed)``. Returns the relative error at each checked coordinate
    (shape (num_checks,)); with ``verbose=True`` also prints one line per coordinate.
    """
    _check_perturbable(x)
    f = _bind(f, x)
    num_checks = check_positive_int("num_checks", num_checks)
    analytic_grad = np.asarray(analytic_grad)
    if analytic_grad.shape != x.shape:
        raise ValueError(
            f"analytic_grad must have the shape of x {x.shape}, got {analytic_grad.shape}"
        )
    rng = np.random.default_rng(seed)
    errors = np.empty(num_checks, dtype=np.float64)
    for k in range(num_checks):
        index = tuple(int(rng.integers(n)) for n in x.shape)
        numeric = _centred_difference(lambda: float(f()), x, index, h)
        analytic = float(analytic_grad[index])
        errors[k] = rel_error(numeric, analytic)
        if verbose:
            print(f"{index}: numeric {numeric:+.6e}  analytic {analytic:+.6e}  "
                  f"relative error {errors[k]:.2e}")
    return errors


def check_layer_gradients(
    forward: Callable,
    backward: Callable,
    *args,
    dout: np.ndarray | None = None,
    dout_seed: int | None = 0,
    h: float = 1e-5,
    **kwargs,
) -> list[float]:
    """Relative errors between a layer's backward and numerical gradients, one per array input.

    Calls ``out, cache = forward(*args, **kwargs)`` and ``backward(dout, cache)``, which by the
    layer contract returns the gradients of the floating-point NumPy arrays among ``args`` in
    their order (other arguments, such as batch norm's ``state`` dict, get none). Each is
    compared with numeric_gradient_array. dout defaults to standard normal noise drawn with
    ``dout_seed`` (named so that a layer's own ``seed``, as dropout's, passes through kwargs).
    Use float64 inputs: then < 1e-7 means a correct backward for a smooth layer::

        errors = check_layer_gradients(affine_forward, affine_backward, x, w, b)
        assert max(errors) < 1e-7
    """
    arrays = [a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    out, cache = forward(*args, **kwargs)
    if dout is None:
        dout = np.random.default_rng(dout_seed).standard_normal(np.shape(out)).astype(out.dtype)
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(arrays):
        raise ValueError(
            f"backward returned {len(grads)} gradients for {len(arrays)} float array arguments"
        )
    return [
        rel_error(grad, numeric_gradient_array(lambda: forward(*args, **kwargs)[0], a, dout, h))
        for a, grad in zip(arrays, grads, strict=True)
    ]
