"""The training loop of the course: `fit`, `evaluate`, `predict`, and checkpoints.

    >>> from cnnlib import data
    >>> from cnnlib.torch import fit, models
    >>> digits = data.load_digits(size=28)
    >>> net = models.create("lenet5")
    >>> history = fit(net, digits.train, digits.val, epochs=5, lr=0.05)   # doctest: +SKIP
    >>> history.best_epoch, history.best_val_acc                          # doctest: +SKIP

Data is NumPy arrays ``(X, y)`` (X: (N, C, H, W) float, y: (N,) integer labels), torch tensors,
a TensorDataset or a DataLoader; a `cnnlib.data.Splits` hands its sets over as ``splits.train``
and ``splits.val``. What the loop measures per epoch (loss, accuracies, learning rate, time)
lands in a `History`.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from cnnlib.numpy._checks import check_number, check_positive_int, describe

__all__ = ["Evaluation", "History", "evaluate", "fit", "load_checkpoint", "predict", "to_loader"]


# ============================================================================================
# Data: everything becomes a stream of (x, y) batches


def _as_tensor(name: str, a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(a))
    raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {describe(a)}")


class _Arrays:
    """In-memory data: X (N, ...) float, y (N,) integer labels, batched by index."""

    def __init__(self, X, y, name: str):
        X, y = _as_tensor(f"{name} X", X), _as_tensor(f"{name} y", y)
        if not X.is_floating_point():
            raise TypeError(
                f"{name} X must hold floating-point images, got {describe(X)}; "
                f"convert uint8 images with X.astype(np.float32) / 255"
            )
        if y.ndim != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"{name} y must be a 1-D array of integer class labels, shape "
                             f"(N,), got {describe(y)}")
        if X.ndim < 2 or X.shape[0] != y.shape[0]:
            raise ValueError(f"{name}: X and y must hold the same number of examples, got X of "
                             f"shape {tuple(X.shape)} and y of shape {tuple(y.shape)}")
        if X.shape[0] == 0:
            raise ValueError(f"{name} is empty (X has shape {tuple(X.shape)})")
        self.X, self.y = X, y.long()
        self.name = name

    def __len__(self) -> int:
        return self.X.shape[0]

    def label_range(self) -> tuple[int, int]:
        return int(self.y.min()), int(self.y.max())

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> _Arrays:
        if dtype is not None and self.X.dtype != dtype:
            self.X = self.X.to(dtype)
        # Keep small data sets on the GPU whole: one copy instead of one per batch.
        if device.type != "cpu" and self.X.element_size() * self.X.nelement() < (1 << 30):
            self.X, self.y = self.X.to(device), self.y.to(device)
        return self

    def batches(self, batch_size: int, rng: np.random.Generator | None) -> Iterator:
        n = len(self)
        order = None if rng is None else torch.from_numpy(rng.permutation(n)).to(self.X.device)
        starts = list(range(0, n, batch_size))
        # A last batch of one image breaks batch norm in training mode: fold it into the one
        # before.
        if rng is not None and len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        bounds = [*starts[1:], n]
        for start, stop in zip(starts, bounds, strict=True):
            if order is None:
                yield self.X[start:stop], self.y[start:stop]
            else:
                index = order[start:stop]
                yield self.X[index], self.y[index]

    def num_batches(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)


class _Loader:
    """A DataLoader (or any iterable of (x, y) batches): used as it is."""

    def __init__(self, loader, name: str):
        self.loader, self.name = loader, name

    def __len__(self) -> int:
        return len(self.loader.dataset) if hasattr(self.loader, "dataset") else 0

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> _Loader:
        return self

    def batches(self, batch_size: int, rng) -> Iterator:
        for batch in self.loader:
            if not isinstance(batch, list | tuple) or len(batch) < 2:
                raise TypeError(f"{self.name}: each batch must be a pair (x, y), got "
                                f"{type(batch).__name__}")
            yield batch[0], batch[1]

    def num_batches(self, batch_size: int) -> int | None:
        try:
            return len(self.loader)
        except TypeError:
            return None


def _param_dtype(model: nn.Module) -> torch.dtype | None:
    """The dtype of the model's floating-point weights: inputs are cast to it, so float64
    arrays meet a float32 model without a dtype error (and the reverse for gradient checks)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def _inputs(x: torch.Tensor, device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.to(dtype) if dtype is not None and x.is_floating_point() and x.dtype != dtype else x


def _data(data, name: str):
    """Wrap what the user passed as `name` (train_data, val_data, data)."""
    if isinstance(data, tuple | list) and len(data) == 2:
        return _Arrays(data[0], data[1], name)
    if isinstance(data, torch.utils.data.TensorDataset):
        if len(data.tensors) < 2:
            raise ValueError(f"{name}: a TensorDataset needs (X, y) tensors, it has "
                             f"{len(data.tensors)}")
        return _Arrays(data.tensors[0], data.tensors[1], name)
    if isinstance(data, torch.utils.data.DataLoader):
        return _Loader(data, name)
    if hasattr(data, "X_train") and hasattr(data, "X_test"):
        raise TypeError(f"{name}: pass one split, e.g. splits.train or splits.val, not the "
                        f"whole Splits")
    raise TypeError(f"{name} must be a pair (X, y) of arrays or tensors, a TensorDataset or a "
                    f"DataLoader, got {describe(data)}")


def to_loader(X, y, batch_size: int = 64, shuffle: bool = False, seed: int | None = 0):
    """NumPy arrays (or tensors) X (N, ...) and y (N,) as a torch DataLoader of (x, y) batches.

    For code that wants a DataLoader; `fit` itself takes the arrays directly (and is faster
    with them). With shuffle=True the order is drawn from a generator seeded with `seed`.
    """
    arrays = _Arrays(X, y, "data")
    generator = torch.Generator().manual_seed(seed) if shuffle and seed is not None else None
    dataset = torch.utils.data.TensorDataset(arrays.X, arrays.y)
    return torch.utils.data.DataLoader(dataset, batch_size=check_positive_int(
        "batch_size", batch_size), shuffle=shuffle, generator=generator)


# ============================================================================================
# Checking that the model and the labels agree


def _check_scores(scores: torch.Tensor, y: torch.Tensor, check_range: bool) -> None:
    """Raise a ValueError naming both shapes unless scores (N, K) fits labels y (N,) in [0, K)."""
    if scores.ndim != 2:
        hint = ""
        if scores.ndim == 4 and scores.shape[2:] == (1, 1):
            hint = " (a (N, K, 1, 1) output needs a flatten: end the model with nn.Flatten())"
        raise ValueError(
            f"the model's output has shape {tuple(scores.shape)} but the loss needs class "
            f"scores of shape (N, num_classes) for labels of shape {tuple(y.shape)}{hint}"
        )
    if y.ndim != 1:
        raise ValueError(f"labels must have shape (N,), one class index per image, got shape "
                         f"{tuple(y.shape)} (the model's output has shape "
                         f"{tuple(scores.shape)})")
    if scores.shape[0] != y.shape[0]:
        raise ValueError(
            f"the model's output has shape {tuple(scores.shape)}, {scores.shape[0]} rows, but "
            f"the batch has {y.shape[0]} labels (shape {tuple(y.shape)}): the model must keep "
            f"one row of scores per image (check reshapes such as x.view(-1, ...))"
        )
    if check_range and y.numel():
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= scores.shape[1]:
            raise ValueError(
                f"labels go from {low} to {high} but the model's output has shape "
                f"{tuple(scores.shape)}: {scores.shape[1]} classes, so labels must be in "
                f"[0, {scores.shape[1]}); build the model with num_classes={high + 1}?"
            )


# ============================================================================================
# The history of a run


@dataclass
class History:
    """What `fit` measured, one entry per epoch.

    train_loss: mean loss over the epoch's batches (weighted by batch size, measured as the
    weights changed); train_acc: accuracy on those same batches (augmented, if augment was on);
    val_loss, val_acc: on the validation data after the epoch (NaN without val_data); lr: the
    learning rate the epoch used; time: seconds the epoch took (validation included).
    ``history.as_dict()`` gives the columns, e.g. for ``plt.plot(h.epoch, h.val_acc)``.
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)

    COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time")

    def __len__(self) -> int:
        return len(self.epoch)

    @property
    def best_epoch(self) -> int | None:
        """The epoch (counted from 1) with the highest validation accuracy (the first, on ties);
        without validation data, the one with the lowest training loss."""
        if not self.epoch:
            return None
        if any(not math.isnan(a) for a in self.val_acc):
            scores = [-math.inf if math.isnan(a) else a for a in self.val_acc]
            return self.epoch[int(np.argmax(scores))]
        return self.epoch[int(np.argmin(self.train_loss))]

    @property
    def best_val_acc(self) -> float:
        return max((a for a in self.val_acc if not math.isnan(a)), default=math.nan)

    def as_dict(self) -> dict[str, list]:
        return {name: list(getattr(self, name)) for name in self.COLUMNS}

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = len(self) - 1
        return (f"History({len(self)} epochs, last: train loss {self.train_loss[last]:.4f}, "
                f"train acc {self.train_acc[last]:.3f}, val acc {self.val_acc[last]:.3f}; "
                f"best epoch {self.best_epoch})")

    def plot(self, title: str | None = None):
        """Loss (left) and accuracy (right) against the epoch, training and validation: the
        curves to babysit a run by. Returns the matplotlib Figure."""
        import matplotlib.pyplot as plt

        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
        for ax, what in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(self.epoch, getattr(self, f"train_{what}"), "o-", label="train")
            if any(not math.isnan(v) for v in getattr(self, f"val_{what}")):
                ax.plot(self.epoch, getattr(self, f"val_{what}"), "s-", label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss" if what == "loss" else "accuracy")
            ax.legend()
        best = self.best_epoch
        if best is not None:
            ax_acc.axvline(best, color="grey", linestyle=":", linewidth=1)
        if title:
            fig.suptitle(title)
        return fig

    def _append(self, **row) -> None:
        for name in self.COLUMNS:
            getattr(self, name).append(row[name])


# ============================================================================================
# Pieces of fit


def _resolve_device(device, verbose: bool = False) -> torch.device:
    if device is None:
        try:
            from .device import device as pick_device
        except ImportError:  # pragma: no cover - cnnlib.torch.device always ships
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return pick_device(verbose=verbose)
    return torch.device(device)


def _make_optimizer(optimizer, model: nn.Module, lr, momentum, weight_decay):
    if isinstance(optimizer, torch.optim.Optimizer):
        given = [n for n, v in (("lr", lr), ("momentum", momentum),
                                ("weight_decay", weight_decay)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: set these when you build the optimizer; fit "
                             f"got an optimizer object and would ignore them")
        return optimizer
    if not isinstance(optimizer, str) or optimizer.lower() not in ("sgd", "adam", "adamw"):
        raise ValueError(f'optimizer must be "sgd", "adam", "adamw" or a torch.optim.Optimizer, '
                         f"got {describe(optimizer)}")
    kind = optimizer.lower()
    weight_decay = check_number("weight_decay", 0.0 if weight_decay is None else weight_decay, 0.0)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    if kind == "sgd":
        lr = check_number("lr", 0.01 if lr is None else lr, 0.0, strict_minimum=True)
        momentum = check_number("momentum", 0.9 if momentum is None else momentum, 0.0, 1.0)
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if momentum is not None:
        raise ValueError(f"momentum applies to SGD; {kind} keeps its own moment estimates "
                         f"(betas), so leave momentum out")
    lr = check_number("lr", 1e-3 if lr is None else lr, 0.0, strict_minimum=True)
    maker = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return maker(params, lr=lr, weight_decay=weight_decay)


def _make_schedule(schedule, optimizer, epochs: int):
    """Stepped once per epoch. "step": divide lr by 10 at 50% and 75% of the epochs (the
    recipe of the ResNet CIFAR experiments); "cosine": cosine decay to 0 over the epochs."""
    if schedule is None:
        return None
    if schedule == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    schedulers = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if isinstance(schedule, schedulers):
        if schedule.optimizer is not optimizer:
            raise ValueError("schedule was built on another optimizer than the one fit uses: "
                             "build the optimizer yourself, pass it as optimizer=, and build "
                             "the scheduler on it")
        return schedule
    raise ValueError(f'schedule must be None, "step", "cosine" or a torch LR scheduler, '
                     f"got {describe(schedule)}")


def _interactive() -> bool:
    """True in a Jupyter kernel or a terminal; False under pytest, CI logs and pipes."""
    if "PYTEST_CURRENT_TEST" in os.environ:
        return False
    shell = sys.modules.get("IPython")
    if shell is not None:
        ipython = shell.get_ipython()
        if ipython is not None and "IPKernelApp" in getattr(ipython, "config", {}):
            return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class _Quiet:
    """Stands in for a tqdm bar when progress is off."""

    def update(self, n=1) -> None: ...
    def set_postfix_str(self, s, refresh=True) -> None: ...
    def close(self) -> None: ...


def _bar(show: bool, **kwargs):
    if not show:
        return _Quiet()
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


def _amp_context(amp, device: torch.device):
    """(autocast context factory, GradScaler or None). AMP runs only on CUDA: bfloat16 where
    the GPU has it (no loss scaling needed), else float16 with a GradScaler."""
    if amp not in ("auto", True, False):
        raise ValueError(f'amp must be "auto", True or False, got {describe(amp)}')
    if amp is True and device.type != "cuda":
        warnings.warn(f"amp=True ignored: automatic mixed precision runs only on CUDA, "
                      f"training on {device} in float32", stacklevel=3)
    if not amp or device.type != "cuda":
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def _save_checkpoint(model: nn.Module, path: Path, epoch: int, val_acc: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": epoch, "val_acc": val_acc}, partial)
    os.replace(partial, path)  # a crash mid-save never leaves a half-written checkpoint


def load_checkpoint(model: nn.Module, path) -> dict:
    """Load the weights `fit(..., checkpoint=path)` saved into `model` (of the same
    architecture); returns ``{"epoch": ..., "val_acc": ...}`` of the saved epoch."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or "state_dict" not in saved:
        raise ValueError(f"{path} is not a checkpoint written by cnnlib.torch.fit")
    model.load_state_dict(saved["state_dict"])
    return {"epoch": saved["epoch"], "val_acc": saved["val_acc"]}


# ============================================================================================
# fit, evaluate, predict


def _check_label_range(scores: torch.Tensor, low: int, high: int, name: str) -> None:
    """All of the labels of `name` must be valid classes, not only those of the first batch."""
    if low < 0 or high >= scores.shape[1]:
        raise ValueError(
            f"{name}'s labels go from {low} to {high} but the model outputs "
            f"{scores.shape[1]} class scores per image (shape {tuple(scores.shape)} for the "
            f"first batch), so labels must be in [0, {scores.shape[1]}); build the model with "
            f"num_classes={high + 1}?"
        )


class Evaluation(NamedTuple):
    accuracy: float
    loss: float


def _zero_sums(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss sum, count of right answers) as zeros on `device`. The sums stay there: reading a
    number back every batch would make the GPU wait for the CPU. float64 where the device has
    it (MPS has not)."""
    sum_dtype = torch.float32 if device.type == "mps" else torch.float64
    return (torch.zeros((), dtype=sum_dtype, device=device),
            torch.zeros((), dtype=torch.int64, device=device))


@torch.no_grad()
def _run_eval(model, data, batch_size, device, loss_fn, check) -> Evaluation:
    was_training = model.training
    model.eval()
    loss_sum, correct = _zero_sums(device)
    total = 0
    dtype = _param_dtype(model)
    # In-memory labels are checked all at once on the first batch; a DataLoader's batch by batch.
    label_range = data.label_range() if check and isinstance(data, _Arrays) else None
    try:
        for step, (x, y) in enumerate(data.batches(batch_size, None)):
            x, y = _inputs(x, device, dtype), y.to(device, non_blocking=True)
            scores = model(x)
            if check:
                _check_scores(scores, y, check_range=label_range is None)
                if step == 0 and label_range is not None:
                    _check_label_range(scores, *label_range, data.name)
            loss_sum += loss_fn(scores, y).to(loss_sum.dtype) * y.shape[0]
            correct += (scores.argmax(dim=1) == y).sum()
            total += y.shape[0]
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError(f"{data.name} yielded no batches")
    return Evaluation(int(correct) / total, float(loss_sum) / total)


def _is_classification(loss_fn) -> bool:
    return isinstance(loss_fn, nn.CrossEntropyLoss | nn.NLLLoss)


def evaluate(model: nn.Module, data, batch_size: int = 256, device=None,
             loss: Callable | None = None) -> Evaluation:
    """Accuracy and mean loss of `model` on `data` (same forms as fit's), in eval mode (batch
    norm uses its running statistics, dropout is off), without gradients.

    ``acc, loss = evaluate(net, splits.test)``. The model's train/eval mode is restored.
    """
    device = torch.device(device) if device is not None else _param_device(model)
    loss_fn = nn.CrossEntropyLoss() if loss is None else loss
    data = _data(data, "data").to(device, _param_dtype(model))
    batch_size = check_positive_int("batch_size", batch_size)
    return _run_eval(model, data, batch_size, device, loss_fn, _is_classification(loss_fn))


def _param_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, X, batch_size: int = 256, scores: bool = False,
            device=None) -> np.ndarray:
    """Predicted classes (N,) int64 for images X (N, C, H, W), or the raw class scores (N, K)
    with scores=True, as NumPy arrays; eval mode, no gradients, mode restored afterwards."""
    device = torch.device(device) if device is not None else _param_device(model)
    X = _as_tensor("X", X)
    if not X.is_floating_point():
        raise TypeError(f"X must hold floating-point images, got {describe(X)}")
    batch_size = check_positive_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    outputs = []
    dtype = _param_dtype(model)
    try:
        for start in range(0, X.shape[0], batch_size):
            out = model(_inputs(X[start:start + batch_size], device, dtype))
            outputs.append(out.float().cpu())
    finally:
        model.train(was_training)
    all_scores = torch.cat(outputs) if outputs else torch.empty(0)
    return all_scores.numpy() if scores else all_scores.argmax(dim=1).numpy()

def _train_epoch(model, batches, optimizer, loss_fn, device, augment, autocast, scaler, check,
                 check_all, bar, label_range=None) -> tuple[float, int, int]:
    """One pass over the training batches; returns (sum of losses x batch sizes, number right,
    number of examples). Shapes are checked on the first batch, or on every batch when
    `check_all` (a DataLoader's first epoch: its labels are not known in advance); on the first
    batch, `label_range` (lowest, highest label of all the training data) too."""
    dtype = _param_dtype(model)
    loss_sum, correct = _zero_sums(device)
    total = 0
    for step, (x, y) in enumerate(batches):
        x, y = _inputs(x, device, dtype), y.to(device, non_blocking=True)
        if augment is not None:
            x = augment(x)
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"augment must return a torch tensor, got {describe(x)}")
        with autocast():
            scores = model(x)
            if check and (step == 0 or check_all):
                _check_scores(scores, y, check_range=True)
                if step == 0 and label_range is not None:
                    _check_label_range(scores, *label_range, "train_data")
            batch_loss = loss_fn(scores, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(batch_loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            batch_loss.backward()
            optimizer.step()
        loss_sum += batch_loss.detach().to(loss_sum.dtype) * y.shape[0]
        if check:
            correct += (scores.detach().argmax(dim=1) == y).sum()
        total += y.shape[0]
        bar.update()
    return float(loss_sum), int(correct), total


def fit(
    model: nn.Module,
    train_data,
    val_data=None,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    optimizer="sgd",
    lr: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    schedule=None,
    loss: Callable | None = None,
    device=None,
    seed: int | None = 0,
    augment: Callable | None = None,
    checkpoint=None,
    amp="auto",
    progress="auto",
    verbose: bool = False,
) -> History:
    """Train `model` on `train_data` for `epochs` epochs; returns the `History`.

    Data: ``(X, y)`` NumPy arrays or tensors (X (N, C, H, W) float, y (N,) integer labels, in
    [0, num_classes)), a TensorDataset, or a DataLoader (used as it is: its own batch size and
    shuffling). Arrays are shuffled every epoch from `seed` and cut into `batch_size` batches.
    `cnnlib.data.Splits` give theirs as ``splits.train`` / ``splits.val``.

    optimizer: "sgd" (lr 0.01, momentum 0.9 by default), "adam" or "adamw" (lr 1e-3), or your
    own torch.optim.Optimizer (then set lr etc. on it). weight_decay: L2 penalty (default 0).
    schedule: None, "step" (lr / 10 at 50% and 75% of the epochs), "cosine", or a torch LR
    scheduler built on your optimizer; stepped once per epoch (ReduceLROnPlateau on val loss).
    loss: default cross-entropy on (N, K) scores. device: default `cnnlib.torch.device()`
    (CUDA, else MPS, else CPU); the model is moved there. seed: seeds torch's generator (dropout,
    ...) and the shuffling, so the same seed on the CPU gives the same history; None leaves
    torch's generator alone and shuffles at random. augment: called on every training batch x
    (N, C, H, W) on the device, returns the batch to train on (e.g. `cnnlib.data.Augment()`).
    checkpoint: a path; the weights of the epoch with the best validation accuracy are saved
    there (`load_checkpoint` restores them). amp: mixed precision, "auto" = on CUDA only.
    progress: tqdm bars, "auto" = only when interactive (a notebook or a terminal, not pytest or
    CI); verbose: print one line per epoch.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if seed is not None:
        seed = check_positive_int("seed", seed, minimum=0)
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function of a batch x, got {describe(augment)}")
    if checkpoint is not None and val_data is None:
        raise ValueError("checkpoint saves the epoch with the best validation accuracy, so it "
                         "needs val_data")
    if progress not in ("auto", True, False):
        raise ValueError(f'progress must be "auto", True or False, got {describe(progress)}')
    show_bars = _interactive() if progress == "auto" else progress

    device = _resolve_device(device, verbose)
    model.to(device)
    param_dtype = _param_dtype(model)
    train = _data(train_data, "train_data").to(device, param_dtype)
    val = None if val_data is None else _data(val_data, "val_data").to(device, param_dtype)
    loss_fn = nn.CrossEntropyLoss() if loss is None else loss
    classification = _is_classification(loss_fn)
    optimizer = _make_optimizer(optimizer, model, lr, momentum, weight_decay)
    scheduler = _make_schedule(schedule, optimizer, epochs)
    autocast, scaler = _amp_context(amp, device)
    checkpoint = None if checkpoint is None else Path(checkpoint)

    # The labels of in-memory data are all known now: check them all against the model's
    # classes on the first batch, not only that batch's own.
    label_range = train.label_range() if isinstance(train, _Arrays) else None
    if seed is not None:
        torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    history = History()
    best_acc = -math.inf
    epoch_bar = _bar(show_bars, total=epochs, desc="epochs", unit="epoch")
    try:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            model.train()
            lr_now = optimizer.param_groups[0]["lr"]
            batch_bar = _bar(show_bars, total=train.num_batches(batch_size), leave=False,
                             desc=f"epoch {epoch}", unit="batch")
            loss_sum, correct, total = _train_epoch(
                model, train.batches(batch_size, rng), optimizer, loss_fn, device, augment,
                autocast, scaler, check=classification,
                check_all=epoch == 1 and isinstance(train, _Loader), bar=batch_bar,
                label_range=label_range if epoch == 1 else None)
            batch_bar.close()
            if not math.isfinite(loss_sum):
                warnings.warn(f"epoch {epoch}: the training loss is {loss_sum / total}; the "
                              f"learning rate ({lr_now:g}) is probably too high", stacklevel=2)
            val_acc = val_loss = math.nan
            if val is not None:
                val_acc, val_loss = _run_eval(model, val, max(batch_size, 256), device, loss_fn,
                                              classification)
            if scheduler is not None:
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(val_loss if val is not None else loss_sum / total)
                else:
                    scheduler.step()
            history._append(epoch=epoch, train_loss=loss_sum / total,
                            train_acc=correct / total if classification else math.nan,
                            val_loss=val_loss, val_acc=val_acc, lr=lr_now,
                            time=time.perf_counter() - started)
            if checkpoint is not None and val_acc > best_acc:
                best_acc = val_acc
                _save_checkpoint(model, checkpoint, epoch, val_acc)
            line = (f"epoch {epoch}/{epochs}: loss {loss_sum / total:.4f}, "
                    f"train acc {history.train_acc[-1]:.3f}"
                    + (f", val acc {val_acc:.3f}" if val is not None else "")
                    + f", lr {lr_now:.3g}, {history.time[-1]:.1f}s")
            epoch_bar.set_postfix_str(line.split(": ", 1)[1])
            epoch_bar.update()
            if verbose:
                print(line)
    finally:
        epoch_bar.close()
    return history

