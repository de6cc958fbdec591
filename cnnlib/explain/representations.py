"""Looking at what a network computes: its first filters, a layer's maps, the feature vectors of
its last layers, their nearest neighbours and a t-SNE map of them.

    first_layer_filters(model)               the weights that look at pixels  (F, C, KH, KW)
    filter_grid(weights)                     those filters tiled into one image  (C, GH, GW)
    layer_activations(model, x, layer)       what a layer outputs for x  (N, K, h, w)
    features(model, x)                       the penultimate feature vectors  (N, D)
    nearest_neighbours(queries, keys, k)     the k closest keys to each query  (Q, k), (Q, k)
    tsne(features)                           a 2-D map of the vectors (van der Maaten & Hinton)

Plots of these live in `cnnlib.viz` (`plot_filters`, `plot_feature_maps`).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from cnnlib.numpy._checks import check_ndim, describe
from cnnlib.torch._tensors import check_tensor

from ._common import (
    Capture,
    check_model,
    check_model_and_images,
    chunks,
    explaining,
    find_layer,
    number,
    positive_int,
)

__all__ = [
    "features",
    "filter_grid",
    "first_layer_filters",
    "layer_activations",
    "nearest_neighbours",
    "tsne",
]


# --------------------------------------------------------------------------------------------
# Filters


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution's weights, (F, C, KH, KW), a detached copy.

    "First" is the first module, in the order the model registers them (as print(model) lists
    them), that has a 4-D weight: the layer that looks at the pixels in every zoo model.
    Only these filters read directly as pictures: later ones combine feature maps, not colours.
    """
    check_model(model)
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.ndim == 4:
            return weight.detach().clone()
    raise ValueError(
        f"model must contain a convolution (a module with a 4-D weight), found none in "
        f"{type(model).__name__}"
    )


def filter_grid(
    weights: torch.Tensor, ncols: int | None = None, padding: int = 1, pad_value: float = 1.0
) -> torch.Tensor:
    """Filters tiled into one image, each scaled on its own so that a weight of 0 is mid-grey.

    weights: (F, C, KH, KW) with C = 1 or 3 -> (C, GH, GW) with values in [0, 1]:
    0.5 + w / (2 max|w|) per filter (as `cnnlib.viz.plot_filters` draws them, so a filter that
    ignores colour is grey and a colour-opponent one coloured), in rows of `ncols` (about square
    when None), `padding` pixels of `pad_value` between and around them:
    GH = rows (KH + padding) + padding, GW = ncols (KW + padding) + padding, rows = ceil(F / ncols).
    Show it with plt.imshow(grid.permute(1, 2, 0)) (squeeze a grey grid's channel first).
    A later layer's (F, C, KH, KW) weights with other C can be shown channel by channel with
    weights.reshape(-1, 1, KH, KW).
    """
    check_tensor("weights", weights)
    check_ndim("weights", weights, 4, "(F, C, KH, KW)")
    f, c, kh, kw = weights.shape
    if c not in (1, 3) or f == 0:
        raise ValueError(
            f"weights must be (F, C, KH, KW) with F >= 1 and C = 1 or 3 (grey or colour "
            f"filters), got shape {tuple(weights.shape)}; show other filters one channel at a "
            f"time with weights.reshape(-1, 1, KH, KW)"
        )
    ncols = math.ceil(math.sqrt(f)) if ncols is None else positive_int("ncols", ncols)
    ncols = min(ncols, f)
    padding = positive_int("padding", padding, minimum=0)
    pad_value = number("pad_value", pad_value)
    rows = math.ceil(f / ncols)
    w = weights.detach().to(torch.float32)
    scale = w.abs().amax(dim=(1, 2, 3), keepdim=True)
    scaled = 0.5 + w / (2 * torch.where(scale > 0, scale, torch.ones_like(scale)))
    grid = torch.full(
        (c, rows * (kh + padding) + padding, ncols * (kw + padding) + padding),
        pad_value, dtype=torch.float32, device=weights.device,
    )  # fmt: skip
    for i in range(f):
        top = padding + (i // ncols) * (kh + padding)
        left = padding + (i % ncols) * (kw + padding)
        grid[:, top : top + kh, left : left + kw] = scaled[i]
    return grid


# --------------------------------------------------------------------------------------------
# Activations and feature vectors


def layer_activations(model: nn.Module, x: torch.Tensor, layer):
    """What one layer (or several) outputs for x, detached.

    x: (N, C, H, W); layer: a name from model.named_modules() (e.g. "layer1.0.conv1"), or the
    module -> that layer's output, (N, K, h, w) for a conv layer; a list of layers -> a dict
    {name: output}. One forward pass in eval mode, without gradients. A module that runs more
    than once per forward pass (a ReLU shared by a block) raises ValueError: name a layer that
    runs once.
    """
    check_model_and_images(model, x)
    several = isinstance(layer, list | tuple)
    layers = list(layer) if several else [layer]
    if not layers:
        raise ValueError("layer must name at least one layer, got an empty list")
    captures = [Capture(model, one) for one in layers]
    with explaining(model), torch.no_grad(), contextlib.ExitStack() as hooks:
        for capture in captures:
            hooks.enter_context(capture)
        model(x.detach())
    outputs = {capture.name: capture.output.detach() for capture in captures}
    return outputs if several else outputs[captures[0].name]


def _last_linear(model: nn.Module) -> tuple[str, nn.Module]:
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(
            f"model has no nn.Linear layer, so it has no penultimate features: pass layer= "
            f"the name of the layer whose output to use ({type(model).__name__})"
        )
    return linears[-1]


def features(
    model: nn.Module, x: torch.Tensor, layer=None, *, max_batch: int = 256
) -> torch.Tensor:
    """Feature vectors: x (N, C, H, W) -> (N, D), one row per image, detached.

    layer=None takes what goes into the model's last nn.Linear layer (the penultimate features,
    the image's code that the classifier reads: 64 numbers for a CIFAR ResNet, 4096 for AlexNet);
    a layer name (or module) takes that layer's output instead, flattened. Computed in eval mode
    without gradients, `max_batch` images at a time, so a whole data set fits.
    """
    check_model_and_images(model, x)
    max_batch = positive_int("max_batch", max_batch)
    name, module = _last_linear(model) if layer is None else find_layer(model, layer)
    kept: list[torch.Tensor] = []

    def keep(module, inputs, output=None):
        kept.append((inputs[0] if output is None else output).detach().flatten(1))

    if layer is None:
        handle = module.register_forward_pre_hook(keep)
    else:
        handle = module.register_forward_hook(keep)
    rows = []
    try:
        with explaining(model), torch.no_grad():
            for part in chunks(x.shape[0], max_batch):
                kept.clear()
                model(x[part].detach())
                if len(kept) != 1:
                    raise ValueError(
                        f"layer {name!r} ran {len(kept)} times in one forward pass; name a "
                        f"layer that runs once"
                    )
                rows.append(kept[0])
    finally:
        handle.remove()
    return torch.cat(rows)


# --------------------------------------------------------------------------------------------
# Neighbours and embeddings


def _as_rows(name: str, a) -> torch.Tensor:
    """A floating-point tensor (N, ...) as (N, D)."""
    check_tensor(name, a)
    if a.ndim < 1 or a.shape[0] == 0:
        raise ValueError(f"{name} must be (N, ...) with at least one row, got {describe(a)}")
    if not a.is_floating_point():
        raise TypeError(f"{name} must hold floating-point values, got {describe(a)}")
    return a.detach().reshape(a.shape[0], -1)


def nearest_neighbours(
    queries: torch.Tensor,
    keys: torch.Tensor,
    k: int = 5,
    metric: str = "euclidean",
    exclude: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k keys closest to each query, by exact search.

    queries: (Q, ...), keys: (M, ...), flattened to vectors of the same length D (pixels, or
    feature vectors from `features`) -> (distances (Q, k), indices (Q, k)), nearest first;
    equal distances keep the lower key index first. metric: "euclidean" (computed as a difference
    of vectors, not through the ||a||^2 + ||b||^2 - 2ab shortcut that cancels digits) or "cosine"
    (1 - cos angle, which ignores the vectors' length). exclude: (Q,) key indices that a query
    may not return (torch.arange(Q) when the queries are the keys themselves).
    """
    q, m = _as_rows("queries", queries), _as_rows("keys", keys)
    if q.shape[1] != m.shape[1]:
        raise ValueError(
            f"queries and keys must have the same size per row, got queries of shape "
            f"{tuple(queries.shape)} ({q.shape[1]} values each) and keys of shape "
            f"{tuple(keys.shape)} ({m.shape[1]} values each)"
        )
    if q.device != m.device:
        raise ValueError(f"keys is on {m.device} but queries is on {q.device}")
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    m = m.to(q.dtype)
    available = m.shape[0] - (exclude is not None)
    k = positive_int("k", k)
    if k > available:
        raise ValueError(f"k must be at most {available} (the keys available), got {k}")
    if metric == "euclidean":
        distances = torch.cdist(q, m, compute_mode="donot_use_mm_for_euclid_dist")
    elif metric == "cosine":
        unit_q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
        unit_m = m / m.norm(dim=1, keepdim=True).clamp_min(1e-12)
        distances = 1 - unit_q @ unit_m.T
    if exclude is not None:
        check_tensor("exclude", exclude)
        if exclude.shape != (q.shape[0],) or exclude.is_floating_point():
            raise ValueError(
                f"exclude must be a ({q.shape[0]},) integer tensor of key indices, got "
                f"{describe(exclude)}"
            )
        distances = distances.clone()
        distances[torch.arange(q.shape[0], device=q.device), exclude.to(q.device)] = torch.inf
    order = torch.sort(distances, dim=1, stable=True)
    return order.values[:, :k], order.indices[:, :k]


def tsne(
    features: torch.Tensor,
    dims: int = 2,
    perplexity: float = 30.0,
    seed: int = 0,
    iterations: int = 1000,
    method: str | None = None,
) -> torch.Tensor:
    """t-SNE (van der Maaten & Hinton, 2008) of feature vectors, by scikit-learn.

    features: (N, ...) flattened to (N, D) -> (N, dims) float32 coordinates on features' device.
    Points close in the D-dimensional space stay close on the map; distances between far-apart
    clusters mean little. perplexity: about how many neighbours each point keeps in view (must
    be below N; 5-50 is usual). seed: fixes the optimisation (scikit-learn's random_state);
    initialised by PCA. iterations: gradient steps (at least 250; scikit-learn's max_iter).
    method: "exact" (every pair of points, O(N^2) per step) or "barnes_hut" (the tree
    approximation, O(N log N), only for dims < 4); None picks exact up to 1000 points, where it
    is both more accurate and (measured on 2 cores) faster, and Barnes-Hut above.
    """
    from sklearn.manifold import TSNE  # imported when used: `import cnnlib.explain` stays fast

    rows = _as_rows("features", features)
    dims = positive_int("dims", dims)
    iterations = positive_int("iterations", iterations, minimum=250)
    perplexity = number("perplexity", perplexity, minimum=0.0, strict_minimum=True)
    if perplexity >= rows.shape[0]:
        raise ValueError(
            f"perplexity must be below the number of points ({rows.shape[0]}), got {perplexity:g}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {describe(seed)}")
    if method is None:
        method = "exact" if rows.shape[0] <= 1000 or dims >= 4 else "barnes_hut"
    if method not in ("exact", "barnes_hut") or (method == "barnes_hut" and dims >= 4):
        raise ValueError(
            f"method must be 'exact', 'barnes_hut' (for dims < 4 only) or None, got {method!r} "
            f"with dims={dims}"
        )
    embedding = TSNE(
        n_components=dims, perplexity=perplexity, init="pca", learning_rate="auto",
        random_state=seed, max_iter=iterations, method=method,
    ).fit_transform(rows.cpu().to(torch.float64).numpy())  # fmt: skip
    return torch.from_numpy(np.asarray(embedding, dtype=np.float32)).to(features.device)
