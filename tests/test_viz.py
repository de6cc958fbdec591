"""cnnlib.viz: the lecture figures draw what the arithmetic says, headless (Agg)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
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
