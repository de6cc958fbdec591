"""Transfer learning in a few calls: freeze, swap the head, probe features, scale learning rates.

    >>> net = cnnlib.pretrained.load("resnet20_digits04")           # doctest: +SKIP
    >>> freeze(net)                      # the whole body: no gradients, batch norm in eval mode
    >>> replace_head(net, num_classes=5)                             # a new, trainable fc
    >>> ct.fit(net, target.train, epochs=30)                         # trains only the head

- `freeze(model, *names, batchnorm="eval")` / `unfreeze`: stop (restart) training the parameters
  of whole submodules. A frozen batch norm layer stays in eval mode, so `fit`'s ``model.train()``
  cannot switch it back to batch statistics; ``batchnorm="train"`` shows what happens when it can.
- `replace_head(model, num_classes)`: a fresh ``fc`` layer for the new classes.
- `block_features(model, X)`: what each block of the network computes for images X, pooled to a
  small grid and flattened; `linear_probe` trains a linear classifier on such features.
- `param_groups(model, lr, scale)`: per-layer learning rates for fine-tuning (smaller for the
  early layers), as a torch optimizer takes them.
- `adapt(model, train, how)`: train a pretrained network (or a fresh one) on a target task in
  one of the lecture's ways: "linear" (frozen body, new head), "top" (the last stage and a new
  head), "all" (everything, the early layers slower), "scratch" (everything at one rate).
"""

from __future__ import annotations

import types
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from cnnlib.numpy._checks import check_number, check_positive_int, describe

__all__ = [
    "ProbeResult",
    "adapt",
    "block_features",
    "count_parameters",
    "freeze",
    "linear_probe",
    "param_groups",
    "replace_head",
    "unfreeze",
]

_BATCHNORM = nn.modules.batchnorm._BatchNorm


def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    return model


def _submodules(model: nn.Module, names) -> list[nn.Module]:
    """The submodules called `names` (all of `model` when there are none)."""
    if not names:
        return [model]
    found = dict(model.named_modules())
    unknown = [n for n in names if n not in found]
    if unknown:
        top = [n for n, _ in model.named_children()]
        raise ValueError(f"names: {type(model).__name__} has no submodule {', '.join(unknown)}; "
                         f"its top-level modules are {', '.join(top)}")
    return [found[n] for n in names]


def _train_stays_eval(self, mode: bool = True):
    # Replaces a frozen batch norm layer's own `train`: whatever the parent asks, stay in eval
    # mode (normalise with the running statistics, never update them).
    return nn.Module.train(self, False)


def freeze(model: nn.Module, *names: str, batchnorm: str = "eval") -> nn.Module:
    """Stop training the submodules `names` of `model` (all of it when no name is given).

    Their parameters get ``requires_grad = False``: no gradients, and optimisers built
    afterwards (`cnnlib.torch.fit` builds its own) leave them alone. names are module paths as
    in ``model.named_modules()``: ``freeze(net, "conv1", "bn1", "layer1", "layer2")`` leaves
    ResNet-20's last stage and head to train.

    batchnorm: what the frozen batch norm layers do when the model is put in training mode.
    "eval" (default): they stay in eval mode, normalising with the running mean and variance
    they learnt on the source data and never updating them, so the frozen body computes exactly
    the function it was trained to compute. "train": they follow the model's mode as usual,
    normalising every batch by its own statistics and overwriting their running averages, even
    though their scale and shift are frozen. Returns the model.
    """
    _check_model(model)
    if batchnorm not in ("eval", "train"):
        raise ValueError(f'batchnorm must be "eval" or "train", got {describe(batchnorm)}')
    for module in _submodules(model, names):
        for p in module.parameters():
            p.requires_grad_(False)
        for m in module.modules():
            if isinstance(m, _BATCHNORM) and batchnorm == "eval":
                m.train = types.MethodType(_train_stays_eval, m)
                m.eval()
    return model


def unfreeze(model: nn.Module, *names: str) -> nn.Module:
    """Undo `freeze` for the submodules `names` (all of `model` when none): trainable again,
    batch norm following the model's mode again (set to the model's current mode)."""
    _check_model(model)
    for module in _submodules(model, names):
        for p in module.parameters():
            p.requires_grad_(True)
        for m in module.modules():
            if isinstance(m, _BATCHNORM) and "train" in m.__dict__:
                del m.train  # back to nn.Module.train
                m.train(model.training)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) numbers of parameters of `model`."""
    _check_model(model)
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give `model` a new, randomly initialised classifier ``fc`` for `num_classes` classes.

    The old ``fc`` (a Linear layer, D -> K) becomes Linear(D, num_classes), trainable,
    initialised as torch initialises a Linear (seed torch first for a repeatable head), on the
    old one's device and dtype. Returns the model.
    """
    _check_model(model)
    num_classes = check_positive_int("num_classes", num_classes)
    old = getattr(model, "fc", None)
    if not isinstance(old, nn.Linear):
        raise TypeError(f"model must end in a Linear layer called fc (as the zoo's ResNets and "
                        f"the pretrained networks do), {type(model).__name__}.fc is "
                        f"{type(old).__name__}")
    model.fc = nn.Linear(old.in_features, num_classes, device=old.weight.device,
                         dtype=old.weight.dtype)
    return model


# ============================================================================================
# Features and linear probes


@torch.no_grad()
def block_features(model: nn.Module, X, blocks: dict[str, str] | list[str] | None = None,
                   pool: int = 4, batch_size: int = 256) -> dict[str, np.ndarray]:
    """What the blocks of `model` compute for images X, as feature vectors.

    X: (N, C, H, W) images (NumPy or torch). blocks: module paths to read, or {label: path};
    default: the stages of the pretrained architectures (`models.BLOCKS`) when the model is one
    of them. Each block's output (N, C_b, H_b, W_b) is average-pooled to at most pool x pool
    positions and flattened: (N, C_b * pool * pool) float32 (pool=1: one number per channel, the
    global average that ResNet's fc reads). The model runs in eval mode, its mode restored.
    Returns {label: features}.
    """
    from .models import BLOCKS, SmallVGG

    _check_model(model)
    pool = check_positive_int("pool", pool)
    batch_size = check_positive_int("batch_size", batch_size)
    if blocks is None:
        arch = "vgg_small" if isinstance(model, SmallVGG) else "cifar_resnet20"
        names = set(dict(model.named_modules()))
        blocks = BLOCKS[arch] if set(BLOCKS[arch].values()) <= names else None
        if blocks is None:
            raise ValueError("blocks: name the modules to read (e.g. ['layer1', 'layer2'])")
    if not isinstance(blocks, dict):
        blocks = {name: name for name in blocks}
    modules = dict(zip(blocks, _submodules(model, list(blocks.values())), strict=True))
    X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    if X.ndim != 4:
        raise ValueError(f"X must be images of shape (N, C, H, W), got {describe(X)}")
    param = next(model.parameters())
    outputs: dict[str, list[torch.Tensor]] = {label: [] for label in blocks}

    def keep(label):
        # Pool at once: a later in-place layer (ReLU(inplace=True)) may overwrite the output.
        def hook(module, inputs, output):
            grid = (min(pool, output.shape[2]), min(pool, output.shape[3]))
            pooled = nn.functional.adaptive_avg_pool2d(output, grid).flatten(1)
            outputs[label].append(pooled.float().cpu())
        return hook

    handles = [m.register_forward_hook(keep(label)) for label, m in modules.items()]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, X.shape[0], batch_size):
            model(X[start:start + batch_size].to(param.device, param.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {label: torch.cat(parts).numpy() for label, parts in outputs.items()}


class ProbeResult(NamedTuple):
    """A linear probe: its accuracy on the test features, and the classifier (which expects
    features standardised with `mean` and `std`, the training features' statistics)."""

    accuracy: float
    classifier: nn.Linear
    mean: np.ndarray
    std: np.ndarray


def linear_probe(train_features, y_train, test_features, y_test, epochs: int = 100,
                 lr: float = 0.01, weight_decay: float = 1e-3, seed: int = 0) -> ProbeResult:
    """Train a linear classifier on fixed features and measure it: how linearly separable are
    the classes in this representation?

    train_features: (N, D), y_train: (N,) labels in [0, K); test_features: (M, D), y_test: (M,).
    Features are standardised with the training set's mean and standard deviation, then a
    Linear(D, K) is trained with `cnnlib.torch.fit` (Adam, cross-entropy, full batches of up to
    256, L2 weight decay `weight_decay`) from `seed`, on the CPU.
    """
    from cnnlib.torch import evaluate, fit

    F_train = np.asarray(train_features, dtype=np.float32)
    F_test = np.asarray(test_features, dtype=np.float32)
    for name, F in (("train_features", F_train), ("test_features", F_test)):
        if F.ndim != 2:
            raise ValueError(f"{name} must have shape (N, D), got {describe(F)}")
    if F_train.shape[1] != F_test.shape[1]:
        raise ValueError(f"train_features and test_features must have the same width D, got "
                         f"{F_train.shape[1]} and {F_test.shape[1]}")
    epochs = check_positive_int("epochs", epochs)
    lr = check_number("lr", lr, 0.0, strict_minimum=True)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    mean = F_train.mean(axis=0)
    std = F_train.std(axis=0) + 1e-6
    torch.manual_seed(seed)
    classifier = nn.Linear(F_train.shape[1], num_classes)
    fit(classifier, ((F_train - mean) / std, y_train), epochs=epochs, batch_size=256,
        optimizer="adam", lr=lr, weight_decay=weight_decay, seed=seed, device="cpu")
    accuracy = evaluate(classifier, ((F_test - mean) / std, y_test)).accuracy
    return ProbeResult(accuracy, classifier, mean, std)


def param_groups(model: nn.Module, lr: float, scale: dict[str, float]) -> list[dict]:
    """Parameter groups with per-layer learning rates, for a torch optimizer.

    lr: the learning rate of the head and of every layer `scale` does not name; scale: {module
    path prefix: factor}, e.g. ``{"conv1": 0.01, "bn1": 0.01, "layer1": 0.01, "layer2": 0.1}``
    for 1/100 of lr in the early layers and 1/10 in the middle ones (a parameter takes the
    factor of the longest prefix that names one of its modules). Frozen parameters are left
    out. ``torch.optim.SGD(param_groups(net, 0.01, {...}), momentum=0.9)``.
    """
    _check_model(model)
    lr = check_number("lr", lr, 0.0, strict_minimum=True)
    names = set(dict(model.named_modules()))
    unknown = [prefix for prefix in scale if prefix not in names]
    if unknown:
        raise ValueError(f"scale: {type(model).__name__} has no module {', '.join(unknown)}")
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        matches = [prefix for prefix in scale if name == prefix or name.startswith(prefix + ".")]
        factor = scale[max(matches, key=len)] if matches else 1.0
        groups.setdefault(float(factor), []).append(p)
    if not groups:
        raise ValueError("model has no trainable parameters (all frozen?)")
    return [{"params": params, "lr": lr * factor} for factor, params in sorted(groups.items())]


HOW = ("linear", "top", "all", "scratch")


def adapt(model: nn.Module, train_data, how: str, num_classes: int | None = None,
          lr: float | None = None, early_scale: float = 0.1, steps: int = 200,
          batch_size: int = 32, shift: int = 2, seed: int = 0, device=None,
          batchnorm: str = "eval"):
    """Train `model` (pretrained, or fresh from `build`) on a target task, in one of four ways.

    train_data: (X, y), X (N, 3, H, W) in [0, 1], y (N,) labels. how:

    - "linear": feature extraction. The whole body frozen (`freeze`, batch norm as `batchnorm`
      says), a new head `fc` trained: a linear classifier on the network's features.
    - "top": the last stage (`models.TOP`) and a new head train, the rest frozen.
    - "all": fine-tune everything from the pretrained weights with a new head; the early layers
      (`models.EARLY`) learn at `early_scale` times lr, as the source material advises.
    - "scratch": train everything at lr: meant for a freshly built network.

    num_classes: a new head with that many classes (default: the labels' count; "scratch"
    keeps the model's head when it already has that many). lr: default 0.01 (0.05 for
    "scratch", whose weights have further to go). SGD with momentum 0.9, weight decay 5e-4, a
    cosine decay, random shifts of up to `shift` pixels, batches of `batch_size` (or all N when
    fewer), `steps` updates in all (rounded up to whole epochs). Returns `fit`'s History.
    """
    from cnnlib import data
    from cnnlib.torch import fit

    from .models import EARLY, TOP, architecture_of

    _check_model(model)
    if how not in HOW:
        raise ValueError(f"how must be one of {', '.join(map(repr, HOW))}, got {describe(how)}")
    X, y = train_data
    n = len(y)
    num_classes = int(np.max(y)) + 1 if num_classes is None else num_classes
    arch = architecture_of(model)
    steps = check_positive_int("steps", steps)
    batch_size = min(check_positive_int("batch_size", batch_size), n)
    lr = (0.05 if how == "scratch" else 0.01) if lr is None else lr
    torch.manual_seed(seed)  # the new head's initial weights
    if how != "scratch" or model.fc.out_features != num_classes:
        replace_head(model, num_classes)
    if how == "linear":
        freeze(model, *(name for name, _ in model.named_children() if name != "fc"),
               batchnorm=batchnorm)
    elif how == "top":
        keep = set(TOP[arch]) | {"fc"}
        freeze(model, *(name for name, p in model.named_children()
                        if name not in keep and any(True for _ in p.parameters())),
               batchnorm=batchnorm)
    scale = {name: early_scale for name in EARLY[arch]} if how == "all" else {}
    optimizer = torch.optim.SGD(param_groups(model, lr, scale), momentum=0.9, weight_decay=5e-4)
    batches_per_epoch = -(-n // batch_size)
    epochs = -(-steps // batches_per_epoch)
    return fit(model, (X, y), epochs=epochs, batch_size=batch_size, optimizer=optimizer,
               schedule="cosine", augment=data.Augment(padding=shift, flip=False, seed=seed),
               seed=seed, device=device)
