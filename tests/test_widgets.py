"""Lecture 2's explorer, driven headless through its widgets' state: every number it shows is
cnnlib.arithmetic's, the figure follows the sliders, and its display carries a static image for
renderers without widgets."""

from __future__ import annotations

import base64
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnlib import arithmetic as ar
from cnnlib.widgets import ConvExplorer, conv_geometry


@pytest.fixture(scope="module")
def explorer():
    return ConvExplorer(size=7, kernel=3)


def _taps(explorer):
    return [p for p in explorer._figure.axes[0].patches if p.get_alpha() == 0.75]


def test_sliders_drive_the_numbers_and_the_figure(explorer):
    draws, image = explorer.state["draws"], explorer.image.value
    explorer.set(size=8, kernel=3, stride=2, pad=1, dilation=1)
    state = explorer.state
    assert state["output"] == ar.conv_output_size(8, 3, 2, 1) == 4
    assert state["receptive_field_two_layers"] == ar.receptive_field([(3, 2)] * 2) == 7
    assert state["params"] == ar.conv_params(3, 16, 3) == 448
    assert state["draws"] > draws and explorer.image.value != image
    assert "<b>4</b>" in explorer.info.value
    assert explorer.position.max == 4 * 4 - 1
    assert len(_taps(explorer)) == 3 * 3


def test_dilation_spreads_the_taps_without_adding_weights(explorer):
    explorer.set(size=9, kernel=3, stride=1, pad=0, dilation=2)
    assert explorer.state["effective_kernel"] == 5 and explorer.state["output"] == 5
    assert explorer.state["params"] == ar.conv_params(3, 16, 3)
    xs = sorted({p.get_x() for p in _taps(explorer)})
    assert [b - a for a, b in itertools.pairwise(xs)] == [2, 2]


def test_a_kernel_that_does_not_fit_is_explained_not_raised(explorer):
    explorer.set(size=3, kernel=7, pad=0, dilation=1)
    assert explorer.state["output"] is None
    assert "no output" in explorer.info.value and "kernel" in explorer.state["error"]
    assert explorer.position.max == 0


def test_the_display_carries_a_static_figure(explorer):
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert bundle["text/plain"].startswith("ConvExplorer(")


def test_unknown_sliders_are_named():
    with pytest.raises(ValueError, match="unknown sliders \\['padding'\\]"):
        ConvExplorer().set(padding=1)


@given(size=st.integers(3, 16), kernel=st.integers(1, 7), stride=st.integers(1, 4),
       pad=st.integers(0, 3), dilation=st.integers(1, 3))
def test_the_geometry_is_cnnlib_arithmetic(size, kernel, stride, pad, dilation):
    g = conv_geometry(size, kernel, stride, pad, dilation)
    assert g.effective_kernel == ar.effective_kernel_size(kernel, dilation)
    try:
        expected = ar.conv_output_size(size, kernel, stride, pad, dilation)
    except ValueError:
        expected = None
    assert g.output == expected
