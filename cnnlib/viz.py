"""Lecture figures: convolution geometry, receptive fields, and where a network's costs lie.

Every plotting function draws on the matplotlib Axes it is given (a new figure when `ax` is None)
and returns that Axes, or the Figure for multi-panel plots. None of them calls `plt.show()`: a
notebook displays what a cell returns, and the tests inspect the drawn artists under Agg.

The numbers come from `cnnlib.arithmetic`; this module only decides where to draw them. Drawn
artists carry a `gid` ("window", "tap", "padding", "unread", "edge") so tests can count them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from cnnlib import arithmetic as ar

__all__ = [
    "plot_connectivity",
    "plot_layer_costs",
    "plot_receptive_fields",
    "plot_sliding_windows",
]

TAP = "tab:blue"
PADDING = "0.82"
UNREAD = "tab:red"
KIND_COLORS = {"conv": "tab:blue", "pool": "tab:orange", "fc": "tab:green"}


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """`ax`, or the Axes of a new constrained-layout figure of `figsize` inches."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


# --------------------------------------------------------------------------------------------
# Sliding windows


def _shade_columns(ax: Axes, columns: Sequence[int], color: str, gid: str, alpha: float) -> None:
    """A full-height background strip behind each input column in `columns`."""
    for x in columns:
        ax.axvspan(x - 0.5, x + 0.5, color=color, alpha=alpha, zorder=0, gid=gid, lw=0)


def _draw_window(ax: Axes, row: int, taps: Sequence[int]) -> None:
    """One output's window on row `row`: its taps filled, its span outlined."""
    for t in taps:
        ax.add_patch(Rectangle((t - 0.4, row - 0.4), 0.8, 0.8, color=TAP, gid="tap", zorder=2))
    span = Rectangle(
        (taps[0] - 0.5, row - 0.5), taps[-1] - taps[0] + 1, 1.0,
        fill=False, edgecolor="black", lw=1.5, gid="window", zorder=3,
    )  # fmt: skip
    ax.add_patch(span)


def plot_sliding_windows(
    size: int,
    kernel: int,
    stride: int = 1,
    pad: int = 0,
    dilation: int = 1,
    ax: Axes | None = None,
) -> Axes:
    """Which input positions each output of a 1-D convolution reads, one output per row.

    size: H, kernel: K, stride: S, pad: P, dilation: D (one spatial axis; a 2-D conv does the
    same along each axis). Columns are input positions, padding shaded grey; row i shows the
    taps (filled) and the span (outlined) of output i; real positions no output reads are red.
    returns: the Axes.
    """
    taps = ar.window_taps(size, kernel, stride, pad, dilation)
    unread = ar.unread_positions(size, kernel, stride, pad, dilation)
    width = size + 2 * pad
    ax = _axes(ax, (max(4.0, 0.42 * width + 2.5), 0.42 * len(taps) + 1.6))
    _shade_columns(ax, [*range(-pad, 0), *range(size, size + pad)], PADDING, "padding", 1.0)
    _shade_columns(ax, unread, UNREAD, "unread", 0.35)
    for row, window in enumerate(taps):
        _draw_window(ax, row, window)
    ax.set_xlim(-pad - 0.5, size + pad - 0.5)
    ax.set_ylim(len(taps) - 0.5, -0.5)  # output 0 on top
    ax.set_xticks(range(-pad, size + pad))
    ax.set_yticks(range(len(taps)))
    ax.set_xticks([x - 0.5 for x in range(-pad, size + pad + 1)], minor=True)
    ax.tick_params(which="minor", length=0)
    ax.grid(which="minor", axis="x", color="0.6", lw=0.5)
    ax.set_xlabel("input position")
    ax.set_ylabel("output position")
    dil = f", D={dilation}" if dilation != 1 else ""
    ax.set_title(f"H={size}, K={kernel}, S={stride}, P={pad}{dil}  →  H'={len(taps)}")
    handles = [Patch(color=TAP, label="tap (one weight)")]
    if pad:
        handles.append(Patch(color=PADDING, label="zero padding"))
    if unread:
        handles.append(Patch(color=UNREAD, alpha=0.35, label="never read"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


# --------------------------------------------------------------------------------------------
# Receptive fields


def plot_receptive_fields(
    stacks: Mapping[str, Sequence],
    image_size: int | None = None,
    log: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Receptive field after each layer, one line per stack.

    stacks: {label: layers}, layers as `arithmetic.receptive_fields` takes them ((kernel, stride)
    or (kernel, stride, dilation) tuples, or Conv / Pool specs). image_size: draw a dashed line
    at this many pixels. log: a base-2 y axis, so linear and exponential growth both show.
    Lines differ in marker and dash as well as colour, so stacks that grow alike stay visible.
    returns: the Axes.
    """
    ax = _axes(ax, (7.0, 4.5))
    styles = [("o", "-", 7), ("s", "--", 6), ("^", ":", 5), ("D", "-.", 4)]
    for n, (label, layers) in enumerate(stacks.items()):
        fields = ar.receptive_fields(layers)
        marker, line, size = styles[n % len(styles)]  # distinct even where two stacks coincide
        ax.plot(range(1, len(fields) + 1), fields, marker=marker, ls=line, ms=size, label=label)
    if image_size is not None:
        ax.axhline(image_size, ls="--", color="0.4", label=f"image size ({image_size} px)")
    if log:
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("depth (number of layers)")
    ax.set_ylabel("receptive field (input pixels, one axis)")
    ax.set_title("How far one output sees")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# --------------------------------------------------------------------------------------------
# Local connectivity and parameter sharing


def _connections(n_in: int, kernel: int, stride: int, kind: str) -> list[tuple[int, int, int]]:
    """(input, output, weight id) for every connection of a 1-D layer of the given kind."""
    taps = ar.window_taps(n_in, kernel, stride)
    if kind == "dense":
        return [(x, i, i * n_in + x) for i in range(len(taps)) for x in range(n_in)]
    if kind == "local":
        return [(x, i, i * kernel + j) for i, w in enumerate(taps) for j, x in enumerate(w)]
    return [(x, i, j) for i, w in enumerate(taps) for j, x in enumerate(w)]  # shared


def _weight_count(n_in: int, kernel: int, stride: int, kind: str) -> int:
    """Distinct weights of the layer, from `cnnlib.arithmetic` (no biases)."""
    n_out = ar.conv_output_size(n_in, kernel, stride)
    if kind == "dense":
        return ar.linear_params(n_in, n_out, bias=False)
    if kind == "local":
        return ar.locally_connected_params(1, 1, (1, kernel), (1, n_out), bias=False)
    return ar.conv_params(1, 1, (1, kernel), bias=False)


def plot_connectivity(
    n_in: int, kernel: int, stride: int = 1, kind: str = "shared", ax: Axes | None = None
) -> Axes:
    """A 1-D layer as a graph: n_in inputs (bottom) wired to the outputs of a K-wide window.

    kind: "dense" (every input to every output, one weight each), "local" (each output sees its
    window only, one weight per connection) or "shared" (local, and every window reuses the same
    K weights: a convolution). Shared weights have one colour per tap; unshared edges are grey.
    returns: the Axes; its title gives the number of distinct weights.
    """
    names = {"dense": "fully connected", "local": "locally connected", "shared": "convolution"}
    if kind not in names:
        raise ValueError(f"kind must be one of {sorted(names)}, got {kind!r}")
    taps = ar.window_taps(n_in, kernel, stride)
    centres = [sum(w) / len(w) for w in taps]
    ax = _axes(ax, (4.0, 3.0))
    for x, i, j in _connections(n_in, kernel, stride, kind):
        color = f"C{j % 10}" if kind == "shared" else "0.45"
        ax.plot([x, centres[i]], [0, 1], color=color, lw=1.6, gid="edge", zorder=1)
    ax.scatter(range(n_in), [0] * n_in, s=120, color="white", edgecolor="black", zorder=2)
    ax.scatter(centres, [1] * len(centres), s=120, color="black", zorder=2)
    ax.text(-0.8, 0, "inputs", ha="right", va="center")
    ax.text(-0.8, 1, "outputs", ha="right", va="center")
    ax.set_xlim(-3.2, n_in - 0.4)
    ax.set_ylim(-0.25, 1.25)
    ax.set_axis_off()
    ax.set_title(f"{names[kind]}: {_weight_count(n_in, kernel, stride, kind)} weights")
    if kind == "shared":
        handles = [Line2D([], [], color=f"C{j % 10}", label=f"w{j}") for j in range(kernel)]
        ax.legend(handles=handles, loc="lower right", fontsize="small", ncol=kernel)
    return ax


# --------------------------------------------------------------------------------------------
# Where the costs of a network lie


def _kind(row: ar.LayerStats) -> str:
    """conv, pool or fc, read off a layer-table row."""
    if len(row.output_shape) == 1:
        return "fc"
    return "pool" if row.params == 0 else "conv"


def _human(n: float) -> str:
    """1234567 -> '1.23 M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.3g}"


def _share_panel(ax: Axes, names: list[str], values: list[float], colors: list[str]) -> None:
    """Horizontal bars: each layer's share (%) of the column's total, labelled."""
    total = sum(values) or 1
    shares = [100 * v / total for v in values]
    bars = ax.barh(names, shares, color=colors)
    ax.bar_label(bars, labels=[f"{s:.0f}%" if s >= 0.5 else "" for s in shares], padding=2)
    ax.set_xlim(0, max(shares) * 1.25 + 1)
    ax.set_xlabel("share of the network's total (%)")


def plot_layer_costs(rows: Sequence[ar.LayerStats]) -> Figure:
    """Three panels from an `arithmetic.layer_table`: each layer's share of activation memory,
    parameters and multiply-adds, first layer on top, bars coloured by kind (conv / pool / fc).

    rows: LayerStats, one per layer. returns: the Figure (three Axes, one bar per row each).
    """
    names = [r.name for r in rows]
    colors = [KIND_COLORS[_kind(r)] for r in rows]
    fig, axes = plt.subplots(
        1, 3, figsize=(13, 0.32 * len(rows) + 2.2), sharey=True, layout="constrained"
    )
    memory, params, flops = (
        [getattr(r, k) for r in rows] for k in ("memory_kb", "params", "flops")
    )
    columns = [
        ("activation memory", memory, f"{sum(memory):,.0f} KB"),
        ("parameters", params, _human(sum(params))),
        ("multiply-adds", flops, _human(sum(flops))),
    ]
    for ax, (title, values, total) in zip(axes, columns, strict=True):
        _share_panel(ax, names, values, colors)
        ax.set_title(f"{title}\n(total {total})")
    axes[0].invert_yaxis()  # shared y: first layer on top in every panel
    axes[0].set_ylabel("layer")
    handles = [Patch(color=c, label=k) for k, c in KIND_COLORS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    return fig
