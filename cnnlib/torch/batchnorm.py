"""Batch normalisation on torch tensors (as cnnlib.numpy.batchnorm, whose docstring derives it).

Training, per feature d of a batch x (N, D)::

    mu = mean of x[:, d],   var = mean of (x[:, d] - mu)²   (biased: divides by N)
    x_hat = (x - mu) / sqrt(var + eps)
    out = gamma * x_hat + beta

At test time the layer uses running averages of the batch statistics, kept in a `state` dict::

    running = momentum * running + (1 - momentum) * batch_statistic

`momentum` is the weight of the *old* value (0.9 keeps 90 % of it), as in the course notes;
torch.nn.BatchNorm2d's `momentum` is the weight of the *new* value, so ours is torch's
``1 - momentum`` (cnnlib.torch.BatchNorm2d takes torch's convention and converts). As in PyTorch,
the running variance is updated with the unbiased batch variance (divides by N - 1) while the
batch is normalised with the biased one.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import torch

from cnnlib.numpy._checks import (
    check_cache,
    check_dout,
    check_flag,
    check_length,
    check_ndim,
    check_number,
    describe,
)
from cnnlib.numpy.batchnorm import _CACHE

from ._tensors import check_float_tensors, check_tensor

__all__ = [
    "batchnorm_backward",
    "batchnorm_backward_naive",
    "batchnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
]


def _running_statistics(state, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """state's running mean and variance (D,), or new zeros / ones on x's device where state has
    none. Only checks and reads: the caller puts new tensors into `state` once every argument
    has passed, so a call that raises leaves the caller's state as it was."""
    if not isinstance(state, MutableMapping):
        raise TypeError(
            "state must be a dict holding 'running_mean' and 'running_var' (pass {} to start), "
            f"got {describe(state)}"
        )
    num_features = x.shape[1]
    fresh = {"running_mean": torch.zeros, "running_var": torch.ones}
    statistics = []
    for key, make in fresh.items():
        if key not in state:
            statistics.append(make(num_features, dtype=x.dtype, device=x.device))
            continue
        check_length(f"state[{key!r}]", state[key], num_features, f"x's {num_features} features")
        check_tensor(f"state[{key!r}]", state[key])
        # an integer tensor would truncate every update (the running mean would stay 0)
        check_float_tensors(**{f"state[{key!r}]": state[key]})
        if state[key].device != x.device:
            raise ValueError(
                f"state[{key!r}] is on {state[key].device} but x is on {x.device}: keep the "
                f"running statistics on the device of the data"
            )
        statistics.append(state[key])
    return statistics[0], statistics[1]


def _check_arguments(x, gamma, beta, state, train, momentum, eps):
    """Check everything but x's tensor type and ndim (the caller's), for x (N, D) or
    (N, C, H, W); then put missing running statistics into `state`, only once nothing can
    raise any more. Returns running_mean, running_var, train, momentum, eps."""
    num_features = x.shape[1]
    noun = "features" if x.ndim == 2 else "channels"
    check_length("gamma", gamma, num_features, f"x's {num_features} {noun}")
    check_length("beta", beta, num_features, f"x's {num_features} {noun}")
    momentum = check_number("momentum", momentum, 0.0, 1.0)
    eps = check_number("eps", eps, 0.0, strict_minimum=True)
    train = check_flag("train", train)
    running_mean, running_var = _running_statistics(state, x)
    if train and x.numel() // num_features < 2:
        values = "N" if x.ndim == 2 else "N*H*W"
        raise ValueError(
            f"x must hold at least 2 values per {noun[:-1]} ({values} >= 2) to estimate a "
            f"variance in train mode, got shape {tuple(x.shape)}"
        )
    # every argument passed: only now may state change
    state.setdefault("running_mean", running_mean)
    state.setdefault("running_var", running_var)
    return running_mean, running_var, train, momentum, eps


def batchnorm_forward(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    state: MutableMapping,
    train: bool = True,
    momentum: float = 0.9,
    eps: float = 1e-5,
):
    """Batch normalisation of x (N, D), one mean and variance per feature (column).

    gamma, beta: (D,) learnt scale and shift.
    state: dict with 'running_mean' and 'running_var' (D,); missing entries are created as
        zeros / ones on x's device. In train mode the two tensors are updated *in place* (so a
        module's buffers passed in this way see the new values); in test mode they are only read.
    train: normalise with this batch's statistics (True) or with the running ones (False).
    momentum: weight of the old running value (torch's momentum is 1 - this); in [0, 1].
    eps: added to the variance before the square root; > 0.
    Returns out (N, D) and the cache for batchnorm_backward.
    """
    check_float_tensors(x=x, gamma=gamma, beta=beta)
    check_ndim("x", x, 2, "(N, D)")
    running_mean, running_var, train, momentum, eps = _check_arguments(
        x, gamma, beta, state, train, momentum, eps)
    return _normalise(x, gamma, beta, running_mean, running_var, train, momentum, eps)


def _normalise(x, gamma, beta, running_mean, running_var, train, momentum, eps):
    """The forward pass on checked arguments, for x (N, D) or (N, C, H, W): statistics over
    every axis but axis 1 (the features, or the channels), parameters broadcast along them.
    Returns out, shaped like x, and the cache (x_hat, gamma, inv_std, train)."""
    axes = (0, *range(2, x.ndim))  # (0,) for (N, D); (0, 2, 3) for (N, C, H, W)
    per_feature = (1, -1) + (1,) * (x.ndim - 2)  # (D,) -> (1, D) or (1, C, 1, 1)
    count = x.numel() // x.shape[1]  # values behind each statistic: N, or N*H*W
    if train:
        mean = x.mean(dim=axes)
        centred = x - mean.reshape(per_feature)
        # biased (divides by count): the batch is normalised with it. Two passes (the mean,
        # then the squares of the centred values) rather than torch.var_mean: its one-pass
        # update per value ran 13 ms on a (128, 16, 32, 32) batch, these 1 ms (measured)
        var = (centred * centred).sum(dim=axes) / count
        unbiased_var = var * (count / (count - 1))
        with torch.no_grad():  # running statistics are bookkeeping, never part of a graph
            running_mean.copy_(momentum * running_mean + (1 - momentum) * mean)
            running_var.copy_(momentum * running_var + (1 - momentum) * unbiased_var)
    else:
        mean, var = running_mean.to(x.dtype), running_var.to(x.dtype)
        centred = x - mean.reshape(per_feature)

    inv_std = 1 / torch.sqrt(var + eps)
    x_hat = centred * inv_std.reshape(per_feature)
    # out = gamma * x_hat + beta in one pass over the batch: each pass reads and writes every
    # value, and on a CPU a pass costs about as much as the arithmetic
    out = torch.addcmul(beta.reshape(per_feature), x_hat, gamma.reshape(per_feature))
    return out, (x_hat, gamma, inv_std, bool(train))


def batchnorm_backward(dout: torch.Tensor, cache):
    """Gradients of batch normalisation, in one vectorised expression.

    dout: (N, D). Returns dx (N, D), dgamma (D,), dbeta (D,).

    In train mode mu and var depend on every x, so the gradient has two correction terms::

        dx = gamma * inv_std / N * (N * dout - sum(dout) - x_hat * sum(dout * x_hat))

    The bracket removes from dout its mean and its component along x_hat: shifting every x or
    scaling every (x - mu) leaves x_hat unchanged, so those directions get no gradient.
    In test mode the statistics are constants and dx = gamma * inv_std * dout.
    """
    check_cache(cache, _CACHE, "batchnorm_forward")
    x_hat = cache[0]
    check_dout(dout, x_hat.shape, f"the layer's output {tuple(x_hat.shape)}", like=x_hat)
    return _normalise_backward(dout, cache)


def _normalise_backward(dout, cache):
    """batchnorm_backward on a checked dout, for the (N, D) and the (N, C, H, W) layer alike:
    the sums run over every axis but axis 1, as the forward's statistics did."""
    x_hat, gamma, inv_std, train = cache
    axes = (0, *range(2, x_hat.ndim))
    per_feature = (1, -1) + (1,) * (x_hat.ndim - 2)
    dbeta = dout.sum(dim=axes)
    dgamma = (dout * x_hat).sum(dim=axes)
    if not train:
        return dout * (gamma * inv_std).reshape(per_feature), dgamma, dbeta
    count = dout.numel() // dout.shape[1]
    # dx = scale * (count * dout - dbeta - x_hat * dgamma), scale = gamma * inv_std / count,
    # as two multiply-adds over the batch: (count * scale) * dout - scale * dbeta, then
    # - (scale * dgamma) * x_hat added in place
    scale = gamma * inv_std / count
    dx = torch.addcmul((-scale * dbeta).reshape(per_feature), dout,
                       (count * scale).reshape(per_feature))
    dx.addcmul_(x_hat, (-scale * dgamma).reshape(per_feature))
    return dx, dgamma, dbeta


def batchnorm_backward_naive(dout: torch.Tensor, cache):
    """The same gradients, walking the computational graph backwards one node at a time.

    Forward graph (train mode), per feature:
        centred = x - mu;  var = mean(centred²);  inv_std = 1/sqrt(var + eps)
        x_hat = centred * inv_std;  out = gamma * x_hat + beta
    """
    check_cache(cache, _CACHE, "batchnorm_forward")
    x_hat, gamma, inv_std, train = cache
    check_dout(dout, x_hat.shape, f"the layer's output {tuple(x_hat.shape)}", like=x_hat)
    num_examples = dout.shape[0]
    dbeta = dout.sum(dim=0)                               # out = ... + beta
    dgamma = (dout * x_hat).sum(dim=0)                    # out = gamma * x_hat + ...
    dx_hat = dout * gamma
    if not train:
        return dx_hat * inv_std, dgamma, dbeta
    centred = x_hat / inv_std                             # recover x - mu from the cache
    dinv_std = (dx_hat * centred).sum(dim=0)              # x_hat = centred * inv_std
    dcentred = dx_hat * inv_std
    dvar = dinv_std * (-0.5) * inv_std**3                 # inv_std = (var + eps) ** -1/2
    dcentred = dcentred + dvar * 2 * centred / num_examples   # var = mean(centred²)
    dmean = -dcentred.sum(dim=0)                          # centred = x - mu
    dx = dcentred + dmean / num_examples                  # mu = mean(x)
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    state: MutableMapping,
    train: bool = True,
    momentum: float = 0.9,
    eps: float = 1e-5,
):
    """Batch normalisation for conv activations x (N, C, H, W): one mean and variance per
    channel, over the N*H*W values of that channel (a feature map shares its statistics, as it
    shares its filter). gamma, beta, running statistics: (C,). Same arguments as
    batchnorm_forward; the arithmetic is the same too, with the sums over axes (0, 2, 3)
    instead of axis 0 (cnnlib.numpy reshapes x to (N*H*W, C) instead; on torch the copies
    there and back cost more than the normalisation itself).
    Returns out (N, C, H, W) and the cache for spatial_batchnorm_backward.
    """
    check_float_tensors(x=x, gamma=gamma, beta=beta)
    check_ndim("x", x, 4, "(N, C, H, W)")
    running_mean, running_var, train, momentum, eps = _check_arguments(
        x, gamma, beta, state, train, momentum, eps)
    out, cache = _normalise(x, gamma, beta, running_mean, running_var, train, momentum, eps)
    return out, (cache, tuple(x.shape))


def spatial_batchnorm_backward(dout: torch.Tensor, cache):
    """dout (N, C, H, W) -> dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    check_cache(cache, ("tuple", "tuple"), "spatial_batchnorm_forward")
    cache_4d, shape = cache
    check_cache(cache_4d, _CACHE, "spatial_batchnorm_forward")
    check_dout(dout, shape, f"the layer's output {shape}", like=cache_4d[0])
    return _normalise_backward(dout, cache_4d)
