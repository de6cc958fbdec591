"""cnnlib.numpy.ensemble: softmax, checkpoint averaging and ensemble predictions."""

import numpy as np
import pytest

from cnnlib.numpy.ensemble import average_params, ensemble_predict, softmax
from cnnlib.numpy.losses import softmax_loss


class Fixed:
    """A model whose scores are given: loss(X) returns them for the rows of X it is asked for."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=np.float64)

    def loss(self, X, y=None):
        return self.scores[X[:, 0].astype(int)]


def test_softmax_rows_sum_to_one_and_survive_large_scores():
    scores = np.array([[1000.0, 1000.0, 0.0], [0.0, np.log(3.0), 0.0]])
    p = softmax(scores)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0], atol=1e-15)
    np.testing.assert_allclose(p[1], [0.2, 0.6, 0.2], rtol=1e-12)
    with pytest.raises(ValueError, match="scores must have 2 dimensions"):
        softmax(np.zeros(3))


def test_average_params_uniform_and_weighted():
    a = {"w": np.array([1.0, 2.0], np.float32), "b": np.array([0.0])}
    b = {"w": np.array([3.0, 6.0], np.float32), "b": np.array([4.0])}
    mean = average_params([a, b])
    np.testing.assert_array_equal(mean["w"], [2.0, 4.0])
    assert mean["w"].dtype == np.float32 and mean["b"].dtype == np.float64
    weighted = average_params([a, b], weights=[3, 1])
    np.testing.assert_allclose(weighted["w"], [1.5, 3.0])
    np.testing.assert_allclose(weighted["b"], [1.0])
    assert mean["w"] is not a["w"]  # new arrays
    np.testing.assert_array_equal(a["w"], [1.0, 2.0])  # inputs untouched


def test_average_params_errors():
    a = {"w": np.zeros(2)}
    with pytest.raises(ValueError, match="at least one dict"):
        average_params([])
    with pytest.raises(TypeError, match="snapshots must be a list of dicts"):
        average_params(a)
    with pytest.raises(ValueError, match=r"snapshots\[1\] holds \['v'\] but snapshots\[0\]"):
        average_params([a, {"v": np.zeros(2)}])
    with pytest.raises(ValueError, match=r"snapshots\[1\]\['w'\] has shape \(3,\)"):
        average_params([a, {"w": np.zeros(3)}])
    with pytest.raises(ValueError, match="weights must be 2 numbers"):
        average_params([a, a], weights=[1.0])
    with pytest.raises(ValueError, match="weights must be >= 0 and not all 0"):
        average_params([a, a], weights=[0, 0])
    with pytest.raises(TypeError, match=r"snapshots\[0\] must be a dict"):
        average_params([np.zeros(2)])


def test_ensemble_averages_probabilities_not_votes():
    X = np.arange(3.0)[:, None]
    # member 1 is sure of class 0; members 2 and 3 lean a little to class 1: two votes to one
    # for class 1, but the average probability favours class 0
    sure = Fixed([[5.0, 0.0]] * 3)
    lean = Fixed([[0.0, 0.2]] * 3)
    probs = ensemble_predict([sure, lean, lean], X, probabilities=True)
    expected = (softmax(sure.scores) + 2 * softmax(lean.scores)) / 3
    np.testing.assert_allclose(probs, expected, rtol=1e-12)
    np.testing.assert_array_equal(ensemble_predict([sure, lean, lean], X), [0, 0, 0])
    # batches give the same answer
    np.testing.assert_allclose(ensemble_predict([sure, lean], X, batch_size=2,
                                                probabilities=True),
                               ensemble_predict([sure, lean], X, probabilities=True))


def test_ensemble_loss_is_at_most_the_mean_member_loss():
    # -log is convex, so the cross-entropy of averaged probabilities is at most the average of
    # the members' cross-entropies (Jensen's inequality): an ensemble never has a higher loss.
    rng = np.random.default_rng(0)
    X = np.arange(50.0)[:, None]
    y = rng.integers(0, 4, 50)
    members = [Fixed(rng.standard_normal((50, 4)) * 3) for _ in range(5)]
    probs = ensemble_predict(members, X, probabilities=True)
    ensemble_loss = -np.mean(np.log(probs[np.arange(50), y]))
    member_losses = [softmax_loss(m.scores, y)[0] for m in members]
    assert ensemble_loss <= np.mean(member_losses)
    assert ensemble_loss < np.mean(member_losses) - 0.1  # strictly, for members that disagree


def test_ensemble_errors():
    X = np.zeros((2, 1))
    with pytest.raises(ValueError, match="models must be a non-empty list"):
        ensemble_predict([], X)
    with pytest.raises(TypeError, match=r"models\[0\] must have a loss\(X\) method"):
        ensemble_predict([object()], X)
    with pytest.raises(ValueError, match=r"models\[1\] gives scores of shape \(2, 3\)"):
        ensemble_predict([Fixed(np.zeros((2, 2))), Fixed(np.zeros((2, 3)))], X)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        ensemble_predict([Fixed(np.zeros((2, 2)))], X, batch_size=0)
