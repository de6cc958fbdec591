"""cnnlib.viz for lecture 08: images on one shared scale, and the picture of a search."""

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from cnnlib import viz
from cnnlib.numpy.search import LogUniform, grid_search, random_search

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _images(fig):
    return [im for ax in fig.axes for im in ax.get_images() if im.get_gid() == "image"]


def test_images_share_one_scale_and_keep_values():
    x = np.linspace(0, 2, 4 * 3 * 3).reshape(4, 1, 3, 3)
    fig = viz.plot_images(x, titles=["a", "b", "c", "d"], ncols=2)
    assert isinstance(fig, Figure)
    drawn = _images(fig)
    assert len(drawn) == 4
    assert {im.get_clim() for im in drawn} == {(0.0, 2.0)}  # shared, not per panel
    np.testing.assert_array_equal(drawn[1].get_array(), x[1, 0])
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["a", "b", "c", "d"]
    fixed = viz.plot_images(x[:, 0], vmin=-1, vmax=1)
    assert _images(fixed)[0].get_clim() == (-1, 1)


def test_colour_images_are_clipped_to_the_unit_range():
    x = np.full((2, 3, 2, 2), 1.5)
    x[1] = -0.5
    drawn = _images(viz.plot_images(x))
    assert drawn[0].get_array().shape == (2, 2, 3)
    assert drawn[0].get_array().max() == 1.0 and drawn[1].get_array().min() == 0.0


def test_images_reject_bad_input():
    with pytest.raises(ValueError, match=r"images must be \(N, H, W\) or \(N, C, H, W\)"):
        viz.plot_images(np.zeros((2, 2, 4, 4)))
    with pytest.raises(ValueError, match="titles must have one entry per image"):
        viz.plot_images(np.zeros((2, 4, 4)), titles=["one"])


def _score(learning_rate, reg):
    return -abs(math.log10(learning_rate) + 2)


def test_search_picture_one_group_per_search_with_marginals():
    space = {"learning_rate": LogUniform(1e-5, 1.0), "reg": LogUniform(1e-6, 1e-2)}
    results = {"grid": grid_search(_score, space, 3), "random": random_search(_score, space, 9)}
    fig = viz.plot_search(results, "learning_rate", "reg", score_label="val acc")
    assert isinstance(fig, Figure)
    subfigures = fig.subfigs
    assert len(subfigures) == 2
    for subfig, (label, result) in zip(subfigures, results.items(), strict=True):
        trials = [c for ax in subfig.axes for c in ax.collections if c.get_gid() == "trial"]
        best = [c for ax in subfig.axes for c in ax.collections if c.get_gid() == "best"]
        assert len(trials) == 1 and len(trials[0].get_offsets()) == 9
        np.testing.assert_allclose(best[0].get_offsets()[0],
                                   [result.best.params["learning_rate"],
                                    result.best.params["reg"]])
        main = trials[0].axes
        assert main.get_xscale() == "log" and main.get_yscale() == "log"
        assert main.get_xlabel() == "learning_rate" and main.get_ylabel() == "reg"
        distinct = len(np.unique(result.values("learning_rate")))
        assert subfig._suptitle.get_text() == (f"{label}: 9 trials, {distinct} values of "
                                               f"learning_rate")
    # one result alone works too, on linear axes if asked
    alone = viz.plot_search(results["grid"], "learning_rate", "reg", logx=False, logy=False)
    assert alone.subfigs[0].axes[0].get_xscale() == "linear"


def test_search_picture_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one search"):
        viz.plot_search({}, "a", "b")
    with pytest.raises(TypeError, match=r"results\['x'\] must be a SearchResult"):
        viz.plot_search({"x": [1, 2]}, "a", "b")
