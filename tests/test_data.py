"""cnnlib.data: loaders on files written here in the real formats, splits, resizing, normalisation,
augmentation and the synthetic shapes. Nothing here touches the network: downloads are served
from file:// URLs in tmp_path, or refused by a stand-in for urlopen."""

import gzip
import hashlib
import io
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest
import torch

from cnnlib import data

# --------------------------------------------------------------------------------------------
# Writers for the real file formats


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX: 0x0000, type byte 0x08 (unsigned byte), ndim, big-endian uint32 sizes, the bytes."""
    header = b"\x00\x00\x08" + bytes([array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write(path, payload: bytes, gz: bool):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def fake_mnist(rng, n_train=40, n_test=12):
    """Small MNIST-like arrays: every digit present, all pixel values in use."""
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def write_mnist(folder, arrays, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write(folder / (stem + (".gz" if gz else "")), idx_bytes(array), gz)


@pytest.fixture
def mnist(tmp_path):
    arrays = fake_mnist(np.random.default_rng(0))
    write_mnist(tmp_path / "mnist", arrays)
    return tmp_path / "mnist", arrays


CIFAR_NAMES = [n.encode() for n in data.CIFAR10_CLASSES]


def cifar_batch(rng, n):
    # The official batches: a dict with bytes keys, 'data' a (N, 3072) uint8 array (R, G, B
    # planes of 32x32, row-major), 'labels' a list of ints. Protocol 2, as in the official files.
    return {
        b"batch_label": b"training batch",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def write_cifar(root, rng, n=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batches[name] = cifar_batch(rng, n)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    meta = {b"label_names": CIFAR_NAMES, b"num_cases_per_batch": n, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder, batches


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a URL."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to download {args[0]!r}")

    monkeypatch.setattr(data, "_urlopen", refuse)


# --------------------------------------------------------------------------------------------
# MNIST


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_loads_exact_values(tmp_path, gz, no_network):
    arrays = fake_mnist(np.random.default_rng(1))
    write_mnist(tmp_path, arrays, gz=gz)
    raw = data.load_mnist(tmp_path, dtype="uint8", val=0)
    assert raw.X_train.shape == (40, 1, 28, 28) and raw.X_train.dtype == np.uint8
    np.testing.assert_array_equal(raw.X_train[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(raw.X_test[:, 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert raw.y_train.dtype == np.int64 and raw.X_val.shape == (0, 1, 28, 28)
    assert raw.class_names == tuple("0123456789")

    scaled = data.load_mnist(tmp_path, val=0)
    assert scaled.X_train.dtype == np.float32
    np.testing.assert_array_equal(scaled.X_train, raw.X_train.astype(np.float32) / 255)
    assert scaled.X_train.max() == 1.0 and scaled.X_train.min() == 0.0


def test_mnist_validation_split_is_stratified_and_seeded(mnist):
    root, arrays = mnist
    split = data.load_mnist(root, val=10, seed=3)
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (30, 10, 12)
    assert np.bincount(split.y_val, minlength=10).tolist() == [1] * 10  # 4 of each digit -> 1
    again = data.load_mnist(root, val=10, seed=3)
    np.testing.assert_array_equal(split.X_val, again.X_val)
    # every image lands in exactly one of train and val
    rows = {r.tobytes() for r in np.concatenate([split.X_train, split.X_val])}
    original = arrays["train-images-idx3-ubyte"].astype(np.float32)[:, None] / 255
    assert rows == {r.tobytes() for r in original}


def test_mnist_found_in_torchvision_layout(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", fake_mnist(np.random.default_rng(2)), gz=False)
    assert data.load_mnist(tmp_path).X_test.shape == (12, 1, 28, 28)


def test_mnist_missing_files_say_where_and_what(tmp_path, no_network):
    arrays = fake_mnist(np.random.default_rng(0))
    del arrays["t10k-labels-idx1-ubyte"]
    write_mnist(tmp_path, arrays)
    with pytest.raises(FileNotFoundError) as error:
        data.load_mnist(tmp_path)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "train-images" not in message
    assert str(tmp_path.resolve()) in message
    assert "http://yann.lecun.com/exdb/mnist/" in message and "download=True" in message


def test_mnist_wrong_magic_is_named(mnist):
    root, arrays = mnist
    # a label file where the images should be: a valid IDX file, but 1-D (magic 0x00000801)
    write(root / "train-images-idx3-ubyte.gz", idx_bytes(arrays["train-labels-idx1-ubyte"]), True)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: expected an IDX image "
                                         r"file \(magic 0x00000803"):
        data.load_mnist(root)
    write(root / "train-images-idx3-ubyte.gz", b"PK\x03\x04 not idx at all", True)
    with pytest.raises(ValueError, match=r"not an IDX file \(magic number 0x504b0304"):
        data.load_mnist(root)


def test_idx_truncated_and_padded_files_are_errors(tmp_path):
    image_bytes = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    short = write(tmp_path / "short", image_bytes[:-5], gz=False)
    with pytest.raises(ValueError, match=r"shape \(3, 28, 28\) \(2352 bytes.*2347 bytes.*trunc"):
        data.read_idx(short)
    long = write(tmp_path / "long.gz", image_bytes + b"\x00", gz=True)
    with pytest.raises(ValueError, match="extra bytes"):
        data.read_idx(long)
    header_only = write(tmp_path / "header", image_bytes[:9], gz=False)
    with pytest.raises(ValueError, match="truncated IDX header"):
        data.read_idx(header_only)
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(gzip.compress(image_bytes)[:40])
    with pytest.raises(ValueError, match="damaged gzip file"):
        data.read_idx(damaged)


def test_idx_reads_other_types_big_endian(tmp_path):
    values = np.array([[1, -2, 300], [70000, 5, -6]], dtype=">i4")
    payload = b"\x00\x00\x0c\x02" + np.array(values.shape, ">u4").tobytes() + values.tobytes()
    out = data.read_idx(write(tmp_path / "ints", payload, gz=False))
    np.testing.assert_array_equal(out, values)
    assert out.dtype == np.int32 and out.dtype.isnative


def test_mnist_image_and_label_counts_must_agree(mnist):
    root, _ = mnist
    write(root / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(11, np.uint8)), True)
    with pytest.raises(ValueError, match=r"12 images but t10k-labels-idx1-ubyte\.gz holds 11"):
        data.load_mnist(root)


# --------------------------------------------------------------------------------------------
# CIFAR-10


@pytest.mark.parametrize("point_at", ["parent", "folder"])
def test_cifar10_loads_exact_layout(tmp_path, point_at, no_network):
    folder, batches = write_cifar(tmp_path, np.random.default_rng(0))
    root = tmp_path if point_at == "parent" else folder
    raw = data.load_cifar10(root, dtype="uint8", val=0)
    assert raw.X_train.shape == (20, 3, 32, 32) and raw.X_train.dtype == np.uint8
    assert raw.X_test.shape == (4, 3, 32, 32) and raw.y_test.dtype == np.int64
    assert raw.class_names == data.CIFAR10_CLASSES
    # image 5 is the second image of data_batch_2; channel c, row r, column k is byte
    # c*1024 + r*32 + k of its row (the R, G, B planes, each row-major)
    row = batches["data_batch_2"][b"data"][1]
    for c, r, k in [(0, 0, 0), (1, 5, 7), (2, 31, 30), (0, 17, 2)]:
        assert raw.X_train[5, c, r, k] == row[c * 1024 + r * 32 + k]
    labels = np.concatenate([batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)])
    np.testing.assert_array_equal(raw.y_train, labels)
    np.testing.assert_array_equal(raw.X_test.reshape(4, -1), batches["test_batch"][b"data"])

    scaled = data.load_cifar10(root, val=5)
    assert scaled.X_train.dtype == np.float32 and scaled.X_val.shape == (5, 3, 32, 32)
    assert scaled.X_train.min() >= 0.0 and scaled.X_train.max() <= 1.0


def test_cifar10_refuses_pickles_that_run_code(tmp_path):
    folder, _ = write_cifar(tmp_path, np.random.default_rng(0))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # would create the file if unpickled

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_3.*refused to load io.open"):
        data.load_cifar10(tmp_path)
    assert not marker.exists()


def test_cifar10_malformed_batches(tmp_path):
    folder, batches = write_cifar(tmp_path, np.random.default_rng(0))
    bad = {**batches["test_batch"], b"data": np.zeros((4, 100), np.uint8)}
    (folder / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match=r"'data' must be a uint8 array of shape \(N, 3072\), "
                                         r"got an array of shape \(4, 100\)"):
        data.load_cifar10(tmp_path)
    bad = {**batches["test_batch"], b"labels": [1, 2, 3]}
    (folder / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match="'labels' must hold 4 integers"):
        data.load_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps(batches["test_batch"], protocol=2)[:50])
    with pytest.raises(ValueError, match="test_batch: not a readable CIFAR-10 batch"):
        data.load_cifar10(tmp_path)


def test_cifar10_missing_files_say_where_and_what(tmp_path, no_network):
    folder, _ = write_cifar(tmp_path, np.random.default_rng(0))
    (folder / "data_batch_4").unlink()
    (folder / "batches.meta").unlink()
    with pytest.raises(FileNotFoundError) as error:
        data.load_cifar10(tmp_path)
    message = str(error.value)
    assert "data_batch_4, batches.meta" in message and "data_batch_1" not in message
    assert data.CIFAR10_URL in message and str(folder.resolve()) in message


# --------------------------------------------------------------------------------------------
# Downloads: only with download=True, always checksummed, never here over the network


def test_download_refuses_clearly_when_offline(tmp_path, monkeypatch):
    calls = []

    def offline(url, timeout):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data, "_urlopen", offline)
    with pytest.raises(data.DownloadError) as error:
        data.load_mnist(tmp_path / "m", download=True)
    message = str(error.value)
    assert "are you offline?" in message and "name resolution" in message
    assert str(tmp_path / "m" / "train-images-idx3-ubyte.gz") in message
    assert calls == [base + "train-images-idx3-ubyte.gz" for base in data.MNIST_URLS]
    assert not any((tmp_path / "m").iterdir())  # nothing half-written left behind


def _serve_mnist(tmp_path, monkeypatch, arrays):
    mirror = tmp_path / "mirror"
    write_mnist(mirror, arrays, gz=True)
    monkeypatch.setattr(data, "MNIST_URLS", (mirror.as_uri() + "/",))
    return mirror


def test_mnist_download_checks_sha256(tmp_path, monkeypatch):
    arrays = fake_mnist(np.random.default_rng(4))
    mirror = _serve_mnist(tmp_path, monkeypatch, arrays)
    root = tmp_path / "root"
    # our fake files are not the official ones: the published checksums reject them
    with pytest.raises(data.ChecksumError, match=r"train-images-idx3-ubyte.gz downloaded from "
                                                 r"file://.*has SHA-256 [0-9a-f]{64}, but the "
                                                 r"published one is 440fcabf"):
        data.load_mnist(root, download=True)
    assert list(root.iterdir()) == []

    sums = {stem: (hashlib.sha256((mirror / (stem + ".gz")).read_bytes()).hexdigest(), 0)
            for stem in data.MNIST_FILES}
    monkeypatch.setattr(data, "MNIST_FILES", sums)
    split = data.load_mnist(root, download=True, dtype="uint8", val=0)
    np.testing.assert_array_equal(split.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert sorted(p.name for p in root.iterdir()) == sorted(s + ".gz" for s in sums)


def test_cifar10_download_checks_sha256_and_unpacks(tmp_path, monkeypatch):
    source, batches = write_cifar(tmp_path / "src", np.random.default_rng(5))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")
    monkeypatch.setattr(data, "CIFAR10_URL", archive.as_uri())
    root = tmp_path / "root"
    with pytest.raises(data.ChecksumError, match="published one is 6d958be0"):
        data.load_cifar10(root, download=True)
    assert list(root.iterdir()) == []

    monkeypatch.setattr(data, "CIFAR10_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    split = data.load_cifar10(root, download=True, dtype="uint8", val=0)
    np.testing.assert_array_equal(split.X_test.reshape(4, -1), batches["test_batch"][b"data"])
    assert (root / "cifar-10-batches-py" / "batches.meta").is_file()


def test_download_failure_tries_each_mirror_then_uses_one_that_answers(tmp_path, monkeypatch):
    payload = b"hello, digits"
    good = tmp_path / "good.bin"
    good.write_bytes(payload)
    tried = []

    def flaky(url, timeout):
        tried.append(url)
        if "first" in url:
            raise urllib.error.HTTPError(url, 403, "Forbidden", None, io.BytesIO())
        return open(good, "rb")

    monkeypatch.setattr(data, "_urlopen", flaky)
    dest = tmp_path / "out" / "file.bin"
    data._download(["https://first/x", "https://second/x"], dest,
                   hashlib.sha256(payload).hexdigest())
    assert tried == ["https://first/x", "https://second/x"] and dest.read_bytes() == payload


# --------------------------------------------------------------------------------------------
# Digits and splitting


def test_digits_shapes_range_and_split_sizes():
    split = data.load_digits()
    assert split.X_train.shape[1:] == (1, 8, 8) and split.X_train.dtype == np.float32
    sizes = (len(split.y_train), len(split.y_val), len(split.y_test))
    assert sizes == (1797 - 2 * 270, 270, 270)  # round(0.15 * 1797) = 270
    for X in (split.X_train, split.X_val, split.X_test):
        assert X.min() == 0.0 and X.max() == 1.0
        np.testing.assert_array_equal(X * 16, np.round(X * 16))  # 0..16 divided by 16
    counts = np.bincount(np.concatenate([split.y_train, split.y_val, split.y_test]))
    for y in (split.y_val, split.y_test):  # stratified: each class in proportion, +-1
        assert np.all(np.abs(np.bincount(y, minlength=10) - counts * 270 / 1797) <= 1)
    assert split.num_classes == 10 and split["y_val"] is split.y_val
    assert split.train[0] is split.X_train


@pytest.mark.parametrize("size", [28, 32])
def test_digits_resized(size):
    small, big = data.load_digits(), data.load_digits(size=size, channels=3)
    assert big.X_train.shape[1:] == (3, size, size)
    np.testing.assert_array_equal(big.y_train, small.y_train)  # same split, whatever the size
    np.testing.assert_array_equal(big.X_train[:, 0], big.X_train[:, 2])
    assert big.X_train.min() >= 0.0 and big.X_train.max() <= 1.0
    # resizing keeps the mean brightness roughly (bilinear, edges clamped): within 2%
    assert abs(big.X_train.mean() - small.X_train.mean()) < 0.02


def test_split_seeds_and_disjointness():
    X = np.arange(100)
    y = np.repeat(np.arange(4), 25)
    a = data.train_val_test_split(X, y, val=0.2, test=10, seed=1)
    b = data.train_val_test_split(X, y, val=0.2, test=10, seed=1)
    c = data.train_val_test_split(X, y, val=0.2, test=10, seed=2)
    assert (len(a.X_train), len(a.X_val), len(a.X_test)) == (70, 20, 10)
    np.testing.assert_array_equal(a.X_val, b.X_val)
    assert not np.array_equal(a.X_val, c.X_val)
    assert sorted(np.concatenate([a.X_train, a.X_val, a.X_test])) == list(range(100))
    np.testing.assert_array_equal(a.y_val, y[a.X_val])  # labels travel with their examples
    assert np.bincount(a.y_val).tolist() == [5, 5, 5, 5]
    assert sorted(np.bincount(a.y_test).tolist()) == [2, 2, 3, 3]
    unstratified = [np.bincount(data.train_val_test_split(X, y, 0.2, 0.1, seed=s,
                                                          stratify=False).y_val, minlength=4)
                    for s in range(20)]
    assert any(max(counts) - min(counts) > 1 for counts in unstratified)


def test_split_errors_name_the_argument():
    X, y = np.zeros((10, 1, 2, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match=r"val \+ test must leave some training examples: "
                                         r"5 \+ 5 of 10"):
        data.train_val_test_split(X, y, val=0.5, test=0.5)
    with pytest.raises(ValueError, match=r"y must have shape \(10,\) to match X's 10"):
        data.train_val_test_split(X, y[:9])
    with pytest.raises(TypeError, match="y must hold integer class indices"):
        data.train_val_test_split(X, y.astype(float))
    with pytest.raises(ValueError, match=r"test must be a count in \[0, 10\)"):
        data.train_val_test_split(X, y, test=12)
    with pytest.raises(ValueError, match=r"val must be in \[0, 1\]"):
        data.train_val_test_split(X, y, val=-0.1)


# --------------------------------------------------------------------------------------------
# Resizing


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [3, 8, (5, 11), 28])
def test_resize_constant_stays_constant(method, size):
    x = np.full((2, 3, 8, 6), 0.375)  # exactly representable; rows of weights sum to 1
    out = data.resize_images(x, size, method)
    expected = (2, 3, *(size if isinstance(size, tuple) else (size, size)))
    assert out.shape == expected and out.dtype == np.float64
    np.testing.assert_allclose(out, 0.375, rtol=0, atol=1e-15)


def test_resize_known_values_and_identity():
    row = np.array([[[[0.0, 1.0]]]])
    # output pixel centres fall at -0.25, 0.25, 0.75, 1.25 input pixels; clamped at the edges
    np.testing.assert_array_equal(data.resize_images(row, (1, 4)), [[[[0, 0.25, 0.75, 1]]]])
    np.testing.assert_array_equal(data.resize_images(row, (1, 4), "nearest"), [[[[0, 0, 1, 1]]]])
    x = np.random.default_rng(0).random((2, 1, 5, 7)).astype(np.float32)
    same = data.resize_images(x, (5, 7))
    assert same.dtype == np.float32
    np.testing.assert_array_equal(same, x)
    assert data.resize_images(x.astype(np.uint8), 3).dtype == np.float32


@pytest.mark.parametrize("shape_in,shape_out", [((8, 8), (28, 28)), ((8, 8), (32, 32)),
                                                ((9, 5), (4, 13)), ((32, 32), (16, 16))])
def test_resize_matches_torch_bilinear(shape_in, shape_out):
    # torch's bilinear interpolation without antialiasing uses the same pixel-centre convention
    x = np.random.default_rng(1).random((2, 2, *shape_in))
    ours = data.resize_images(x, shape_out)
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), size=shape_out,
                                             mode="bilinear", align_corners=False)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-12)


def test_resize_errors():
    with pytest.raises(ValueError, match=r"x must have 4 dimensions \(N, C, H, W\)"):
        data.resize_images(np.zeros((8, 8)), 4)
    with pytest.raises(ValueError, match='method must be "bilinear" or "nearest"'):
        data.resize_images(np.zeros((1, 1, 8, 8)), 4, method="cubic")
    with pytest.raises(ValueError, match="size must be >= 1"):
        data.resize_images(np.zeros((1, 1, 8, 8)), 0)


# --------------------------------------------------------------------------------------------
# Normalisation


def test_per_channel_normalize_fits_on_train_only():
    rng = np.random.default_rng(0)
    X_train = rng.normal([1.0, -2.0, 5.0], [1.0, 3.0, 0.5], (200, 8, 8, 3)).transpose(0, 3, 1, 2)
    X_val = rng.normal(0.0, 1.0, (50, 3, 8, 8))
    norm, train, val = data.per_channel_normalize(X_train, X_val)
    assert norm.mean.shape == (1, 3, 1, 1) and norm.std is None
    np.testing.assert_allclose(train.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_array_equal(val, X_val - X_train.mean(axis=(0, 2, 3), keepdims=True))

    norm, train, val = data.per_channel_normalize(X_train, X_val, std=True)
    np.testing.assert_allclose(train.std(axis=(0, 2, 3)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(norm.std.ravel(), X_train.std(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(norm.inverse(val), X_val, rtol=1e-12, atol=1e-12)


def test_per_pixel_normalize_and_float32():
    split = data.load_digits()
    norm, normed = data.per_pixel_normalize(split, std=True)
    assert norm.mean.shape == (1, 1, 8, 8) and isinstance(normed, data.Splits)
    assert normed.X_train.dtype == np.float32
    # float32 values of size ~1 averaged over 1,257 images (statistics in float64): 1e-6 is
    # generous for the rounding and far below any real offset
    np.testing.assert_allclose(normed.X_train.mean(axis=0), 0.0, atol=1e-6)
    std = normed.X_train.std(axis=0, dtype=np.float64)
    blank = norm.std[0] == 1.0  # pixels that are 0 in every training image stay unscaled
    assert blank.any() and np.all(split.X_train[:, blank] == 0)
    np.testing.assert_allclose(std[~blank], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(normed.y_val, split.y_val)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 8, 8\) to match"):
        norm(np.zeros((2, 1, 28, 28), np.float32))


def test_normalize_uint8_becomes_float32():
    X = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    _norm, out = data.per_channel_normalize(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Augmentation


@pytest.fixture
def batch():
    return np.random.default_rng(0).random((16, 3, 10, 12)).astype(np.float32)


def test_flip_twice_is_identity_and_p_extremes(batch):
    once = data.random_flip(batch, rng=7)
    np.testing.assert_array_equal(data.random_flip(once, rng=7), batch)
    flipped = [not np.array_equal(a, b) for a, b in zip(once, batch, strict=True)]
    assert 0 < sum(flipped) < 16
    np.testing.assert_array_equal(data.random_flip(batch, rng=0, p=1.0), batch[..., ::-1])
    np.testing.assert_array_equal(data.random_flip(batch, rng=0, p=0.0), batch)
    for image, out in zip(batch, once, strict=True):
        assert np.array_equal(out, image) or np.array_equal(out, image[..., ::-1])


def test_crop_padding_zero_is_identity(batch):
    np.testing.assert_array_equal(data.random_crop(batch, padding=0, rng=0), batch)


def test_crops_are_shifted_windows_of_the_padded_image(batch):
    padding = 3
    out = data.random_crop(batch, padding=padding, rng=1)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    padded = np.pad(batch, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2))
    offsets = []
    for image, crop in zip(padded, out, strict=True):
        matches = [(t, left) for t in range(2 * padding + 1) for left in range(2 * padding + 1)
                   if np.array_equal(image[:, t:t + 10, left:left + 12], crop)]
        assert len(matches) == 1  # random data: exactly one window fits
        offsets.append(matches[0])
    assert len(set(offsets)) > 4  # the offsets vary from image to image


def test_augment_same_on_numpy_and_torch(batch):
    expected = data.Augment(padding=2, seed=5)(batch)
    got = data.Augment(padding=2, seed=5)(torch.from_numpy(batch))
    assert isinstance(got, torch.Tensor) and got.is_contiguous()
    np.testing.assert_array_equal(got.numpy(), expected)
    again = data.Augment(padding=2, seed=5)
    np.testing.assert_array_equal(again(batch), expected)
    assert not np.array_equal(again(batch), expected)  # the generator moves on


def test_augment_errors(batch):
    with pytest.raises(ValueError, match=r"x must have 4 dimensions"):
        data.random_crop(batch[0], padding=2, rng=0)
    with pytest.raises(TypeError, match="rng must be a numpy Generator, an int seed or None"):
        data.random_flip(batch, rng="seed")
    with pytest.raises(ValueError, match="padding must be >= 0"):
        data.random_crop(batch, padding=-1)


# --------------------------------------------------------------------------------------------
# Synthetic shapes


def test_synthetic_shapes_deterministic_and_balanced():
    X, y = data.synthetic_shapes(103, size=16, num_classes=7, seed=3)
    assert X.shape == (103, 3, 16, 16) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    counts = np.bincount(y, minlength=7)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 103
    X2, y2 = data.synthetic_shapes(103, size=16, num_classes=7, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = data.synthetic_shapes(103, size=16, num_classes=7, seed=4)
    assert not np.array_equal(X, X3)


def test_synthetic_shapes_without_noise_have_two_colours():
    X, y = data.synthetic_shapes(50, size=24, channels=1, noise=0.0, seed=0)
    for image in X:
        values = np.unique(image)
        assert len(values) == 2  # a background and a brighter shape, nothing else
        assert values[0] <= 0.35 and values[1] >= 0.55
    # the same class at the same place gives the same mask: squares cover more than bars
    area = (X > 0.45).mean(axis=(1, 2, 3))
    square, bar = data.SHAPE_NAMES.index("square"), data.SHAPE_NAMES.index("vertical bar")
    assert area[y == square].mean() > area[y == bar].mean()


def test_synthetic_shapes_errors():
    with pytest.raises(ValueError, match=r"num_classes must be at most 10 \(square, circle"):
        data.synthetic_shapes(10, num_classes=11)
    with pytest.raises(ValueError, match="size must be >= 8"):
        data.synthetic_shapes(10, size=4)
    with pytest.raises(ValueError, match=r"noise must be in \[0, inf\)"):
        data.synthetic_shapes(10, noise=-1.0)


def test_numpy_side_never_imports_torch():
    # the NumPy lectures use cnnlib.data without torch installed or loaded
    import subprocess
    import sys

    code = ("import sys, cnnlib.data as d; X, y = d.synthetic_shapes(8, size=8); "
            "d.Augment()(X); d.per_channel_normalize(X); d.resize_images(X, 12); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
