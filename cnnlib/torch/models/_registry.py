"""The zoo's index: every model by name, with the input it expects and its number of classes.

Each builder function registers itself with `@register(...)`; `available()` lists the names and
`create(name)` builds one. The default input shape is what `cnnlib.summary` and
`python -m cnnlib summary NAME` use when none is given.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from cnnlib.numpy._checks import check_positive_int

__all__ = ["ModelSpec", "available", "create", "default_input_shape", "model_spec", "register"]

IMAGENET = (3, 224, 224)
CIFAR = (3, 32, 32)


@dataclass(frozen=True)
class ModelSpec:
    """One zoo entry: the builder, the input shape (C, H, W) it expects, its default classes."""

    name: str
    builder: Callable[..., nn.Module]
    input_shape: tuple[int, int, int]
    num_classes: int


_MODELS: dict[str, ModelSpec] = {}


def register(input_shape: tuple[int, int, int] = IMAGENET, num_classes: int = 1000):
    """Decorator: add a builder `fn(num_classes=..., **kwargs) -> nn.Module` to the zoo by name."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelSpec(name, builder, tuple(input_shape), num_classes)
        return builder

    return add


def available() -> list[str]:
    """The names `create` accepts, sorted."""
    return sorted(_MODELS)


def model_spec(name: str) -> ModelSpec:
    """The zoo entry called `name`; ValueError listing close matches for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a model name (str), got {type(name).__name__}: {name!r}")
    if name in _MODELS:
        return _MODELS[name]
    close = difflib.get_close_matches(name.lower(), available(), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see cnnlib.torch.models.available()"
    raise ValueError(f"name: unknown model {name!r}; {hint}")


def default_input_shape(name: str) -> tuple[int, int, int]:
    """The (C, H, W) input the model `name` was designed for (e.g. (3, 224, 224) for ImageNet)."""
    return model_spec(name).input_shape


def create(name: str, num_classes: int | None = None, **kwargs) -> nn.Module:
    """Build the zoo model `name` with freshly initialised weights.

    num_classes defaults to the model's own: 1000 for the ImageNet models, 10 for LeNet-5 and
    the CIFAR models. Other keyword arguments go to the builder (e.g. `aux_logits=True` for
    googlenet). Build on the meta device to count parameters without allocating them:
    ``with torch.device("meta"): model = create("vgg16")``.
    """
    spec = model_spec(name)
    num_classes = spec.num_classes if num_classes is None else num_classes
    num_classes = check_positive_int("num_classes", num_classes)
    return spec.builder(num_classes=num_classes, **kwargs)
