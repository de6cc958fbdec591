"""First-order update rules and learning-rate schedules.

Every update rule has the same signature::

    next_w, config = rule(w, dw, config=None)     # w, dw: the same shape; next_w: w's shape, dtype

`config` is a dict that holds the rule's hyperparameters and, after the first call, its state
(a velocity, a running average of squared gradients, Adam's moments and step count). Missing
hyperparameters are filled in with the defaults below, the state is created on first use, and the
same dict is returned, updated in place: keep one config per parameter array and pass it back in
on the next step. `w` itself is not modified; `next_w` is a new array of the same dtype.

Defaults (`default_config(name)` returns a copy):

==============  ===============================================================================
learning_rate   1e-2 (Adam: 1e-3, as in Kingma & Ba and torch.optim.Adam)
momentum        0.9 (sgd_momentum, nesterov)
decay_rate      0.99 (rmsprop: the weight of the old running average of dw**2)
epsilon         1e-8 (rmsprop, adam: keeps the division finite)
beta1, beta2    0.9, 0.999 (adam)
weight_decay    0.0 (every rule: adds weight_decay * w to dw before the update)
==============  ===============================================================================

Each rule computes exactly what the torch.optim class of the same name computes with default
options (tests compare them over 20 steps in float64), so what students learn here carries over.

The schedules are plain functions of the epoch (or the iteration: the arithmetic is the same):
`step_decay`, `exponential_decay`, `inverse_time_decay`, `cosine_decay`, `cosine_restarts`
(SGDR) and `linear_warmup`; `with_warmup(schedule, ...)` puts a linear warm-up in front of any
of them. `update_ratio(w, next_w)` measures how big a step was next to the weights it changed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

from ._checks import check_float_array, check_positive_int, describe

__all__ = [
    "UPDATE_RULES",
    "adam",
    "cosine_decay",
    "cosine_restarts",
    "default_config",
    "exponential_decay",
    "get_update_rule",
    "inverse_time_decay",
    "linear_warmup",
    "nesterov",
    "rmsprop",
    "sgd",
    "sgd_momentum",
    "step_decay",
    "update_ratio",
    "with_warmup",
]

_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"learning_rate": 1e-2, "weight_decay": 0.0},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9, "weight_decay": 0.0},
    "nesterov": {"learning_rate": 1e-2, "momentum": 0.9, "weight_decay": 0.0},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8, "weight_decay": 0.0},
    "adam": {
        "learning_rate": 1e-3,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-8,
        "weight_decay": 0.0,
    },
}

# The allowed interval of each hyperparameter, written as it reads in an error message.
# A momentum or a decay rate of 1 would never forget the past, so 1 itself is excluded.
_RANGES: dict[str, str] = {
    "learning_rate": "(0, inf)",
    "momentum": "[0, 1)",
    "decay_rate": "[0, 1)",
    "beta1": "[0, 1)",
    "beta2": "[0, 1)",
    "epsilon": "(0, inf)",
    "weight_decay": "[0, inf)",
}


def _in_interval(value: float, interval: str) -> bool:
    low, high = (float(end.strip("[]()")) for end in interval.split(","))
    above = value >= low if interval[0] == "[" else value > low
    below = value <= high if interval[-1] == "]" else value < high
    return above and below


def default_config(name: str) -> dict[str, float]:
    """A fresh copy of the default hyperparameters of update rule `name` ('sgd', 'adam', ...)."""
    get_update_rule(name)  # a helpful error for an unknown name
    return dict(_DEFAULTS[name])


# ------------------------------------------------------------------------------ argument checks


def _number(name: str, value) -> float:
    """`value` as a Python float (so float32 arrays stay float32), or a TypeError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    if value != value:  # NaN: every comparison with it is False, so no range check catches it
        raise ValueError(f"{name} must be a number, got nan")
    return float(value)


def _prepare(name: str, w, dw, config) -> tuple[np.ndarray, dict, dict[str, float]]:
    """Check w and dw and fill in `config`'s defaults; return dw, config and the hyperparameters.

    dw comes back in w's dtype and the hyperparameters as Python floats, so that every array the
    rule computes keeps w's dtype: a NumPy float64 scalar would promote a float32 array to float64
    (NumPy 2 treats NumPy scalars as strongly typed, Python floats as weak).
    """
    check_float_array("w", w)
    check_float_array("dw", dw)
    if dw.shape != w.shape:
        raise ValueError(
            f"dw must have the shape of w {tuple(w.shape)}, got shape {tuple(dw.shape)}"
        )
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {describe(config)}")
    hyper = {}
    for key, default in _DEFAULTS[name].items():
        value = _number(f"config[{key!r}]", config.setdefault(key, default))
        if not _in_interval(value, _RANGES[key]):
            raise ValueError(f"config[{key!r}] must be in {_RANGES[key]}, got {value}")
        hyper[key] = value
    return dw.astype(w.dtype, copy=False), config, hyper


def _state(config: dict, key: str, w: np.ndarray) -> np.ndarray:
    """The state array `config[key]`, created as zeros like `w` on first use."""
    if key not in config:
        config[key] = np.zeros_like(w)
    state = config[key]
    if getattr(state, "shape", None) != w.shape:
        raise ValueError(
            f"config[{key!r}] has shape {tuple(getattr(state, 'shape', ()))} but w has shape "
            f"{tuple(w.shape)}: each parameter array needs a config dict of its own"
        )
    return state


def _with_weight_decay(w: np.ndarray, dw: np.ndarray, weight_decay: float) -> np.ndarray:
    # L2 regularisation 0.5*wd*||w||^2 has gradient wd*w; with plain SGD the step becomes
    # w - lr*(dw + wd*w) = (1 - lr*wd)*w - lr*dw: every step shrinks w by a constant factor.
    return dw + weight_decay * w if weight_decay else dw


# ------------------------------------------------------------------------------ update rules


def sgd(w: np.ndarray, dw: np.ndarray, config: dict | None = None):
    """Vanilla stochastic gradient descent: w <- w - learning_rate * dw.

    config: learning_rate (1e-2), weight_decay (0.0). As torch.optim.SGD(lr, weight_decay).
    """
    dw, config, h = _prepare("sgd", w, dw, config)
    dw = _with_weight_decay(w, dw, h["weight_decay"])
    return w - h["learning_rate"] * dw, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: dict | None = None):
    """SGD with momentum, in the lecture's form::

        v = momentum * v + dw          # v starts at zero: a running sum of past gradients
        w = w - learning_rate * v

    The velocity `v` remembers the direction we have been moving in, so steps along a consistent
    direction grow (up to 1 / (1 - momentum) times) while steps that flip sign cancel out.
    This is exactly torch.optim.SGD(lr, momentum) with its default dampening=0 (some texts write
    v = momentum * v - lr * dw; w += v, which is the same while the learning rate is constant).

    config: learning_rate (1e-2), momentum (0.9), weight_decay (0.0); state: velocity.
    """
    dw, config, h = _prepare("sgd_momentum", w, dw, config)
    dw = _with_weight_decay(w, dw, h["weight_decay"])
    velocity = h["momentum"] * _state(config, "velocity", w) + dw
    config["velocity"] = velocity
    return w - h["learning_rate"] * velocity, config


def nesterov(w: np.ndarray, dw: np.ndarray, config: dict | None = None):
    """Nesterov momentum, as torch.optim.SGD(lr, momentum, nesterov=True) defines it::

        v = momentum * v + dw
        w = w - learning_rate * (dw + momentum * v)

    Sutskever et al. evaluate the gradient at the look-ahead point w - lr*momentum*v; rewriting
    the update in terms of that point gives the form above, which needs only the gradient at the
    current w. The step is the momentum step plus a second, "look-ahead" share of the new velocity.

    config: learning_rate (1e-2), momentum (0.9), weight_decay (0.0); state: velocity.
    """
    dw, config, h = _prepare("nesterov", w, dw, config)
    dw = _with_weight_decay(w, dw, h["weight_decay"])
    velocity = h["momentum"] * _state(config, "velocity", w) + dw
    config["velocity"] = velocity
    return w - h["learning_rate"] * (dw + h["momentum"] * velocity), config


def rmsprop(w: np.ndarray, dw: np.ndarray, config: dict | None = None):
    """RMSProp, as torch.optim.RMSprop(lr, alpha=decay_rate, eps=epsilon) defines it::

        cache = decay_rate * cache + (1 - decay_rate) * dw**2
        w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    Dividing by the root-mean-square of recent gradients gives each weight its own step size:
    weights with steep, noisy gradients take smaller steps, those with flat ones larger steps.

    config: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), weight_decay (0.0);
    state: cache.
    """
    dw, config, h = _prepare("rmsprop", w, dw, config)
    dw = _with_weight_decay(w, dw, h["weight_decay"])
    decay = h["decay_rate"]
    cache = decay * _state(config, "cache", w) + (1.0 - decay) * dw * dw
    config["cache"] = cache
    return w - h["learning_rate"] * dw / (np.sqrt(cache) + h["epsilon"]), config


def adam(w: np.ndarray, dw: np.ndarray, config: dict | None = None):
    """Adam with bias correction (Kingma & Ba 2015), as torch.optim.Adam defines it::

        t = t + 1
        m = beta1 * m + (1 - beta1) * dw             # momentum: running mean of dw
        v = beta2 * v + (1 - beta2) * dw**2          # RMSProp: running mean of dw**2
        m_hat = m / (1 - beta1**t)                   # m and v start at zero, so early on they
        v_hat = v / (1 - beta2**t)                   # underestimate; dividing undoes the bias
        w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8), weight_decay (0.0:
    the L2 form of torch.optim.Adam, not AdamW's decoupled decay); state: m, v, t.
    """
    dw, config, h = _prepare("adam", w, dw, config)
    dw = _with_weight_decay(w, dw, h["weight_decay"])
    beta1, beta2 = h["beta1"], h["beta2"]
    m = beta1 * _state(config, "m", w) + (1.0 - beta1) * dw
    v = beta2 * _state(config, "v", w) + (1.0 - beta2) * dw * dw
    t = int(config.get("t", 0)) + 1
    config.update(m=m, v=v, t=t)
    m_hat = m / (1.0 - beta1**t)
    v_hat = v / (1.0 - beta2**t)
    return w - h["learning_rate"] * m_hat / (np.sqrt(v_hat) + h["epsilon"]), config


UPDATE_RULES: dict[str, Callable] = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "nesterov": nesterov,
    "rmsprop": rmsprop,
    "adam": adam,
}


def get_update_rule(name: str) -> Callable:
    """The update rule called `name`; a ValueError listing the choices for anything else."""
    if not isinstance(name, str) or name not in UPDATE_RULES:
        raise ValueError(
            f"name: update_rule must be one of {sorted(UPDATE_RULES)}, got {name!r}"
        )
    return UPDATE_RULES[name]


# ------------------------------------------------------------------------ learning-rate schedules


def _schedule_args(lr0, epoch) -> tuple[float, float]:
    lr0 = _number("lr0", lr0)
    if not lr0 > 0:
        raise ValueError(f"lr0 must be > 0, got {lr0}")
    epoch = _number("epoch", epoch)
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return lr0, epoch


def _gamma(gamma) -> float:
    gamma = _number("gamma", gamma)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1] (the factor applied to the rate), got {gamma}")
    return gamma


def step_decay(lr0: float, epoch: float, step_size: int, gamma: float = 0.1) -> float:
    """lr0 * gamma ** (epoch // step_size): divide the rate by 1/gamma every `step_size` epochs.

    AlexNet's recipe (x0.1 when the validation error stops improving) made regular; the same as
    torch.optim.lr_scheduler.StepLR(step_size, gamma).
    """
    lr0, epoch = _schedule_args(lr0, epoch)
    step_size = check_positive_int("step_size", step_size)
    return lr0 * _gamma(gamma) ** (epoch // step_size)


def exponential_decay(lr0: float, epoch: float, gamma: float) -> float:
    """lr0 * gamma ** epoch: multiply the rate by `gamma` every epoch.

    The lecture quotes 0.97 per epoch for GoogLeNet. The same as
    torch.optim.lr_scheduler.ExponentialLR(gamma).
    """
    lr0, epoch = _schedule_args(lr0, epoch)
    return lr0 * _gamma(gamma) ** epoch


def inverse_time_decay(lr0: float, epoch: float, k: float) -> float:
    """lr0 / (1 + k * epoch): the "1/t" decay, slow enough that the steps still add up to infinity.

    (Robbins and Monro's conditions for SGD to converge: the rates sum to infinity, their squares
    do not.)
    """
    lr0, epoch = _schedule_args(lr0, epoch)
    k = _number("k", k)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return lr0 / (1.0 + k * epoch)


def cosine_decay(lr0: float, epoch: float, total_epochs: float, lr_min: float = 0.0) -> float:
    """Half a cosine from lr0 at epoch 0 down to lr_min at `total_epochs`, then lr_min::

        lr = lr_min + (lr0 - lr_min) * (1 + cos(pi * epoch / total_epochs)) / 2

    The same as torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_epochs, eta_min=lr_min)
    for epoch <= total_epochs (torch's rate climbs back up after that; ours stays at lr_min).
    """
    lr0, epoch = _schedule_args(lr0, epoch)
    total_epochs = _number("total_epochs", total_epochs)
    if not total_epochs > 0:
        raise ValueError(f"total_epochs must be > 0, got {total_epochs}")
    lr_min = _number("lr_min", lr_min)
    if not 0.0 <= lr_min <= lr0:
        raise ValueError(f"lr_min must be in [0, lr0={lr0}], got {lr_min}")
    progress = min(epoch, total_epochs) / total_epochs
    return lr_min + (lr0 - lr_min) * (1.0 + math.cos(math.pi * progress)) / 2.0


def cosine_restarts(lr0: float, epoch: float, period: int, period_mult: int = 1,
                    lr_min: float = 0.0) -> float:
    """Cosine decay that starts again from lr0 every period (SGDR, Loshchilov & Hutter 2017).

    The first cycle lasts `period` epochs, each later one `period_mult` times as long as the one
    before; within a cycle the rate follows cosine_decay from lr0 down to lr_min. A restart
    jolts the weights out of the valley they settled in, and the end of every cycle is a good
    snapshot to keep. The same as torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0=
    period, T_mult=period_mult, eta_min=lr_min).
    """
    lr0, epoch = _schedule_args(lr0, epoch)
    period = check_positive_int("period", period)
    period_mult = check_positive_int("period_mult", period_mult)
    start, length = 0.0, float(period)
    while epoch >= start + length:  # find the cycle that holds `epoch`
        start, length = start + length, length * period_mult
    return cosine_decay(lr0, epoch - start, length, lr_min)


def linear_warmup(lr0: float, epoch: float, warmup_epochs: float,
                  start_factor: float = 0.1) -> float:
    """Grow the rate linearly from start_factor * lr0 to lr0 over `warmup_epochs`, then hold it::

        lr = lr0 * (start_factor + (1 - start_factor) * min(epoch, warmup_epochs) / warmup_epochs)

    Goyal et al. 2017 ("gradual warmup") used it to train ResNet-50 with large batches and a
    large rate: early on the weights are far from anywhere sensible and the gradients large, so
    the full rate at once can throw training off for good. The same as
    torch.optim.lr_scheduler.LinearLR(start_factor, end_factor=1.0, total_iters=warmup_epochs).
    """
    lr0, epoch = _schedule_args(lr0, epoch)
    warmup_epochs = _number("warmup_epochs", warmup_epochs)
    if not warmup_epochs > 0:
        raise ValueError(f"warmup_epochs must be > 0, got {warmup_epochs}")
    start_factor = _number("start_factor", start_factor)
    if not 0.0 < start_factor <= 1.0:
        raise ValueError(f"start_factor must be in (0, 1] (the share of lr0 to start from), "
                         f"got {start_factor}")
    progress = min(epoch, warmup_epochs) / warmup_epochs
    return lr0 * (start_factor + (1.0 - start_factor) * progress)


def with_warmup(schedule: Callable, warmup_epochs: float, start_factor: float = 0.1) -> Callable:
    """A schedule lr(lr0, epoch) that warms up linearly for `warmup_epochs` (linear_warmup), then
    follows ``schedule(lr0, epoch - warmup_epochs)``: the schedule starts when the warm-up ends.

    schedule: any function (lr0, epoch) -> lr, e.g.
    ``functools.partial(cosine_decay, total_epochs=18)``; pass the result to
    ``Solver(lr_decay=...)``. The same as torch's SequentialLR of a LinearLR and that schedule
    with the milestone at warmup_epochs.
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a function (lr0, epoch) -> lr, got {describe(schedule)}")
    linear_warmup(1.0, 0, warmup_epochs, start_factor)  # check the arguments now, not later

    def warmed_up(lr0: float, epoch: float) -> float:
        if _number("epoch", epoch) < warmup_epochs:
            return linear_warmup(lr0, epoch, warmup_epochs, start_factor)
        return float(schedule(lr0, epoch - warmup_epochs))

    name = getattr(schedule, "__name__", None) or getattr(
        getattr(schedule, "func", None), "__name__", "schedule")
    warmed_up.__name__ = f"with_warmup({name}, warmup_epochs={warmup_epochs:g})"
    return warmed_up


# ------------------------------------------------------------------------ babysitting


def update_ratio(w, next_w) -> float:
    """||next_w - w|| / ||w||: how large one update was next to the weights it changed.

    w, next_w: arrays of the same shape (a parameter before and after a step). The rule of thumb
    (Karpathy, CS231n notes) is about 1e-3 for weight matrices: much smaller and the rate is too
    low to get anywhere, much larger and every step rewrites the weights. For plain SGD the
    ratio is learning_rate * ||dw|| / ||w||. A w of zeros (a fresh bias) gives inf if it moved,
    0 if it did not.
    """
    check_float_array("w", w)
    check_float_array("next_w", next_w)
    if next_w.shape != w.shape:
        raise ValueError(f"next_w must have the shape of w {tuple(w.shape)}, got shape "
                         f"{tuple(next_w.shape)}")
    step = float(np.linalg.norm((np.asarray(next_w, np.float64) - w).ravel()))
    size = float(np.linalg.norm(np.asarray(w, np.float64).ravel()))
    if size == 0.0:
        return 0.0 if step == 0.0 else math.inf
    return step / size
