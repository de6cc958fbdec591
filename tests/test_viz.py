"""cnnlib.viz: the lecture figures draw what the arithmetic says, headless (Agg)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from cnnlib import arithmetic as ar
from cnnlib import viz
from cnnlib.arithmetic import Conv, Linear, Pool

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _gid(ax, gid):
    """Artists drawn on `ax` with this gid (patches and lines)."""
    return [a for a in [*ax.patches, *ax.lines] if a.get_gid() == gid]


# ------------------------------------------------------------------ sliding windows


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pad", "dilation"),
    [(7, 3, 1, 0, 1), (7, 3, 1, 1, 1), (8, 3, 2, 0, 1), (8, 3, 2, 1, 1), (7, 3, 1, 0, 2)],
)
def test_sliding_windows_draw_one_window_per_output(size, kernel, stride, pad, dilation):
    ax = viz.plot_sliding_windows(size, kernel, stride, pad, dilation)
    assert isinstance(ax, Axes)
    n_out = ar.conv_output_size(size, kernel, stride, pad, dilation)
    assert len(_gid(ax, "window")) == n_out
    assert len(_gid(ax, "tap")) == n_out * kernel
    assert len(_gid(ax, "padding")) == 2 * pad
    assert len(_gid(ax, "unread")) == len(ar.unread_positions(size, kernel, stride, pad, dilation))
    assert f"H'={n_out}" in ax.get_title()


def test_sliding_windows_mark_the_dropped_position_and_label_axes():
    ax = viz.plot_sliding_windows(8, 3, stride=2)
    (unread,) = _gid(ax, "unread")
    assert unread.get_x() == pytest.approx(6.5)  # the strip over position 7
    assert ax.get_xlabel().startswith("input position")
    assert ax.get_ylabel() == "output position"
    assert "never read" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_sliding_windows_draw_on_a_given_axes():
    _, (left, right) = plt.subplots(1, 2)
    assert viz.plot_sliding_windows(5, 3, ax=right) is right
    assert not _gid(left, "window")


# ------------------------------------------------------------------ receptive fields


def test_receptive_field_lines_match_the_arithmetic():
    stacks = {"3x3, stride 1": [(3, 1)] * 5, "3x3, stride 2": [(3, 2)] * 4}
    ax = viz.plot_receptive_fields(stacks, image_size=64)
    assert len(ax.lines) == 3  # two stacks and the image-size line
    assert list(ax.lines[0].get_ydata()) == [3, 5, 7, 9, 11]
    assert list(ax.lines[1].get_ydata()) == ar.receptive_fields([(3, 2)] * 4) == [3, 7, 15, 31]
    assert list(ax.lines[1].get_xdata()) == [1, 2, 3, 4]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["3x3, stride 1", "3x3, stride 2", "image size (64 px)"]
    assert ax.get_yscale() == "log"
    assert "depth" in ax.get_xlabel() and "receptive field" in ax.get_ylabel()


def test_receptive_fields_accept_specs_and_linear_scale():
    ax = viz.plot_receptive_fields({"conv-pool": [Conv(8, 3), Pool(2), Conv(8, 3)]}, log=False)
    assert list(ax.lines[0].get_ydata()) == [3, 4, 8]
    assert ax.get_yscale() == "linear"


# ------------------------------------------------------------------ connectivity


@pytest.mark.parametrize(
    ("kind", "edges", "weights"), [("dense", 21, 21), ("local", 9, 9), ("shared", 9, 3)]
)
def test_connectivity_of_the_7_input_example(kind, edges, weights):
    ax = viz.plot_connectivity(7, 3, stride=2, kind=kind)
    drawn = _gid(ax, "edge")
    assert len(drawn) == edges
    assert ax.get_title().endswith(f": {weights} weights")
    colours = {to_hex(line.get_color()) for line in drawn}
    assert len(colours) == (3 if kind == "shared" else 1)  # one colour per shared weight


def test_connectivity_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="kind must be one of"):
        viz.plot_connectivity(7, 3, kind="sparse")


# ------------------------------------------------------------------ layer costs


def test_layer_costs_one_bar_per_layer_in_each_panel():
    layers = [Conv(20, 5, pad=2), Pool(2), Conv(50, 5, pad=2), Pool(2), Linear(500), Linear(10)]
    rows = ar.layer_table((1, 28, 28), layers)
    fig = viz.plot_layer_costs(rows)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert len(ax.patches) == len(rows)
        assert sum(bar.get_width() for bar in ax.patches) == pytest.approx(100)
    params = fig.axes[1]
    fc1 = params.patches[4].get_width()
    assert fc1 == pytest.approx(100 * rows[4].params / sum(r.params for r in rows))
    assert fig.axes[0].get_yticklabels()[0].get_text() == "conv1"
    assert "parameters" in params.get_title()


# ------------------------------------------------------------------ filters


def _images(fig):
    """(Axes, AxesImage) of every visible panel that shows an image."""
    return [(ax, ax.images[0]) for ax in fig.axes if ax.get_visible() and ax.images]


def test_filters_grey_one_panel_each_scaled_symmetrically():
    w = np.arange(2 * 3 * 3, dtype=float).reshape(2, 1, 3, 3) - 4.0  # filter 0 in -4..4
    fig = viz.plot_filters(w, titles=["a", "b"])
    panels = _images(fig)
    assert len(panels) == 2
    (ax0, im0), (_, im1) = panels
    assert np.array_equal(im0.get_array(), w[0, 0])
    assert im0.get_clim() == (-4.0, 4.0)  # 0 in the middle of the colour map
    assert im1.get_clim() == (-13.0, 13.0)  # each filter on its own scale
    assert ax0.get_title() == "a"


def test_filters_grid_hides_the_spare_panels():
    fig = viz.plot_filters(np.ones((5, 3, 3)), ncols=4)
    assert len(fig.axes) == 8
    assert len(_images(fig)) == 5
    assert sum(not ax.get_visible() for ax in fig.axes) == 3


def test_filters_in_colour_map_zero_to_grey():
    w = np.zeros((1, 3, 2, 2))
    w[0, 0, 0, 0], w[0, 2, 1, 1] = 2.0, -1.0  # red up at one pixel, blue down at another
    fig = viz.plot_filters(w, title="colour")
    ((_, image),) = _images(fig)
    rgb = np.asarray(image.get_array())
    assert rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == [1.0, 0.5, 0.5]  # the largest weight: full red
    assert rgb[1, 1].tolist() == [0.5, 0.5, 0.25]
    assert rgb[0, 1].tolist() == [0.5, 0.5, 0.5]  # all-zero pixel: grey
    assert fig.get_suptitle() == "colour"


@pytest.mark.parametrize("shape", [(4, 4), (2, 2, 3, 3), (2, 3, 3, 3, 1)])
def test_filters_reject_shapes_that_are_not_filters(shape):
    with pytest.raises(ValueError, match=r"weights must be .* got shape"):
        viz.plot_filters(np.zeros(shape))


def test_filters_reject_a_wrong_number_of_titles():
    with pytest.raises(ValueError, match="one entry per filter"):
        viz.plot_filters(np.zeros((3, 2, 2)), titles=["only one"])


# ------------------------------------------------------------------ feature maps


def test_feature_maps_of_different_sizes_with_colour_bars():
    maps = [np.arange(12.0).reshape(3, 4), np.arange(4.0).reshape(2, 2) - 1]
    fig = viz.plot_feature_maps(maps, titles=["map", "pooled"], ncols=2)
    panels = _images(fig)
    assert [im.get_array().shape for _, im in panels] == [(3, 4), (2, 2)]
    assert len(fig.axes) == 4  # two panels, two colour bars
    assert panels[0][1].get_clim() == (0.0, 11.0)  # each map its own range
    assert panels[1][1].get_clim() == (-1.0, 2.0)
    assert panels[0][0].get_ylabel() == "row (pixels)"
    assert panels[1][0].get_ylabel() == ""  # only the first column says it
    assert panels[1][0].get_xlabel() == "column (pixels)"
    assert panels[1][0].get_title() == "pooled"


def test_feature_maps_symmetric_and_shared_scales():
    maps = np.stack([np.full((2, 2), -3.0), np.full((2, 2), 1.0)])
    symmetric = _images(viz.plot_feature_maps(maps, symmetric=True, colorbar=False))
    assert [im.get_clim() for _, im in symmetric] == [(-3.0, 3.0), (-1.0, 1.0)]
    shared = _images(viz.plot_feature_maps(maps, same_scale=True))
    assert [im.get_clim() for _, im in shared] == [(-3.0, 1.0), (-3.0, 1.0)]


def test_feature_maps_reject_non_2d_maps():
    with pytest.raises(ValueError, match="maps must be 2-D"):
        viz.plot_feature_maps([np.zeros((2, 2, 2))])


# ------------------------------------------------------------------ heatmaps


def test_heatmap_annotates_every_cell_and_outlines_windows():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    ax = viz.plot_heatmap(a, annotate=True, fmt=".0f", highlight=[(0, 1, 2, 2)], title="t")
    texts = [t for t in ax.texts if t.get_gid() == "value"]
    assert [t.get_text() for t in texts] == ["1", "2", "3", "4", "5", "6"]
    assert texts[5].get_position() == (2, 1)  # column, row
    (box,) = _gid(ax, "highlight")
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (0.5, -0.5, 2, 2)
    assert ax.get_title() == "t"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("column", "row")
    assert len(ax.figure.axes) == 2  # the colour bar


def test_heatmap_text_contrasts_with_its_cell():
    ax = viz.plot_heatmap(np.array([[0.0, 1.0]]), annotate=True, cmap="Greys", colorbar=False)
    light, dark = (t.get_color() for t in ax.texts)
    assert (light, dark) == ("black", "white")
    assert len(ax.figure.axes) == 1


def test_heatmap_symmetric_limits_and_tick_labels():
    a = np.array([[-1.0, 0.5], [2.0, 0.0]])
    ax = viz.plot_heatmap(a, symmetric=True, xticklabels=["a", "b"], yticklabels=["r0", "r1"])
    assert ax.images[0].get_clim() == (-2.0, 2.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r0", "r1"]


def test_heatmap_draws_on_a_given_axes():
    _, (left, right) = plt.subplots(1, 2)
    assert viz.plot_heatmap(np.eye(3), ax=right, colorbar=False) is right
    assert not left.images


def test_heatmap_rejects_bad_input():
    with pytest.raises(ValueError, match="a must be a 2-D array"):
        viz.plot_heatmap(np.zeros(3))
    with pytest.raises(ValueError, match="xticklabels must have 2 entries, got 1"):
        viz.plot_heatmap(np.zeros((2, 2)), xticklabels=["x"])


# ------------------------------------------------------------------ activations


def test_activations_plot_function_derivative_and_peak():
    x = np.linspace(-4, 4, 81)
    s = 1 / (1 + np.exp(-x))
    curves = {"sigmoid": (s, s * (1 - s)), "relu": (np.maximum(x, 0), (x > 0) * 1.0)}
    fig = viz.plot_activations(x, curves)
    assert len(fig.axes) == 2
    sigmoid_ax = fig.axes[0]
    (function,) = [line for line in sigmoid_ax.lines if line.get_gid() == "function"]
    (derivative,) = [line for line in sigmoid_ax.lines if line.get_gid() == "derivative"]
    (peak,) = [line for line in sigmoid_ax.lines if line.get_gid() == "peak"]
    assert np.array_equal(function.get_ydata(), s)
    assert np.array_equal(derivative.get_ydata(), s * (1 - s))
    assert (peak.get_xdata()[0], peak.get_ydata()[0]) == (0.0, 0.25)
    labels = [t.get_text() for t in sigmoid_ax.get_legend().get_texts()]
    assert "max sigmoid' = 0.25 at x = 0" in labels
    assert sigmoid_ax.get_xlabel() == "x" and sigmoid_ax.get_title() == "sigmoid"


def test_activations_reject_curves_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"curves\['tanh'\] must be two arrays of x's shape"):
        viz.plot_activations(np.zeros(5), {"tanh": (np.zeros(5), np.zeros(4))})


# ------------------------------------------------------------------ shift sensitivity


def test_shift_sensitivity_one_line_per_operation():
    changes = {"conv": [0.0, 0.5, 0.7], "max pool": [0.0, 0.3, 0.5]}
    ax = viz.plot_shift_sensitivity([0, 1, 2], changes)
    assert [list(line.get_ydata()) for line in ax.lines] == list(changes.values())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["conv", "max pool"]
    assert ax.get_xlabel() == "shift of the input (pixels)"
    assert ax.get_ylabel() == "relative change of the output"
    assert ax.get_ylim()[0] == 0


def test_shift_sensitivity_rejects_a_value_count_mismatch():
    with pytest.raises(ValueError, match="one value per shift"):
        viz.plot_shift_sensitivity([0, 1], {"conv": [0.0]})


# ------------------------------------------------------------------ curves and histograms


def test_curves_one_line_per_run_with_default_and_given_x():
    ax = viz.plot_curves({"a": [3.0, 2.0, 1.0], "b": ([0, 5, 10], [1.0, 0.5, 0.25])},
                         xlabel="iteration", title="t")  # fmt: skip
    lines = _gid(ax, "curve")
    assert [line.get_label() for line in lines] == ["a", "b"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines[1].get_xdata(), [0, 5, 10])
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "loss" and ax.get_title() == "t"


def test_curves_smooth_draws_raw_and_trailing_moving_average():
    ax = viz.plot_curves({"run": [4.0, 0.0, 2.0, 6.0]}, smooth=2, logy=False)
    (raw,) = _gid(ax, "raw")
    (smooth,) = _gid(ax, "curve")
    np.testing.assert_array_equal(raw.get_ydata(), [4, 0, 2, 6])
    # first point averages itself only, then pairs: (4+0)/2, (0+2)/2, (2+6)/2
    np.testing.assert_allclose(smooth.get_ydata(), [4.0, 2.0, 1.0, 4.0])
    assert raw.get_color() == smooth.get_color()


def test_curves_log_scale_and_given_axes():
    _, ax = plt.subplots()
    assert viz.plot_curves({"x": [1.0, 0.1, 0.01]}, ax=ax, logy=True) is ax
    assert ax.get_yscale() == "log"


@pytest.mark.parametrize(
    ("curves", "kwargs", "match"),
    [
        ({}, {}, "at least one"),
        ({"a": ([1, 2], [1.0])}, {}, r"curves\['a'\]"),
        ({"a": [[1.0, 2.0]]}, {}, r"curves\['a'\]"),
        ({"a": [1.0]}, {"smooth": 0}, "smooth"),
    ],
)
def test_curves_reject_bad_input(curves, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.plot_curves(curves, **kwargs)


def test_layer_histograms_one_panel_per_layer_titled_with_statistics():
    layers = [np.array([-1.0, 1.0]), np.array([0.0, 0.0, 3.0, 1.0])]
    fig = viz.plot_layer_histograms(layers, bins=4, title="stats")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    assert axes[0].get_title() == "layer 1\nmean 0\nstd 1"
    assert axes[1].get_title().startswith("layer 2\nmean 1\n")
    # one shared range: the smallest and largest value over all layers
    for ax in axes:
        bars = [p for p in ax.patches if p.get_gid() == "histogram"]
        assert len(bars) == 4
        assert bars[0].get_x() == pytest.approx(-1.0)
        assert bars[-1].get_x() + bars[-1].get_width() == pytest.approx(3.0)
    assert sum(p.get_height() for p in axes[1].patches) == 4
    assert fig._suptitle.get_text() == "stats"


def test_layer_histograms_named_panels_in_rows():
    fig = viz.plot_layer_histograms({f"fc{i}": np.ones(3) * i for i in range(5)}, ncols=2,
                                    range=(0, 5))  # fmt: skip
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title().split("\n")[0] for ax in visible] == [f"fc{i}" for i in range(5)]
    assert len(fig.axes) == 6  # 3 rows of 2, the last panel hidden


@pytest.mark.parametrize(
    ("activations", "kwargs", "match"),
    [
        ([], {}, "at least one"),
        ([np.array([])], {}, "non-empty"),
        ([np.array([np.nan])], {}, "finite"),
        ([np.ones(2)], {"range": (1, 1)}, "range"),
    ],
)
def test_layer_histograms_reject_bad_input(activations, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.plot_layer_histograms(activations, **kwargs)


def test_curves_whole_number_x_gets_whole_number_ticks():
    ax = viz.plot_curves({"a": [3.0, 2.0, 1.0]})
    ax.figure.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())
    ax = viz.plot_curves({"b": ([0.0, 0.5, 1.0], [1.0, 2.0, 3.0])})
    ax.figure.canvas.draw()
    assert not all(float(t).is_integer() for t in ax.get_xticks())
