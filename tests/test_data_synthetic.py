"""cnnlib.data's textured source tasks and subsets: shapes on textures, digits on textures, classes
and k examples per class."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import data


def test_textured_shapes_deterministic_balanced_and_in_range():
    X, y = data.textured_shapes(57, size=16, seed=3)
    assert X.shape == (57, 3, 16, 16) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    counts = np.bincount(y, minlength=10)
    assert counts.max() - counts.min() <= 1
    X2, y2 = data.textured_shapes(57, size=16, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, data.textured_shapes(57, size=16, seed=4)[0])


def test_textured_shapes_are_shapes_on_textures():
    # Without noise and rotation, a flat-on-flat image has exactly two colours; textured ones
    # have many. Across 200 images both kinds occur (1 in 36 is flat on flat).
    X, y = data.textured_shapes(200, size=24, rotate=0.0, noise=0.0, seed=0)
    distinct = np.array([np.unique(image.reshape(3, -1), axis=1).shape[1] for image in X])
    assert (distinct == 2).any() and (distinct > 20).mean() > 0.5
    # The shape is brighter than the background in about half the images.
    centre = X[:, :, 10:14, 10:14].mean(axis=(1, 2, 3))
    border = X[:, :, :2, :].mean(axis=(1, 2, 3))
    square = y == data.SHAPE_NAMES.index("square")
    bright = centre[square] > border[square]
    assert 0 < bright.sum() < square.sum()


def test_textured_shapes_masks_mark_the_shape():
    # masks=True changes nothing about the images and labels, only adds where each shape is
    X, y = data.textured_shapes(200, size=24, rotate=0.0, noise=0.0, seed=0)
    Xm, ym, masks = data.textured_shapes(200, size=24, rotate=0.0, noise=0.0, seed=0, masks=True)
    np.testing.assert_array_equal(X, Xm)
    np.testing.assert_array_equal(y, ym)
    assert masks.shape == (200, 24, 24) and masks.dtype == bool
    area = masks.mean(axis=(1, 2))
    assert area.min() > 0 and area.max() < 1
    # an unturned square of half-size h has sides of 1.7 h (h in [0.22, 0.42] of the image's
    # 24 pixels), give or take a pixel where the pixel grid cuts its edge
    square = y == data.SHAPE_NAMES.index("square")
    smallest, largest = (1.7 * 0.22 * 24 - 1) / 24, (1.7 * 0.42 * 24 + 1) / 24
    assert (area[square] >= smallest**2).all() and (area[square] <= largest**2).all()
    # the mask is where the shape's colour is: a flat shape on a flat background has one colour
    # inside the mask and another outside it
    flat = [i for i, image in enumerate(X) if np.unique(image.reshape(3, -1), axis=1).shape[1] == 2]
    assert flat
    for i in flat:
        inside, outside = X[i][:, masks[i]], X[i][:, ~masks[i]]
        assert (inside == inside[:, :1]).all() and (outside == outside[:, :1]).all()
        assert not np.array_equal(inside[:, 0], outside[:, 0])
    # a wrong mask fails that check: the mask of another image
    inside = X[flat[0]][:, masks[(flat[0] + 1) % 200]]
    assert not (inside == inside[:, :1]).all()


def test_textured_digits_draws_every_digit_copies_times():
    digits = data.load_digits()
    X8, y8 = digits.X_train[:30], digits.y_train[:30]
    X, y = data.textured_digits(X8, y8, copies=3, size=16, seed=0)
    assert X.shape == (90, 3, 16, 16) and X.dtype == np.float32
    assert X.min() >= 0.0 and X.max() <= 1.0
    np.testing.assert_array_equal(y, np.tile(y8, 3))
    # three drawings of one digit differ (place, size, angle, texture)
    assert not np.array_equal(X[0], X[30])
    np.testing.assert_array_equal(X, data.textured_digits(X8, y8, copies=3, size=16, seed=0)[0])


def test_textured_digits_keeps_the_ink_inside_and_readable():
    # One white stroke pixel in the middle of a black 8x8 digit, no rotation, no noise: the ink
    # lands somewhere inside the 16x16 image, as one blob with the stroke colour.
    X8 = np.zeros((40, 1, 8, 8), np.float32)
    X8[:, 0, 3:5, 3:5] = 1.0
    X, _ = data.textured_digits(X8, np.zeros(40, np.int64), rotate=0.0, noise=0.0, seed=1)
    assert X.shape == (40, 3, 16, 16)
    blank, _ = data.textured_digits(np.zeros_like(X8), np.zeros(40, np.int64), rotate=0.0,
                                    noise=0.0, seed=1)
    changed = np.abs(X - blank).max(axis=1) > 1e-6          # (40, 16, 16): where the ink is
    assert changed.any(axis=(1, 2)).all()


def test_textured_digits_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"X must be grey images of shape \(N, 1, h, w\)"):
        data.textured_digits(np.zeros((4, 3, 8, 8)), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"y must have shape \(4,\)"):
        data.textured_digits(np.zeros((4, 1, 8, 8)), np.zeros(5, int))
    with pytest.raises(TypeError, match="copies must be an int"):
        data.textured_digits(np.zeros((4, 1, 8, 8)), np.zeros(4, int), copies=1.5)


def test_select_classes_relabels_in_the_given_order():
    X = np.arange(10)[:, None]
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) % 5
    Xs, ys = data.select_classes(X, y, (3, 1))
    np.testing.assert_array_equal(Xs[:, 0], [1, 3, 6, 8])
    np.testing.assert_array_equal(ys, [1, 0, 1, 0])
    with pytest.raises(ValueError, match=r"classes \[7\] have no examples"):
        data.select_classes(X, y, (1, 7))
    with pytest.raises(ValueError, match="classes must be distinct"):
        data.select_classes(X, y, (1, 1))


def test_per_class_subset_draws_k_each_nested_and_seeded():
    y = np.repeat(np.arange(4), 20)
    X = np.arange(80)[:, None]
    X3, y3 = data.per_class_subset(X, y, 3, seed=5)
    np.testing.assert_array_equal(np.bincount(y3), [3, 3, 3, 3])
    assert np.all(np.diff(X3[:, 0]) > 0)  # original order kept
    X7, _ = data.per_class_subset(X, y, 7, seed=5)
    assert set(X3[:, 0]) <= set(X7[:, 0])  # a larger k contains the smaller one
    np.testing.assert_array_equal(X3, data.per_class_subset(X, y, 3, seed=5)[0])
    assert not np.array_equal(X3, data.per_class_subset(X, y, 3, seed=6)[0])
    with pytest.raises(ValueError, match="per_class=21 but class 0 has only 20"):
        data.per_class_subset(X, y, 21)
