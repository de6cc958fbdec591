"""Datasets for the course: bundled digits, synthetic shapes, and real MNIST / CIFAR-10 files,
and the steps of the training recipe that come before the network sees them.

Everything returns NumPy arrays laid out the way the layers want them::

    X: (N, C, H, W) float32 in [0, 1] (or uint8 0..255 where asked)      y: (N,) int64 labels

so the NumPy lectures use this package without torch (it is never imported here unless a torch
tensor is handed in), and `cnnlib.torch.fit` takes the same arrays.

Loading (this module):

- `load_digits(size=8)`: scikit-learn's 1,797 bundled 8x8 digits, optionally resized to 28x28 or
  32x32; a fixed, seeded train/val/test split. Nothing to download.
- `synthetic_shapes(n)`, `textured_shapes(n)`, `textured_digits(n)` (`cnnlib.data.synthetic`):
  generated images, any number, any size: plain shapes with noise, and the pretrained networks'
  source tasks (ten shapes on textures; digits drawn onto textures).
- `load_mnist(root)` and `load_cifar10(root)`: the real datasets from their official file formats
  (IDX for MNIST, pickled Python batches for CIFAR-10) in a local folder. They never touch the
  network unless you pass ``download=True``; then every file is checked against its published
  SHA-256 before it is used.

Then one module per step of the recipe, all re-exported here (``data.Augment`` etc.):

- `cnnlib.data.splits`: `Splits`, `train_val_test_split` (stratified, seeded), `select_classes`
  and `per_class_subset` (some classes only; k examples per class).
- `cnnlib.data.preprocess`: `per_pixel_normalize` / `per_channel_normalize` (statistics fitted
  on the training set only, then applied to val and test), and PCA / ZCA whitening
  (`pca_whiten`, `zca_whiten`).
- `cnnlib.data.augment`: live augmentation per batch, on NumPy arrays or torch tensors:
  `random_crop` (pad, then crop: a small shift), `random_flip`, `random_rotation`,
  `random_noise`, Krizhevsky et al.'s colour noise along the principal components of the
  pixels (`color_pca`, `pca_color_noise`), and `Augment`, which chains them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from cnnlib.numpy._checks import (
    as_pair,
    check_ndim,
    check_positive_int,
    describe,
)

from . import augment, preprocess, splits
from .augment import *  # noqa: F403
from .preprocess import *  # noqa: F403
from .splits import *  # noqa: F403
from .splits import Splits, train_val_test_split
from .synthetic import (
    SHAPE_NAMES,
    TEXTURE_NAMES,
    synthetic_shapes,
    textured_digits,
    textured_shapes,
)

__all__ = [
    "CIFAR10_CLASSES",
    "SHAPE_NAMES",
    "ChecksumError",
    "DownloadError",
    "load_cifar10",
    "load_digits",
    "load_mnist",
    "read_idx",
    "resize_images",
    "TEXTURE_NAMES",
    "synthetic_shapes",
    "textured_digits",
    "textured_shapes",
    *splits.__all__,
    *preprocess.__all__,
    *augment.__all__,
]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))


# ============================================================================================
# Resizing


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of linear-interpolation weights, pixel centres aligned.

    Output pixel i covers the same stretch of the image as input pixels (i + 1/2) * n_in/n_out
    - 1/2 (the convention of PIL and torch's align_corners=False); positions past the edge are
    clamped. Every row sums to 1, so a constant image stays constant.
    """
    centre = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    centre = np.clip(centre, 0, n_in - 1)
    left = np.floor(centre).astype(np.int64)
    right = np.minimum(left + 1, n_in - 1)
    frac = centre - left
    weights = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(weights, (rows, left), 1 - frac)
    np.add.at(weights, (rows, right), frac)
    return weights


def _nearest_weights(n_in: int, n_out: int) -> np.ndarray:
    source = np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64), n_in - 1)
    weights = np.zeros((n_out, n_in))
    weights[np.arange(n_out), source] = 1.0
    return weights


def resize_images(x, size, method: str = "bilinear") -> np.ndarray:
    """Resize a batch of images: x (N, C, H, W) -> (N, C, H2, W2), `size` an int or (H2, W2).

    method: "bilinear" (pixel centres aligned, edges clamped) or "nearest". Bilinear resizing
    is separable, so it is two matrix products, rows then columns: out = R_h @ x @ R_w^T, with
    R (out, in) the interpolation weights. Floating dtypes are kept, integers become float32.
    """
    x = np.asarray(x)
    check_ndim("x", x, 4, "(N, C, H, W)")
    out_h, out_w = as_pair("size", size)
    makers = {"bilinear": _linear_weights, "nearest": _nearest_weights}
    if method not in makers:
        raise ValueError(f'method must be "bilinear" or "nearest", got {method!r}')
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    rows = makers[method](x.shape[2], out_h).astype(dtype)
    cols = makers[method](x.shape[3], out_w).astype(dtype)
    return np.einsum("hi,ncij,wj->nchw", rows, x.astype(dtype, copy=False), cols,
                     optimize=True)


# ============================================================================================
# Bundled digits


def load_digits(
    size=8, channels: int = 1, val=0.15, test=0.15, seed=0, method: str = "bilinear"
) -> Splits:
    """scikit-learn's bundled handwritten digits (1,797 images, 10 classes), split and ready.

    X_*: (N, channels, size, size) float32 in [0, 1] (the originals hold 0..16, divided by 16);
    y_*: (N,) int64 digits. size: 8 (as stored), or e.g. 28 (LeNet-5's input) or 32, resized
    with `resize_images`; channels: 1, or 3 to copy the grey image into R, G and B for nets
    built for colour. val, test: fractions or counts, split with `train_val_test_split`
    (stratified, `seed` fixed: everyone gets the same split).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    channels = check_positive_int("channels", channels)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (grey copied to RGB), got {channels}")
    bunch = sklearn_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8)
    if size != 8 and size != (8, 8):
        images = np.clip(resize_images(images, size, method), 0.0, 1.0)
    images = np.ascontiguousarray(np.repeat(images, channels, axis=1))
    labels = bunch.target.astype(np.int64)
    return train_val_test_split(images, labels, val=val, test=test, seed=seed,
                                class_names=DIGIT_CLASSES)


# ============================================================================================
# Files: downloads (opt-in, checksummed), IDX, pickled CIFAR batches


class DownloadError(RuntimeError):
    """A file could not be fetched (no network, server refused, ...)."""


class ChecksumError(ValueError):
    """A downloaded file's SHA-256 is not the published one: it is not the file we wanted."""


# Indirection so the tests can replace the network with a function; nothing else sets it.
_urlopen = urllib.request.urlopen
_TIMEOUT_S = 60

# MNIST: the official page (http://yann.lecun.com/exdb/mnist/) publishes no checksums and has
# often refused downloads lately, so we also list the two mirrors that torchvision and
# TensorFlow use. The SHA-256 sums (and sizes) of the four gzipped files are those in
# TensorFlow Datasets' checksum list for `mnist` (the files hosted at
# storage.googleapis.com/cvdf-datasets/mnist/), byte-identical on all three sites.
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_FILES = {
    "train-images-idx3-ubyte": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                9_912_422),
    "train-labels-idx1-ubyte": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                28_881),
    "t10k-images-idx3-ubyte": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                               1_648_877),
    "t10k-labels-idx1-ubyte": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                               4_542),
}

# CIFAR-10: the official page (https://www.cs.toronto.edu/~kriz/cifar.html) publishes the MD5
# c58f30108f718f92721af3b95e74349a of the archive; its SHA-256 (and size, 170,498,071 bytes) is
# the one Keras pins in keras.datasets.cifar10 (`file_hash=`), for the same official URL.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(urls, dest: Path, sha256: str) -> Path:
    """Fetch `dest.name` from the first of `urls` (full file URLs) that answers, check its
    SHA-256, and only then move it to `dest`. A wrong checksum stops at once (ChecksumError);
    network failures try the next URL and end in a DownloadError that says what to do offline.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        try:
            with _urlopen(url, timeout=_TIMEOUT_S) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except OSError as error:  # URLError, HTTPError, timeouts, refused connections
            partial.unlink(missing_ok=True)
            failures.append(f"{url}: {getattr(error, 'reason', error)}")
            continue
        got = _sha256(partial)
        if got != sha256:
            partial.unlink(missing_ok=True)
            raise ChecksumError(
                f"{dest.name} downloaded from {url} has SHA-256 {got}, but the published one "
                f"is {sha256}: the file is damaged or not the official one, so it was deleted "
                f"and not used"
            )
        os.replace(partial, dest)
        return dest
    raise DownloadError(
        f"could not download {dest.name} (are you offline?):\n  " + "\n  ".join(failures)
        + f"\nDownload it on a machine with network access and copy it to {dest}"
    )


_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it is gzip data (judged by its first two bytes)."""
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: damaged gzip file ({error}); download it again") from error


def read_idx(path) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or not, as a NumPy array.

    Layout: two zero bytes, a type byte (0x08 = unsigned byte, ...), the number of dimensions d,
    then d big-endian uint32 sizes, then the data in C order. The file must hold exactly the
    data the header announces: a truncated or padded file is an error, not a silent misread.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (magic number "
                         f"0x{data[:4].hex() or 'empty'}; IDX files start 0x0000 then a type "
                         f"byte 08/09/0b/0c/0d/0e and the number of dimensions)")
    dtype = np.dtype(_IDX_TYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, needs {header})")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: the header announces shape {shape} ({expected} bytes of data) but the "
            f"file holds {len(data) - header} bytes after the header: "
            f"{'truncated' if len(data) - header < expected else 'extra bytes'}; "
            f"download it again"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_mnist_file(root: Path, stem: str) -> Path | None:
    # root itself, or torchvision's layout root/MNIST/raw, unzipped or gzipped.
    for folder in (root, root / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _missing_files_message(dataset: str, root: Path, names: list[str], where: str,
                           function: str) -> str:
    return (
        f"{dataset} not found: {root.resolve()} is missing {', '.join(names)}.\n"
        f"{where}\n"
        f"Or let cnnlib fetch and verify them: {function}({str(root)!r}, download=True)"
    )


def _image_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype != np.uint8 and dtype.kind != "f":
        raise ValueError(f'dtype must be "uint8" (0..255) or a float dtype such as "float32" '
                         f"(0..1), got {dtype}")
    return dtype


def _as_images(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    return pixels.astype(dtype) / dtype.type(255)


def load_mnist(root, dtype="float32", val=0.1, seed=0, download: bool = False) -> Splits:
    """The MNIST digits from the four official IDX files in the folder `root`.

    Files (gzipped ``.gz`` as distributed, or unzipped; also found in torchvision's
    ``root/MNIST/raw``): train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte. Returns Splits with X: (N, 1, 28, 28) float32 in [0, 1] (or uint8
    0..255 with dtype="uint8") and y: (N,) int64; the official 10,000 test images are the test
    set, and `val` (a fraction or count) of the 60,000 training images, stratified and seeded,
    become the validation set.

    Nothing is downloaded unless download=True: then missing files are fetched from the
    official site or its mirrors and checked against their published SHA-256 first.
    """
    root = Path(root)
    dtype = _image_dtype(dtype)
    paths = {stem: _find_mnist_file(root, stem) for stem in MNIST_FILES}
    missing = [stem for stem, path in paths.items() if path is None]
    if missing and download:
        for stem in missing:
            sha256, _ = MNIST_FILES[stem]
            name = stem + ".gz"
            paths[stem] = _download([base + name for base in MNIST_URLS], root / name, sha256)
    elif missing:
        raise FileNotFoundError(_missing_files_message(
            "MNIST", root, [s + ".gz" for s in missing],
            f"Download them from {MNIST_URLS[-1]} (or the mirror {MNIST_URLS[0]}) and put them, "
            f"gzipped or not, in that folder.", "load_mnist"))

    def load(kind: str) -> tuple[np.ndarray, np.ndarray]:
        prefix = "train" if kind == "train" else "t10k"
        images_path = paths[f"{prefix}-images-idx3-ubyte"]
        labels_path = paths[f"{prefix}-labels-idx1-ubyte"]
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{images_path}: expected an IDX image file (magic 0x00000803: "
                             f"unsigned bytes, 3 dimensions N x H x W), got {images.ndim} "
                             f"dimensions of {images.dtype}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise ValueError(f"{labels_path}: expected an IDX label file (magic 0x00000801: "
                             f"unsigned bytes, 1 dimension N), got {labels.ndim} dimensions "
                             f"of {labels.dtype}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images_path.name} holds {images.shape[0]} images but "
                             f"{labels_path.name} holds {labels.shape[0]} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{labels_path}: labels must be digits 0..9, found {labels.max()}")
        return _as_images(images[:, None], dtype), labels.astype(np.int64)

    X_train, y_train = load("train")
    X_test, y_test = load("test")
    return _with_val_split(X_train, y_train, X_test, y_test, val, seed, DIGIT_CLASSES)


def _with_val_split(X_train, y_train, X_test, y_test, val, seed, class_names) -> Splits:
    """Carve the validation set out of the official training set; the official test set
    stays the test set."""
    split = train_val_test_split(X_train, y_train, val=val, test=0, seed=seed,
                                 class_names=class_names)
    split.X_test, split.y_test = X_test, y_test
    return split


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10's batches and nothing else.

    A pickle is a program: it may name any importable function (os.system, say) and call it
    while loading, so a tampered "dataset" from a classmate or an unofficial mirror could run
    code on your machine. The official batches only need to rebuild dicts, lists, bytes and
    one uint8 NumPy array, so only the few globals that takes are allowed.
    """

    @staticmethod
    @functools.cache
    def _allowed() -> dict:
        try:
            from numpy._core.multiarray import _reconstruct  # NumPy >= 2
        except ImportError:  # pragma: no cover - NumPy 1.x
            from numpy.core.multiarray import _reconstruct
        return {
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct,   # as in the official files
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # pickled by NumPy >= 2
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): __import__("codecs").encode,  # bytes, pickled by Python 3
        }

    def find_class(self, module: str, name: str):
        allowed = self._allowed()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR-10 batch holds only dicts, lists, "
                f"bytes and a NumPy array, so this file is not an official batch"
            )
        return allowed[(module, name)]


def _unpickle_batch(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a readable CIFAR-10 batch: {error}") from error
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: a CIFAR-10 batch is a dict, got {type(batch).__name__}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: data (N, 3072) uint8, each row 1024 red, 1024 green, 1024 blue values of a
    32x32 image in row-major order; labels: N ints in 0..9."""
    batch = _unpickle_batch(path)
    for key in ("data", "labels"):
        if key not in batch:
            raise ValueError(f"{path}: a CIFAR-10 batch has the keys 'data' and 'labels'; "
                             f"this one has {sorted(map(str, batch))}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got "
                         f"{describe(data)}")
    labels = np.asarray(batch["labels"])
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: 'labels' must hold {data.shape[0]} integers (one per "
                         f"image), got {describe(labels)}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract the CIFAR-10 archive, refusing links and paths that leave `dest`."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(CIFAR10_FOLDER)]
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the standard library checks
            tar.extractall(dest, members=members, filter="data")
            return
        for member in members:  # older Pythons: refuse what the "data" filter would refuse
            target = (dest / member.name).resolve()
            if not (member.isfile() or member.isdir()) or dest.resolve() not in target.parents:
                raise ValueError(f"{archive}: refusing to extract {member.name!r}")
        tar.extractall(dest, members=members)


def load_cifar10(root, dtype="float32", val=0.1, seed=0, download: bool = False) -> Splits:
    """CIFAR-10 (60,000 32x32 colour images, 10 classes) from the official Python batches.

    root: the folder holding ``cifar-10-batches-py/`` (what the official archive unpacks to), or
    that folder itself. It must contain data_batch_1 ... data_batch_5, test_batch and
    batches.meta. Returns Splits with X: (N, 3, 32, 32) float32 in [0, 1] (or uint8 with
    dtype="uint8"), y: (N,) int64, and the class names from batches.meta; the 10,000 images of
    test_batch are the test set and `val` of the 50,000 training images (stratified, seeded)
    the validation set.

    The batches are pickles, read by a restricted unpickler that accepts only what the official
    files contain (see `_CifarUnpickler`). Nothing is downloaded unless download=True: then the
    official archive is fetched, its SHA-256 checked, and it is unpacked into `root`.
    """
    root = Path(root)
    dtype = _image_dtype(dtype)
    folder = root if root.name == CIFAR10_FOLDER else root / CIFAR10_FOLDER
    missing = [name for name in CIFAR10_BATCHES if not (folder / name).is_file()]
    if missing and download:
        archive = root / CIFAR10_ARCHIVE
        if not archive.is_file():
            _download([CIFAR10_URL], archive, CIFAR10_SHA256)
        elif _sha256(archive) != CIFAR10_SHA256:
            raise ChecksumError(f"{archive} exists but its SHA-256 is not the published "
                                f"{CIFAR10_SHA256}: delete it and try again")
        _safe_extract(archive, root)
        folder = root / CIFAR10_FOLDER
        missing = [name for name in CIFAR10_BATCHES if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"{archive} did not contain {', '.join(missing)}")
    elif missing:
        raise FileNotFoundError(_missing_files_message(
            "CIFAR-10", folder, missing,
            f"Download {CIFAR10_URL} (the 'CIFAR-10 python version' of "
            f"https://www.cs.toronto.edu/~kriz/cifar.html) and unpack it in {root.resolve()}, "
            f"so that {folder.resolve()} holds the batches.", "load_cifar10"))

    meta = _unpickle_batch(folder / "batches.meta")
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise ValueError(f"{folder / 'batches.meta'}: expected 'label_names', a list of 10 "
                         f"class names, got {names!r:.100}")
    class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    train = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    X_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    X_test, y_test = _read_cifar_batch(folder / "test_batch")
    return _with_val_split(_as_images(X_train, dtype), y_train, _as_images(X_test, dtype),
                           y_test, val, seed, class_names)
