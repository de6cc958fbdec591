"""Interactive explorers for the lectures (ipywidgets), with a static figure where widgets do not
render.

`ConvExplorer` (lecture 2): sliders for the input size, the kernel, the stride, the padding and
the dilation of one convolution; it redraws the window over the padded input and reports the
output size, the receptive field and the parameter count, all computed by `cnnlib.arithmetic`.

In JupyterLab it is a live widget. Displayed anywhere else (a static page, GitHub, nbconvert, a
headless run) it is a PNG of its current state: its display bundle carries both the widget view
and that image, and a renderer without a widget manager shows the image. Its state is plain
Python (`explorer.state`, `explorer.set(...)`), so it is tested headless without a browser.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import ClassVar

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from cnnlib import arithmetic as ar

__all__ = ["ConvExplorer", "conv_geometry", "draw_conv_window"]

PADDING, TAP, SPAN, OUTPUT = "0.82", "tab:blue", "tab:blue", "tab:orange"
IN_CHANNELS, OUT_CHANNELS = 3, 16  # the parameter count is for this layer: 3 -> 16 channels


@dataclass(frozen=True)
class Geometry:
    size: int
    kernel: int
    stride: int
    pad: int
    dilation: int
    output: int | None  # output size per axis, None when the kernel does not fit
    effective_kernel: int
    receptive_field_two_layers: int | None
    params: int
    error: str | None


def conv_geometry(size: int, kernel: int, stride: int = 1, pad: int = 0,
                  dilation: int = 1) -> Geometry:
    """Everything the explorer shows for one square convolution, from cnnlib.arithmetic."""
    effective = ar.effective_kernel_size(kernel, dilation)
    params = ar.conv_params(IN_CHANNELS, OUT_CHANNELS, kernel)
    try:
        output = ar.conv_output_size(size, kernel, stride, pad, dilation)
        two = ar.receptive_field([(kernel, stride, dilation)] * 2)
        error = None
    except ValueError as err:
        output, two, error = None, None, str(err)
    return Geometry(size, kernel, stride, pad, dilation, output, effective, two, params, error)


def draw_conv_window(g: Geometry, position: int = 0, fig=None):
    """The padded input with the window of output `position` (row-major), beside the output map."""
    fig = fig or plt.figure(figsize=(9, 4.2))
    fig.clear()
    ax_in, ax_out = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    width = g.size + 2 * g.pad
    for r in range(width):
        for c in range(width):
            real = g.pad <= r < g.pad + g.size and g.pad <= c < g.pad + g.size
            ax_in.add_patch(Rectangle((c, r), 1, 1, facecolor="white" if real else PADDING,
                                      edgecolor="0.55", lw=0.6))
    title = f"input {g.size}x{g.size}, padding {g.pad} (grey)"
    if g.output:
        i, j = divmod(position % (g.output * g.output), g.output)
        top, left = i * g.stride, j * g.stride  # window corner in padded coordinates
        for a in range(g.kernel):
            for b in range(g.kernel):
                ax_in.add_patch(Rectangle((left + b * g.dilation, top + a * g.dilation), 1, 1,
                                          facecolor=TAP, alpha=0.75))
        ax_in.add_patch(Rectangle((left, top), g.effective_kernel, g.effective_kernel,
                                  fill=False, edgecolor=SPAN, lw=2.5))
        for r in range(g.output):
            for c in range(g.output):
                ax_out.add_patch(Rectangle((c, r), 1, 1, edgecolor="0.55", lw=0.6,
                                           facecolor=OUTPUT if (r, c) == (i, j) else "white"))
        ax_out.set_title(f"output {g.output}x{g.output}: cell ({i}, {j})")
        ax_out.set_xlim(0, g.output)
        ax_out.set_ylim(g.output, 0)
    else:
        ax_out.text(0.5, 0.5, "no output:\nthe kernel does not fit", ha="center", va="center")
        ax_out.set_xlim(0, 1)
        ax_out.set_ylim(1, 0)
    ax_in.set_title(f"{title}; kernel {g.kernel}, stride {g.stride}, dilation {g.dilation}")
    ax_in.set_xlim(0, width)
    ax_in.set_ylim(width, 0)
    for ax in (ax_in, ax_out):
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _summary_html(g: Geometry) -> str:
    lines = [f"<b>effective kernel</b> D(K-1)+1 = {g.dilation}·({g.kernel}-1)+1 = "
             f"{g.effective_kernel}: the receptive field of one such layer"]
    if g.error:
        lines.insert(0, f"<b>no output</b>: {g.error}")
    else:
        lines.insert(0, f"<b>output size</b> ⌊(H + 2P - K_eff)/S⌋ + 1 = ⌊({g.size} + 2·{g.pad} - "
                        f"{g.effective_kernel})/{g.stride}⌋ + 1 = <b>{g.output}</b>")
        lines.append(f"<b>receptive field</b> of two such layers stacked: "
                     f"{g.receptive_field_two_layers}")
    lines.append(f"<b>parameters</b> ({IN_CHANNELS} → {OUT_CHANNELS} channels): "
                 f"{OUT_CHANNELS}·({IN_CHANNELS}·{g.kernel}·{g.kernel}) + {OUT_CHANNELS} = "
                 f"{g.params:,} (dilation adds none)")
    return "<br>".join(lines)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class ConvExplorer:
    """Sliders for one convolution's geometry; the figure and the numbers follow them.

    >>> explorer = ConvExplorer(size=7, kernel=3)     # doctest: +SKIP
    >>> explorer                                      # doctest: +SKIP  (in a notebook cell)
    >>> explorer.set(stride=2, pad=1).state["output"] # doctest: +SKIP
    4
    """

    LIMITS: ClassVar[dict[str, tuple[int, int]]] = {
        "size": (3, 16), "kernel": (1, 7), "stride": (1, 4), "pad": (0, 3), "dilation": (1, 3)}

    def __init__(self, size: int = 7, kernel: int = 3, stride: int = 1, pad: int = 0,
                 dilation: int = 1):
        import ipywidgets as w

        values = {"size": size, "kernel": kernel, "stride": stride, "pad": pad,
                  "dilation": dilation}
        self.sliders = {
            name: w.IntSlider(value=values[name], min=low, max=high, description=name,
                              continuous_update=False)
            for name, (low, high) in self.LIMITS.items()
        }
        self.position = w.IntSlider(value=0, min=0, max=0, description="output cell",
                                    continuous_update=False)
        self.info = w.HTML()
        self.image = w.Image(format="png")
        self.draws = 0
        self._figure = plt.figure(figsize=(9, 4.2))
        plt.close(self._figure)  # drawn into PNGs, never shown by pyplot itself
        for slider in (*self.sliders.values(), self.position):
            slider.observe(self._redraw, names="value")
        self.widget = w.VBox([w.HBox([w.VBox(list(self.sliders.values())[:3]),
                                      w.VBox([*list(self.sliders.values())[3:], self.position])]),
                              self.info, self.image])
        self._redraw()

    @property
    def geometry(self) -> Geometry:
        return conv_geometry(**{name: s.value for name, s in self.sliders.items()})

    @property
    def state(self) -> dict:
        """What the explorer shows now: the slider values and the computed numbers."""
        g = self.geometry
        return {**g.__dict__, "position": self.position.value, "draws": self.draws}

    def set(self, **values) -> ConvExplorer:
        """Move sliders by name (as a student would), e.g. set(stride=2, pad=1)."""
        unknown = set(values) - set(self.sliders) - {"position"}
        if unknown:
            raise ValueError(f"unknown sliders {sorted(unknown)}; known: "
                             f"{[*sorted(self.sliders), 'position']}")
        for name, value in values.items():
            (self.position if name == "position" else self.sliders[name]).value = value
        return self

    def _redraw(self, _change=None) -> None:
        g = self.geometry
        cells = g.output * g.output if g.output else 1
        self.position.max = cells - 1
        self.info.value = _summary_html(g)
        draw_conv_window(g, self.position.value, fig=self._figure)
        self.image.value = _png(self._figure)
        self.draws += 1

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        settings = ", ".join(f"{name}={s.value}" for name, s in self.sliders.items())
        bundle["text/plain"] = f"ConvExplorer({settings}): output {self.geometry.output}"
        return bundle
