"""cnnlib.data's training-recipe steps added for lecture 08: PCA / ZCA whitening, rotations,
noise, Krizhevsky's PCA colour noise, and Augment chaining them; the package layout (one module
per step, everything re-exported from cnnlib.data)."""

import math

import numpy as np
import pytest
import torch

from cnnlib import data
from cnnlib.data import augment, preprocess, splits


@pytest.fixture
def images():
    """(200, 1, 4, 4) correlated images with a non-zero mean and one constant pixel."""
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((16, 16)) * np.linspace(0.1, 2.0, 16)
    x = rng.standard_normal((200, 16)) @ mixing.T + 3.0
    x[:, 5] = 0.25  # blank in every image: variance exactly 0
    return x.reshape(200, 1, 4, 4)


def _covariance(z):
    z = z.reshape(len(z), -1)
    z = z - z.mean(axis=0)
    return z.T @ z / len(z)


# --------------------------------------------------------------------------------------------
# Layout


def test_every_step_module_is_re_exported():
    for module in (splits, preprocess, augment):
        for name in module.__all__:
            assert getattr(data, name) is getattr(module, name)
            assert name in data.__all__
    assert len(set(data.__all__)) == len(data.__all__)


# --------------------------------------------------------------------------------------------
# Whitening


def test_pca_whitening_gives_identity_covariance_up_to_eps(images):
    eps = 1e-3
    whitener, z = data.pca_whiten(images, eps=eps)
    assert z.shape == (200, 16) and z.dtype == np.float64
    variances = whitener.variances
    assert np.all(np.diff(variances) <= 0)  # largest first
    # exactly: the covariance of z is diag(variance / (variance + eps))
    np.testing.assert_allclose(_covariance(z), np.diag(variances / (variances + eps)),
                               atol=1e-10)
    # the blank pixel gives one zero variance, which eps keeps from being divided by
    assert variances[-1] == pytest.approx(0.0, abs=1e-10)
    np.testing.assert_allclose(z[:, -1], 0.0, atol=1e-6)
    # the components are orthonormal and the variances are those of the covariance
    U = whitener.components
    np.testing.assert_allclose(U.T @ U, np.eye(16), atol=1e-12)
    np.testing.assert_allclose(U @ np.diag(variances) @ U.T, _covariance(images), atol=1e-10)


def test_zca_is_symmetric_whitening_back_in_pixel_space(images):
    whitener, white = data.zca_whiten(images, eps=0.0, num_components=15)  # drop the blank
    assert white.shape == images.shape
    kept = np.ones(16, bool)
    kept[5] = False
    cov = _covariance(white)
    np.testing.assert_allclose(cov[np.ix_(kept, kept)], np.eye(15), atol=1e-8)
    # ZCA's matrix U diag(1/sqrt(var)) U^T is symmetric: the response at pixel i to a unit
    # change at pixel j equals the response at j to a change at i.
    flat_mean = whitener.mean.reshape(1, 1, 4, 4)
    basis = np.eye(16).reshape(16, 1, 4, 4) + flat_mean
    matrix = whitener(basis).reshape(16, 16)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-10)
    # and it is the whitening closest to the identity: every pixel stays positively correlated
    # with its own whitened version
    centred = images.reshape(200, -1) - images.reshape(200, -1).mean(axis=0)
    own = np.sum(centred * white.reshape(200, -1), axis=0)
    assert np.all(own[kept] > 0)


def test_whitening_uses_training_statistics_and_inverts(images):
    train, val = images[:150], images[150:]
    whitener, white_train, white_val = data.zca_whiten(train, val, eps=1e-2)
    np.testing.assert_allclose(white_train.mean(axis=0), 0.0, atol=1e-10)
    assert np.abs(white_val.mean(axis=0)).max() > 1e-3  # val is not centred on itself
    np.testing.assert_allclose(whitener.inverse(white_val), val, atol=1e-9)
    pca, _z_train, z_val = data.pca_whiten(train, val, eps=1e-2)
    np.testing.assert_allclose(pca.inverse(z_val), val, atol=1e-9)
    np.testing.assert_allclose(pca.rotate(val) / np.sqrt(pca.variances + 1e-2), z_val,
                               atol=1e-12)
    # with fewer components: the projection onto them, whose error is the dropped variance
    pca4, z4 = data.pca_whiten(train, num_components=4)
    assert z4.shape == (150, 4)
    restored = pca4.inverse(z4)
    squared_error = np.mean(np.sum((restored - train).reshape(150, -1) ** 2, axis=1))
    assert squared_error == pytest.approx(pca.variances[4:].sum(), rel=1e-8)


def test_whitening_on_splits_and_dtypes():
    digits = data.load_digits()
    _whitener, white = data.zca_whiten(digits, eps=0.1)
    assert isinstance(white, data.Splits) and white.X_val.shape == digits.X_val.shape
    assert white.X_train.dtype == np.float32
    np.testing.assert_array_equal(white.y_test, digits.y_test)
    _, pca = data.pca_whiten(digits, num_components=10)
    assert pca.X_train.shape == (len(digits.X_train), 10)
    _, ints = data.zca_whiten(np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2))
    assert ints.dtype == np.float32


def test_whitening_errors_name_the_argument(images):
    with pytest.raises(ValueError, match=r"eps must be in \[0, inf\)"):
        data.pca_whiten(images, eps=-1.0)
    with pytest.raises(ValueError, match="num_components must be at most 16"):
        data.zca_whiten(images, num_components=17)
    with pytest.raises(ValueError, match="num_components must be >= 1"):
        data.pca_whiten(images, num_components=0)
    with pytest.raises(ValueError, match="at least 2 images"):
        data.zca_whiten(images[:1])
    with pytest.raises(ValueError, match="X_train must have 4 dimensions"):
        data.pca_whiten(images.reshape(200, 16))
    whitener, _ = data.zca_whiten(images)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 4, 4\)"):
        whitener(np.zeros((2, 1, 5, 5)))
    pca, _ = data.pca_whiten(images, num_components=3)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 3\)"):
        pca.inverse(np.zeros((2, 4)))


# --------------------------------------------------------------------------------------------
# Rotation


class _FixedAngle:
    """Stands in for a Generator: every image gets `angle` degrees."""

    def __init__(self, angle):
        self.angle = angle

    def uniform(self, low, high, n):
        return np.full(n, self.angle)


@pytest.fixture
def batch():
    return np.random.default_rng(1).random((6, 3, 7, 7))


def test_rotation_by_quarter_turns_is_exact(batch, monkeypatch):
    monkeypatch.setattr(augment, "_as_rng", lambda rng, name="rng": rng)
    turn = data.random_rotation
    np.testing.assert_allclose(turn(batch, 90, _FixedAngle(90.0)),
                               np.rot90(batch, 1, axes=(2, 3)), atol=1e-12)
    np.testing.assert_allclose(turn(batch, 180, _FixedAngle(-90.0)),
                               np.rot90(batch, -1, axes=(2, 3)), atol=1e-12)
    np.testing.assert_allclose(turn(batch, 180, _FixedAngle(180.0)), batch[:, :, ::-1, ::-1],
                               atol=1e-12)
    np.testing.assert_array_equal(turn(batch, 10, _FixedAngle(0.0)), batch)


def test_rotation_fills_with_zeros_and_keeps_the_centre(monkeypatch):
    monkeypatch.setattr(augment, "_as_rng", lambda rng, name="rng": rng)
    ones = np.ones((1, 1, 9, 9))
    turned = data.random_rotation(ones, 45, _FixedAngle(45.0))[0, 0]
    assert turned[4, 4] == pytest.approx(1.0)  # the centre maps onto itself
    assert turned[0, 0] == 0.0  # a corner turned by 45 degrees comes from outside the image
    assert turned.min() >= 0.0 and turned.max() <= 1.0 + 1e-12  # bilinear: a convex mixture


def test_rotation_angles_are_drawn_per_image_within_range(batch):
    # a single bright pixel off-centre: its position after the turn gives the angle
    x = np.zeros((400, 1, 21, 21))
    x[:, 0, 10, 18] = 1.0  # 8 pixels right of the centre
    out = data.random_rotation(x, max_degrees=30, rng=3)
    rows, cols = np.indices((21, 21))
    mass = out[:, 0].sum(axis=(1, 2))
    row = (out[:, 0] * rows).sum(axis=(1, 2)) / mass
    col = (out[:, 0] * cols).sum(axis=(1, 2)) / mass
    angles = np.degrees(np.arctan2(10 - row, col - 10))  # counter-clockwise positive
    assert np.abs(angles).max() <= 30.5
    assert angles.min() < -25 and angles.max() > 25  # the whole range is used
    assert abs(np.mean(angles > 0) - 0.5) < 0.1


def test_rotation_and_noise_same_on_numpy_and_torch(batch):
    for function, kwargs in ((data.random_rotation, {"max_degrees": 40}),
                             (data.random_noise, {"std": 0.3})):
        expected = function(batch, rng=4, **kwargs)
        got = function(torch.from_numpy(batch), rng=4, **kwargs)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    as32 = data.random_rotation(batch.astype(np.float32), 20, rng=0)
    assert as32.dtype == np.float32 and as32.flags.c_contiguous


def test_noise_statistics_and_identity():
    x = np.zeros((100, 2, 10, 10), np.float32)
    noisy = data.random_noise(x, std=0.5, rng=0)
    assert noisy.dtype == np.float32
    # 20,000 draws: the sample std is within 2% of 0.5 with overwhelming probability
    assert noisy.std() == pytest.approx(0.5, rel=0.02)
    assert abs(noisy.mean()) < 0.02
    np.testing.assert_array_equal(data.random_noise(x, std=0.0, rng=0), x)


def test_rotation_and_noise_errors(batch):
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        data.random_rotation(batch.astype(np.uint8))
    with pytest.raises(ValueError, match=r"max_degrees must be in \[0, 180\]"):
        data.random_rotation(batch, max_degrees=200)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        data.random_noise(batch[0])
    with pytest.raises(ValueError, match=r"std must be in \[0, inf\)"):
        data.random_noise(batch, std=-0.1)


# --------------------------------------------------------------------------------------------
# PCA colour noise


def test_color_pca_finds_the_pixels_principal_components():
    rng = np.random.default_rng(2)
    # pixels whose colour varies mostly along (1, 1, 1) / sqrt(3): brightness
    brightness = rng.standard_normal((50, 1, 6, 6)) * 0.3
    tint = rng.standard_normal((50, 3, 6, 6)) * 0.02
    X = 0.5 + brightness + tint
    eigenvalues, eigenvectors = data.color_pca(X)
    assert np.all(np.diff(eigenvalues) <= 0)
    np.testing.assert_allclose(eigenvectors.T @ eigenvectors, np.eye(3), atol=1e-12)
    assert abs(eigenvectors[:, 0] @ np.ones(3) / math.sqrt(3)) == pytest.approx(1.0, abs=1e-3)
    pixels = X.transpose(0, 2, 3, 1).reshape(-1, 3)
    np.testing.assert_allclose(eigenvectors @ np.diag(eigenvalues) @ eigenvectors.T,
                               np.cov(pixels, rowvar=False), rtol=1e-10, atol=1e-14)


def test_pca_color_noise_shifts_whole_images_with_the_data_covariance():
    eigenvalues = np.array([0.09, 0.01, 0.0025])
    angle = 0.3
    eigenvectors = np.array([[1, 0, 0], [0, math.cos(angle), -math.sin(angle)],
                             [0, math.sin(angle), math.cos(angle)]])
    x = np.random.default_rng(5).random((4000, 3, 2, 3))
    std = 0.5
    out = data.pca_color_noise(x, eigenvalues, eigenvectors, std=std, rng=7)
    shift = out - x
    # one shift per image and channel: the same at every pixel
    np.testing.assert_allclose(shift, shift[:, :, :1, :1] * np.ones((1, 1, 2, 3)), atol=1e-12)
    per_image = shift[:, :, 0, 0]
    expected = std**2 * eigenvectors @ np.diag(eigenvalues) @ eigenvectors.T
    # 4,000 images: sample covariances within 10% of the largest entry
    np.testing.assert_allclose(np.cov(per_image, rowvar=False), expected,
                               atol=0.1 * expected.max())
    got = data.pca_color_noise(torch.from_numpy(x[:8]), eigenvalues, eigenvectors, std, rng=7)
    np.testing.assert_allclose(got.numpy(), out[:8], atol=1e-12)


def test_pca_color_noise_errors():
    x = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match="eigenvalues must be 3 variances >= 0"):
        data.pca_color_noise(x, np.ones(2), np.eye(3))
    with pytest.raises(ValueError, match=r"eigenvectors must have shape \(3, 3\)"):
        data.pca_color_noise(x, np.ones(3), np.eye(2))
    with pytest.raises(ValueError, match=r"std must be in \[0, inf\)"):
        data.pca_color_noise(x, np.ones(3), np.eye(3), std=-1)
    with pytest.raises(ValueError, match="X_train must hold at least one image"):
        data.color_pca(np.zeros((0, 3, 4, 4)))


# --------------------------------------------------------------------------------------------
# Augment with rotation and noise


def test_augment_with_rotation_and_noise(batch):
    augment_np = data.Augment(padding=1, flip=False, seed=3, rotation=20, noise=0.1)
    augment_torch = data.Augment(padding=1, flip=False, seed=3, rotation=20, noise=0.1)
    expected = augment_np(batch)
    np.testing.assert_allclose(augment_torch(torch.from_numpy(batch)).numpy(), expected,
                               atol=1e-12)
    # the same as the steps one after the other, from one generator
    rng = np.random.default_rng(3)
    by_hand = data.random_noise(data.random_rotation(data.random_crop(batch, 1, rng), 20, rng),
                                0.1, rng)
    np.testing.assert_allclose(expected, by_hand, atol=1e-12)
    assert repr(augment_np) == "Augment(padding=1, flip=False, seed=3, rotation=20, noise=0.1)"
    assert repr(data.Augment()) == "Augment(padding=4, flip=True, seed=0)"
    with pytest.raises(ValueError, match=r"rotation must be in \[0, 180\]"):
        data.Augment(rotation=-5)
    with pytest.raises(ValueError, match=r"noise must be in \[0, inf\)"):
        data.Augment(noise=-1)
