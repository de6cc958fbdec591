"""Classification losses on class scores, on torch tensors (as cnnlib.numpy.losses).

scores: (N, C), one row of C class scores per example; y: (N,) integer labels in [0, C).
Each returns (loss, dscores): the mean loss over the N examples and its gradient with respect to
the scores, (N, C) in scores' dtype. Unlike cnnlib.numpy, where loss is a Python float, here it
is a 0-dimensional tensor on scores' device: turning it into a float would make the CPU wait for
the GPU at every step. ``float(loss)`` or ``loss.item()`` gives the number.
"""

from __future__ import annotations

import torch

from cnnlib.numpy._checks import check_labels, check_ndim, check_number

from ._tensors import check_float_tensors, check_tensor

__all__ = ["softmax_loss", "svm_loss"]


def _check_scores_and_labels(scores, y) -> None:
    check_float_tensors(scores=scores)
    check_ndim("scores", scores, 2, "(N, C)")
    if scores.shape[0] == 0:
        raise ValueError(
            f"scores must hold at least one example, got shape {tuple(scores.shape)}"
        )
    check_tensor("y", y)
    check_labels("y", y, scores.shape[0], scores.shape[1])
    if y.device != scores.device:
        raise ValueError(
            f"y is on {y.device} but scores is on {scores.device}: move it with .to(scores.device)"
        )


def softmax_loss(scores: torch.Tensor, y: torch.Tensor):
    """Cross-entropy of the softmax: L = mean over n of -log(exp(s[n, y_n]) / sum_j exp(s[n, j])).

    Subtracting each row's maximum first changes no probability but keeps exp from overflowing;
    log-probabilities come from log-sum-exp, so a confident wrong answer gives a large finite
    loss, not inf. dscores = (softmax(scores) - onehot(y)) / N. With all-zero scores the loss is
    log(C), the sanity check for a freshly initialised classifier.
    Returns loss (0-dim tensor) and dscores (N, C).
    """
    _check_scores_and_labels(scores, y)
    num_examples = scores.shape[0]
    rows = torch.arange(num_examples, device=scores.device)
    shifted = scores - scores.amax(dim=1, keepdim=True)
    log_normaliser = torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
    log_probs = shifted - log_normaliser
    loss = -log_probs[rows, y].mean()
    dscores = torch.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= num_examples
    return loss, dscores


def svm_loss(scores: torch.Tensor, y: torch.Tensor, margin: float = 1.0):
    """Multiclass SVM (hinge) loss: L = mean over n of sum over j != y_n of
    max(0, s[n, j] - s[n, y_n] + margin).

    dscores[n, j] = 1/N for each wrong class j with a positive term, and the correct class gets
    minus (number of such j)/N; at a term of exactly 0 (the hinge) the subgradient 0 is used.
    torch.nn.functional.multi_margin_loss(scores, y, margin=margin) also divides each example's
    sum by the number of classes C, so svm_loss == C * multi_margin_loss.
    Returns loss (0-dim tensor) and dscores (N, C).
    """
    _check_scores_and_labels(scores, y)
    margin = check_number("margin", margin)
    num_examples = scores.shape[0]
    rows = torch.arange(num_examples, device=scores.device)
    correct = scores[rows, y].unsqueeze(1)
    terms = (scores - correct + margin).clamp(min=0)
    terms[rows, y] = 0  # the correct class is not compared with itself
    loss = terms.sum() / num_examples
    positive = (terms > 0).to(scores.dtype)
    positive[rows, y] = -positive.sum(dim=1)
    return loss, positive / num_examples
