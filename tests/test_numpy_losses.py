"""cnnlib.numpy.losses: softmax and SVM losses against hand computations, gradients and torch."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlib.numpy.gradcheck import numeric_gradient, rel_error
from cnnlib.numpy.losses import softmax_loss, svm_loss


def _scores_and_labels(n=6, c=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (3 * rng.standard_normal((n, c))).astype(dtype), rng.integers(0, c, size=n)


# three examples, classes (cat, car, frog); each row is one image's scores, worked by hand:
#   cat image:  max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9 + 0
#   car image:  max(0, 1.3 - 4.9 + 1) + max(0, 2.0 - 4.9 + 1) = 0 + 0
#   frog image: max(0, 2.2 + 3.1 + 1) + max(0, 2.5 + 3.1 + 1) = 6.3 + 6.6 = 12.9
HAND_SCORES = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
HAND_LABELS = np.array([0, 1, 2])


def test_svm_loss_hand_computed():
    loss, dscores = svm_loss(HAND_SCORES, HAND_LABELS)
    assert loss == pytest.approx((2.9 + 0 + 12.9) / 3, rel=1e-14)
    # each positive term adds +1/N to its class and -1/N to the correct class
    expected = np.array([[-1, 1, 0], [0, 0, 0], [1, 1, -2]]) / 3
    np.testing.assert_array_equal(dscores, expected)


def test_loss_sanity_checks_for_zero_scores():
    # an untrained classifier: softmax gives every class 1/C, hence loss log(C); every SVM
    # margin term is exactly `margin`, hence (C - 1) * margin
    num_classes = 10
    scores = np.zeros((4, num_classes))
    y = np.array([0, 3, 9, 3])
    assert softmax_loss(scores, y)[0] == pytest.approx(math.log(num_classes), rel=1e-15)
    assert svm_loss(scores, y)[0] == 9.0
    assert svm_loss(scores, y, margin=0.5)[0] == 4.5


def test_softmax_gradient_matches_numerical():
    # smooth everywhere, but rel_error is relative per entry: the centred difference has an
    # absolute round-off of ~eps * loss / h ~ 1e-10, so entries must not be tiny. Scores of
    # unit scale keep every probability, hence every |dscores| entry, above ~1e-3 / N.
    scores, y = _scores_and_labels(seed=1)
    scores /= 3
    assert np.abs(softmax_loss(scores, y)[1]).min() > 1e-4
    _, dscores = softmax_loss(scores, y)
    numeric = numeric_gradient(lambda: softmax_loss(scores, y)[0], scores)
    assert rel_error(dscores, numeric) < 1e-7


def test_svm_gradient_matches_numerical_away_from_the_hinge():
    scores, y = _scores_and_labels(seed=2)
    rows = np.arange(len(y))
    terms = scores - scores[rows, y][:, None] + 1.0
    terms[rows, y] = np.inf
    # a step of h = 1e-5 moves a term by at most 2e-5: every term is further than that from 0
    assert np.abs(terms).min() > 1e-3
    _, dscores = svm_loss(scores, y)
    numeric = numeric_gradient(lambda: svm_loss(scores, y)[0], scores)
    assert rel_error(dscores, numeric) < 1e-7  # piecewise linear: only round-off


def test_softmax_matches_torch_cross_entropy():
    scores, y = _scores_and_labels(seed=3)
    loss, dscores = softmax_loss(scores, y)
    tscores = torch.tensor(scores, requires_grad=True)
    tloss = F.cross_entropy(tscores, torch.tensor(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-14)
    np.testing.assert_allclose(dscores, tscores.grad.numpy(), rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_svm_matches_torch_multi_margin_loss_times_classes(margin):
    # torch divides each example's sum by the number of classes C: svm_loss = C * torch's
    scores, y = _scores_and_labels(seed=4)
    num_classes = scores.shape[1]
    loss, dscores = svm_loss(scores, y, margin=margin)
    tscores = torch.tensor(scores, requires_grad=True)
    tloss = num_classes * F.multi_margin_loss(tscores, torch.tensor(y), margin=margin)
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-14)
    np.testing.assert_allclose(dscores, tscores.grad.numpy(), rtol=1e-12, atol=1e-16)


def test_softmax_is_stable_for_huge_scores():
    scores = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss, dscores = softmax_loss(scores, np.array([0, 0]))
    # example 0 is right with certainty (loss 0), example 1 wrong by a margin of 1e4
    assert loss == pytest.approx(1e4 / 2, rel=1e-12)
    np.testing.assert_allclose(dscores, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-15)


def test_float32_gradients_stay_float32():
    scores, y = _scores_and_labels(dtype=np.float32)
    assert softmax_loss(scores, y)[1].dtype == np.float32
    assert svm_loss(scores, y)[1].dtype == np.float32


def test_label_and_score_validation_messages():
    scores, y = _scores_and_labels()
    for loss in (softmax_loss, svm_loss):
        with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 5\), "
                                             r"got values from -1 to"):
            loss(scores, np.where(y == y[0], -1, y))
        with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 5\).* to 5"):
            loss(scores, np.append(y[:-1], 5))
        with pytest.raises(TypeError, match=r"y must hold integer class indices.*float64"):
            loss(scores, y.astype(np.float64))
        with pytest.raises(ValueError, match=r"y must have shape \(6,\) to match scores, got an "
                                             r"array of shape \(5,\)"):
            loss(scores, y[:5])
        with pytest.raises(ValueError, match=r"y must have 1 dimensions \(N,\)"):
            loss(scores, y[:, None])
        with pytest.raises(ValueError, match=r"scores must have 2 dimensions \(N, C\)"):
            loss(scores[0], y)
        with pytest.raises(TypeError, match=r"scores must be a floating-point array.*int64"):
            loss(scores.astype(np.int64), y)
        with pytest.raises(ValueError, match=r"scores must hold at least one example"):
            loss(scores[:0], y[:0])
    with pytest.raises(TypeError, match="margin must be a number, got str"):
        svm_loss(scores, y, margin="1")
