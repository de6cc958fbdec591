"""cnnlib.viz.plot_attributions: explanations from cnnlib.explain drawn beside their images."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from test_explain import TARGETS, images, small_cnn

from cnnlib import explain as ex
from cnnlib import viz

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_attributions_one_row_per_method_under_the_images():
    model, x = small_cnn(), images()
    maps = {
        "saliency": ex.saliency(model, x, TARGETS),  # (N, H, W): over the image
        "guided backprop": ex.guided_backprop(model, x, TARGETS),  # (N, C, H, W): an image
    }
    fig = viz.plot_attributions(x, maps, titles=["a", "b", "c", "d"])
    axes = fig.axes
    assert len(axes) == 3 * 4
    assert [len(ax.images) for ax in axes[:4]] == [1] * 4  # the images
    assert [len(ax.images) for ax in axes[4:8]] == [2] * 4  # grey image + map
    assert [len(ax.images) for ax in axes[8:]] == [1] * 4  # the guided images
    assert [axes[r * 4].get_ylabel() for r in range(3)] == ["image", "saliency", "guided backprop"]
    assert axes[1].get_title() == "b"
    # each image stretched to [0, 1]; the guided image with 0 at mid-grey
    shown = axes[0].images[0].get_array()
    assert shown.shape == (8, 8, 3) and shown.min() == 0.0 and shown.max() == 1.0
    guided = axes[8].images[0].get_array()
    assert guided.min() >= 0 and guided.max() <= 1
    assert np.isclose(np.abs(guided - 0.5).max(), 0.5)


def test_attributions_without_overlay_and_grey_images():
    x = np.random.default_rng(0).normal(size=(2, 1, 5, 5))
    fig = viz.plot_attributions(x, {"map": np.ones((2, 5, 5))}, overlay=False)
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 1]
    assert fig.axes[0].images[0].get_array().shape == (5, 5)


@pytest.mark.parametrize(
    ("images", "maps", "message"),
    [(np.zeros((2, 2, 5, 5)), {}, "images must be"),
     (np.zeros((2, 3, 5, 5)), {"m": np.zeros((3, 5, 5))}, r"maps\['m'\] must be"),
     (np.zeros((2, 3, 5, 5)), {"m": np.zeros((2, 4, 4))}, r"maps\['m'\] must be"),
     (np.zeros((2, 3, 5, 5)), {"m": np.zeros((2, 2, 5, 5))}, r"C = 1 or 3")],
)  # fmt: skip
def test_attributions_reject_maps_that_do_not_fit(images, maps, message):
    with pytest.raises(ValueError, match=message):
        viz.plot_attributions(images, maps)


def test_filter_grid_shows_as_an_image():
    grid = ex.filter_grid(torch.randn(6, 3, 3, 3))
    ax = plt.figure().gca()
    ax.imshow(grid.permute(1, 2, 0).numpy())
    assert ax.images[0].get_array().shape == (9, 13, 3)
