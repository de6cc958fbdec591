"""cnnlib.numpy.Solver's babysitting options (lecture 08): update ratios, per-epoch snapshots,
the coarse search's early exit, early stopping with patience, and per-iteration schedules."""

import functools

import numpy as np
import pytest

from cnnlib.numpy.ensemble import average_params
from cnnlib.numpy.losses import softmax_loss
from cnnlib.numpy.optim import linear_warmup, sgd, update_ratio
from cnnlib.numpy.solver import Solver


class LinearSoftmax:
    def __init__(self, seed=0, num_features=64, num_classes=10):
        rng = np.random.default_rng(seed)
        self.params = {"W": 0.01 * rng.standard_normal((num_features, num_classes)),
                       "b": np.zeros(num_classes)}

    def loss(self, X, y=None):
        X = X.reshape(len(X), -1)
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        return loss, {"W": X.T @ dscores, "b": dscores.sum(axis=0)}


@functools.cache
def _data():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 64))
    y = rng.integers(0, 10, 400)
    X = centres[y] + 2.0 * rng.standard_normal((400, 64))  # overlapping classes
    return {"X_train": X[:200], "y_train": y[:200], "X_val": X[200:], "y_val": y[200:]}


def _solver(**kwargs):
    options = dict(update_rule="sgd", optim_config={"learning_rate": 0.01}, batch_size=50,
                   num_epochs=3, seed=0, verbose=False, progress=False)
    return Solver(LinearSoftmax(), _data(), **{**options, **kwargs})


def test_defaults_leave_training_unchanged():
    plain = _solver().train()
    watched = _solver(record_update_ratios=True, snapshot_params=True, max_loss_ratio=1e9,
                      patience=100, lr_per_iteration=True).train()
    assert watched.loss_history == plain.loss_history
    assert watched.val_acc_history == plain.val_acc_history
    assert plain.update_ratio_history == {"W": [], "b": []} and plain.param_snapshots == []
    assert not plain.diverged and not plain.stopped_early


def test_update_ratios_are_recorded_per_step():
    seen = []

    def recording_sgd(w, dw, config):
        next_w, config = sgd(w, dw, config)
        seen.append(update_ratio(w, next_w))
        return next_w, config

    solver = _solver(update_rule=recording_sgd, record_update_ratios=True).train()
    ratios = solver.update_ratio_history
    assert len(ratios["W"]) == len(ratios["b"]) == len(solver.loss_history) == 12
    np.testing.assert_array_equal(ratios["W"] + ratios["b"],
                                  seen[0::2] + seen[1::2])  # W then b at every step
    assert ratios["b"][0] == np.inf  # zero biases: any move is infinitely large by comparison
    assert 1e-4 < np.median(ratios["W"]) < 1.0


def test_snapshots_hold_each_epochs_params_and_average():
    solver = _solver(snapshot_params=True, num_epochs=4)
    snapshots = []
    original_end = solver._end_of_epoch

    def end_of_epoch(lr, say):
        snapshots.append({k: v.copy() for k, v in solver.model.params.items()})
        original_end(lr, say)

    solver._end_of_epoch = end_of_epoch
    solver.train()
    assert len(solver.param_snapshots) == 4
    for ours, theirs in zip(solver.param_snapshots, snapshots, strict=True):
        np.testing.assert_array_equal(ours["W"], theirs["W"])
    assert solver.param_snapshots[0]["W"] is not solver.param_snapshots[1]["W"]
    mean = average_params(solver.param_snapshots[2:])
    np.testing.assert_allclose(mean["W"], (snapshots[2]["W"] + snapshots[3]["W"]) / 2)


def test_exploding_loss_stops_training():
    solver = _solver(optim_config={"learning_rate": 50.0}, max_loss_ratio=3.0, num_epochs=5)
    with np.errstate(all="ignore"):
        solver.train()
    assert solver.diverged
    losses = solver.loss_history
    assert losses[-1] > 3.0 * losses[0] or not np.isfinite(losses[-1])
    assert all(loss <= 3.0 * losses[0] for loss in losses[:-1])  # stopped at the first one
    assert solver.epoch == 0 and solver.val_acc_history == []  # not even one epoch finished
    calm = _solver(max_loss_ratio=3.0).train()
    assert not calm.diverged and calm.epoch == 3


def test_patience_stops_after_epochs_without_improvement():
    full = _solver(optim_config={"learning_rate": 0.05}, num_epochs=40).train()
    history = full.val_acc_history
    best = int(np.argmax(history))
    patient = _solver(optim_config={"learning_rate": 0.05}, num_epochs=40, patience=3).train()
    # it sees the same epochs until it stops, 3 epochs after the first best of those
    seen = patient.val_acc_history
    assert seen == history[:len(seen)]
    first_best = int(np.argmax(seen))
    assert len(seen) == first_best + 1 + 3
    assert patient.stopped_early and len(seen) < 40
    assert max(seen) == patient.best_val_acc <= history[best]


def test_per_iteration_schedule_sets_fractional_epochs():
    rates = []

    def recording_sgd(w, dw, config):
        rates.append(config["learning_rate"])
        return sgd(w, dw, config)

    warmup = functools.partial(linear_warmup, warmup_epochs=2, start_factor=0.1)
    solver = _solver(update_rule=recording_sgd, lr_decay=warmup, lr_per_iteration=True).train()
    per_step = rates[0::2]  # W's config; b's sees the same rates
    assert per_step == rates[1::2]
    expected = [linear_warmup(0.01, epoch + k / 4, 2, 0.1) for epoch in range(3)
                for k in range(4)]
    np.testing.assert_allclose(per_step, expected, rtol=1e-15)
    assert solver.lr_history == pytest.approx([0.001, 0.0055, 0.01])


def test_babysitting_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"max_loss_ratio must be in \[1, inf\)"):
        _solver(max_loss_ratio=0.5)
    with pytest.raises(TypeError, match="max_loss_ratio must be a number"):
        _solver(max_loss_ratio="3x")
    with pytest.raises(ValueError, match="patience must be >= 1"):
        _solver(patience=0)
    with pytest.raises(TypeError, match="patience must be an int"):
        _solver(patience=2.5)
