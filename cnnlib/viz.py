"""Lecture figures: convolution geometry, receptive fields, where a network's costs lie, filters,
feature maps, heatmaps of arrays and gradients, activation functions with their derivatives,
training curves, the distribution of activations layer by layer, images as they are, the trials
of a hyperparameter search, and explanations of a prediction (saliency, Grad-CAM, occlusion maps
from `cnnlib.explain`) beside their images.

Every plotting function draws on the matplotlib Axes it is given (a new figure when `ax` is None)
and returns that Axes, or the Figure for multi-panel plots. None of them calls `plt.show()`: a
notebook displays what a cell returns, and the tests inspect the drawn artists under Agg.

The numbers come from `cnnlib.arithmetic`; this module only decides where to draw them. Drawn
artists carry a `gid` ("window", "tap", "padding", "unread", "edge", "highlight") so tests can
count them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from cnnlib import arithmetic as ar

__all__ = [
    "plot_activations",
    "plot_attributions",
    "plot_connectivity",
    "plot_curves",
    "plot_feature_maps",
    "plot_filters",
    "plot_heatmap",
    "plot_images",
    "plot_layer_costs",
    "plot_layer_histograms",
    "plot_receptive_fields",
    "plot_search",
    "plot_shift_sensitivity",
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


# --------------------------------------------------------------------------------------------
# Filters and feature maps


def _grid(count: int, ncols: int | None, panel: tuple[float, float], extra_width: float = 0.0):
    """A constrained-layout figure with `count` panels in rows of `ncols` (about square when
    None); the panels past `count` are hidden. Returns the figure, the first `count` Axes and
    the number of columns."""
    if count < 1:
        raise ValueError("nothing to draw: got 0 panels")
    ncols = min(count, ncols or int(np.ceil(np.sqrt(count))))
    nrows = int(np.ceil(count / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, squeeze=False, layout="constrained",
        figsize=(ncols * (panel[0] + extra_width) + 0.4, nrows * panel[1] + 0.6),
    )  # fmt: skip
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count], ncols


def _filter_images(weights) -> tuple[np.ndarray, bool]:
    """weights as (F, KH, KW) grey or (F, KH, KW, 3) colour images, and whether they are colour."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 4 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim == 3:
        return w, False
    if w.ndim == 4 and w.shape[1] == 3:
        return w.transpose(0, 2, 3, 1), True
    raise ValueError(
        f"weights must be (F, KH, KW) or (F, C, KH, KW) with C = 1 or 3, got shape {w.shape}"
    )


def plot_filters(
    weights,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "gray",
    title: str | None = None,
    panel_size: float = 1.1,
) -> Figure:
    """A grid of filters, one panel each, every filter scaled on its own so that 0 is mid-grey.

    weights: (F, KH, KW), or (F, C, KH, KW) with C = 1 (drawn with `cmap`) or C = 3 (drawn in
    colour: each channel 0.5 + w / (2 max|w|), so a filter that ignores colour is grey and a
    colour-opponent one is coloured). titles: F panel titles. title: the figure's title.
    returns: the Figure; its first F Axes hold one image each, the rest are hidden.
    """
    images, colour = _filter_images(weights)
    if titles is not None and len(titles) != len(images):
        raise ValueError(
            f"titles must have one entry per filter ({len(images)}), got {len(titles)}"
        )
    fig, axes, _ = _grid(len(images), ncols, (panel_size, panel_size + (0.25 if titles else 0)))
    for n, (ax, img) in enumerate(zip(axes, images, strict=True)):
        scale = float(np.abs(img).max()) or 1.0
        if colour:
            ax.imshow(0.5 + img / (2 * scale), interpolation="nearest")
        else:
            ax.imshow(img, cmap=cmap, vmin=-scale, vmax=scale, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[n], fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_feature_maps(
    maps,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "gray",
    symmetric: bool = False,
    same_scale: bool = False,
    colorbar: bool = True,
    title: str | None = None,
    panel_size: float = 3.0,
) -> Figure:
    """Images side by side (feature maps, or the image they came from), each with a colour bar.

    maps: (M, H, W), or a sequence of M 2-D arrays that may differ in size (a map and its pooled
    versions: the tick labels then show the sizes in pixels). symmetric: colour limits ±max|map|,
    for signed responses with a diverging cmap; otherwise each map spans its own range.
    same_scale: one set of colour limits for all panels (those of all the maps together), so that
    equal values look alike across panels. titles: M panel titles. title: the figure's title.
    returns: the Figure (panels first).
    """
    maps = [np.asarray(m) for m in maps]
    if any(m.ndim != 2 for m in maps):
        raise ValueError(f"maps must be 2-D arrays, got shapes {[m.shape for m in maps]}")
    if titles is not None and len(titles) != len(maps):
        raise ValueError(f"titles must have one entry per map ({len(maps)}), got {len(titles)}")
    fig, axes, ncols = _grid(len(maps), ncols, (panel_size, panel_size), 0.5 if colorbar else 0)
    everything = np.concatenate([m.ravel() for m in maps])
    for n, (ax, m) in enumerate(zip(axes, maps, strict=True)):
        values = everything if same_scale else m
        scale = float(np.abs(values).max()) or 1.0
        if symmetric:
            limits = {"vmin": -scale, "vmax": scale}
        else:
            limits = {"vmin": float(values.min()), "vmax": float(values.max())}
        image = ax.imshow(m, cmap=cmap, interpolation="nearest", **limits)
        if colorbar:
            fig.colorbar(image, ax=ax, shrink=0.8)
        if titles is not None:
            ax.set_title(titles[n], fontsize="medium")
        ax.set_xlabel("column (pixels)")
        if n % ncols == 0:
            ax.set_ylabel("row (pixels)")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# Explanations beside their images


def _as_numpy(a) -> np.ndarray:
    """An array, or a torch tensor on any device (moved to the CPU), as a float64 NumPy array."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _displayable(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) with C = 1 or 3, or (N, H, W) -> (N, H, W) or (N, H, W, 3) in [0, 1], each
    image stretched from its own min to its max (normalised inputs are not in display range)."""
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.ndim == 4 and images.shape[1] == 3:
        images = images.transpose(0, 2, 3, 1)
    elif images.ndim != 3:
        raise ValueError(
            f"images must be (N, H, W) or (N, C, H, W) with C = 1 or 3, got shape {images.shape}"
        )
    axes = tuple(range(1, images.ndim))
    low = images.min(axis=axes, keepdims=True)
    span = images.max(axis=axes, keepdims=True) - low
    return (images - low) / np.where(span > 0, span, 1.0)


def plot_attributions(
    images,
    maps: Mapping[str, object],
    *,
    titles: Sequence[str] | None = None,
    overlay: bool = True,
    alpha: float = 0.6,
    cmap: str = "inferno",
    panel_size: float = 1.8,
) -> Figure:
    """Each image (top row) and below it one row per explanation: what the network looked at.

    images: (N, C, H, W) with C = 1 or 3, or (N, H, W), arrays or tensors; each is stretched to
    its own range for display. maps: {method: (N, H, W) map} (saliency, Grad-CAM, occlusion:
    drawn with `cmap`, each panel on its own scale, over a grey copy of the image when
    `overlay`), or {method: (N, C, H, W)} image-shaped attributions (guided backprop,
    integrated gradients: drawn as images with 0 mid-grey, as `plot_filters` draws filters).
    titles: N column titles (the class, the prediction). Rows are labelled with the methods.
    returns: the Figure; axes[r * N + i] shows row r (0: the images) of image i.
    """
    pictures = _displayable(_as_numpy(images))
    n, size = len(pictures), pictures.shape[1:3]
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have one entry per image ({n}), got {len(titles)}")
    rows = {name: _as_numpy(m) for name, m in maps.items()}
    for name, m in rows.items():
        channels_ok = m.ndim == 3 or (m.ndim == 4 and m.shape[1] in (1, 3))
        if not channels_ok or m.shape[0] != n or m.shape[-2:] != size:
            raise ValueError(
                f"maps[{name!r}] must be (N, H, W) or (N, C, H, W) with C = 1 or 3 and N, H, W "
                f"= {n}, {size[0]}, {size[1]} (one map per image, at the image's size), got "
                f"shape {m.shape}"
            )
    fig, axes = plt.subplots(
        1 + len(rows), n, squeeze=False, layout="constrained",
        figsize=(n * panel_size + 0.8, (1 + len(rows)) * panel_size),
    )  # fmt: skip
    grey = pictures.mean(axis=-1) if pictures.ndim == 4 else pictures
    for i in range(n):
        axes[0, i].imshow(pictures[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize="small")
        for r, m in enumerate(rows.values(), start=1):
            ax = axes[r, i]
            if m.ndim == 4:  # an image-shaped attribution: 0 -> mid-grey, as plot_filters
                signed = _filter_images(m[i : i + 1])[0][0]  # (H, W) or (H, W, 3)
                shown = 0.5 + signed / (2 * (float(np.abs(signed).max()) or 1.0))
                ax.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                continue
            if overlay:
                ax.imshow(grey[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.imshow(m[i], cmap=cmap, alpha=alpha if overlay else 1.0, interpolation="nearest")
    for ax, name in zip(axes[:, 0], ["image", *rows], strict=True):
        ax.set_ylabel(name)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


# --------------------------------------------------------------------------------------------
# One array as a grid of numbers


def _ticks(ax: Axes, n: int, axis: str, labels: Sequence[str] | None) -> None:
    """Every position labelled when there are few (or given labels), integer ticks otherwise."""
    set_ticks, set_labels = (
        (ax.set_xticks, ax.set_xticklabels) if axis == "x" else (ax.set_yticks, ax.set_yticklabels)
    )
    if labels is not None:
        if len(labels) != n:
            raise ValueError(f"{axis}ticklabels must have {n} entries, got {len(labels)}")
        set_ticks(range(n))
        set_labels(labels, fontsize="small")
    elif n <= 16:
        set_ticks(range(n))
    else:
        (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def plot_heatmap(
    a,
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool = False,
    fmt: str = ".2g",
    cmap: str = "viridis",
    symmetric: bool = False,
    colorbar: bool = True,
    colorbar_label: str | None = None,
    xlabel: str = "column",
    ylabel: str = "row",
    highlight: Sequence[tuple[int, int, int, int]] = (),
    xticklabels: Sequence[str] | None = None,
    yticklabels: Sequence[str] | None = None,
) -> Axes:
    """A 2-D array as coloured cells, row 0 on top: a kernel, an im2col matrix, a gradient.

    a: (R, C). annotate: write each value in its cell with format `fmt` (small arrays only).
    symmetric: colour limits ±max|a| (use a diverging cmap such as "RdBu_r"), so 0 is the middle
    colour. highlight: (row, col, height, width) boxes outlined in black (gid "highlight"), e.g.
    the window one output reads. returns: the Axes.
    """
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"a must be a 2-D array, got shape {a.shape}")
    rows, cols = a.shape
    ax = _axes(ax, (min(12.0, 0.45 * cols + 2.2), min(10.0, 0.45 * rows + 1.4)))
    scale = float(np.abs(a).max()) or 1.0
    limits = {"vmin": -scale, "vmax": scale} if symmetric else {}
    image = ax.imshow(a, cmap=cmap, interpolation="nearest", **limits)
    if annotate:
        lo, hi = image.get_clim()
        for (r, c), value in np.ndenumerate(a):
            # dark text on the light half of the colour map, light text on the dark half
            level = (value - lo) / ((hi - lo) or 1.0)
            shade = np.mean(image.cmap(level)[:3])
            ax.text(c, r, format(value, fmt), ha="center", va="center", fontsize="small",
                    color="black" if shade > 0.5 else "white", gid="value")  # fmt: skip
    for r, c, h, w in highlight:
        box = Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor="black", lw=2.5,
                        gid="highlight")  # fmt: skip
        ax.add_patch(box)
    _ticks(ax, cols, "x", xticklabels)
    _ticks(ax, rows, "y", yticklabels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.85, label=colorbar_label)
    return ax


# --------------------------------------------------------------------------------------------
# Activation functions and their derivatives


def plot_activations(x, curves: Mapping[str, tuple], title: str | None = None) -> Figure:
    """One panel per activation: f(x) solid, f'(x) dashed, the largest f' marked with a dot.

    x: (P,) points. curves: {name: (f(x), f'(x))}, each (P,), e.g. from a forward pass and a
    backward pass with dout = 1. Lines carry gid "function" / "derivative", the dot "peak".
    returns: the Figure (one Axes per activation, in the order given).
    """
    x = np.asarray(x, dtype=np.float64)
    fig, axes = plt.subplots(
        1, len(curves), figsize=(4.0 * len(curves), 3.4), layout="constrained", squeeze=False
    )
    for ax, (name, (f, df)) in zip(axes[0], curves.items(), strict=True):
        f, df = np.asarray(f, dtype=np.float64), np.asarray(df, dtype=np.float64)
        if f.shape != x.shape or df.shape != x.shape:
            raise ValueError(
                f"curves[{name!r}] must be two arrays of x's shape {x.shape}, "
                f"got {f.shape} and {df.shape}"
            )
        peak = int(np.argmax(df))
        ax.plot(x, f, lw=2, label=f"{name}(x)", gid="function")
        ax.plot(x, df, lw=2, ls="--", label=f"{name}'(x)", gid="derivative")
        ax.plot(x[peak], df[peak], "o", color="black", gid="peak",
                label=f"max {name}' = {df[peak]:.3g} at x = {x[peak]:.2g}")  # fmt: skip
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_xlabel("x")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    axes[0, 0].set_ylabel("value")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# Sensitivity to a shift of the input


def plot_shift_sensitivity(
    shifts: Sequence[int],
    changes: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    ylabel: str = "relative change of the output",
    title: str = "How much a small shift of the input changes each output",
) -> Axes:
    """One line per operation: how much its output changes when the input moves by a shift.

    shifts: the shifts in pixels (x axis). changes: {label: one value per shift}.
    returns: the Axes.
    """
    ax = _axes(ax, (6.5, 4.0))
    markers = "osD^vP"
    for n, (label, values) in enumerate(changes.items()):
        if len(values) != len(shifts):
            raise ValueError(
                f"changes[{label!r}] must have one value per shift ({len(shifts)}), "
                f"got {len(values)}"
            )
        ax.plot(shifts, values, marker=markers[n % len(markers)], label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("shift of the input (pixels)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# --------------------------------------------------------------------------------------------
# Curves (losses, accuracies, per-layer statistics) and per-layer histograms


def _curve_xy(label: str, curve) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one entry of plot_curves' `curves`: y alone (x = 1..len(y)) or an (x, y) pair."""
    if isinstance(curve, tuple) and len(curve) == 2:
        x, y = (np.asarray(c, dtype=np.float64) for c in curve)
    else:
        y = np.asarray(curve, dtype=np.float64)
        x = np.arange(1, y.size + 1, dtype=np.float64)
    if y.ndim != 1 or x.shape != y.shape or y.size == 0:
        raise ValueError(
            f"curves[{label!r}] must be a 1-D sequence of values or an (x, y) pair of equal "
            f"lengths, got x of shape {x.shape} and y of shape {y.shape}"
        )
    return x, y


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """The mean of each value and the window - 1 before it (fewer at the start), same length."""
    sums = np.cumsum(np.insert(y, 0, 0.0))
    ends = np.arange(1, y.size + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_curves(
    curves: Mapping[str, Sequence[float] | tuple],
    ax: Axes | None = None,
    *,
    xlabel: str = "epoch",
    ylabel: str = "loss",
    title: str | None = None,
    logy: bool = False,
    smooth: int | None = None,
    marker: str | None = None,
) -> Axes:
    """One line per run, on shared axes: the side-by-side comparison of an experiment.

    curves: {label: y} with x = 1..len(y), or {label: (x, y)}; when every x is a whole number
    (epochs, layers) the x ticks are too. logy: a log-scale y axis (for
    losses that span decades; non-positive values are then not drawn). smooth: k draws each raw
    curve faint (gid "raw") and its k-point trailing moving average on top (gid "curve"), for
    noisy per-iteration losses. returns: the Axes.
    """
    if not curves:
        raise ValueError("curves must hold at least one {label: values} entry, got none")
    if smooth is not None and (not isinstance(smooth, int) or smooth < 1):
        raise ValueError(
            f"smooth must be a positive int (points to average) or None, got {smooth!r}"
        )
    ax = _axes(ax, (6.5, 4.0))
    whole_x = True  # epochs, layers, iterations: no ticks at 2.5
    for label, curve in curves.items():
        x, y = _curve_xy(label, curve)
        whole_x &= bool(np.all(x == np.round(x)))
        if smooth is None:
            ax.plot(x, y, marker=marker, label=label, gid="curve")
            continue
        (raw,) = ax.plot(x, y, alpha=0.25, lw=1, gid="raw")
        ax.plot(x, _moving_average(y, smooth), color=raw.get_color(), marker=marker, lw=2,
                label=label, gid="curve")  # fmt: skip
    if logy:
        ax.set_yscale("log")
    if whole_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_layer_histograms(
    activations,
    *,
    bins: int = 50,
    range: tuple[float, float] | None = None,  # the name numpy and matplotlib use
    title: str | None = None,
    ncols: int | None = None,
    label: str = "layer",
) -> Figure:
    """One histogram per layer, each titled with the layer's name, mean and standard deviation:
    how a signal's distribution changes as it goes deeper.

    activations: a sequence of arrays (panels "layer 1", "layer 2", ... using `label`) or a
    {name: array} mapping; arrays of any shape, all their values are counted. range: the x range
    of every panel (default: the smallest and largest value over all layers, so the panels share
    one scale and a collapsing distribution looks narrow). ncols: panels per row (default: all in
    one row up to 10). returns: the Figure.
    """
    if isinstance(activations, Mapping):
        named = {str(k): np.asarray(v, dtype=np.float64) for k, v in activations.items()}
    else:
        named = {f"{label} {i}": np.asarray(a, dtype=np.float64)
                 for i, a in enumerate(activations, start=1)}  # fmt: skip
    if not named:
        raise ValueError("activations must hold at least one array, got none")
    for name, a in named.items():
        if a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"activations[{name!r}] must be a non-empty array of finite values")
    if range is None:
        lo = min(float(a.min()) for a in named.values())
        hi = max(float(a.max()) for a in named.values())
        range = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
    elif not (len(range) == 2 and range[0] < range[1]):
        raise ValueError(f"range must be a (low, high) pair with low < high, got {range!r}")
    fig, axes, ncols = _grid(len(named), ncols or min(len(named), 10), (2.0, 1.9))
    for n, (ax, (name, a)) in enumerate(zip(axes, named.items(), strict=True)):
        ax.hist(a.ravel(), bins=bins, range=range, color="tab:blue", gid="histogram")
        ax.set_title(f"{name}\nmean {a.mean():.3g}\nstd {a.std():.3g}", fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.set_yticks([])
        if n // ncols == (len(named) - 1) // ncols:
            ax.set_xlabel("value", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# Images as they are, and the trials of a hyperparameter search


def plot_images(
    images,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "gray",
    title: str | None = None,
    panel_size: float = 1.1,
) -> Figure:
    """A grid of images drawn as they are, all on one scale (unlike plot_filters, which scales
    each panel around 0): digits, augmented batches, whitened images.

    images: (N, H, W), or (N, C, H, W) with C = 1 (grey, drawn with `cmap` between vmin and vmax,
    by default the smallest and largest value of all the images) or C = 3 (colour, values
    clipped to [0, 1]). titles: N panel titles. returns: the Figure (N visible Axes).
    """
    a = np.asarray(images, dtype=np.float64)
    if a.ndim == 4 and a.shape[1] in (1, 3):
        a = a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)
    elif a.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W) with C = 1 or 3, got shape "
                         f"{a.shape}")
    if titles is not None and len(titles) != len(a):
        raise ValueError(f"titles must have one entry per image ({len(a)}), got {len(titles)}")
    colour = a.ndim == 4
    low = float(np.nanmin(a)) if vmin is None else vmin
    high = float(np.nanmax(a)) if vmax is None else vmax
    if not high > low:
        high = low + 1.0
    fig, axes, _ = _grid(len(a), ncols, (panel_size, panel_size + (0.25 if titles else 0)))
    for n, (ax, img) in enumerate(zip(axes, a, strict=True)):
        if colour:
            ax.imshow(np.clip(img, 0.0, 1.0), interpolation="nearest", gid="image")
        else:
            ax.imshow(img, cmap=cmap, vmin=low, vmax=high, interpolation="nearest", gid="image")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[n], fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_search(
    results,
    x: str,
    y: str,
    *,
    logx: bool = True,
    logy: bool = True,
    score_label: str = "score",
    title: str | None = None,
) -> Figure:
    """Bergstra & Bengio's picture of a search: the trials in the (x, y) plane, coloured by score,
    with the score against x above and against y on the right (the "marginals"), one panel group
    per search, side by side and on shared scales.

    results: a SearchResult (cnnlib.numpy.random_search / grid_search) or a {label: result}
    mapping. x, y: two of its hyperparameters. logx, logy: log-scale axes (learning rates,
    regularisation strengths). The best trial is ringed (gid "best"); the trials are drawn with
    gid "trial". returns: the Figure.
    """
    if not isinstance(results, Mapping):
        results = {getattr(results, "method", "search"): results}
    if not results:
        raise ValueError("results must hold at least one search, got none")
    columns = {}
    for label, result in results.items():
        if not hasattr(result, "values") or not hasattr(result, "scores"):
            raise TypeError(f"results[{label!r}] must be a SearchResult, got "
                            f"{type(result).__name__}")
        columns[label] = (np.asarray(result.values(x), np.float64),
                          np.asarray(result.values(y), np.float64), result.scores)
    every = np.concatenate([c[2] for c in columns.values()])
    finite = every[np.isfinite(every)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    fig = plt.figure(figsize=(4.2 * len(results), 4.2), layout="constrained")
    subfigures = np.atleast_1d(fig.subfigures(1, len(results)))
    for subfig, (label, (xs, ys, scores)) in zip(subfigures, columns.items(), strict=True):
        grid = subfig.add_gridspec(2, 2, width_ratios=(4, 1.3), height_ratios=(1.3, 4))
        main = subfig.add_subplot(grid[1, 0])
        top = subfig.add_subplot(grid[0, 0], sharex=main)
        right = subfig.add_subplot(grid[1, 1], sharey=main)
        points = main.scatter(xs, ys, c=scores, cmap="viridis", vmin=low, vmax=high,
                              edgecolors="black", linewidths=0.5, s=40, gid="trial")
        best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
        main.scatter(xs[best], ys[best], s=160, facecolors="none", edgecolors="red",
                     linewidths=1.5, gid="best")
        top.scatter(xs, scores, s=15, color="tab:blue")
        right.scatter(scores, ys, s=15, color="tab:blue")
        if logx:
            main.set_xscale("log")
        if logy:
            main.set_yscale("log")
        top.set_ylim(low - 0.05 * (high - low + 1e-12), high + 0.05 * (high - low + 1e-12))
        right.set_xlim(*top.get_ylim())
        top.tick_params(labelbottom=False)
        right.tick_params(labelleft=False)
        top.set_ylabel(score_label, fontsize="small")
        right.set_xlabel(score_label, fontsize="small")
        main.set_xlabel(x)
        main.set_ylabel(y)
        for ax in (main, top, right):
            ax.grid(alpha=0.3)
        subfig.suptitle(f"{label}: {len(xs)} trials, {len(np.unique(xs))} values of {x}",
                        fontsize="medium")
        subfig.colorbar(points, ax=right, label=score_label, shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig
