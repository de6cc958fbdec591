"""cnnlib.numpy.solver: training mechanics on a linear classifier, the headline on digits."""

import functools
import io
import math
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from cnnlib.numpy.losses import softmax_loss
from cnnlib.numpy.model import ThreeLayerConvNet
from cnnlib.numpy.optim import sgd, step_decay
from cnnlib.numpy.solver import Solver


@functools.cache
def _digits():
    """sklearn's bundled 8x8 digits, pixels scaled to [0, 1], in a fixed shuffled order."""
    digits = load_digits()
    X = (digits.images / 16.0).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(0).permutation(len(X))
    return X[order], digits.target[order]


def _splits(n_train=1197, n_val=300, dtype=np.float64):
    """Fixed train / val / test split: 1197 / 300 / 300 of the 1797 digits by default."""
    X, y = _digits()
    X = X.astype(dtype)
    data = {
        "X_train": X[:n_train], "y_train": y[:n_train],
        "X_val": X[n_train : n_train + n_val], "y_val": y[n_train : n_train + n_val],
    }
    return data, X[n_train + n_val :], y[n_train + n_val :]


class LinearSoftmax:
    """A hand-written model with a plain dict of params: Solver needs nothing more."""

    def __init__(self, seed=0, num_features=64, num_classes=10):
        rng = np.random.default_rng(seed)
        self.params = {
            "W": 0.01 * rng.standard_normal((num_features, num_classes)),
            "b": np.zeros(num_classes),
        }

    def loss(self, X, y=None):
        X = X.reshape(len(X), -1)
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        return loss, {"W": X.T @ dscores, "b": dscores.sum(axis=0)}


def _solver(seed=0, model_seed=0, **kwargs):
    data, _, _ = _splits(n_train=300, n_val=100)
    options = dict(update_rule="sgd_momentum", optim_config={"learning_rate": 0.1},
                   batch_size=32, num_epochs=3, seed=seed, verbose=False, progress=False,
                   num_train_samples=200)
    return Solver(LinearSoftmax(model_seed), data, **{**options, **kwargs})


# ---------------------------------------------------------------- mechanics


def test_history_lengths_and_learning():
    solver = _solver(num_epochs=4).train()
    # 300 samples in batches of 32: 10 iterations per epoch (the last batch has 12)
    assert len(solver.loss_history) == 4 * math.ceil(300 / 32) == 40
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4
    assert solver.lr_history == [0.1] * 4
    assert solver.epoch == 4
    assert solver.best_val_acc == max(solver.val_acc_history)
    assert solver.loss_history[-1] < solver.loss_history[0] - 1.0  # it learns
    assert solver.best_val_acc > 0.8


def test_seeded_runs_are_identical():
    first, second = _solver().train(), _solver().train()
    assert first.loss_history == second.loss_history
    assert first.train_acc_history == second.train_acc_history
    assert first.val_acc_history == second.val_acc_history
    np.testing.assert_array_equal(first.model.params["W"], second.model.params["W"])
    # another seed shuffles differently
    assert _solver(seed=1).train().loss_history != first.loss_history


def test_measuring_accuracy_by_hand_does_not_change_training():
    _, X_test, y_test = _splits(n_train=300, n_val=100)
    reference = _solver().train()
    solver = _solver()
    solver.check_accuracy(X_test, y_test, num_samples=50)
    assert solver.train().loss_history == reference.loss_history


def test_every_parameter_gets_its_own_optimiser_state():
    solver = _solver(num_epochs=1).train()
    velocities = {name: config["velocity"] for name, config in solver.optim_configs.items()}
    assert velocities["W"].shape == (64, 10)
    assert velocities["b"].shape == (10,)


def _sabotaged_sgd(steps_before_sabotage):
    """SGD that scrambles the weights after a number of steps: the last epoch is the worst."""

    def rule(w, dw, config):
        config["steps"] = config.get("steps", 0) + 1
        if config["steps"] > steps_before_sabotage:
            noise = np.random.default_rng(config["steps"]).standard_normal(w.shape)
            return w + 10.0 * noise, config
        return sgd(w, dw, {"learning_rate": config["learning_rate"]})[0], config

    return rule


def test_best_params_are_restored():
    # 10 iterations per epoch: 3 good epochs, then one that ruins the weights
    solver = _solver(update_rule=_sabotaged_sgd(30), optim_config={"learning_rate": 0.2},
                     num_epochs=4, num_train_samples=None)
    solver.train()
    best_epoch = int(np.argmax(solver.val_acc_history))
    assert best_epoch < 3
    assert solver.val_acc_history[-1] < solver.best_val_acc - 0.3
    for name, value in solver.model.params.items():
        np.testing.assert_array_equal(value, solver.best_params[name])
        assert value is not solver.best_params[name]  # a copy: training on must not change it
    assert solver.check_accuracy(solver.data["X_val"], solver.data["y_val"]) == pytest.approx(
        solver.best_val_acc
    )


def _recording_sgd(seen):
    def rule(w, dw, config):
        seen.append(config["learning_rate"])
        return sgd(w, dw, config)

    return rule


def test_lr_decay_factor_is_applied_each_epoch():
    seen = []
    solver = _solver(update_rule=_recording_sgd(seen), optim_config={"learning_rate": 0.1},
                     lr_decay=0.5, num_epochs=3).train()
    assert solver.lr_history == pytest.approx([0.1, 0.05, 0.025], rel=1e-15)
    # what the update rule saw, step by step: 10 steps x 2 params per epoch at each rate
    assert seen == pytest.approx([0.1] * 20 + [0.05] * 20 + [0.025] * 20, rel=1e-15)


def test_lr_schedule_function_is_applied_each_epoch():
    schedule = functools.partial(step_decay, step_size=2, gamma=0.1)
    solver = _solver(update_rule="sgd", optim_config={"learning_rate": 0.3},
                     lr_decay=schedule, num_epochs=5).train()
    assert solver.lr_history == pytest.approx([0.3, 0.3, 0.03, 0.03, 0.003], rel=1e-12)
    assert all(c["learning_rate"] == solver.lr_history[-1] for c in solver.optim_configs.values())


def test_check_accuracy_counts_exactly():
    class Echo:  # scores are the inputs: the predicted class is the argmax of each row
        def __init__(self):
            self.params = {}

        def loss(self, X, y=None):
            return X

    X = np.eye(4)[[0, 1, 2, 3, 0, 1]]
    data = {"X_train": X, "y_train": np.arange(6) % 4, "X_val": X, "y_val": np.zeros(6, int)}
    solver = Solver(Echo(), data, update_rule="sgd", verbose=False, progress=False)
    assert solver.check_accuracy(X, np.array([0, 1, 2, 3, 0, 1]), batch_size=4) == 1.0
    assert solver.check_accuracy(X, np.array([0, 1, 2, 0, 1, 0]), batch_size=4) == 0.5
    assert solver.check_accuracy(X, np.array([0, 1, 2, 3, 0, 1]), num_samples=3) == 1.0


def test_verbose_prints_progress(capsys):
    _solver(verbose=True, print_every=5, num_epochs=2).train()
    out = capsys.readouterr().out
    assert "(iteration 5 / 20) loss" in out
    assert "(epoch 2 / 2) train acc" in out
    assert ", lr 0.1" in out


def test_progress_bar_goes_to_stderr_only_when_asked(capsys, monkeypatch):
    _solver(num_epochs=1, progress=True).train()
    assert "10/10" in capsys.readouterr().err
    _solver(num_epochs=1, progress=False).train()
    assert capsys.readouterr().err == ""
    # the default: quiet when stderr is not a terminal (CI logs) and no notebook kernel runs
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert _solver().progress is False


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "run.ckpt"  # any name: ".npz" is not appended
    solver = _solver(num_epochs=2, checkpoint_path=path).train()
    assert path.exists()
    # a different model and solver take on everything saved
    other = _solver(seed=5, model_seed=9, num_epochs=2)
    other.load_checkpoint(path)
    assert other.epoch == 2
    assert other.loss_history == solver.loss_history
    assert other.val_acc_history == solver.val_acc_history
    assert other.best_val_acc == solver.best_val_acc
    for name in ("W", "b"):
        np.testing.assert_array_equal(other.best_params[name], solver.best_params[name])
        np.testing.assert_array_equal(
            other.optim_configs[name]["velocity"], solver.optim_configs[name]["velocity"]
        )
        assert other.optim_configs[name]["learning_rate"] == 0.1
    # the file is plain arrays: it loads without pickle
    with np.load(path, allow_pickle=False) as saved:
        assert "params/W" in saved.files
        assert "optim/W/velocity" in saved.files


def test_resuming_from_a_checkpoint_reproduces_an_uninterrupted_run(tmp_path):
    path = tmp_path / "half.npz"
    _solver(num_epochs=2, lr_decay=0.7, checkpoint_path=path).train()
    resumed = _solver(seed=5, model_seed=9, num_epochs=4, lr_decay=0.7)
    resumed.load_checkpoint(path)
    resumed.train()
    uninterrupted = _solver(num_epochs=4, lr_decay=0.7).train()
    assert resumed.loss_history == uninterrupted.loss_history
    assert resumed.train_acc_history == uninterrupted.train_acc_history
    assert resumed.val_acc_history == uninterrupted.val_acc_history
    assert resumed.lr_history == uninterrupted.lr_history
    np.testing.assert_array_equal(resumed.model.params["W"], uninterrupted.model.params["W"])


def test_checkpoint_mismatch_errors(tmp_path):
    path = tmp_path / "run.npz"
    _solver(num_epochs=1).train().save_checkpoint(path)
    with pytest.raises(ValueError, match=r"path: the checkpoint holds params \['W', 'b'\]"):
        Solver(ThreeLayerConvNet(), _splits(10, 10)[0], verbose=False).load_checkpoint(path)
    with pytest.raises(ValueError, match="trained with update_rule 'sgd_momentum'"):
        _solver(update_rule="adam").load_checkpoint(path)


# ---------------------------------------------------------------- errors


def test_solver_errors_name_the_argument():
    data, _, _ = _splits(n_train=20, n_val=10)
    model = LinearSoftmax()
    with pytest.raises(ValueError, match=r"data is missing \['y_val'\]"):
        Solver(model, {k: v for k, v in data.items() if k != "y_val"})
    with pytest.raises(ValueError, match=r"data\['y_train'\] has 19 labels but "
                                         r"data\['X_train'\] has 20 samples"):
        Solver(model, {**data, "y_train": data["y_train"][:19]})
    with pytest.raises(TypeError, match=r"data\['y_val'\] must hold integer class labels"):
        Solver(model, {**data, "y_val": data["y_val"].astype(float)})
    with pytest.raises(ValueError, match="update_rule must be one of"):
        Solver(model, data, update_rule="adagrad")
    with pytest.raises(ValueError, match=r"lr_decay must be in \(0, 1\] or a schedule, got 1.5"):
        Solver(model, data, lr_decay=1.5)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        Solver(model, data, batch_size=0)
    with pytest.raises(TypeError, match="model must have params and a loss"):
        Solver(object(), data)
    with pytest.raises(TypeError, match="optim_config must be a dict"):
        Solver(model, data, optim_config=0.1)


# ---------------------------------------------------------------- the headline


@pytest.mark.slow
def test_three_layer_convnet_learns_digits():
    """ThreeLayerConvNet + Solver on the 8x8 digits: at least 95% test accuracy.

    float32, Adam with lr 5e-3 decayed by 0.85 per epoch, batches of 32, 8 epochs.
    """
    data, X_test, y_test = _splits(dtype=np.float32)
    net = ThreeLayerConvNet(input_dim=(1, 8, 8), dtype=np.float32, seed=0)
    solver = Solver(net, data, update_rule="adam", optim_config={"learning_rate": 5e-3},
                    lr_decay=0.85, batch_size=32, num_epochs=8, seed=0, verbose=False,
                    progress=False)
    solver.train()
    assert solver.best_val_acc >= 0.95
    assert solver.check_accuracy(X_test, y_test) >= 0.95
