"""Averaging: the weights of one run (checkpoint averaging) and the predictions of several runs
(ensembles).

Two cheap ways to squeeze a little more accuracy out of models already trained:

- **Checkpoint averaging.** Late in training with a constant (or cyclic) rate, SGD bounces around
  the bottom of a valley. The average of the weights it visited lies nearer the middle than any
  one of them: Polyak & Juditsky 1992 averaged every iterate, Izmailov et al. 2018 ("stochastic
  weight averaging", SWA) the end of every epoch or cycle. `average_params(snapshots)` takes
  dicts of arrays such as `Solver(snapshot_params=True).param_snapshots`. It only makes sense
  for snapshots of one run, near each other: two independently trained networks compute the
  same function with their units in different orders, and the average of their weights is
  neither.
- **Ensembles.** Networks trained from different initialisations make partly different
  mistakes; averaging their predicted probabilities cancels some of them (Krizhevsky et al. 2012
  averaged 7 networks: top-5 error 18.2% -> 15.4%). `ensemble_predict(models, X)` costs one
  forward pass per member.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from ._checks import check_float_array, check_ndim, check_positive_int, describe

__all__ = ["average_params", "ensemble_predict", "softmax"]


def softmax(scores: np.ndarray) -> np.ndarray:
    """Class probabilities from scores (N, K): exp(s) / sum(exp(s)) along each row, computed
    after subtracting the row's maximum so that exp cannot overflow. Rows sum to 1."""
    check_ndim("scores", scores, 2, "(N, K)")
    check_float_array("scores", scores)
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def average_params(
    snapshots: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float] | None = None
) -> dict[str, np.ndarray]:
    """The (weighted) mean of several snapshots of the same parameters, name by name.

    snapshots: dicts name -> array, all with the same names and shapes (e.g. the last k entries
    of a Solver's param_snapshots). weights: one number >= 0 per snapshot (None: all equal);
    they are normalised to sum to 1. Returns a new dict; each array keeps the first snapshot's
    dtype (the sum is taken in float64).
    """
    if isinstance(snapshots, Mapping) or not isinstance(snapshots, Sequence):
        raise TypeError(f"snapshots must be a list of dicts name -> array, got "
                        f"{describe(snapshots)}")
    if len(snapshots) == 0:
        raise ValueError("snapshots must hold at least one dict of parameters, got none")
    names = list(snapshots[0])
    for k, snapshot in enumerate(snapshots):
        if not isinstance(snapshot, Mapping):
            raise TypeError(f"snapshots[{k}] must be a dict name -> array, got "
                            f"{describe(snapshot)}")
        if sorted(snapshot) != sorted(names):
            raise ValueError(f"snapshots[{k}] holds {sorted(snapshot)} but snapshots[0] holds "
                             f"{sorted(names)}: they must be snapshots of the same parameters")
        for name in names:
            if np.shape(snapshot[name]) != np.shape(snapshots[0][name]):
                raise ValueError(f"snapshots[{k}][{name!r}] has shape "
                                 f"{np.shape(snapshot[name])} but snapshots[0][{name!r}] has "
                                 f"shape {np.shape(snapshots[0][name])}")
    if weights is None:
        weights = np.full(len(snapshots), 1.0 / len(snapshots))
    else:
        if len(weights) != len(snapshots) or not all(
            isinstance(w, numbers.Real) and not isinstance(w, bool) for w in weights
        ):
            raise ValueError(f"weights must be {len(snapshots)} numbers (one per snapshot), "
                             f"got {weights!r}")
        weights = np.asarray(weights, dtype=np.float64)
        if np.any(weights < 0) or not weights.sum() > 0:
            raise ValueError(f"weights must be >= 0 and not all 0, got {weights.tolist()}")
        weights = weights / weights.sum()
    averaged = {}
    for name in names:
        first = np.asarray(snapshots[0][name])
        total = sum(w * np.asarray(s[name], dtype=np.float64)
                    for w, s in zip(weights, snapshots, strict=True))
        averaged[name] = np.asarray(total, dtype=first.dtype if first.dtype.kind == "f"
                                    else np.float64)
    return averaged


def ensemble_predict(models: Sequence, X: np.ndarray, batch_size: int = 256,
                     probabilities: bool = False) -> np.ndarray:
    """The ensemble's prediction for X: the mean of the members' softmax probabilities.

    models: NumPy models as Solver trains them (model.loss(X) -> scores (N, K) in evaluation
    mode), all with the same K classes. X: (N, ...) inputs, evaluated `batch_size` at a time.
    Returns the predicted classes (N,) int64, or with probabilities=True the averaged
    probabilities (N, K). Averaging probabilities (rather than scores or votes) lets a
    confident member outweigh an unsure one, and is what Krizhevsky et al. 2012 did.
    """
    if not isinstance(models, Sequence) or len(models) == 0:
        raise ValueError(f"models must be a non-empty list of models, got {describe(models)}")
    for k, model in enumerate(models):
        if not callable(getattr(model, "loss", None)):
            raise TypeError(f"models[{k}] must have a loss(X) method returning class scores, "
                            f"got {describe(model)}")
    batch_size = check_positive_int("batch_size", batch_size)
    if not hasattr(X, "shape") or X.ndim < 2:
        raise ValueError(f"X must be an array (N, ...) of inputs, got {describe(X)}")
    mean_probabilities = None
    for k, model in enumerate(models):
        scores = np.concatenate([model.loss(X[i:i + batch_size])
                                 for i in range(0, len(X), batch_size)])
        if mean_probabilities is not None and scores.shape != mean_probabilities.shape:
            raise ValueError(f"models[{k}] gives scores of shape {scores.shape} but models[0] "
                             f"gave {mean_probabilities.shape}: members must share the classes")
        probs = softmax(scores.astype(np.float64)) / len(models)
        mean_probabilities = probs if mean_probabilities is None else mean_probabilities + probs
    if probabilities:
        return mean_probabilities
    return mean_probabilities.argmax(axis=1)
