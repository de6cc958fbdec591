"""Hyperparameter search: random search and grid search over a space of settings.

Training runs are expensive, so the question is where to spend a fixed number of them. A grid
of n values per hyperparameter spends n^d runs on only n distinct values of each one. Random
search draws every setting afresh, so N runs try N distinct values of every hyperparameter;
when only a few of the hyperparameters matter (which Bergstra & Bengio 2012 found to be the
rule), the important ones are explored far more finely for the same cost.

Scale parameters (learning rate, regularisation strength) are searched on a log scale: 1e-4 and
1e-3 are as different as 1e-2 and 1e-1. The usual recipe is coarse to fine: a wide range for a
few epochs, then a narrower range around the best trials (`SearchResult.best_range`) for longer.

    space = {"learning_rate": LogUniform(1e-5, 1e-1), "reg": LogUniform(1e-6, 1e-2)}
    def train(learning_rate, reg):                 # returns a score: higher is better
        ...
        return solver.best_val_acc
    result = random_search(train, space, num_trials=20, seed=0)
    result.best.params, result.best.score
    fine = {"learning_rate": LogUniform(*result.best_range("learning_rate")), ...}

Nothing here knows about NumPy or torch models: `train` can run a Solver or `cnnlib.torch.fit`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._checks import check_positive_int, describe

__all__ = ["LogUniform", "SearchResult", "Trial", "Uniform", "grid_search", "random_search"]


# ------------------------------------------------------------------------------ the space


def _bound(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {describe(value)}")
    return float(value)


def _check_offset(offset) -> float | None:
    if offset is None:
        return None
    offset = _bound("offset", offset)
    if not 0.0 <= offset < 1.0:
        raise ValueError(f"offset must be in [0, 1) or None, got {offset}")
    return offset


def _unit_grid(n: int, offset: float | None) -> np.ndarray:
    """n positions in [0, 1]: both ends included (offset None), or (i + offset) / n."""
    n = check_positive_int("n", n)
    offset = _check_offset(offset)
    if offset is None:
        return np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])
    return (np.arange(n) + offset) / n


@dataclass(frozen=True)
class Uniform:
    """A hyperparameter drawn uniformly from [low, high] (momentum, dropout's keep_prob)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        low, high = _bound("low", self.low), _bound("high", self.high)
        if not low < high:
            raise ValueError(f"low must be < high, got low={low}, high={high}")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def grid(self, n: int, offset: float | None = None) -> np.ndarray:
        """n evenly spaced values: low and high included, or at (i + offset) / n of the range."""
        return self.low + (self.high - self.low) * _unit_grid(n, offset)


@dataclass(frozen=True)
class LogUniform:
    """A hyperparameter whose logarithm is uniform on [log low, log high], 0 < low < high
    (learning rates, regularisation strengths): each decade gets the same share of the draws."""

    low: float
    high: float

    def __post_init__(self) -> None:
        low, high = _bound("low", self.low), _bound("high", self.high)
        if not 0 < low < high:
            raise ValueError(f"LogUniform needs 0 < low < high, got low={low}, high={high}")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return 10.0 ** rng.uniform(math.log10(self.low), math.log10(self.high), size)

    def grid(self, n: int, offset: float | None = None) -> np.ndarray:
        """n values evenly spaced on the log scale (as np.geomspace), ends included, or at
        (i + offset) / n of the log range."""
        log_low, log_high = math.log10(self.low), math.log10(self.high)
        return 10.0 ** (log_low + (log_high - log_low) * _unit_grid(n, offset))


def _check_space(space) -> dict:
    if not isinstance(space, Mapping) or not space:
        raise TypeError(f"space must be a non-empty dict name -> LogUniform, Uniform or a list "
                        f"of values, got {describe(space)}")
    checked = {}
    for name, dimension in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"space's keys must be argument names of train, got {name!r}")
        if isinstance(dimension, list):
            if not dimension:
                raise ValueError(f"space[{name!r}] is an empty list of values")
        elif not isinstance(dimension, LogUniform | Uniform):
            # a tuple is refused: (1e-4, 1e-1) reads as a range but would be two choices
            hint = (" (for a range write LogUniform(low, high); for choices, a list)"
                    if isinstance(dimension, tuple) else "")
            raise TypeError(f"space[{name!r}] must be LogUniform(low, high), Uniform(low, "
                            f"high) or a list of values, got {describe(dimension)}{hint}")
        checked[name] = dimension
    return checked


# ------------------------------------------------------------------------------ the results


@dataclass
class Trial:
    """One training run of a search: the settings it used, its score, and what train returned."""

    params: dict[str, Any]
    score: float
    result: Any = None


@dataclass
class SearchResult:
    """The trials of a search in the order they ran. Scores are compared with `maximize` (higher
    is better by default); a NaN score (a run that diverged) counts as the worst."""

    method: str
    trials: list[Trial] = field(default_factory=list)
    maximize: bool = True

    def _key(self, trial: Trial) -> float:
        if math.isnan(trial.score):
            return -math.inf
        return trial.score if self.maximize else -trial.score

    @property
    def scores(self) -> np.ndarray:
        """(num_trials,) the score of every trial, in the order they ran."""
        return np.array([t.score for t in self.trials], dtype=np.float64)

    def values(self, name: str) -> np.ndarray:
        """(num_trials,) the value of hyperparameter `name` in every trial."""
        if not self.trials or name not in self.trials[0].params:
            known = sorted(self.trials[0].params) if self.trials else []
            raise KeyError(f"no hyperparameter {name!r} in this search; it has {known}")
        return np.array([t.params[name] for t in self.trials])

    def top(self, k: int = 5) -> list[Trial]:
        """The k best trials, best first (ties: the earlier trial first)."""
        k = check_positive_int("k", k)
        return sorted(self.trials, key=self._key, reverse=True)[:k]

    @property
    def best(self) -> Trial:
        """The best trial."""
        if not self.trials:
            raise ValueError("the search has no trials")
        return self.top(1)[0]

    def best_range(self, name: str, top: int = 3) -> tuple[float, float]:
        """(smallest, largest) value of `name` among the `top` best trials: the range to search
        again, more finely, in the next stage of a coarse-to-fine search. When they all share one
        value, that value twice."""
        self.values(name)  # a helpful error for an unknown name
        values = [t.params[name] for t in self.top(top)]
        return float(min(values)), float(max(values))

    def __len__(self) -> int:
        return len(self.trials)

    def __repr__(self) -> str:
        if not self.trials:
            return f"SearchResult({self.method}, no trials)"
        best = self.best
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v!r}"
                             for k, v in best.params.items())
        return (f"SearchResult({self.method}, {len(self)} trials, best score "
                f"{best.score:.4g} at {settings})")


# ------------------------------------------------------------------------------ the searches


def _run(train: Callable, params: dict) -> Trial:
    outcome = train(**params)
    score = outcome.get("score") if isinstance(outcome, Mapping) else outcome
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise TypeError(f"train must return a number (higher is better) or a dict with a "
                        f"'score', got {describe(outcome)} for {params}")
    return Trial(dict(params), float(score), outcome)


def _check_train(train) -> None:
    if not callable(train):
        raise TypeError(f"train must be a function of the hyperparameters returning a score, "
                        f"got {describe(train)}")


def random_search(train: Callable, space: Mapping, num_trials: int, seed=0,
                  maximize: bool = True) -> SearchResult:
    """Call ``train(**params)`` for `num_trials` settings drawn independently from `space`.

    space: dict name -> LogUniform(low, high), Uniform(low, high) or a list of values (drawn
    with equal probability). train returns a number (the validation accuracy, say: higher is
    better unless maximize=False) or a dict holding a "score" and anything else worth keeping.
    seed: an int or a numpy Generator; the settings are drawn before any training, all of one
    hyperparameter after another, so they depend on the seed only.
    """
    _check_train(train)
    space = _check_space(space)
    num_trials = check_positive_int("num_trials", num_trials)
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        rng = np.random.default_rng(seed)
    else:
        raise TypeError(f"seed must be an int, a numpy Generator or None, got {describe(seed)}")
    columns = {}
    for name, dimension in space.items():
        if isinstance(dimension, list):
            columns[name] = [dimension[i] for i in rng.integers(0, len(dimension), num_trials)]
        else:
            columns[name] = [float(v) for v in dimension.sample(rng, num_trials)]
    result = SearchResult("random", maximize=bool(maximize))
    for k in range(num_trials):
        result.trials.append(_run(train, {name: columns[name][k] for name in space}))
    return result


def grid_search(train: Callable, space: Mapping, points: int | Mapping = 3,
                offset: float | None = None, maximize: bool = True) -> SearchResult:
    """Call ``train(**params)`` for every combination of a grid laid over `space`.

    space: as for random_search; a LogUniform or Uniform gets `points` values (an int for all,
    or a dict name -> int), evenly spaced on its scale with both ends included; a list is used
    as it is. offset: in [0, 1) places each axis's values at (i + offset) / n of its range
    instead (0.5: the middle of n equal cells; a random offset: a grid laid without knowing
    where the optimum is). The trials run in itertools.product order, the last name fastest.
    """
    _check_train(train)
    space = _check_space(space)
    offset = _check_offset(offset)
    axes = {}
    for name, dimension in space.items():
        if isinstance(dimension, list):
            axes[name] = dimension
            continue
        n = points.get(name, 3) if isinstance(points, Mapping) else points
        axes[name] = [float(v) for v in dimension.grid(check_positive_int(
            f"points[{name!r}]" if isinstance(points, Mapping) else "points", n), offset)]
    result = SearchResult("grid", maximize=bool(maximize))
    for values in itertools.product(*axes.values()):
        result.trials.append(_run(train, dict(zip(axes, values, strict=True))))
    return result
