"""cnnlib.numpy.init: fan arithmetic exactly, variances statistically, seeds, errors."""

import math

import numpy as np
import pytest

from cnnlib.numpy import init

AFFINE = (500, 400)  # D = 500 inputs, M = 400 outputs: 200,000 weights
CONV = (128, 64, 3, 3)  # F = 128 filters over C = 64 channels, 3x3: 73,728 weights


def test_fan_in_and_fan_out_exact():
    assert init.fan_in(AFFINE) == 500
    assert init.fan_out(AFFINE) == 400
    # each conv output sums over a C x KH x KW window: 64*3*3 = 576 inputs
    assert init.fan_in(CONV) == 576
    # each input value is read by F filters at KH*KW window positions: 128*9 = 1152
    assert init.fan_out(CONV) == 1152
    assert init.fan_in((6, 3, 5, 7)) == 3 * 5 * 7
    assert init.fan_in([10, 2]) == 10  # a list is as good as a tuple


def _tolerance(n: int) -> float:
    """Five standard deviations of the relative error of a variance estimate from n samples.

    With the mean known to be 0, n * mean(w**2) / sigma**2 is chi-square with n degrees of
    freedom: mean n, variance 2n. So mean(w**2) / sigma**2 has standard deviation sqrt(2 / n):
    0.32% for the 200,000 affine weights, 0.52% for the 73,728 conv weights. Five of those
    (1.6% and 2.6%) make a false alarm a 1-in-a-million event.
    """
    return 5 * math.sqrt(2 / n)


@pytest.mark.parametrize("shape", [AFFINE, CONV], ids=["affine", "conv"])
@pytest.mark.parametrize(
    ("initialiser", "expected_variance"),
    [
        (init.xavier, lambda s: 1 / init.fan_in(s)),
        (init.he, lambda s: 2 / init.fan_in(s)),
        (init.glorot, lambda s: 2 / (init.fan_in(s) + init.fan_out(s))),
        (lambda s, rng: init.small_random(s, scale=0.05, rng=rng), lambda s: 0.05**2),
    ],
    ids=["xavier", "he", "glorot", "small_random"],
)
def test_empirical_variance(shape, initialiser, expected_variance):
    w = initialiser(shape, rng=0)
    assert w.shape == shape
    tolerance = _tolerance(w.size)
    assert tolerance < 0.03  # "within a few percent"
    assert np.mean(w**2) / expected_variance(shape) == pytest.approx(1.0, abs=tolerance)
    # mean 0: the sample mean has standard deviation sigma / sqrt(n)
    assert abs(w.mean()) < 5 * math.sqrt(expected_variance(shape) / w.size)


def test_xavier_and_he_differ_by_exactly_sqrt_2_for_one_seed():
    # the same standard normals, scaled by sqrt(1/fan_in) and sqrt(2/fan_in)
    np.testing.assert_allclose(init.he(CONV, rng=3), math.sqrt(2) * init.xavier(CONV, rng=3))
    assert init.kaiming is init.he


def test_seed_reproducibility():
    np.testing.assert_array_equal(init.he(CONV, rng=7), init.he(CONV, rng=7))
    assert not np.array_equal(init.he(CONV, rng=7), init.he(CONV, rng=8))
    # a Generator is used, not copied: two draws from one generator differ
    rng = np.random.default_rng(7)
    first, second = init.xavier(AFFINE, rng=rng), init.xavier(AFFINE, rng=rng)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, init.xavier(AFFINE, rng=7))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype(dtype):
    for initialiser in (init.small_random, init.xavier, init.glorot, init.he):
        assert initialiser((3, 4), rng=0, dtype=dtype).dtype == dtype
    # one seed, the same numbers in either precision
    np.testing.assert_allclose(
        init.he((3, 4), rng=0, dtype=np.float32), init.he((3, 4), rng=0), rtol=1e-6
    )


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"shape must be \(D, M\).*got \(10,\) \(1 dimensions\)"):
        init.xavier((10,))
    with pytest.raises(ValueError, match=r"got \(2, 3, 4\) \(3 dimensions\)"):
        init.fan_in((2, 3, 4))
    with pytest.raises(TypeError, match="shape must be a tuple"):
        init.he(10)
    with pytest.raises(ValueError, match=r"shape must hold sizes >= 1, got \(0, 3\)"):
        init.fan_out((0, 3))
    with pytest.raises(TypeError, match="shape must hold ints"):
        init.glorot((2.0, 3))
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        init.he((2, 3), rng="seed")
    with pytest.raises(TypeError, match="dtype must be a floating-point type, got int32"):
        init.he((2, 3), dtype=np.int32)
    with pytest.raises(ValueError, match=r"scale must be a number > 0, got -0\.01"):
        init.small_random((2, 3), scale=-0.01)
