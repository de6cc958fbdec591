"""What every method of `cnnlib.explain` shares: argument checks, the model borrowed in eval mode
with its parameters frozen, the class scores a method explains, layers looked up by name, and
random numbers that never touch torch's global generator.

A method must leave the model and torch as it found them: the training flag of every module, the
`requires_grad` of every parameter, no hook left behind, the caller's `x` unchanged, and torch's
global random state untouched (noise comes from a private generator, so a seed reproduces a result
on any device).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import torch
from torch import nn

from cnnlib.numpy._checks import check_ndim, check_number, check_positive_int, describe
from cnnlib.torch._tensors import check_tensor

__all__: list[str] = []


# --------------------------------------------------------------------------------------------
# Arguments


def check_model(model) -> None:
    """TypeError unless `model` is an nn.Module (a method needs its modules: hooks, eval mode)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")


def check_images(name: str, x) -> None:
    """`x` must be a floating-point (N, C, H, W) tensor with at least one image."""
    check_tensor(name, x)
    check_ndim(name, x, 4, "(N, C, H, W)")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must hold floating-point images, got {describe(x)}; "
            f"convert with {name}.float()"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, got shape {tuple(x.shape)}")


def check_model_and_images(model, x, name: str = "x") -> None:
    """The two arguments every method starts with."""
    check_model(model)
    check_images(name, x)


def as_targets(target, n: int, device: torch.device) -> torch.Tensor:
    """An int (the same class for every image) or an (N,) integer tensor, as an (N,) long tensor.

    The range is checked against the scores later (`target_scores`): only the model knows how
    many classes (or channels) there are.
    """
    if isinstance(target, torch.Tensor):
        if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
            raise TypeError(f"target must hold integer class indices, got {describe(target)}")
        if target.ndim == 0:
            return torch.full((n,), int(target), dtype=torch.long, device=device)
        if target.shape != (n,):
            raise ValueError(
                f"target must be an int or an ({n},) tensor (one class per image in x), "
                f"got shape {tuple(target.shape)}"
            )
        return target.to(device=device, dtype=torch.long)
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise TypeError(
            f"target must be an int or an (N,) integer tensor of class indices, got "
            f"{describe(target)}"
        )
    return torch.full((n,), int(target), dtype=torch.long, device=device)


def check_scores(scores, n: int, what: str = "model(x)") -> None:
    """Scores must be an (N, K) tensor: one row of class scores per image."""
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or scores.shape[0] != n:
        got = describe(scores)
        raise ValueError(
            f"model must return class scores of shape (N, K) with N = {n}; {what} gave {got}"
        )


def pick(scores: torch.Tensor, targets: torch.Tensor, what: str = "classes") -> torch.Tensor:
    """scores: (N, K), targets: (N,) -> (N,) the score of each image's target.

    Raises ValueError naming `target` when a target is not one of the K columns.
    """
    k = scores.shape[1]
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= k):
        raise ValueError(
            f"target must hold indices in [0, {k}) (the model has {k} {what}), got values "
            f"from {int(targets.min())} to {int(targets.max())}"
        )
    return scores.gather(1, targets[:, None])[:, 0]


def target_scores(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """x: (N, C, H, W), targets: (N,) -> (N,) each image's score for its target class.

    The score is the model's output before any softmax (Simonyan et al., 2014, section 2: a
    softmax score can also rise by pushing the other classes down).
    """
    scores = model(x)
    check_scores(scores, x.shape[0])
    return pick(scores, targets)


def positive_int(name: str, value, minimum: int = 1) -> int:
    return check_positive_int(name, value, minimum)


def number(name: str, value, minimum=None, maximum=None, strict_minimum=False) -> float:
    return check_number(name, value, minimum, maximum, strict_minimum)


def check_bounds(bounds) -> tuple[float, float] | None:
    """None, or a (low, high) pair of numbers with low < high: the range valid pixels lie in."""
    if bounds is None:
        return None
    if not isinstance(bounds, tuple | list) or len(bounds) != 2:
        raise TypeError(f"bounds must be None or a (low, high) pair, got {describe(bounds)}")
    low, high = number("bounds[0]", bounds[0]), number("bounds[1]", bounds[1])
    if not low < high:
        raise ValueError(f"bounds must be (low, high) with low < high, got {tuple(bounds)}")
    return low, high


def clamp(x: torch.Tensor, bounds: tuple[float, float] | None) -> torch.Tensor:
    return x if bounds is None else x.clamp(bounds[0], bounds[1])


def like_x(name: str, value, x: torch.Tensor) -> torch.Tensor:
    """A number, or a tensor that broadcasts to x's shape, as a tensor on x's device and dtype.

    For baselines and fill values: 0.0, a per-channel (C, 1, 1) mean, or a whole (N, C, H, W).
    """
    if isinstance(value, torch.Tensor):
        try:
            torch.broadcast_shapes(value.shape, x.shape)
        except RuntimeError:
            raise ValueError(
                f"{name} must broadcast to x's shape {tuple(x.shape)} (a number, (C, 1, 1), "
                f"(C, H, W) or (N, C, H, W)), got shape {tuple(value.shape)}"
            ) from None
        if torch.broadcast_shapes(value.shape, x.shape) != x.shape:
            raise ValueError(
                f"{name} must broadcast to x's shape {tuple(x.shape)} without growing it, "
                f"got shape {tuple(value.shape)}"
            )
        return value.to(device=x.device, dtype=x.dtype).expand_as(x)
    return torch.full_like(x, number(name, value))


# --------------------------------------------------------------------------------------------
# Borrowing the model


@contextlib.contextmanager
def explaining(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode with its parameters frozen and autograd on, restored on exit.

    Eval mode: batch norm uses its running statistics and dropout keeps every unit, so each
    image's scores depend on that image alone and a batch explains N images at once. Frozen
    parameters: backward computes input gradients only (no weight gradients, nothing written to
    any `.grad`). `torch.enable_grad`: a caller inside `torch.no_grad()` still gets gradients.
    Every module's own training flag and every parameter's own `requires_grad` come back as they
    were, even when the method raises.
    """
    modes = [(module, module.training) for module in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        with torch.enable_grad():
            yield model
    finally:
        for module, training in modes:
            module.training = training
        for p, requires_grad in grads:
            p.requires_grad_(requires_grad)


def leaf(x: torch.Tensor) -> torch.Tensor:
    """A detached copy of x that records gradients (the caller's tensor stays untouched)."""
    return x.detach().clone().requires_grad_(True)


def input_gradient(scores: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """scores: (N,) from x, each depending on its own image only -> (N, C, H, W) d score / d x.

    Summing the scores first gives every image its own gradient in one backward pass.
    """
    (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad


# --------------------------------------------------------------------------------------------
# Layers by name


def find_layer(model: nn.Module, layer) -> tuple[str, nn.Module]:
    """`layer` as a name from `model.named_modules()` (e.g. "layer3.2.conv2") or a submodule.

    Returns (name, module); ValueError listing some of the names when there is no such layer.
    """
    named = dict(model.named_modules())
    if isinstance(layer, str):
        if layer in named and layer != "":
            return layer, named[layer]
        names = [n for n in named if n]
        shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
        raise ValueError(
            f"layer must name a submodule of the model (as model.named_modules() does), "
            f"got {layer!r}; the model has {shown}"
        )
    if isinstance(layer, nn.Module):
        for name, module in named.items():
            if module is layer and name:
                return name, module
        raise ValueError(
            f"layer must be a submodule of the model, got a {type(layer).__name__} that the "
            f"model does not contain"
        )
    raise TypeError(f"layer must be a layer name (str) or an nn.Module, got {describe(layer)}")


class Capture:
    """A forward hook that keeps what one layer outputs, for as long as the `with` lasts.

    `.output` is the layer's output in the graph of the forward pass, so gradients can be taken
    with respect to it. The hook hands the rest of the network a copy: a later in-place operation
    (`nn.ReLU(inplace=True)` right after a conv or batch norm) changes the copy, not the captured
    activation. A layer that runs more than once per forward pass (one ReLU module reused
    throughout a block) has no single output: asking for it raises ValueError.
    """

    def __init__(self, model: nn.Module, layer, copy: bool = True):
        self.name, self.module = find_layer(model, layer)
        self.copy = copy
        self.outputs: list[torch.Tensor] = []
        self._handle = None

    def _hook(self, module, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ValueError(
                f"layer {self.name!r} must output a tensor, got {describe(output)}"
            )
        self.outputs.append(output)
        return output.clone() if self.copy else None

    def __enter__(self) -> Capture:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    def clear(self) -> None:
        self.outputs.clear()

    @property
    def output(self) -> torch.Tensor:
        if len(self.outputs) != 1:
            raise ValueError(
                f"layer {self.name!r} ran {len(self.outputs)} times in one forward pass, so it "
                f"has no single output; name a layer that runs once (a module reused in several "
                f"places, such as one ReLU shared by a block, cannot be told apart)"
            )
        return self.outputs[0]


# --------------------------------------------------------------------------------------------
# Randomness that leaves torch's global generator alone


def generator(seed) -> torch.Generator:
    """A private CPU generator: seeded when `seed` is an int, from fresh entropy when None."""
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an int or None, got {describe(seed)}")
        gen.manual_seed(int(seed))
    return gen


def randn_like(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Standard normal noise of x's shape, drawn on the CPU (the same numbers on any device)."""
    return torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)


def chunks(total: int, size: int) -> Iterator[slice]:
    """slice(0, size), slice(size, 2 size), ... covering range(total)."""
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))
