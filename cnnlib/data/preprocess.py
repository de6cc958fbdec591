"""Preprocessing: statistics fitted on the training set only, then applied to every split.

Two families, both of the form ``transform, X_train, X_val, X_test = fit(X_train, X_val, X_test)``
(or pass one `Splits` and get ``transform, splits`` back):

- normalisation, pixel by pixel (`per_pixel_normalize`: subtract the mean image, as AlexNet) or
  channel by channel (`per_channel_normalize`: one mean, and optionally one standard deviation,
  per colour, as VGG and ResNet). What conv nets use.
- whitening (`pca_whiten`, `zca_whiten`): remove the correlations between pixels as well, so the
  covariance of the result is the identity. Classic for linear models and for unsupervised
  feature learning (LeCun et al. 1998, "Efficient BackProp"; Coates & Ng 2011); rarely used for
  conv nets, whose first layer would rather see the local correlations that whitening removes.

The statistics never come from the validation or test images: those stand for data the model has
not seen, and using them leaks information about the final exam into the preparation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnnlib.numpy._checks import check_ndim, check_number, check_positive_int, describe

from .splits import Splits

__all__ = [
    "Normalizer",
    "Whitener",
    "pca_whiten",
    "per_channel_normalize",
    "per_pixel_normalize",
    "zca_whiten",
]


# ============================================================================================
# Normalisation: statistics from the training set, applied to every split


@dataclass(frozen=True)
class Normalizer:
    """Subtract `mean` and divide by `std` (when given), statistics fitted on training data.

    mean: (1, C, H, W) for per-pixel statistics (one mean image, as AlexNet), (1, C, 1, 1) for
    per-channel ones (one number per colour, as VGG; with std as ResNet). std: same shape or None.
    ``norm(x)`` normalises any batch, ``norm.inverse(x)`` undoes it (to show images).
    """

    mean: np.ndarray
    std: np.ndarray | None = None

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x)
        check_ndim("x", x, 4, "(N, C, H, W)")
        expected = self.mean.shape[1:]
        matches = all(m in (1, s) for m, s in zip(expected, x.shape[1:], strict=True))
        if not matches:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, expected))}) to match "
                             f"the training statistics, got {describe(x)}")
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        out = x.astype(dtype) - self.mean.astype(dtype)
        if self.std is not None:
            out /= self.std.astype(dtype)
        return out

    def inverse(self, x) -> np.ndarray:
        x = np.asarray(x)
        out = x * self.std.astype(x.dtype) if self.std is not None else x.copy()
        return out + self.mean.astype(x.dtype)


def _fit_then_apply(fit: Callable, X_train, others: tuple):
    """``(transform, transform(X_train), *map(transform, others))`` with ``transform =
    fit(X_train)``; for a `Splits`, ``(transform, Splits with every X transformed)``."""
    if isinstance(X_train, Splits):
        if others:
            raise TypeError("pass either one Splits or arrays (X_train, X_val, ...), not both")
        splits = X_train
        transform, X_tr, X_va, X_te = _fit_then_apply(fit, splits.X_train,
                                                      (splits.X_val, splits.X_test))
        return transform, Splits(X_tr, splits.y_train, X_va, splits.y_val, X_te, splits.y_test,
                                 splits.class_names)
    X_train = np.asarray(X_train)
    check_ndim("X_train", X_train, 4, "(N, C, H, W)")
    if X_train.shape[0] == 0:
        raise ValueError("X_train must hold at least one image to fit statistics on")
    transform = fit(X_train)
    return (transform, transform(X_train), *(transform(x) for x in others))


def _normalize(axes: tuple[int, ...], X_train, others, std: bool, eps: float):
    def fit(X_train: np.ndarray) -> Normalizer:
        # Statistics in float64: a float32 running sum over 50,000 images loses digits.
        mean = X_train.mean(axis=axes, keepdims=True, dtype=np.float64)
        deviation = None
        if std:
            deviation = X_train.std(axis=axes, keepdims=True, dtype=np.float64)
            # A pixel that never changes in training (the digits' blank corners) has std 0:
            # leave it unscaled rather than divide by zero.
            deviation = np.where(deviation > eps, deviation, 1.0)
        return Normalizer(mean, deviation)

    return _fit_then_apply(fit, X_train, others)


def per_pixel_normalize(X_train, *others, std: bool = False, eps: float = 1e-8):
    """Subtract the training set's mean image (one mean per channel and pixel), optionally
    divide by the per-pixel standard deviation; apply the same statistics to `others`.

    ``norm, X_train, X_val, X_test = per_pixel_normalize(X_train, X_val, X_test)``; or pass a
    `Splits` and get ``norm, splits`` back. mean, std: (1, C, H, W), computed from X_train only
    (never from val/test: they stand for data the model has not seen). Pixels whose training
    std is <= eps are left unscaled. uint8 images come back as float32.
    """
    return _normalize((0,), X_train, others, std, eps)


def per_channel_normalize(X_train, *others, std: bool = False, eps: float = 1e-8):
    """Subtract the training set's mean colour (one number per channel, over all images and
    pixels), optionally divide by the per-channel standard deviation (the ResNet recipe).

    ``norm, X_train, X_val, X_test = per_channel_normalize(X_train, X_val, X_test, std=True)``,
    or pass a `Splits` and get ``norm, splits`` back. mean, std: (1, C, 1, 1), from X_train only.
    """
    return _normalize((0, 2, 3), X_train, others, std, eps)



# ============================================================================================
# Whitening: decorrelate the pixels, then give every direction unit variance


@dataclass(frozen=True)
class Whitener:
    """PCA or ZCA whitening with statistics fitted on training images.

    With x the flattened image (D = C*H*W numbers) and the covariance of the training images
    written as U diag(variances) U^T (its eigen-decomposition, largest variance first)::

        rotated = (x - mean) @ components                     (N, K): PCA, decorrelated
        z       = rotated / sqrt(variances + eps)             (N, K): PCA whitening
        zca     = z @ components.T, reshaped to (N, C, H, W)  ZCA whitening

    PCA whitening expresses each image in the coordinates of the principal directions; ZCA
    rotates the whitened coordinates back into pixel space, so the result is an image again
    (the whitening closest to the original, Bell & Sejnowski 1997). Both have identity
    covariance on the training set, up to eps: a direction whose variance is well below eps is
    damped rather than blown up, which is what keeps pixel noise from being amplified.

    mean: (D,); components: (D, K), orthonormal columns, K = num_components; variances: (K,)
    descending; eps: the number added to each variance; method: "pca" or "zca";
    image_shape: (C, H, W) of the training images.
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    eps: float
    method: str
    image_shape: tuple[int, int, int]

    def _flat(self, x) -> tuple[np.ndarray, np.dtype]:
        x = np.asarray(x)
        check_ndim("x", x, 4, "(N, C, H, W)")
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, self.image_shape))}) "
                             f"to match the training images, got {describe(x)}")
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        return x.reshape(x.shape[0], -1).astype(np.float64) - self.mean, dtype

    def rotate(self, x) -> np.ndarray:
        """The coordinates of images x (N, C, H, W) along the principal directions: (N, K),
        uncorrelated on the training set, with variances `self.variances` (PCA without the
        scaling)."""
        centred, dtype = self._flat(x)
        return (centred @ self.components).astype(dtype)

    def __call__(self, x) -> np.ndarray:
        """Whiten images x (N, C, H, W): (N, K) for "pca", (N, C, H, W) for "zca"."""
        centred, dtype = self._flat(x)
        z = (centred @ self.components) / np.sqrt(self.variances + self.eps)
        if self.method == "pca":
            return z.astype(dtype)
        return (z @ self.components.T).reshape(-1, *self.image_shape).astype(dtype)

    def inverse(self, z) -> np.ndarray:
        """Undo the whitening: images (N, C, H, W) from what __call__ returned. Exact with all
        the components; with fewer, the projection onto the kept ones."""
        z = np.asarray(z, dtype=np.float64)
        if self.method == "zca":
            check_ndim("z", z, 4, "(N, C, H, W)")
            z = z.reshape(z.shape[0], -1) @ self.components
        else:
            check_ndim("z", z, 2, "(N, K)")
            if z.shape[1] != self.components.shape[1]:
                raise ValueError(f"z must have shape (N, {self.components.shape[1]}) (one "
                                 f"column per component), got {describe(z)}")
        flat = (z * np.sqrt(self.variances + self.eps)) @ self.components.T + self.mean
        return flat.reshape(-1, *self.image_shape)


def _whitening(method: str, X_train, others, num_components, eps):
    eps = check_number("eps", eps, 0.0)

    def fit(X_train: np.ndarray) -> Whitener:
        n = X_train.shape[0]
        if n < 2:
            raise ValueError(f"X_train must hold at least 2 images to estimate a covariance, "
                             f"got {describe(X_train)}")
        flat = X_train.reshape(n, -1).astype(np.float64)
        dim = flat.shape[1]
        k = dim if num_components is None else check_positive_int("num_components",
                                                                   num_components)
        if k > dim:
            raise ValueError(f"num_components must be at most {dim} (the number of values per "
                             f"image, C*H*W), got {k}")
        mean = flat.mean(axis=0)
        centred = flat - mean
        covariance = centred.T @ centred / n  # (D, D)
        variances, vectors = np.linalg.eigh(covariance)  # ascending
        order = np.argsort(variances)[::-1][:k]
        # Round-off can make a zero variance (a pixel blank in every image) slightly negative.
        return Whitener(mean, vectors[:, order], np.maximum(variances[order], 0.0), eps, method,
                        tuple(X_train.shape[1:]))

    return _fit_then_apply(fit, X_train, others)


def pca_whiten(X_train, *others, num_components: int | None = None, eps: float = 1e-5):
    """PCA whitening: centre, rotate onto the principal directions of the training images, and
    divide each coordinate by its standard deviation, sqrt(variance + eps).

    ``whitener, Z_train, Z_val, Z_test = pca_whiten(X_train, X_val, X_test)`` with X (N, C, H, W)
    and Z (N, K); or pass a `Splits` and get ``whitener, splits`` back (its X arrays (N, K)).
    num_components: keep the K directions of largest variance (None: all C*H*W), which is PCA's
    dimensionality reduction. eps: added to every variance; the statistics come from X_train
    only. Fitting costs an eigen-decomposition of the (D, D) covariance, D = C*H*W.
    """
    return _whitening("pca", X_train, others, num_components, eps)


def zca_whiten(X_train, *others, num_components: int | None = None, eps: float = 1e-5):
    """ZCA whitening: PCA whitening rotated back into pixel space, so the result is an image
    (N, C, H, W) again, with (up to eps) identity covariance over the training images.

    ``whitener, X_train, X_val, X_test = zca_whiten(X_train, X_val, X_test, eps=0.01)``, or pass
    a `Splits`. Whitened images keep edges and lose smooth shading: every spatial frequency gets
    the same energy. eps sets how much the weakest directions (mostly noise) are amplified:
    at most 1/sqrt(eps) times.
    """
    return _whitening("zca", X_train, others, num_components, eps)
