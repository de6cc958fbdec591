"""Train, validation and test sets: the `Splits` every loader returns, and the seeded, stratified
split that makes them.

The training set fits the weights, the validation set chooses everything else (learning rate,
regularisation, architecture, when to stop), and the test set estimates how the final model does
on data nobody looked at while making choices: it is used once, at the end.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, fields

import numpy as np

from cnnlib.numpy._checks import check_ndim, check_number, check_positive_int, describe

__all__ = ["Splits", "per_class_subset", "select_classes", "train_val_test_split"]


# ============================================================================================
# The result of every loader: three splits and the class names.


@dataclass
class Splits:
    """Train, validation and test arrays, and the names of the classes.

    X_*: (N_*, C, H, W) images, y_*: (N_*,) int64 labels in [0, len(class_names)).
    ``splits.train`` is the pair ``(X_train, y_train)`` (likewise ``val``, ``test``), which is what
    `cnnlib.torch.fit` takes; ``splits["X_train"]`` works too.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = field(default=())

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_train, self.y_train

    @property
    def val(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_val, self.y_val

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_test, self.y_test

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __getitem__(self, name: str):
        if name not in {f.name for f in fields(self)}:
            raise KeyError(f"Splits has X_train, y_train, X_val, y_val, X_test, y_test and "
                           f"class_names, not {name!r}")
        return getattr(self, name)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __repr__(self) -> str:
        def shape(a) -> str:
            return "x".join(map(str, a.shape))

        return (f"Splits(train {shape(self.X_train)} {self.X_train.dtype}, "
                f"val {shape(self.X_val)}, test {shape(self.X_test)}, "
                f"{self.num_classes} classes)")


# ============================================================================================
# Splitting


def _as_rng(rng, name: str = "rng") -> np.random.Generator:
    """A NumPy Generator from a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"{name} must be a numpy Generator, an int seed or None, got {describe(rng)}")


def _count(name: str, value, total: int) -> int:
    """A split size given as a fraction of `total` (float in [0, 1)) or a count (int)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not 0 <= value < total:
            raise ValueError(f"{name} must be a count in [0, {total}) (there are {total} "
                             f"examples), got {value}")
        return int(value)
    fraction = check_number(name, value, 0.0, 1.0)
    if fraction >= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1) or a count, got {value}")
    return round(fraction * total)


def _check_labels_1d(name: str, y, n: int) -> np.ndarray:
    y = np.asarray(y)
    check_ndim(name, y, 1, "(N,)")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class indices, got {describe(y)}")
    if y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match X's {n} examples, "
                         f"got {describe(y)}")
    return y


def train_val_test_split(
    X, y, val=0.15, test=0.15, seed=0, stratify: bool = True,
    class_names: tuple[str, ...] | None = None,
) -> Splits:
    """Split (X, y) once, reproducibly, into train, validation and test sets.

    X: (N, ...) any array with examples along axis 0; y: (N,) integer labels.
    val, test: fractions of N (floats in [0, 1)) or counts (ints); train gets the rest.
    stratify: keep each class's share the same in every split (up to rounding: an example or
    so per class), which matters for small data sets such as the digits.
    seed: the same seed gives the same split. Within each split the examples keep their
    original order.
    """
    X = np.asarray(X)
    if X.ndim < 1 or X.shape[0] == 0:
        raise ValueError(f"X must hold at least one example along axis 0, got {describe(X)}")
    n = X.shape[0]
    y = _check_labels_1d("y", y, n)
    n_val, n_test = _count("val", val, n), _count("test", test, n)
    if n_val + n_test >= n:
        raise ValueError(f"val + test must leave some training examples: {n_val} + {n_test} "
                         f"of {n} examples")
    rng = _as_rng(seed, "seed")
    if stratify:
        # Give every example a position in (0, 1) that spreads each class evenly: the k-th of a
        # class's n_c shuffled members sits at (k + 1/2) / n_c. Sorting by position interleaves
        # the classes, so any stretch of the sorted order (test first, then val) holds each
        # class in proportion, up to rounding.
        order = rng.permutation(n)
        classes, inverse, counts = np.unique(y[order], return_inverse=True, return_counts=True)
        rank = np.empty(n, dtype=np.int64)
        for c in range(len(classes)):
            members = np.flatnonzero(inverse == c)
            rank[members] = np.arange(len(members))
        position = (rank + 0.5) / counts[inverse]
        order = order[np.lexsort((rng.random(n), position))]  # equal positions: random order
    else:
        order = rng.permutation(n)
    test_idx = np.sort(order[:n_test])
    val_idx = np.sort(order[n_test:n_test + n_val])
    train_idx = np.sort(order[n_test + n_val:])
    if class_names is None:
        class_names = tuple(str(c) for c in range(int(y.max()) + 1))
    return Splits(X[train_idx], y[train_idx], X[val_idx], y[val_idx], X[test_idx], y[test_idx],
                  tuple(class_names))


def select_classes(X, y, classes) -> tuple[np.ndarray, np.ndarray]:
    """The examples of some classes only, relabelled 0, 1, ... in the order given.

    X: (N, ...), y: (N,) integer labels; classes: the labels to keep, e.g. (5, 6, 7, 8, 9).
    Returns X[kept] and the new labels: an example of classes[i] gets label i. Order is kept.
    ``select_classes(*digits.train, range(5))`` is the digits 0-4.
    """
    X = np.asarray(X)
    y = _check_labels_1d("y", y, X.shape[0] if X.ndim else -1)
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct labels, at least one, got {classes}")
    absent = [c for c in classes if not np.any(y == c)]
    if absent:
        raise ValueError(f"classes {absent} have no examples in y (its labels are "
                         f"{np.unique(y).tolist()})")
    new_label = np.full(int(max(y.max(), max(classes))) + 1, -1, dtype=np.int64)
    new_label[classes] = np.arange(len(classes))
    kept = np.flatnonzero(np.isin(y, classes))
    return X[kept], new_label[y[kept]]


def per_class_subset(X, y, per_class: int, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` examples of every class, drawn at random without replacement: the "k labelled
    examples per class" of few-shot experiments.

    X: (N, ...), y: (N,) labels. Returns (X_k, y_k) with k examples of each class present in y,
    in their original order. The same seed draws the same examples, and a larger k drawn with
    the same seed contains the smaller one's examples (each class is shuffled once, then cut).
    """
    X = np.asarray(X)
    y = _check_labels_1d("y", y, X.shape[0] if X.ndim else -1)
    per_class = check_positive_int("per_class", per_class)
    rng = _as_rng(seed, "seed")
    chosen = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if members.size < per_class:
            raise ValueError(f"per_class={per_class} but class {c} has only {members.size} "
                             f"examples")
        chosen.append(rng.permutation(members)[:per_class])
    kept = np.sort(np.concatenate(chosen))
    return X[kept], y[kept]
