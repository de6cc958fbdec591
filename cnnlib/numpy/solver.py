"""Solver: mini-batch training of a NumPy model, with histories, best-model keeping and checkpoints.

A model is anything with

    model.params          a mutable mapping name -> array (assigning replaces the array)
    model.loss(X)         -> scores (N, num_classes), in evaluation mode
    model.loss(X, y)      -> (loss, grads), grads a dict with the names of params

(`Sequential` and `ThreeLayerConvNet` in cnnlib.numpy.model are such models; so is a hand-written
two-layer net with a dict of params.) A model may also have `state` (batch-norm running
statistics, a mapping like params): it is saved and restored along with the params.

Typical use::

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, batch_size=64, num_epochs=10)
    solver.train()
    solver.check_accuracy(X_test, y_test)

Each epoch visits every training sample once, in an order shuffled by the solver's seeded
generator; after each epoch the solver measures the training accuracy (on a sample of
`num_train_samples`) and the validation accuracy, and remembers the parameters with the best
validation accuracy. At the end of `train()` the model holds those best parameters.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from ._checks import check_ndim, check_number, check_positive_int, describe
from .optim import default_config, get_update_rule, update_ratio

__all__ = ["Solver"]

_DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")
# The per-iteration and per-epoch histories, saved in and restored from checkpoints
_HISTORIES = ("loss_history", "train_acc_history", "val_acc_history", "lr_history")


def _interactive() -> bool:
    """True in a terminal or a notebook a person is watching; False in CI and test logs."""
    from cnnlib import quick_mode

    in_notebook = "ipykernel" in sys.modules and not quick_mode()
    return in_notebook or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())


def _check_data(data) -> dict[str, np.ndarray]:
    if not isinstance(data, dict):
        raise TypeError(f"data must be a dict with keys {list(_DATA_KEYS)}, got {describe(data)}")
    missing = [key for key in _DATA_KEYS if key not in data]
    if missing:
        raise ValueError(f"data is missing {missing}: it needs {list(_DATA_KEYS)}")
    for split in ("train", "val"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        if not hasattr(X, "shape") or len(X) == 0:
            raise ValueError(f"data['X_{split}'] must be a non-empty array, got {describe(X)}")
        check_ndim(f"data['y_{split}']", y, 1, "(N,)")
        if y.dtype.kind not in "iu":
            raise TypeError(f"data['y_{split}'] must hold integer class labels, got {describe(y)}")
        if len(y) != len(X):
            raise ValueError(
                f"data['y_{split}'] has {len(y)} labels but data['X_{split}'] has {len(X)} samples"
            )
    return {key: data[key] for key in _DATA_KEYS}


class Solver:
    """Trains `model` on `data` with mini-batch gradient descent.

    model: see the module docstring. data: dict with X_train, y_train, X_val, y_val.
    update_rule: a name from cnnlib.numpy.optim ('sgd', 'sgd_momentum', 'nesterov', 'rmsprop',
        'adam') or a function with the same signature `rule(w, dw, config) -> (next_w, config)`.
    optim_config: hyperparameters for the rule (learning_rate, ...); every parameter array gets
        its own copy, which then also holds that array's optimiser state.
    lr_decay: a number: the learning rate in epoch e (counted from 0) is lr0 * lr_decay**e;
        or a schedule called as lr_decay(lr0, e), e.g. functools.partial(cosine_decay,
        total_epochs=10) or partial(step_decay, step_size=5).
    lr_per_iteration: False sets the rate once per epoch, at e = 0, 1, 2, ...; True sets it
        before every step, at fractional epochs e = epoch + k / iterations_per_epoch, which a
        warm-up over a few epochs needs (with_warmup). lr_history records the rate at the start
        of each epoch either way.
    batch_size, num_epochs: the mini-batch size and the number of passes over the training set.
    seed: seeds the shuffling and the accuracy subsamples; with a seeded model, two runs give
        identical histories.
    verbose, print_every: print the loss every `print_every` iterations and a line per epoch.
    num_train_samples: training accuracy is measured on this many training samples (None: all).
    num_val_samples: validation accuracy on this many validation samples (None: all).
    progress: show a tqdm progress bar; None shows one only when someone is watching (a terminal
        or a notebook outside CNNLIB_QUICK mode), so CI logs stay quiet.
    checkpoint_path: if given, save_checkpoint(checkpoint_path) after every epoch (overwriting),
        before the best parameters are restored: load_checkpoint then resumes exactly.

    The babysitting options (all off by default; their records are not saved in checkpoints):

    record_update_ratios: after every step, record ||update|| / ||w|| of every parameter
        (`update_ratio`) in update_ratio_history[name], one entry per iteration. About 1e-3 is
        the rule of thumb for weights; far below, the learning rate is too low, far above, too
        high.
    snapshot_params: keep a copy of the parameters at the end of every epoch in
        param_snapshots, a list of dicts like params, for checkpoint averaging
        (`average_params`) or for measuring anything epoch by epoch afterwards. (Batch-norm
        running statistics are not included: after averaging weights, recompute them.)
    max_loss_ratio: stop as soon as a batch's loss exceeds this multiple of the first batch's
        loss, or is not finite (the coarse search's early exit: the rate is too high); sets
        diverged to True.
    patience: early stopping: stop after this many epochs without a better validation
        accuracy; sets stopped_early to True. Either way train() puts the best parameters back.

    After train(): loss_history (one entry per iteration), train_acc_history, val_acc_history
    and lr_history (one entry per epoch), best_val_acc, best_params (copies).
    """

    def __init__(
        self,
        model,
        data: dict,
        update_rule: str | Callable = "adam",
        optim_config: dict | None = None,
        lr_decay: float | Callable = 1.0,
        batch_size: int = 64,
        num_epochs: int = 10,
        seed: int | None = 0,
        verbose: bool = True,
        print_every: int = 100,
        num_train_samples: int | None = 1000,
        num_val_samples: int | None = None,
        progress: bool | None = None,
        checkpoint_path=None,
        record_update_ratios: bool = False,
        snapshot_params: bool = False,
        max_loss_ratio: float | None = None,
        patience: int | None = None,
        lr_per_iteration: bool = False,
    ) -> None:
        if not hasattr(model, "params") or not callable(getattr(model, "loss", None)):
            raise TypeError(
                f"model must have params and a loss(X, y) method, got {describe(model)}"
            )
        self.model = model
        self.data = _check_data(data)

        if callable(update_rule):
            self.update_rule, base = update_rule, {}
        else:
            self.update_rule, base = get_update_rule(update_rule), default_config(update_rule)
        self.update_rule_name = getattr(self.update_rule, "__name__", "custom")
        if optim_config is not None and not isinstance(optim_config, dict):
            raise TypeError(f"optim_config must be a dict or None, got {describe(optim_config)}")
        self.optim_config = {**base, **(optim_config or {})}

        if callable(lr_decay):
            self.lr_decay = lr_decay
        elif isinstance(lr_decay, numbers.Real) and not isinstance(lr_decay, bool):
            if not 0.0 < lr_decay <= 1.0:
                raise ValueError(f"lr_decay must be in (0, 1] or a schedule, got {lr_decay}")
            self.lr_decay = float(lr_decay)
        else:
            raise TypeError(
                f"lr_decay must be a number or a schedule lr_decay(lr0, epoch), got "
                f"{describe(lr_decay)}"
            )
        if self.lr_decay != 1.0 and "learning_rate" not in self.optim_config:
            raise ValueError("lr_decay needs optim_config['learning_rate'] to decay from")

        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_epochs = check_positive_int("num_epochs", num_epochs, minimum=0)
        self.print_every = check_positive_int("print_every", print_every)
        for name, value in (("num_train_samples", num_train_samples),
                            ("num_val_samples", num_val_samples)):
            if value is not None:
                check_positive_int(name, value)
        self.num_train_samples, self.num_val_samples = num_train_samples, num_val_samples
        self.seed, self.verbose = seed, bool(verbose)
        self.progress = _interactive() if progress is None else bool(progress)
        self.checkpoint_path = checkpoint_path
        self.record_update_ratios = bool(record_update_ratios)
        self.snapshot_params = bool(snapshot_params)
        self.max_loss_ratio = None if max_loss_ratio is None else check_number(
            "max_loss_ratio", max_loss_ratio, 1.0)
        self.patience = None if patience is None else check_positive_int("patience", patience)
        self.lr_per_iteration = bool(lr_per_iteration)
        self._reset()

    # ---------------------------------------------------------------------------- bookkeeping

    def _reset(self) -> None:
        """Fresh histories, optimiser state and generators: what a new training run starts from."""
        self.epoch = 0
        self.best_val_acc = -1.0
        self.best_params: dict[str, np.ndarray] = {}
        self.best_state: dict[str, np.ndarray] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.lr_history: list[float] = []
        self.update_ratio_history: dict[str, list[float]] = {name: [] for name in
                                                             self.model.params}
        self.param_snapshots: list[dict[str, np.ndarray]] = []
        self.diverged = False
        self.stopped_early = False
        self.optim_configs = {name: dict(self.optim_config) for name in self.model.params}
        # Two independent streams: shuffling, and the subsamples that accuracies are measured on,
        # so that checking an accuracy by hand does not change which batches training sees.
        shuffle_seq, sample_seq = np.random.SeedSequence(self.seed).spawn(2)
        self._shuffle_rng = np.random.default_rng(shuffle_seq)
        self._sample_rng = np.random.default_rng(sample_seq)

    def _model_state(self):
        return getattr(self.model, "state", None) or {}

    def _learning_rate(self, epoch: float) -> float | None:
        lr0 = self.optim_config.get("learning_rate")
        if lr0 is None:
            return None
        if callable(self.lr_decay):
            return float(self.lr_decay(lr0, epoch))
        return float(lr0) * self.lr_decay**epoch

    # ---------------------------------------------------------------------------- training

    def _step(self, batch: np.ndarray) -> float:
        """One gradient step on the training samples with indices `batch`; returns the loss."""
        X = self.data["X_train"][batch]
        y = self.data["y_train"][batch]
        loss, grads = self.model.loss(X, y)
        for name in list(self.model.params):
            if name not in grads:
                raise KeyError(f"model.loss returned no gradient for parameter {name!r}")
            w = self.model.params[name]
            next_w, self.optim_configs[name] = self.update_rule(
                w, grads[name], self.optim_configs[name]
            )
            if self.record_update_ratios:
                self.update_ratio_history[name].append(update_ratio(w, next_w))
            self.model.params[name] = next_w
        return float(loss)

    def train(self) -> Solver:
        """Train until `num_epochs` epochs are done (resuming after load_checkpoint), then put the
        parameters with the best validation accuracy back into the model. Returns self.
        """
        num_train = len(self.data["X_train"])
        iterations_per_epoch = math.ceil(num_train / self.batch_size)
        total = iterations_per_epoch * self.num_epochs
        bar = tqdm(total=total, initial=iterations_per_epoch * self.epoch,
                   disable=not self.progress, unit="batch", desc="train")
        say = bar.write if self.progress else print
        try:
            while self.epoch < self.num_epochs:
                lr = self._learning_rate(self.epoch)
                if lr is not None:
                    self._set_learning_rate(lr)
                order = self._shuffle_rng.permutation(num_train)
                for k, start in enumerate(range(0, num_train, self.batch_size)):
                    if self.lr_per_iteration and lr is not None:
                        self._set_learning_rate(
                            self._learning_rate(self.epoch + k / iterations_per_epoch))
                    loss = self._step(order[start : start + self.batch_size])
                    self.loss_history.append(loss)
                    bar.update()
                    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                    iteration = len(self.loss_history)
                    if self.verbose and iteration % self.print_every == 0:
                        say(f"(iteration {iteration} / {total}) loss {loss:.4f}")
                    if self._exploded(loss):
                        self.diverged = True
                        if self.verbose:
                            say(f"(iteration {iteration}) loss {loss:.4g} is more than "
                                f"{self.max_loss_ratio:g}x the first loss: stopped")
                        break
                if self.diverged:
                    break
                self.epoch += 1
                self._end_of_epoch(lr, say)
                if self.checkpoint_path is not None:
                    self.save_checkpoint(self.checkpoint_path)
                if self._out_of_patience():
                    self.stopped_early = True
                    if self.verbose:
                        say(f"(epoch {self.epoch}) no better validation accuracy for "
                            f"{self.patience} epochs: stopped early")
                    break
        finally:
            bar.close()
        self.restore_best()
        return self

    def _set_learning_rate(self, lr: float) -> None:
        for config in self.optim_configs.values():
            config["learning_rate"] = lr

    def _exploded(self, loss: float) -> bool:
        if self.max_loss_ratio is None:
            return False
        return not math.isfinite(loss) or loss > self.max_loss_ratio * self.loss_history[0]

    def _out_of_patience(self) -> bool:
        if self.patience is None:
            return False
        best_epoch = int(np.argmax(self.val_acc_history))  # the first of equals
        return len(self.val_acc_history) - 1 - best_epoch >= self.patience

    def _end_of_epoch(self, lr: float | None, say: Callable) -> None:
        train_acc = self.check_accuracy(
            self.data["X_train"], self.data["y_train"], num_samples=self.num_train_samples
        )
        val_acc = self.check_accuracy(
            self.data["X_val"], self.data["y_val"], num_samples=self.num_val_samples
        )
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self.lr_history.append(math.nan if lr is None else lr)
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
            self.best_state = {k: np.array(v, copy=True) for k, v in self._model_state().items()}
        if self.snapshot_params:
            self.param_snapshots.append(
                {k: np.array(v, copy=True) for k, v in self.model.params.items()})
        if self.verbose:
            lr_text = "" if lr is None else f", lr {lr:.3g}"
            say(
                f"(epoch {self.epoch} / {self.num_epochs}) train acc {train_acc:.3f}, "
                f"val acc {val_acc:.3f}{lr_text}"
            )

    def restore_best(self) -> None:
        """Put the parameters (and state) with the best validation accuracy back into the model."""
        for name, value in self.best_params.items():
            self.model.params[name] = np.array(value, copy=True)
        state = self._model_state()
        for name, value in self.best_state.items():
            state[name] = np.array(value, copy=True)

    def check_accuracy(
        self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None, batch_size: int = 256
    ) -> float:
        """Fraction of samples whose highest score is the right class (evaluation mode).

        num_samples: measure on a random subset of this size (None: all of X).
        """
        batch_size = check_positive_int("batch_size", batch_size)
        if len(X) != len(y):
            raise ValueError(f"y has {len(y)} labels but X has {len(X)} samples")
        if num_samples is not None and len(X) > num_samples:
            subset = self._sample_rng.choice(len(X), num_samples, replace=False)
            X, y = X[subset], y[subset]
        predictions = [
            np.argmax(self.model.loss(X[i : i + batch_size]), axis=1)
            for i in range(0, len(X), batch_size)
        ]
        return float(np.mean(np.concatenate(predictions) == y))

    # ---------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self, path) -> None:
        """Everything needed to resume: params, state, optimiser configs, histories, generators.

        Written with np.savez: plain arrays under names like "params/0.w" and
        "optim/0.w/velocity", and the generators' states as JSON text (no pickle).
        """
        arrays: dict[str, np.ndarray] = {}
        for group, mapping in (
            ("params", self.model.params),
            ("state", self._model_state()),
            ("best_params", self.best_params),
            ("best_state", self.best_state),
        ):
            for name, value in mapping.items():
                arrays[f"{group}/{name}"] = np.asarray(value)
        for name, config in self.optim_configs.items():
            for key, value in config.items():
                if not isinstance(value, numbers.Number | np.ndarray):
                    raise TypeError(
                        f"optim config {name!r}[{key!r}] holds {describe(value)}: a checkpoint "
                        "stores numbers and arrays only"
                    )
                arrays[f"optim/{name}/{key}"] = np.asarray(value)
        for key in _HISTORIES:
            arrays[key] = np.asarray(getattr(self, key), dtype=np.float64)
        arrays["epoch"] = np.asarray(self.epoch)
        arrays["best_val_acc"] = np.asarray(self.best_val_acc)
        arrays["update_rule"] = np.asarray(self.update_rule_name)
        arrays["generators"] = np.asarray(json.dumps({
            "shuffle": self._shuffle_rng.bit_generator.state,
            "sample": self._sample_rng.bit_generator.state,
        }))
        with open(path, "wb") as file:  # a file object: np.savez would append ".npz" to a name
            np.savez(file, **arrays)

    def load_checkpoint(self, path) -> None:
        """Restore a checkpoint written by save_checkpoint into this solver and its model.

        The model must have the same parameter names and shapes. `train()` afterwards resumes
        from the saved epoch and produces the same histories as an uninterrupted run.
        """
        with np.load(path, allow_pickle=False) as saved:
            groups: dict[str, dict[str, np.ndarray]] = {}
            for key in saved.files:
                group, _, name = key.partition("/")
                if name:
                    groups.setdefault(group, {})[name] = saved[key]
            scalars = {key: saved[key] for key in saved.files if "/" not in key}

        params = groups.get("params", {})
        if sorted(params) != sorted(self.model.params):
            raise ValueError(
                f"path: the checkpoint holds params {sorted(params)} but the model has "
                f"{sorted(self.model.params)}"
            )
        if str(scalars["update_rule"]) != self.update_rule_name:
            raise ValueError(
                f"path: the checkpoint was trained with update_rule "
                f"{str(scalars['update_rule'])!r}, this solver uses {self.update_rule_name!r}"
            )
        for name, value in params.items():
            self.model.params[name] = value.astype(self.model.params[name].dtype)
        state = self._model_state()
        for name, value in groups.get("state", {}).items():
            state[name] = value.astype(state[name].dtype)
        self.best_params = groups.get("best_params", {})
        self.best_state = groups.get("best_state", {})

        self.optim_configs = {name: {} for name in self.model.params}
        for key, value in groups.get("optim", {}).items():
            name, _, entry = key.rpartition("/")
            self.optim_configs[name][entry] = value.item() if value.ndim == 0 else value
        for key in _HISTORIES:
            setattr(self, key, [float(v) for v in scalars[key]])
        self.epoch = int(scalars["epoch"])
        self.best_val_acc = float(scalars["best_val_acc"])
        generators = json.loads(str(scalars["generators"]))
        self._shuffle_rng.bit_generator.state = generators["shuffle"]
        self._sample_rng.bit_generator.state = generators["sample"]
