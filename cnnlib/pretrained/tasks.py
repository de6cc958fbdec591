"""The data the course's networks are pretrained on, and the target task of lecture 10.

Everything is generated from seeds (the shapes) or from scikit-learn's bundled digits, so the
same call gives the same images on every machine, offline. Images are 3x16x16 float32 in [0, 1],
no normalisation: the 8x8 digits have no more detail than 16x16 shows, and a CIFAR ResNet-20
trains about four times faster on 16x16 than on 32x32 (measured in the README).

- ``shapes``: `cnnlib.data.textured_shapes`, 10 classes, 6,000 / 1,000 / 2,000 images.
- ``digits04``: the digits 0-4 drawn onto textures (`cnnlib.data.textured_digits`): the 630
  training digits of the fixed `load_digits` split drawn 8 times each (5,040 images), the
  135 validation and 136 test digits 4 and 8 times (540 and 1,088 images). A digit drawn
  several times stays in one split.
- `digits_task(classes, copies)`: the same drawing for any digits, e.g. the target task of
  lecture 10, the digits 5-9, with each training digit drawn once (a labelled image is a
  labelled image: the target has only 627 of them).
"""

from __future__ import annotations

from cnnlib import data
from cnnlib.numpy._checks import check_positive_int

__all__ = ["IMAGE_SIZE", "SOURCE_TASKS", "digits_task", "shapes_task", "source_task"]

IMAGE_SIZE = 16


def shapes_task(n_train: int = 6000, n_val: int = 1000, n_test: int = 2000, seed: int = 1,
                size: int = IMAGE_SIZE) -> data.Splits:
    """`textured_shapes` as Splits: the three sets drawn with seeds seed, seed + 1, seed + 2."""
    sets = [data.textured_shapes(check_positive_int(name, n), size=size, seed=seed + i)
            for i, (name, n) in enumerate((("n_train", n_train), ("n_val", n_val),
                                           ("n_test", n_test)))]
    return data.Splits(*sets[0], *sets[1], *sets[2], class_names=data.SHAPE_NAMES)


def digits_task(classes, copies=(1, 4, 4), seed: int = 11, size: int = IMAGE_SIZE,
                limit: int | None = None) -> data.Splits:
    """Some of the bundled digits drawn onto textures, as Splits relabelled 0, 1, ...

    classes: the digits to keep, e.g. range(5) or (5, 6, 7, 8, 9); copies: how many drawings of
    each train, val and test digit; the three sets are drawn with seeds seed, seed + 1,
    seed + 2. The digits themselves come from `load_digits()`'s fixed split (so a test digit is
    never drawn into the training set). limit: keep only the first `limit` digits of each split
    before drawing (for quick runs).
    """
    classes = [int(c) for c in classes]
    digits = data.load_digits(size=8)
    sets = []
    for i, (split, n_copies) in enumerate(zip(("train", "val", "test"), copies, strict=True)):
        X, y = data.select_classes(*getattr(digits, split), classes)
        if limit is not None:
            X, y = X[:limit], y[:limit]
        sets.append(data.textured_digits(X, y, copies=n_copies, size=size, seed=seed + i))
    return data.Splits(*sets[0], *sets[1], *sets[2],
                       class_names=tuple(str(c) for c in classes))


def _digits04(quick: bool = False) -> data.Splits:
    if quick:
        return digits_task(range(5), copies=(1, 1, 1), seed=1, limit=100)
    return digits_task(range(5), copies=(8, 4, 8), seed=1)


def _shapes(quick: bool = False) -> data.Splits:
    if quick:
        return shapes_task(200, 100, 100)
    return shapes_task()


SOURCE_TASKS = {
    "shapes": (_shapes, "cnnlib.pretrained.tasks.shapes_task(6000, 1000, 2000, seed=1): "
                        "cnnlib.data.textured_shapes at 16x16, 10 classes"),
    "digits04": (_digits04, "cnnlib.pretrained.tasks.digits_task(range(5), copies=(8, 4, 8), "
                            "seed=1): the bundled digits 0-4 drawn onto textures at 16x16"),
}


def source_task(name: str, quick: bool = False) -> data.Splits:
    """The source task `name` ("shapes" or "digits04") as Splits; quick: a few hundred images."""
    if name not in SOURCE_TASKS:
        raise ValueError(f"name must be one of {sorted(SOURCE_TASKS)}, got {name!r}")
    return SOURCE_TASKS[name][0](quick)
