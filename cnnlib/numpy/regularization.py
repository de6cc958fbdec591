"""Weight regularisation: penalties added to the data loss, and the constraints applied after an
update. Each penalty returns (loss, dw), to be added to the data loss and its gradient.

- L2: loss = 0.5 * reg * sum(w²), dw = reg * w. With plain SGD the update becomes
  w <- w - lr (dw_data + reg w) = (1 - lr reg) w - lr dw_data: every step first shrinks the
  weights by the factor (1 - lr reg), hence the name *weight decay*. (The 0.5 is there so the
  gradient is reg * w, without a 2.)
- L1: loss = reg * sum(|w|), dw = reg * sign(w) (a subgradient; 0 at w = 0). It pushes every
  weight towards 0 by the same amount, which drives the small ones to zero: sparse weights.
  Plain gradient steps only make them oscillate around 0; `soft_threshold` (the proximal step)
  produces exact zeros.
- Elastic net: both, l1 * sum(|w|) + 0.5 * l2 * sum(w²).
- Max norm: after each update, rescale every unit's incoming weight vector whose norm exceeds
  a bound c back onto the sphere of radius c (`max_norm`), so weights cannot blow up even with a
  large learning rate.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import check_float_array, check_number

__all__ = [
    "elastic_net_regularization",
    "l1_regularization",
    "l2_regularization",
    "max_norm",
    "soft_threshold",
]


def l2_regularization(w: np.ndarray, reg: float):
    """loss = 0.5 * reg * sum(w²), dw = reg * w (w any shape, reg >= 0).

    Weight decay: SGD on this penalty multiplies w by (1 - lr * reg) each step,
    w <- (1 - lr * reg) w - lr * dw_data.
    """
    check_float_array("w", w)
    reg = check_number("reg", reg, 0.0)
    return 0.5 * reg * float(np.sum(w * w)), reg * w


def l1_regularization(w: np.ndarray, reg: float):
    """loss = reg * sum(|w|), dw = reg * sign(w) (the subgradient 0 at w = 0)."""
    check_float_array("w", w)
    reg = check_number("reg", reg, 0.0)
    return reg * float(np.sum(np.abs(w))), reg * np.sign(w)


def elastic_net_regularization(w: np.ndarray, l1: float, l2: float):
    """loss = l1 * sum(|w|) + 0.5 * l2 * sum(w²), dw = l1 * sign(w) + l2 * w."""
    loss_1, dw_1 = l1_regularization(w, check_number("l1", l1, 0.0))
    loss_2, dw_2 = l2_regularization(w, check_number("l2", l2, 0.0))
    return loss_1 + loss_2, dw_1 + dw_2


def soft_threshold(w: np.ndarray, threshold: float) -> np.ndarray:
    """sign(w) * max(|w| - threshold, 0): the proximal step of the L1 penalty.

    After a gradient step on the data loss with learning rate lr, soft_threshold(w, lr * reg)
    minimises reg * |w| exactly: weights within `threshold` of 0 become exactly 0, the others
    move `threshold` towards 0. Returns a new array.
    """
    check_float_array("w", w)
    threshold = check_number("threshold", threshold, 0.0)
    return (np.sign(w) * np.maximum(np.abs(w) - threshold, 0)).astype(w.dtype, copy=False)


def max_norm(w: np.ndarray, max_norm: float, axis=0) -> np.ndarray:
    """A copy of w with each unit's incoming weight vector rescaled to norm <= max_norm.

    axis: the axis (or tuple of axes) that indexes a unit's inputs, over which the norm runs.
        Affine w (D, M): axis=0 (column m holds unit m's D incoming weights).
        Conv w (F, C, KH, KW): axis=(1, 2, 3) (one vector per filter).
    Vectors already inside the ball are left exactly as they are; the others point the same
    way with norm max_norm.
    """
    check_float_array("w", w)
    bound = check_number("max_norm", max_norm, 0.0, strict_minimum=True)
    axes = axis if isinstance(axis, tuple) else (axis,)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        if not -w.ndim <= a < w.ndim:
            raise ValueError(f"axis {a} is out of range for w of {w.ndim} dimensions")
    norms = np.sqrt(np.sum(w * w, axis=axis, keepdims=True))
    # where norms <= bound the factor is 1; np.maximum keeps the division away from 0 / 0
    scale = np.where(norms > bound, bound / np.maximum(norms, bound), 1)
    return (w * scale).astype(w.dtype, copy=False)
