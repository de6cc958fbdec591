"""a3's trusted checks on their own (no nbgrader, no sandbox): the statistical checks of random
layers pass other honest ways of drawing the same distribution, and fail the classic mistakes.

The functions below are written here, not taken from the solution, so that each check is shown
to tell right from wrong on code it has never seen. Every check runs on the cases of the public
development key, as the solution notebook's hidden tests do.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from course import ROOT

from cnnlib.grading import authoring, secret
from cnnlib.grading.probes import Namespace, judge, run_case

AID = "a3_training_deep_nets"


@pytest.fixture(scope="module")
def plan():
    checks = authoring.load_checks(ROOT / "solutions" / AID / "checks.py")
    wanted = {"test_xavier_init", "test_he_init", "test_dropout_forward", "test_dropout_backward",
              "test_learning_rate_search"}  # fmt: skip
    checks.checks = {k: v for k, v in checks.checks.items() if k in wanted}
    return authoring.plan(checks, AID, secret.DEVELOPMENT_KEY)


def first_failure(plan, grade_id: str, functions: dict) -> str | None:
    """Why `functions` fail grade cell `grade_id`'s checks (the first reason), or None."""
    names = Namespace(functions)
    for item in plan[grade_id]:
        check = item["check"]
        for case, expected in zip(item["cases"], item["expected"], strict=True):
            got = run_case(check.probe, names, case)
            why = judge(check.probe, case, expected, got, check.compare, mutation=check.mutation)
            if why is not None:
                return why
    return None


def _fan_in(shape):
    return shape[0] if len(shape) == 2 else shape[1] * shape[2] * shape[3]


def _gaussian(variance):
    def init(shape, rng, dtype=np.float64):
        return (math.sqrt(variance(shape)) * rng.standard_normal(shape)).astype(dtype)

    return init


def _drawn_in_the_dtype(shape, rng, dtype=np.float64):
    # another honest way: numbers drawn with rng.normal (other numbers, same distribution)
    return rng.normal(0.0, math.sqrt(1 / _fan_in(shape)), size=shape).astype(dtype)


def _fan_out(shape):
    return shape[1] if len(shape) == 2 else shape[0] * shape[2] * shape[3]


def _uniform(shape, rng, dtype=np.float64):
    bound = math.sqrt(3 / _fan_in(shape))  # the variance of U(-a, a) is a**2 / 3
    return rng.uniform(-bound, bound, shape).astype(dtype)


def _always_float64(shape, rng, dtype=np.float64):
    return math.sqrt(1 / _fan_in(shape)) * rng.standard_normal(shape)


def _global_generator(shape, rng, dtype=np.float64):
    return (np.random.randn(*shape) / math.sqrt(_fan_in(shape))).astype(dtype)  # noqa: NPY002


XAVIER = {
    "honest": _gaussian(lambda s: 1 / _fan_in(s)),
    "honest, drawn another way": _drawn_in_the_dtype,
    "glorot's variance": _gaussian(lambda s: 2 / (_fan_in(s) + _fan_out(s))),
    "fan-out for fan-in": _gaussian(lambda s: 1 / _fan_out(s)),
    "conv fan-in without the kernel": _gaussian(lambda s: 1 / s[0] if len(s) == 2 else 1 / s[1]),
    "uniform with the right variance": _uniform,
    "always float64": _always_float64,
    "numpy's global generator": _global_generator,
}


@pytest.mark.parametrize("name", list(XAVIER))
def test_the_initialiser_statistics_tell_right_from_wrong(plan, name):
    why = first_failure(plan, "test_xavier_init", {"xavier_init": XAVIER[name]})
    assert (why is None) == name.startswith("honest"), why


def test_he_without_its_factor_two_fails(plan):
    assert first_failure(plan, "test_he_init", {"he_init": _gaussian(lambda s: 2 / _fan_in(s))}) \
        is None  # fmt: skip
    why = first_failure(plan, "test_he_init", {"he_init": XAVIER["honest"]})
    assert "std / the target std" in why, why


def _dropout(draw, scale=True, test=lambda x, p: x.copy()):
    def forward(x, keep_prob, train, rng):
        if not train:
            return test(x, keep_prob), (None, keep_prob, train)
        mask = draw(rng, x.shape, keep_prob)
        out = x * mask / keep_prob if scale else x * mask
        return out.astype(x.dtype), (mask, keep_prob, train)

    return forward


DROPOUT = {
    "honest": _dropout(lambda rng, shape, p: rng.random(shape) < p),
    "honest, binomial": _dropout(lambda rng, shape, p: rng.binomial(1, p, shape).astype(bool)),
    "keep and drop swapped": _dropout(lambda rng, shape, p: rng.random(shape) < 1 - p),
    "vanilla (no rescaling)": _dropout(lambda rng, shape, p: rng.random(shape) < p, scale=False),
    "test mode rescaled": _dropout(lambda rng, shape, p: rng.random(shape) < p,
                                   test=lambda x, p: x * p),
    "a mask from a fixed seed": _dropout(
        lambda rng, shape, p: np.random.default_rng(0).random(shape) < p),
}  # fmt: skip


@pytest.mark.parametrize("name", list(DROPOUT))
def test_the_dropout_statistics_tell_right_from_wrong(plan, name):
    why = first_failure(plan, "test_dropout_forward", {"dropout_forward": DROPOUT[name]})
    assert (why is None) == name.startswith("honest"), why


def test_dropout_backward_must_use_the_forwards_mask(plan):
    forward = DROPOUT["honest"]

    def right(dout, cache):
        mask, keep_prob, train = cache
        return dout * mask / keep_prob if train else dout.copy()

    def new_mask(dout, cache):  # draws a mask of its own
        _, keep_prob, train = cache
        mask = np.random.default_rng(1).random(dout.shape) < keep_prob
        return dout * mask / keep_prob if train else dout.copy()

    assert (
        first_failure(
            plan, "test_dropout_backward", {"dropout_forward": forward, "dropout_backward": right}
        )
        is None
    )
    why = first_failure(
        plan, "test_dropout_backward", {"dropout_forward": forward, "dropout_backward": new_mask}
    )
    assert "the forward's mask" in why, why


def _search(coarse_draw):
    def learning_rate_search(train, low, high, num_coarse=8, num_fine=8, seed=0):
        rng = np.random.default_rng(seed)
        curve = [(float(r), float(train(float(r))))
                 for r in coarse_draw(rng, low, high, num_coarse)]  # fmt: skip
        centre = math.log10(max(curve, key=lambda c: c[1])[0])
        lo, hi = max(math.log10(low), centre - 0.5), min(math.log10(high), centre + 0.5)
        curve += [(float(r), float(train(float(r)))) for r in np.logspace(lo, hi, num_fine)]
        return max(curve, key=lambda c: c[1])[0], curve

    return learning_rate_search


def test_the_search_must_sample_on_a_log_scale(plan):
    grid = _search(lambda rng, low, high, n: np.logspace(math.log10(low), math.log10(high), n))
    assert first_failure(plan, "test_learning_rate_search", {"learning_rate_search": grid}) \
        is None  # a log-spaced grid is a log scale too  # fmt: skip
    linear = _search(lambda rng, low, high, n: rng.uniform(low, high, n))
    why = first_failure(plan, "test_learning_rate_search", {"learning_rate_search": linear})
    assert "both halves of the range on a log scale" in why, why
