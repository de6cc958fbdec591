"""Images a student never had, for grading a trained model by its outcome.

A notebook saves its trained weights; the grader loads them with the student's own model code in
the sandbox and asks for the labels of images that are not in the student's hands. The course's
digits are bundled with scikit-learn, so a student has every one of them; what a student cannot
have is the grader's own perturbations of them, drawn from the seed the grader derives from the
course secret and the grade cell (the same for every submission, unknown in advance):

- `perturbed_digits(seed)`: the test split of `cnnlib.data.load_digits()` (digits a network
  trained on the training split never saw), each copy with its contrast scaled and Gaussian
  noise added, clipped to [0, 1].
- `HeldOut(make)`: the cases and the true labels of an `Accuracy` check. The labels stay in the
  grader's process: a case holds only the images (cases travel into the sandbox), and
  `expected(case)` finds the labels of those very images again.

    held_out = HeldOut(lambda seed: perturbed_digits(seed, copies=2))
    assignment.check("test_accuracy", Probe(predict, subjects=("model_loss",)),
                     cases=held_out.cases, expected=held_out.expected,
                     compare=Accuracy(at_least=0.9))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

__all__ = ["HeldOut", "perturbed_digits"]


def perturbed_digits(
    seed: int,
    *,
    copies: int = 2,
    noise: float = 0.1,
    contrast: tuple[float, float] = (0.8, 1.2),
    split: str = "test",
) -> tuple[np.ndarray, np.ndarray]:
    """`copies` perturbed copies of one split of the bundled digits, and their labels.

    Each image x (1, 8, 8) in [0, 1] becomes clip(s * x + noise * z, 0, 1) with s drawn uniformly
    from `contrast` per image and z standard normal per pixel, all from `seed`.
    Returns images: (copies * N, 1, 8, 8) float32 and labels: (copies * N,) int64, where N is
    the size of the split (270 for "test").
    """
    from cnnlib.data import load_digits

    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be an int >= 1, got {copies!r}")
    images, labels = getattr(load_digits(), split)
    rng = np.random.default_rng(seed)
    images = np.concatenate([images] * copies).astype(np.float64)
    labels = np.concatenate([labels] * copies)
    scale = rng.uniform(*contrast, size=(len(images), 1, 1, 1))
    noisy = scale * images + noise * rng.standard_normal(images.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32), labels.astype(np.int64)


def _digest(images) -> str:
    array = np.ascontiguousarray(images)
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


class HeldOut:
    """The cases and the true labels of an `Accuracy` check, the labels kept on this side.

    make: seed -> (images, labels). `cases(seed)` is one case `{"images": images}`;
    `expected(case)` is the labels of the images in `case` (computed by `cases` first, as the
    grader's plan always does).
    """

    def __init__(self, make: Callable[[int], tuple[np.ndarray, np.ndarray]]):
        if not callable(make):
            raise TypeError(f"make: expected a function seed -> (images, labels), got {make!r}")
        self._make = make
        self._labels: dict[str, np.ndarray] = {}

    def cases(self, seed: int) -> list[dict]:
        images, labels = self._make(seed)
        labels = np.asarray(labels)
        if len(images) != len(labels):
            raise ValueError(
                f"make: {len(images)} images but {len(labels)} labels; they must pair up"
            )
        self._labels[_digest(images)] = labels
        return [{"images": images}]

    def expected(self, case: dict) -> np.ndarray:
        try:
            return self._labels[_digest(case["images"])]
        except KeyError:
            raise LookupError(
                "expected: these images were not made by this HeldOut's cases(seed)"
            ) from None
