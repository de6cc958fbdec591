"""cnnlib.numpy.search: random and grid search on functions whose optimum is known."""

import math

import numpy as np
import pytest

from cnnlib.numpy import search
from cnnlib.numpy.search import LogUniform, Uniform, grid_search, random_search


def peaked(learning_rate, reg=1e-4):
    """Best at learning_rate = 1e-2, whatever reg: one important, one unimportant setting."""
    return -abs(math.log10(learning_rate) + 2) - 1e-3 * abs(math.log10(reg) + 4)


def test_log_uniform_draws_every_decade_equally():
    values = LogUniform(1e-5, 1e-1).sample(np.random.default_rng(0), 40_000)
    assert values.min() >= 1e-5 and values.max() <= 1e-1
    decades = np.histogram(np.log10(values), bins=4, range=(-5, -1))[0] / 40_000
    # 10,000 expected per decade: binomial std 0.2%, allow 1.5%
    np.testing.assert_allclose(decades, 0.25, atol=0.015)
    uniform = Uniform(0.5, 0.9).sample(np.random.default_rng(0), 40_000)
    assert uniform.min() >= 0.5 and uniform.max() <= 0.9
    assert uniform.mean() == pytest.approx(0.7, abs=0.005)


def test_grids_with_and_without_offset():
    np.testing.assert_allclose(LogUniform(1e-4, 1.0).grid(5), [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                               rtol=1e-12)
    np.testing.assert_allclose(LogUniform(1e-3, 1.0).grid(3, offset=0.5),
                               [10**-2.5, 10**-1.5, 10**-0.5], rtol=1e-12)
    np.testing.assert_allclose(Uniform(0.0, 1.0).grid(4, offset=0.0), [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(Uniform(2.0, 4.0).grid(1), [3.0])


def test_random_search_tries_distinct_values_and_finds_the_best():
    space = {"learning_rate": LogUniform(1e-5, 1.0), "reg": LogUniform(1e-6, 1e-2)}
    result = random_search(peaked, space, num_trials=30, seed=0)
    assert len(result) == 30 and result.method == "random"
    assert len(np.unique(result.values("learning_rate"))) == 30
    assert result.best.score == result.scores.max()
    assert abs(math.log10(result.best.params["learning_rate"]) + 2) < 0.3
    # the settings depend on the seed only
    again = random_search(peaked, space, num_trials=30, seed=0)
    np.testing.assert_array_equal(again.values("reg"), result.values("reg"))
    # top and best_range: the 3 best learning rates bracket the optimum
    low, high = result.best_range("learning_rate", top=3)
    assert low <= result.best.params["learning_rate"] <= high
    assert [t.score for t in result.top(3)] == sorted(result.scores)[::-1][:3]


def test_grid_search_tries_every_combination_in_product_order():
    seen = []

    def train(learning_rate, momentum, rule):
        seen.append((learning_rate, momentum, rule))
        return -abs(math.log10(learning_rate) + 2)

    space = {"learning_rate": LogUniform(1e-4, 1.0), "momentum": Uniform(0.5, 0.9),
             "rule": ["sgd", "adam"]}
    result = grid_search(train, space, points={"learning_rate": 5, "momentum": 2})
    assert len(result) == len(seen) == 5 * 2 * 2
    assert seen[:3] == [(1e-4, 0.5, "sgd"), (1e-4, 0.5, "adam"), (1e-4, 0.9, "sgd")]
    assert len(np.unique(result.values("learning_rate"))) == 5
    assert result.best.params["learning_rate"] == pytest.approx(1e-2)
    assert result.best.params["rule"] == "sgd"  # the first of equals


def test_random_beats_a_grid_when_one_setting_matters():
    # Bergstra & Bengio's argument, exactly: 9 trials, only the learning rate matters. The
    # grid tries 3 learning rates, random search 9; over many draws random search gets closer.
    space = {"learning_rate": LogUniform(1e-6, 1.0), "reg": LogUniform(1e-6, 1e-2)}
    rng = np.random.default_rng(0)
    random_best, grid_best = [], []
    for _ in range(200):
        random_best.append(random_search(peaked, space, 9, seed=rng).best.score)
        grid_best.append(grid_search(peaked, space, 3, offset=rng.uniform()).best.score)
    # a random-offset 3-point grid over 6 decades misses the optimum by 0.5 decade on average,
    # the best of 9 uniform draws by 6 / (2 * 10) = 0.3 decade
    assert np.mean(grid_best) == pytest.approx(-0.5, abs=0.05)
    assert np.mean(random_best) == pytest.approx(-0.3, abs=0.05)


def test_scores_as_dicts_nan_and_minimising():
    def train(x):
        return {"score": math.nan if x > 0.8 else x, "note": f"x={x:.2f}"}

    result = random_search(train, {"x": Uniform(0.0, 1.0)}, num_trials=20, seed=1)
    best = result.best
    assert best.score <= 0.8 and best.result["note"].startswith("x=")
    assert np.isnan(result.scores).any()  # some trials "diverged": they count as the worst
    smallest = grid_search(lambda x: x, {"x": Uniform(0.0, 1.0)}, points=5, maximize=False)
    assert smallest.best.params["x"] == 0.0
    assert repr(smallest) == "SearchResult(grid, 5 trials, best score 0 at x=0)"


def test_search_errors_name_the_argument():
    space = {"learning_rate": LogUniform(1e-3, 1e-1)}
    with pytest.raises(ValueError, match="LogUniform needs 0 < low < high"):
        LogUniform(0.0, 1.0)
    with pytest.raises(ValueError, match="low must be < high"):
        Uniform(1.0, 1.0)
    with pytest.raises(TypeError, match="high must be a finite number"):
        LogUniform(1e-3, math.inf)
    with pytest.raises(TypeError, match="train must be a function"):
        random_search("train", space, 3)
    with pytest.raises(TypeError, match="space must be a non-empty dict"):
        random_search(peaked, {}, 3)
    with pytest.raises(TypeError, match=r"space\['learning_rate'\] must be LogUniform"):
        random_search(peaked, {"learning_rate": (1e-3, 1e-1)}, 3)
    with pytest.raises(ValueError, match=r"space\['reg'\] is an empty list"):
        grid_search(peaked, {**space, "reg": []})
    with pytest.raises(ValueError, match="num_trials must be >= 1"):
        random_search(peaked, space, 0)
    with pytest.raises(TypeError, match="seed must be an int"):
        random_search(peaked, space, 2, seed="zero")
    with pytest.raises(ValueError, match=r"offset must be in \[0, 1\)"):
        grid_search(peaked, space, offset=1.0)
    with pytest.raises(ValueError, match=r"points\['learning_rate'\] must be >= 1"):
        grid_search(peaked, space, points={"learning_rate": 0})
    with pytest.raises(TypeError, match="train must return a number"):
        random_search(lambda learning_rate: "good", space, 2)
    with pytest.raises(KeyError, match="no hyperparameter 'lr'"):
        random_search(peaked, space, 2).values("lr")
    with pytest.raises(ValueError, match="the search has no trials"):
        search.SearchResult("random").best  # noqa: B018
