"""Classification losses on class scores: softmax (cross-entropy) and multiclass SVM (hinge).

scores: (N, C), one row of C class scores per example; y: (N,) integer labels in [0, C).
Each returns (loss, dscores): the mean loss over the N examples (a Python float) and its gradient
with respect to the scores, (N, C) in scores' dtype.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_float_array, check_labels, check_ndim, check_number

__all__ = ["softmax_loss", "svm_loss"]


def _check_scores_and_labels(scores, y) -> None:
    check_ndim("scores", scores, 2, "(N, C)")
    check_float_array("scores", scores)
    if scores.shape[0] == 0:
        raise ValueError(f"scores must hold at least one example, got shape {scores.shape}")
    check_labels("y", y, scores.shape[0], scores.shape[1])


def softmax_loss(scores: np.ndarray, y: np.ndarray):
    """Cross-entropy of the softmax: L = mean over n of -log(exp(s[n, y_n]) / sum_j exp(s[n, j])).

    Subtracting each row's maximum first changes no probability but keeps exp from overflowing
    (the largest exponent becomes exp(0) = 1). log-probabilities come from log-sum-exp rather
    than log(probabilities), so a confident wrong answer gives a large finite loss, not inf.
    dscores = (softmax(scores) - onehot(y)) / N.
    With all-zero scores every class has probability 1/C and the loss is log(C): the sanity check
    for a freshly initialised classifier.
    """
    _check_scores_and_labels(scores, y)
    num_examples = scores.shape[0]
    rows = np.arange(num_examples)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_normaliser = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_normaliser
    loss = -float(log_probs[rows, y].mean())
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= num_examples
    return loss, dscores


def svm_loss(scores: np.ndarray, y: np.ndarray, margin: float = 1.0):
    """Multiclass SVM (hinge) loss: L = mean over n of sum over j != y_n of
    max(0, s[n, j] - s[n, y_n] + margin).

    A wrong class costs nothing once its score is `margin` below the correct one's.
    dscores[n, j] = 1/N for each wrong class j with a positive term, and the correct class gets
    minus (number of such j)/N. At a term of exactly 0 (the hinge) the subgradient 0 is used.

    torch.nn.functional.multi_margin_loss(scores, y, margin=margin) divides each example's sum by
    the number of classes C as well, so svm_loss == C * multi_margin_loss.
    """
    _check_scores_and_labels(scores, y)
    margin = check_number("margin", margin)
    num_examples = scores.shape[0]
    rows = np.arange(num_examples)
    correct = scores[rows, y][:, None]
    terms = np.maximum(0, scores - correct + margin)
    terms[rows, y] = 0  # the correct class is not compared with itself
    loss = float(terms.sum() / num_examples)
    positive = (terms > 0).astype(scores.dtype)
    positive[rows, y] = -positive.sum(axis=1)
    dscores = positive / num_examples
    return loss, dscores.astype(scores.dtype, copy=False)
