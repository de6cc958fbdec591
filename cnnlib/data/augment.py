"""Data augmentation: random, label-preserving changes to each training batch, made live.

A network that sees every training image slightly shifted, turned or brightened each epoch
cannot memorise the exact pixels, and learns what the shifts and turns leave unchanged. Which
changes preserve the label is a property of the data, not of the network: a mirrored cat is a
cat, a mirrored 2 is not a 2, and a 6 turned half a circle is a 9.

Every function takes a batch x (N, C, H, W), a NumPy array or a torch tensor (on its own
device), and a source of randomness `rng` (a NumPy Generator, an int seed, or None), and returns
a new batch of the same shape, type and device. The random numbers are always drawn with NumPy,
so a seeded run gives the same batch on the CPU and on a GPU.

- `random_crop`: pad with zeros, cut back to size at a random offset: a shift by up to `padding`
  pixels (the CIFAR-10 recipe of He et al. 2016). Krizhevsky et al. 2012 cut 224x224 patches
  out of 256x256 images: the same idea without the padding.
- `random_flip`: mirror left-right with probability p (Krizhevsky et al. 2012).
- `random_rotation`: turn by a random angle in [-max_degrees, max_degrees], bilinear.
- `random_noise`: add Gaussian noise to every pixel.
- `color_pca` and `pca_color_noise`: shift each image's colour along the principal components of
  the training pixels' colours (Krizhevsky et al. 2012, "fancy PCA").
- `Augment`: a seeded chain of the above, for `cnnlib.torch.fit(..., augment=Augment())`.
"""

from __future__ import annotations

import numpy as np

from cnnlib.numpy._checks import (
    check_float_array,
    check_ndim,
    check_number,
    check_positive_int,
    describe,
)

from .splits import _as_rng

__all__ = [
    "Augment",
    "color_pca",
    "pca_color_noise",
    "random_crop",
    "random_flip",
    "random_noise",
    "random_rotation",
]


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def random_crop(x, padding: int = 4, rng=None):
    """Pad each image with `padding` zeros on every side, then cut it back to its size at a
    random offset: x (N, C, H, W) -> (N, C, H, W), every image shifted by up to `padding` pixels.

    The offsets (top, left) are drawn from rng (a numpy Generator, an int seed, or None), each in
    [0, 2 * padding], first all tops then all lefts. Works on NumPy arrays and on torch tensors
    (on their own device); padding 0 returns a copy.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    padding = check_positive_int("padding", padding, minimum=0)
    rng = _as_rng(rng)
    n, _, height, width = x.shape
    top = rng.integers(0, 2 * padding + 1, n)
    left = rng.integers(0, 2 * padding + 1, n)
    # Gather image i's window: rows top[i] + 0..H-1, columns left[i] + 0..W-1 of the padded
    # batch. With the channel slice between the index arrays, the indexed axes come first:
    # the result is (N, H, W, C).
    rows = top[:, None, None] + np.arange(height)[None, :, None]
    cols = left[:, None, None] + np.arange(width)[None, None, :]
    images = np.arange(n)[:, None, None]
    if _is_torch(x):
        import torch
        import torch.nn.functional as F

        padded = F.pad(x, (padding,) * 4)
        index = [torch.as_tensor(a, device=x.device) for a in (images, rows, cols)]
        windows = padded[index[0], :, index[1], index[2]]
        return windows.permute(0, 3, 1, 2).contiguous()
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    return np.ascontiguousarray(padded[images, :, rows, cols].transpose(0, 3, 1, 2))


def random_flip(x, rng=None, p: float = 0.5):
    """Mirror each image left-right with probability `p`: x (N, C, H, W) -> (N, C, H, W).

    Which images flip is drawn from rng (numpy Generator, int seed or None): one uniform number
    per image, flipped when it is < p. NumPy arrays or torch tensors; a new array either way.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    p = check_number("p", p, 0.0, 1.0)
    rng = _as_rng(rng)
    flip = rng.uniform(size=x.shape[0]) < p
    if _is_torch(x):
        import torch

        mask = torch.as_tensor(flip, device=x.device)[:, None, None, None]
        return torch.where(mask, x.flip(-1), x)
    out = x.copy()
    out[flip] = out[flip, :, :, ::-1]
    return out


def _to_backend(a: np.ndarray, like):
    """NumPy array `a` as a tensor on `like`'s device (and, for floats, in its dtype) when
    `like` is a torch tensor; otherwise `a` itself (floats cast to like's dtype)."""
    if _is_torch(like):
        import torch

        tensor = torch.as_tensor(a, device=like.device)
        return tensor.to(like.dtype) if tensor.is_floating_point() else tensor
    return a.astype(like.dtype, copy=False) if a.dtype.kind == "f" else a


def random_rotation(x, max_degrees: float = 15.0, rng=None):
    """Turn each image about its centre by its own random angle, drawn uniformly from
    [-max_degrees, max_degrees] (positive: counter-clockwise as displayed, row 0 at the top).

    x: (N, C, H, W) floating point -> (N, C, H, W). Each output pixel looks up the point the
    rotation brought to it and interpolates bilinearly between the four pixels around it;
    points that come from outside the image are 0, as random_crop's padding. A turn by 90
    degrees of a square image is exactly np.rot90. NumPy arrays or torch tensors.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_float_array("x", x)
    max_degrees = check_number("max_degrees", max_degrees, 0.0, 180.0)
    rng = _as_rng(rng)
    n, _, height, width = x.shape
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n))[:, None, None]
    # Coordinates about the centre, with v pointing up so that positive angles turn
    # counter-clockwise on screen. The pixel at (u, v) of the output shows the input at the
    # point rotated back by -angle.
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    centre_row, centre_col = (height - 1) / 2, (width - 1) / 2
    u, v = cols - centre_col, centre_row - rows
    cos, sin = np.cos(angle), np.sin(angle)
    source_col = centre_col + u * cos + v * sin           # (N, H, W)
    source_row = centre_row - (-u * sin + v * cos)
    top, left = np.floor(source_row), np.floor(source_col)
    frac_row, frac_col = source_row - top, source_col - left
    images = _to_backend(np.arange(n)[:, None, None], x)
    out = 0
    for d_row, d_col, weight in ((0, 0, (1 - frac_row) * (1 - frac_col)),
                                 (0, 1, (1 - frac_row) * frac_col),
                                 (1, 0, frac_row * (1 - frac_col)),
                                 (1, 1, frac_row * frac_col)):
        r, c = (top + d_row).astype(np.int64), (left + d_col).astype(np.int64)
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        r, c = np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)
        weight = np.where(inside, weight, 0.0)[..., None]            # (N, H, W, 1)
        # With the channel slice between the index arrays the result is (N, H, W, C).
        corner = x[images, :, _to_backend(r, x), _to_backend(c, x)]
        out = out + corner * _to_backend(weight, x)
    if _is_torch(x):
        return out.permute(0, 3, 1, 2).contiguous()
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def random_noise(x, std: float = 0.05, rng=None):
    """Add independent Gaussian noise of standard deviation `std` to every value of x:
    (N, C, H, W) floating point -> (N, C, H, W), not clipped. NumPy arrays or torch tensors."""
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_float_array("x", x)
    std = check_number("std", std, 0.0)
    rng = _as_rng(rng)
    noise = rng.standard_normal(tuple(x.shape)) * std
    return x + _to_backend(noise, x)


def color_pca(X_train) -> tuple[np.ndarray, np.ndarray]:
    """The principal components of the training pixels' colours: (eigenvalues (C,), largest
    first, eigenvectors (C, C), one per column) of the C x C covariance of all N*H*W pixels of
    X_train (N, C, H, W). For natural RGB images the first component is brightness (all three
    channels together), the others colour contrasts. For `pca_color_noise`."""
    X_train = np.asarray(X_train)
    check_ndim("X_train", X_train, 4, "(N, C, H, W)")
    if X_train.shape[0] == 0:
        raise ValueError(f"X_train must hold at least one image, got {describe(X_train)}")
    pixels = X_train.transpose(0, 2, 3, 1).reshape(-1, X_train.shape[1]).astype(np.float64)
    variances, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False).reshape(
        X_train.shape[1], X_train.shape[1]))
    order = np.argsort(variances)[::-1]
    return np.maximum(variances[order], 0.0), vectors[:, order]


def pca_color_noise(x, eigenvalues, eigenvectors, std: float = 0.1, rng=None):
    """Krizhevsky et al.'s colour augmentation: shift every pixel of each image by the same
    random mixture of the colour principal components,

        x[i, :, h, w] += eigenvectors @ (alpha_i * sqrt(eigenvalues)),   alpha_i ~ N(0, std^2 I)

    with one alpha_i (C,) per image. `eigenvalues`, `eigenvectors`: from `color_pca(X_train)`.
    The paper writes the eigenvalue itself where we write its square root, the standard
    deviation of the data along that component: with it, std=0.1 means a shift of about a
    tenth of the natural variation of the colours whatever the pixels' units (0..1 or 0..255).
    x: (N, C, H, W) floating point -> (N, C, H, W). NumPy arrays or torch tensors.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_float_array("x", x)
    channels = x.shape[1]
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    eigenvectors = np.asarray(eigenvectors, dtype=np.float64)
    if eigenvalues.shape != (channels,) or np.any(eigenvalues < 0):
        raise ValueError(f"eigenvalues must be {channels} variances >= 0 (one per channel of x, "
                         f"from color_pca), got {describe(eigenvalues)}")
    if eigenvectors.shape != (channels, channels):
        raise ValueError(f"eigenvectors must have shape ({channels}, {channels}) to match x's "
                         f"{channels} channels, got {describe(eigenvectors)}")
    std = check_number("std", std, 0.0)
    rng = _as_rng(rng)
    alpha = rng.standard_normal((x.shape[0], channels)) * std        # (N, C)
    shift = (alpha * np.sqrt(eigenvalues)) @ eigenvectors.T          # (N, C)
    return x + _to_backend(shift[:, :, None, None], x)


class Augment:
    """The training recipe's live augmentation, per batch: random crop after padding, a
    random horizontal flip, and optionally a random rotation and Gaussian noise, in that order.
    A callable on (N, C, H, W) NumPy batches or torch tensors (on any device), for
    `cnnlib.torch.fit(..., augment=Augment())` or a NumPy training loop.

    Augment(padding=4, flip=True, seed=0) is the CIFAR-10 recipe of the ResNet paper (pad 4,
    crop 32x32, flip). rotation: the largest angle in degrees (0: none); noise: the standard
    deviation of the added noise (0: none). For digits, Augment(padding=1, flip=False,
    rotation=10) is a sensible choice: a flip is not. Its own generator makes a run repeatable
    from its seed.
    """

    def __init__(self, padding: int = 4, flip: bool = True, seed=0, *, rotation: float = 0.0,
                 noise: float = 0.0):
        self.padding = check_positive_int("padding", padding, minimum=0)
        self.flip = bool(flip)
        self.rotation = check_number("rotation", rotation, 0.0, 180.0)
        self.noise = check_number("noise", noise, 0.0)
        self.seed = seed
        self.rng = _as_rng(seed, "seed")

    def __call__(self, x):
        if self.padding:
            x = random_crop(x, self.padding, self.rng)
        if self.flip:
            x = random_flip(x, self.rng)
        if self.rotation:
            x = random_rotation(x, self.rotation, self.rng)
        if self.noise:
            x = random_noise(x, self.noise, self.rng)
        return x

    def __repr__(self) -> str:
        extra = "".join(f", {name}={getattr(self, name):g}" for name in ("rotation", "noise")
                        if getattr(self, name))
        return f"Augment(padding={self.padding}, flip={self.flip}, seed={self.seed}{extra})"
