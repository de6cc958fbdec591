"""Synthetic images: shapes on plain colours, and shapes on textures (a source task).

- `synthetic_shapes(n)`: ten shapes (square, circle, triangle, ...) at random positions, sizes
  and colours on a darker plain background, with pixel noise. Quick to learn: a sanity check for
  a training loop.
- `textured_shapes(n)`: the same ten shapes, slightly rotated, each filled with one random texture
  (stripes, checks, dots, gradients, smooth blotches, flat colour) and laid on another, with the
  brighter side chosen at random. To tell the classes apart a network has to find edges between
  textures and assemble them into outlines, which makes it a small, offline stand-in for the
  large, varied data that pretrained networks learn from (the course's pretrained weights,
  `cnnlib.pretrained`, are trained on it).

Both return X: (n, channels, size, size) float32 in [0, 1] and y: (n,) int64 in [0, num_classes),
balanced and shuffled; the same seed gives the same images.
"""

from __future__ import annotations

import numpy as np

from cnnlib.numpy._checks import check_number, check_positive_int

from .splits import _as_rng

__all__ = ["SHAPE_NAMES", "TEXTURE_NAMES", "synthetic_shapes", "textured_digits", "textured_shapes"]

SHAPE_NAMES = (
    "square", "circle", "triangle", "cross", "horizontal bar",
    "vertical bar", "ring", "diamond", "x", "frame",
)


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pixels inside shape `kind`, given coordinates (u, v) relative to its centre, in units of
    its half-size (so each shape fills roughly [-1, 1] x [-1, 1]); v grows downwards."""
    au, av = np.abs(u), np.abs(v)
    box = np.maximum(au, av)
    thick = 0.3
    if kind == 0:                                   # filled square
        return box <= 0.85
    if kind == 1:                                   # filled disc
        return u * u + v * v <= 1.0
    if kind == 2:                                   # triangle, apex up
        return (v <= 0.85) & (au <= (v + 1.0) / 2.0)
    if kind == 3:                                   # plus sign
        return (box <= 1.0) & ((au <= thick) | (av <= thick))
    if kind == 4:                                   # horizontal bar
        return (au <= 1.0) & (av <= thick)
    if kind == 5:                                   # vertical bar
        return (av <= 1.0) & (au <= thick)
    if kind == 6:                                   # ring
        radius2 = u * u + v * v
        return (radius2 <= 1.0) & (radius2 >= 0.55**2)
    if kind == 7:                                   # diamond
        return au + av <= 1.0
    if kind == 8:                                   # diagonal cross
        return (box <= 0.9) & ((np.abs(u - v) <= 1.4 * thick) | (np.abs(u + v) <= 1.4 * thick))
    return (box <= 1.0) & (box >= 0.65)             # 9: hollow square


def synthetic_shapes(
    n: int, size: int = 32, num_classes: int = 10, channels: int = 3, noise: float = 0.05,
    seed=0,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` images of simple shapes, one shape per image, the label saying which.

    Returns X: (n, channels, size, size) float32 in [0, 1] and y: (n,) int64 in
    [0, num_classes); the class names are ``SHAPE_NAMES[:num_classes]`` (square, circle,
    triangle, cross, horizontal bar, vertical bar, ring, diamond, x, frame).

    Each shape gets a random centre, half-size (20-45% of the image side, never cut off at the
    border) and colour; the background gets another, darker colour; then Gaussian pixel noise
    of standard deviation `noise` is added and the result clipped to [0, 1]. The classes are
    balanced (counts differ by at most one) and shuffled. Same seed, same images. size >= 8.
    """
    n = check_positive_int("n", n)
    size = check_positive_int("size", size, minimum=8)
    num_classes = check_positive_int("num_classes", num_classes, minimum=2)
    if num_classes > len(SHAPE_NAMES):
        raise ValueError(f"num_classes must be at most {len(SHAPE_NAMES)} "
                         f"({', '.join(SHAPE_NAMES)}), got {num_classes}")
    channels = check_positive_int("channels", channels)
    noise = check_number("noise", noise, 0.0)
    rng = _as_rng(seed, "seed")

    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    half = rng.uniform(0.2, 0.45, n) * size                       # half-size in pixels
    centre_y = rng.uniform(half, size - half)
    centre_x = rng.uniform(half, size - half)
    foreground = rng.uniform(0.55, 1.0, (n, channels)).astype(np.float32)
    background = rng.uniform(0.0, 0.35, (n, channels)).astype(np.float32)

    grid = np.arange(size) + 0.5                                  # pixel centres
    images = np.empty((n, channels, size, size), dtype=np.float32)
    for kind in range(num_classes):
        idx = np.flatnonzero(labels == kind)
        if idx.size == 0:
            continue
        v = (grid[None, :, None] - centre_y[idx, None, None]) / half[idx, None, None]
        u = (grid[None, None, :] - centre_x[idx, None, None]) / half[idx, None, None]
        inside = _shape_mask(kind, u, v)[:, None]                 # (k, 1, size, size)
        images[idx] = np.where(inside, foreground[idx, :, None, None],
                               background[idx, :, None, None])
    if noise > 0:
        pixel_noise = rng.standard_normal(images.shape, dtype=np.float32)
        pixel_noise *= np.float32(noise)
        images += pixel_noise
        np.clip(images, 0.0, 1.0, out=images)
    return images, labels


# ============================================================================================
# Shapes on textures

TEXTURE_NAMES = ("flat", "stripes", "checks", "dots", "gradient", "blotches")


def _texture_fields(kinds: np.ndarray, x: np.ndarray, y: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """One texture per image, as a field t in [0, 1]: (k, size, size) for the k = len(kinds) images.

    x, y: (1, size, size) pixel centres in units of the image side (0..1), so a texture looks the
    same at any resolution. Every image gets its own orientation, period (12-30% of the side)
    and phase; `kinds` indexes TEXTURE_NAMES.
    """
    k = len(kinds)
    angle = rng.uniform(0, np.pi, k)[:, None, None]
    period = rng.uniform(0.12, 0.3, k)[:, None, None]
    phase = rng.uniform(0, 1, (2, k))[:, :, None, None]
    # coordinates turned by the image's angle, about the image centre, in periods
    along = ((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)) / period
    across = ((y - 0.5) * np.cos(angle) - (x - 0.5) * np.sin(angle)) / period
    fields = np.zeros((k, *x.shape[1:]), dtype=np.float64)
    for kind in range(1, len(TEXTURE_NAMES)):
        idx = np.flatnonzero(kinds == kind)
        if idx.size == 0:
            continue
        a, b, ph = along[idx], across[idx], phase[:, idx]
        if kind == 1:                                   # stripes: a sine wave across them
            fields[idx] = 0.5 + 0.5 * np.sin(2 * np.pi * (a + ph[0]))
        elif kind == 2:                                 # checks: the sign of two square waves
            signs = np.sign(np.sin(2 * np.pi * (a + ph[0])) * np.sin(2 * np.pi * (b + ph[1])))
            fields[idx] = 0.5 + 0.5 * signs
        elif kind == 3:                                 # dots on a turned square lattice
            radius = rng.uniform(0.2, 0.35, idx.size)[:, None, None]
            da, db = (a + ph[0]) % 1.0 - 0.5, (b + ph[1]) % 1.0 - 0.5
            fields[idx] = (da * da + db * db <= radius * radius).astype(np.float64)
        elif kind == 4:                                 # a linear ramp across the image
            slope = rng.uniform(1.0, 2.0, idx.size)[:, None, None]
            fields[idx] = np.clip(0.5 + slope * a * period[idx], 0.0, 1.0)
        else:                                           # blotches: three slow waves summed
            waves = np.zeros((idx.size, *x.shape[1:]))
            for _ in range(3):
                fx, fy = rng.uniform(-3, 3, (2, idx.size))[:, :, None, None]
                shift = rng.uniform(0, 1, idx.size)[:, None, None]
                waves += np.cos(2 * np.pi * (fx * x + fy * y + shift))
            fields[idx] = 0.5 + waves / 6.0
    return fields


def _textured_region(fields: np.ndarray, bright: np.ndarray, channels: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Colour the texture fields (k, S, S): (k, channels, S, S) float32.

    A bright region has a colour in [0.65, 1] per channel that its texture darkens by up to 0.3;
    a dark one a colour in [0, 0.3] that its texture brightens by as much. A flat texture (all
    zeros) is one plain colour.
    """
    k = len(fields)
    amplitude = rng.uniform(0.1, 0.3, k)[:, None, None, None]
    base = np.where(bright[:, None], rng.uniform(0.65, 1.0, (k, channels)),
                    rng.uniform(0.0, 0.3, (k, channels)))[:, :, None, None]
    sign = np.where(bright, -1.0, 1.0)[:, None, None, None]
    return (base + sign * amplitude * fields[:, None]).astype(np.float32)


def textured_shapes(
    n: int, size: int = 32, channels: int = 3, rotate: float = 15.0, noise: float = 0.04,
    seed=0, *, masks: bool = False,
):
    """`n` images of the ten shapes of SHAPE_NAMES, each filled with a texture on another.

    Returns X: (n, channels, size, size) float32 in [0, 1] and y: (n,) int64 in [0, 10), the
    index into SHAPE_NAMES; balanced and shuffled, the same seed giving the same images.
    masks=True also returns where each shape is, (n, size, size) bool, True on the pixels the
    shape covers (X and y are the same as without it): the ground truth against which lecture 11
    measures where explanations point.

    Each image: a shape of random half-size (22-42% of the side) and centre, turned by a random
    angle in [-rotate, rotate] degrees (small enough that "cross" and "x", "square" and
    "diamond" stay apart); a texture for the shape and another for the background, each drawn
    from TEXTURE_NAMES (flat, stripes, checks, dots, gradient, blotches) with its own colour,
    orientation and scale; the shape is the brighter of the two regions in half of the images
    and the darker in the other half; then Gaussian pixel noise of standard deviation `noise`,
    clipped to [0, 1]. A few thousand 32x32 images a second. size >= 8.
    """
    n = check_positive_int("n", n)
    size = check_positive_int("size", size, minimum=8)
    channels = check_positive_int("channels", channels)
    rotate = check_number("rotate", rotate, 0.0, 45.0)
    noise = check_number("noise", noise, 0.0)
    rng = _as_rng(seed, "seed")
    num_classes = len(SHAPE_NAMES)

    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    half = rng.uniform(0.22, 0.42, n) * size                       # half-size in pixels
    centre_y = rng.uniform(half, size - half)
    centre_x = rng.uniform(half, size - half)
    turn = np.deg2rad(rng.uniform(-rotate, rotate, n))
    shape_bright = rng.random(n) < 0.5
    textures = rng.integers(0, len(TEXTURE_NAMES), (2, n))        # shape's, background's

    grid = (np.arange(size) + 0.5)                                 # pixel centres
    x, y = grid[None, None, :] / size, grid[None, :, None] / size  # (1, 1, S), (1, S, 1)
    x, y = np.broadcast_arrays(x, y)                               # (1, S, S) each
    shape_colour = _textured_region(_texture_fields(textures[0], x, y, rng), shape_bright,
                                    channels, rng)
    background = _textured_region(_texture_fields(textures[1], x, y, rng), ~shape_bright,
                                  channels, rng)

    images = background
    where = np.zeros((n, size, size), dtype=bool)
    for kind in range(num_classes):
        idx = np.flatnonzero(labels == kind)
        if idx.size == 0:
            continue
        dy = (grid[None, :, None] - centre_y[idx, None, None]) / half[idx, None, None]
        dx = (grid[None, None, :] - centre_x[idx, None, None]) / half[idx, None, None]
        cos, sin = np.cos(turn[idx])[:, None, None], np.sin(turn[idx])[:, None, None]
        u, v = cos * dx + sin * dy, cos * dy - sin * dx             # in the shape's own frame
        inside = _shape_mask(kind, u, v)[:, None]                   # (k, 1, S, S)
        images[idx] = np.where(inside, shape_colour[idx], images[idx])
        where[idx] = inside[:, 0]
    if noise > 0:
        pixel_noise = rng.standard_normal(images.shape, dtype=np.float32)
        pixel_noise *= np.float32(noise)
        images += pixel_noise
    np.clip(images, 0.0, 1.0, out=images)
    return (images, labels, where) if masks else (images, labels)


# ============================================================================================
# Digits on textures


def _sample_bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """images (N, h, w) read at fractional positions rows, cols (N, S, S) (pixel centres at
    integers), bilinearly, zero outside: (N, S, S)."""
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))          # a ring of zeros outside
    r = np.clip(rows + 1, 0, h + 0.999)
    c = np.clip(cols + 1, 0, w + 0.999)
    r0, c0 = np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)
    r1, c1 = np.minimum(r0 + 1, h + 1), np.minimum(c0 + 1, w + 1)
    fr, fc = r - r0, c - c0
    i = np.arange(n)[:, None, None]
    top = padded[i, r0, c0] * (1 - fc) + padded[i, r0, c1] * fc
    bottom = padded[i, r1, c0] * (1 - fc) + padded[i, r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def textured_digits(
    X, y, copies: int = 1, size: int = 16, rotate: float = 15.0, noise: float = 0.04, seed=0,
) -> tuple[np.ndarray, np.ndarray]:
    """Grey digits drawn onto textured backgrounds at random sizes, positions and angles.

    X: (N, 1, h, w) grey images in [0, 1] (e.g. `load_digits().X_train`, 8x8), y: (N,) labels.
    Returns (N * copies, 3, size, size) float32 in [0, 1] and the labels, each image drawn
    `copies` times (image i's copies are rows i, N + i, 2N + i, ...).

    Each drawing scales the digit to a height of 55-85% of the side, turns it by up to `rotate`
    degrees and places it at random, fully inside; its strokes get one colour and the background
    one of the textures of `textured_shapes` in another, the strokes brighter than the background
    in half of the drawings and darker in the other half; then pixel noise. The same network
    that reads these must ignore position, size, angle, colour, polarity and texture, which is
    what makes them hard to learn from a few labelled examples.
    """
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[1] != 1:
        raise ValueError(f"X must be grey images of shape (N, 1, h, w), got shape {X.shape}")
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), one label per image, got "
                         f"shape {y.shape}")
    copies = check_positive_int("copies", copies)
    size = check_positive_int("size", size, minimum=8)
    rotate = check_number("rotate", rotate, 0.0, 45.0)
    noise = check_number("noise", noise, 0.0)
    rng = _as_rng(seed, "seed")
    source = np.tile(X[:, 0].astype(np.float64), (copies, 1, 1))      # (n, h, w)
    labels = np.tile(y, copies).astype(np.int64)
    n, h, w = source.shape

    height = rng.uniform(0.55, 0.85, n) * size                          # digit height, pixels
    scale = height / h                                                   # output px per input px
    turn = np.deg2rad(rng.uniform(-rotate, rotate, n))
    # The turned digit's bounding box, to keep it inside the image.
    cos, sin = np.abs(np.cos(turn)), np.abs(np.sin(turn))
    half_h = 0.5 * scale * (h * cos + w * sin)
    half_w = 0.5 * scale * (w * cos + h * sin)
    centre_y = rng.uniform(half_h, np.maximum(size - half_h, half_h))
    centre_x = rng.uniform(half_w, np.maximum(size - half_w, half_w))

    grid = np.arange(size) + 0.5
    dy = grid[None, :, None] - centre_y[:, None, None]                  # (n, S, 1)
    dx = grid[None, None, :] - centre_x[:, None, None]                  # (n, 1, S)
    c, s = np.cos(turn)[:, None, None], np.sin(turn)[:, None, None]
    # Output pixel -> position in the digit image (turn back, then scale down).
    rows = (c * dy - s * dx) / scale[:, None, None] + (h - 1) / 2
    cols = (s * dy + c * dx) / scale[:, None, None] + (w - 1) / 2
    ink = np.clip(_sample_bilinear(source, rows, cols), 0.0, 1.0)[:, None]   # (n, 1, S, S)

    strokes_bright = rng.random(n) < 0.5
    x_unit, y_unit = np.broadcast_arrays(grid[None, None, :] / size, grid[None, :, None] / size)
    background = _textured_region(
        _texture_fields(rng.integers(0, len(TEXTURE_NAMES), n), x_unit, y_unit, rng),
        ~strokes_bright, 3, rng)
    stroke = np.where(strokes_bright[:, None], rng.uniform(0.7, 1.0, (n, 3)),
                      rng.uniform(0.0, 0.25, (n, 3)))[:, :, None, None]
    images = (background * (1 - ink) + stroke * ink).astype(np.float32)
    if noise > 0:
        pixel_noise = rng.standard_normal(images.shape, dtype=np.float32)
        pixel_noise *= np.float32(noise)
        images += pixel_noise
    np.clip(images, 0.0, 1.0, out=images)
    return images, labels
