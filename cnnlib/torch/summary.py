"""`summary(model, input_shape)`: a network's layer-by-layer table, as the lecture's AlexNet table.

    >>> from cnnlib import summary
    >>> from cnnlib.torch import models
    >>> table = summary(models.alexnet(), (3, 227, 227))
    >>> table["features.conv1"].output_shape, table["features.conv1"].memory_kb
    ((64, 56, 56), 784.0)

Each row is one layer (a leaf module, or with `depth=d` a module d levels down, such as a whole
inception module) in the order the forward pass runs it, with

- `name`: the module's path and type, e.g. ``features.conv1 (Conv2d)``;
- `output_shape`: (C, H, W) for one image, without the batch dimension;
- `memory_kb`: the size of that output in KB, 4 bytes (float32) per value / 1024;
- `params`: the learnable parameters of the module;
- `flops`: multiply-adds for one image, counted as in the lecture (`cnnlib.arithmetic`):
  a conv costs (C_out * H' * W') * (C_in/groups * KH * KW), a fully-connected layer
  D_in * D_out, a pooling layer KH * KW per output value (for adaptive pooling, the size of each
  output's window). A layer of another kind with a method `multiply_adds(x, out)` counts itself
  (LeNet-5's subsampling, partially connected and RBF layers). Everything else counts 0:
  activations, batch norm (which folds into the conv before it at inference time), local
  response normalisation, dropout, and the additions of residual connections, as in the
  papers' own FLOP figures.

Activation functions, dropout and identity layers change no shape and cost nothing in this
accounting, so the table leaves them out, as the lecture's tables do; `elementwise=True` lists
them too.

The totals give the model's parameters, its multiply-adds per image, and the activations stored
for one image's forward pass: the sum of the memory column over the layers whose output is new
memory. Outputs that are views of their input (Flatten) or written in place (ReLU(inplace=True))
take no memory of their own and are not added; the input image is reported separately.

The forward pass runs on PyTorch's "meta" device: tensors there have shapes but no data, so
even VGG-16 is tabulated in milliseconds and the model's weights are neither read nor changed.
A model that cannot run on meta tensors is run once on a real batch of one (zeros) instead.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from cnnlib.arithmetic import LayerStats, conv_macs, linear_macs, memory_kb, pool_flops
from cnnlib.numpy._checks import check_positive_int

__all__ = ["ModelSummary", "SummaryRow", "summary"]


@dataclass(frozen=True)
class SummaryRow(LayerStats):
    """One row of a model summary: `LayerStats` plus whether its output is memory of its own.

    `stored` is False for outputs that alias their input (a view such as Flatten, an in-place
    ReLU); such rows show their output's size but are not added to the activation total.
    """

    stored: bool = True

    @property
    def module_path(self) -> str:
        """The module's dotted path without the type: ``features.conv1``."""
        return self.name.split(" (")[0]


# Layers that neither change the shape nor cost anything in the lecture's accounting; hidden
# unless summary(..., elementwise=True). PReLU is not here: it has parameters.
ELEMENTWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
    nn.Tanhshrink, nn.Threshold, nn.Softmax, nn.LogSoftmax,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.Identity,
)  # fmt: skip


def _adaptive_window_total(size_in: int, size_out: int) -> int:
    """Sum over the outputs of one axis of adaptive pooling of their window sizes.

    Output i pools input positions floor(i*H/H') .. ceil((i+1)*H/H') - 1 (PyTorch's rule). When H'
    divides H every window is H/H' wide and the total is H, as for ordinary pooling.
    """
    return sum(
        -(-(i + 1) * size_in // size_out) - (i * size_in // size_out) for i in range(size_out)
    )


def layer_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-adds of one call of a leaf module on one image (see the module docstring).

    x: the module's input and out: its output, both with the batch dimension first.
    A layer of its own kind counts itself with a method `multiply_adds(x, out) -> int`.
    """
    counts_itself = getattr(module, "multiply_adds", None)
    if callable(counts_itself):
        return int(counts_itself(x, out))
    if isinstance(module, nn.Conv2d):
        return conv_macs(
            module.in_channels, module.out_channels, module.kernel_size, tuple(out.shape[2:]),
            module.groups,
        )  # fmt: skip
    if isinstance(module, nn.Linear):
        # A Linear layer applies itself at every position of its input's leading dimensions.
        positions = out[0].numel() // module.out_features
        return positions * linear_macs(module.in_features, module.out_features)
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d) and out.dim() == 4:
        return pool_flops(out.shape[1], module.kernel_size, tuple(out.shape[2:]))
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) and out.dim() == 4:
        (h_in, w_in), (h_out, w_out) = x.shape[2:], out.shape[2:]
        return (
            out.shape[1]
            * _adaptive_window_total(h_in, h_out)
            * _adaptive_window_total(w_in, w_out)
        )
    return 0


def _same_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors share storage: one is the other, or views of the same tensor."""
    base_a = a if a._base is None else a._base
    base_b = b if b._base is None else b._base
    return base_a is base_b


def _first_tensor(value) -> torch.Tensor | None:
    """The tensor a module returned (the first one, for a tuple or named tuple)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tuple | list):
        for item in value:
            if (found := _first_tensor(item)) is not None:
                return found
    return None


def _check_input_shape(input_shape) -> tuple[int, ...]:
    """input_shape as a tuple of positive ints: one image's shape, e.g. (3, 224, 224)."""
    if isinstance(input_shape, numbers.Integral) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str) or not input_shape:
        raise TypeError(
            f"input_shape must be the shape of one input without the batch dimension, e.g. "
            f"(3, 224, 224), got {input_shape!r}"
        )
    for i, size in enumerate(input_shape):
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(
                f"input_shape[{i}] must be a positive int, got {size!r} in {tuple(input_shape)!r}"
            )
    return tuple(int(s) for s in input_shape)


def _is_leaf(module: nn.Module) -> bool:
    """Whether `module` has no submodules: a layer such as Conv2d, not a container."""
    return next(module.children(), None) is None


def _row_modules(model: nn.Module, depth: int | None) -> dict[nn.Module, str]:
    """The modules that become rows, with their dotted paths.

    depth=None: the leaves. depth=d: the modules d levels below the model, and the leaves above.
    """
    rows: dict[nn.Module, str] = {}
    for path, module in model.named_modules():
        level = 0 if path == "" else path.count(".") + 1
        is_leaf = _is_leaf(module)
        if (depth is None and is_leaf) or (
            depth is not None and (level == depth or (is_leaf and level < depth))
        ):
            rows.setdefault(module, path)  # a module reached by two paths keeps the first
    return rows


class _Recorder:
    """Forward hooks that turn each call of a row module into a SummaryRow."""

    def __init__(self, model: nn.Module, depth: int | None, elementwise: bool, bytes_per_el: int):
        self.paths = _row_modules(model, depth)
        self.bytes_per_element = bytes_per_el
        self.elementwise = elementwise
        self.rows: list[SummaryRow] = []
        self._open: list[list[int]] = []  # flops accumulated inside the row modules being run
        self._handles = []
        for module in model.modules():
            if module in self.paths:
                self._handles.append(module.register_forward_pre_hook(self._enter))
                self._handles.append(module.register_forward_hook(self._leave))
            elif _is_leaf(module):
                self._handles.append(module.register_forward_hook(self._inner_leaf))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def _enter(self, module, inputs):
        self._open.append([0])

    def _inner_leaf(self, module, inputs, output):
        # A leaf below the row depth: its cost goes to the row module that contains it.
        x, out = _first_tensor(inputs), _first_tensor(output)
        if self._open and x is not None and out is not None:
            self._open[-1][0] += layer_flops(module, x, out)

    def _leave(self, module, inputs, output):
        inner_flops = self._open.pop()[0]
        x, out = _first_tensor(inputs), _first_tensor(output)
        is_leaf = _is_leaf(module)
        if is_leaf and isinstance(module, ELEMENTWISE) and not self.elementwise:
            return
        flops = inner_flops
        if is_leaf and x is not None and out is not None:
            flops += layer_flops(module, x, out)
        shape = tuple(out.shape[1:]) if out is not None else ()
        path = self.paths[module]
        name = f"{path} ({type(module).__name__})" if path else type(module).__name__
        stored = out is not None and not any(
            _same_memory(out, t) for t in inputs if isinstance(t, torch.Tensor)
        )
        self.rows.append(
            SummaryRow(
                name=name,
                output_shape=shape,
                memory_kb=memory_kb(shape, self.bytes_per_element) if shape else 0.0,
                params=sum(p.numel() for p in module.parameters()),
                flops=flops,
                stored=stored,
            )
        )


class ModelSummary(Sequence):
    """A model's layer table: a sequence of SummaryRow with totals; prints as a table.

    Index it by position or by module path (``table["features.conv1"]``). Totals:
    `params` (all the model's parameters, each counted once), `flops` (multiply-adds per image),
    `activations` (values stored per image, see `summary`), `memory_kb` (their size).
    """

    def __init__(self, rows, input_shape, params, trainable_params, model_name, bytes_per_el):
        self.rows: tuple[SummaryRow, ...] = tuple(rows)
        self.input_shape: tuple[int, ...] = tuple(input_shape)
        self.params: int = params
        self.trainable_params: int = trainable_params
        self.model_name: str = model_name
        self.bytes_per_element: int = bytes_per_el

    # ---- the sequence of rows
    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            for row in self.rows:
                if key in (row.module_path, row.name):
                    return row
            raise KeyError(f"no row for module {key!r}; rows are {[r.name for r in self.rows]}")
        return self.rows[key]

    # ---- totals
    @property
    def flops(self) -> int:
        """Multiply-adds of one image's forward pass (sum of the rows)."""
        return sum(r.flops for r in self.rows)

    @property
    def activations(self) -> int:
        """Values the forward pass stores for one image: outputs that are memory of their own."""
        return sum(math.prod(r.output_shape) for r in self.rows if r.stored and r.output_shape)

    @property
    def memory_kb(self) -> float:
        """`activations` in KB (bytes_per_element bytes each, 1024 bytes per KB)."""
        return self.activations * self.bytes_per_element / 1024

    @property
    def input_size(self) -> int:
        """Values in one input image (C*H*W)."""
        return math.prod(self.input_shape)

    @property
    def row_params(self) -> int:
        """Parameters of the modules that ran; less than `params` when some did not (e.g.
        GoogLeNet's auxiliary classifiers in eval mode)."""
        return sum(r.params for r in self.rows)

    # ---- display
    def _cells(self) -> list[tuple[str, str, str, str, str]]:
        return [
            (
                r.name,
                "x".join(map(str, r.output_shape)),
                f"{r.memory_kb:,.1f}" if r.stored else f"({r.memory_kb:,.1f})",
                f"{r.params:,}",
                f"{r.flops / 1e6:,.1f}",
            )
            for r in self.rows
        ]

    def _totals(self) -> list[str]:
        mb = self.memory_kb / 1024
        lines = [
            f"parameters:     {self.params:,}",
            f"multiply-adds:  {self.flops:,} per image ({self.flops / 1e9:,.2f} G)",
            f"activations:    {self.activations:,} values per image forward "
            f"({mb:,.1f} MB at {self.bytes_per_element} bytes each)",
            f"input:          {'x'.join(map(str, self.input_shape))} = {self.input_size:,} values",
        ]
        if self.row_params != self.params:
            lines.append(
                f"note: {self.params - self.row_params:,} parameters belong to modules that "
                f"did not run in this forward pass"
            )
        if any(not r.stored for r in self.rows):
            lines.append("(memory in parentheses: a view or in-place result, not counted)")
        return lines

    def __str__(self) -> str:
        header = ("layer", "output shape", "memory (KB)", "params", "mult-adds (M)")
        cells = self._cells()
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]

        def line(values):
            first, *rest = values
            return "  ".join(
                [first.ljust(widths[0]), rest[0].ljust(widths[1])]
                + [v.rjust(w) for v, w in zip(rest[1:], widths[2:], strict=True)]
            ).rstrip()

        rule = "-" * len(line(header))
        title = f"{self.model_name} on {'x'.join(map(str, self.input_shape))}"
        return "\n".join(
            [title, line(header), rule, *(line(c) for c in cells), rule, *self._totals()]
        )

    # The table itself is the representation, so that `>>> summary(model, shape)` at a plain
    # Python prompt prints it; IPython and Jupyter use _repr_pretty_ / _repr_html_.
    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(
            f"<th style='text-align:{a}'>{h}</th>"
            for h, a in zip(
                ("layer", "output shape", "memory (KB)", "params", "mult-adds (M)"),
                ("left", "left", "right", "right", "right"),
                strict=True,
            )
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='text-align:{'left' if i < 2 else 'right'}'>{esc(c)}</td>"
                for i, c in enumerate(cells)
            )
            + "</tr>"
            for cells in self._cells()
        )
        totals = "<br>".join(esc(t) for t in self._totals())
        title = esc(f"{self.model_name} on {'x'.join(map(str, self.input_shape))}")
        return (
            f"<div><b>{title}</b><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"</table><p style='font-family:monospace'>{totals}</p></div>"
        )


def _run_forward(model, x, on_meta: bool):
    """One forward pass; on meta, parameters and buffers are swapped for data-less copies."""
    if not on_meta:
        return model(x)
    state = {
        name: torch.empty_like(t, device="meta")
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
    return functional_call(model, state, (x,), strict=False)


def summary(
    model: nn.Module,
    input_shape,
    *,
    depth: int | None = None,
    elementwise: bool = False,
    training: bool = False,
    bytes_per_element: int = 4,
) -> ModelSummary:
    """Tabulate `model` layer by layer on one input of `input_shape` (no batch dimension).

    model: any nn.Module taking a (1, *input_shape) tensor; it is not modified (its weights are
    not touched and its train/eval modes are restored).
    input_shape: e.g. (3, 224, 224); (1, 28, 28) for LeNet-5.
    depth: None for one row per leaf layer; d for one row per module d levels down (depth=1 on
    GoogLeNet gives the paper's Table 1, one row per inception module).
    elementwise: also list activations, dropout and identity layers (see the module docstring).
    training: run the forward in training mode (GoogLeNet's auxiliary heads only run then).
    bytes_per_element: 4 for float32 (the lecture's KB), 2 for half precision.
    Returns a ModelSummary: print it, or read `rows`, `params`, `flops`, `activations`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    input_shape = _check_input_shape(input_shape)
    if depth is not None:
        depth = check_positive_int("depth", depth)
    bytes_per_element = check_positive_int("bytes_per_element", bytes_per_element)

    first = next(iter(model.parameters()), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    device = first.device if first is not None else torch.device("cpu")
    modes = {m: m.training for m in model.modules()}
    recorder = _Recorder(model, depth, elementwise, bytes_per_element)
    try:
        model.train(training)
        with torch.no_grad():
            try:
                x = torch.zeros((1, *input_shape), dtype=dtype, device="meta")
                _run_forward(model, x, on_meta=True)
            except (NotImplementedError, RuntimeError) as meta_error:
                if device.type == "meta" or not _meta_unsupported(meta_error):
                    raise
                # Some layer has no meta implementation: one real forward pass instead.
                recorder.rows.clear()
                recorder._open.clear()
                x = torch.zeros((1, *input_shape), dtype=dtype, device=device)
                _run_forward(model, x, on_meta=False)
    except (RuntimeError, ValueError, IndexError) as error:
        raise ValueError(
            f"input_shape: {type(model).__name__} cannot run on one input of shape "
            f"{input_shape} ({type(error).__name__}: {error})"
        ) from error
    finally:
        recorder.remove()
        for module, mode in modes.items():
            module.training = mode

    params = sum(p.numel() for p in model.parameters())  # a shared parameter is listed once
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ModelSummary(
        recorder.rows, input_shape, params, trainable, type(model).__name__, bytes_per_element
    )


def _meta_unsupported(error: Exception) -> bool:
    """Whether an error means "this operation has no meta-device version" (not a shape error)."""
    text = str(error).lower()
    return isinstance(error, NotImplementedError) or "meta" in text


# --------------------------------------------------------------------------------------------
# `python -m cnnlib summary MODEL [--input CxHxW] [--num-classes N] [--depth D] ...`


def _parse_shape(text: str) -> tuple[int, ...]:
    """'3x224x224' (or '3,224,224') -> (3, 224, 224); ValueError for anything else."""
    parts = text.lower().replace(",", "x").replace("*", "x").split("x")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(
            f"--input must be positive sizes joined by 'x', like 3x224x224, got {text!r}"
        )
    return tuple(int(p) for p in parts)


def main(argv: list[str] | None = None) -> int:
    """`python -m cnnlib summary MODEL ...`: print a zoo model's layer table. Returns the exit
    status: 0, or 2 for an unknown model or a malformed option."""
    import argparse
    import sys

    from cnnlib.torch import models

    parser = argparse.ArgumentParser(
        prog="python -m cnnlib summary",
        description="Print a zoo model's layer-by-layer table: output shapes, activation "
        "memory, parameters and multiply-adds (FLOPs as the lecture counts them).",
        epilog=f"models: {', '.join(models.available())}",
    )
    parser.add_argument("model", help="a zoo model name, e.g. alexnet, vgg16, resnet50")
    parser.add_argument(
        "--input",
        metavar="CxHxW",
        help="input shape of one image (default: the model's own, e.g. 3x224x224)",
    )
    parser.add_argument("--num-classes", type=int, metavar="N", help="number of classes")
    parser.add_argument(
        "--depth", type=int, metavar="D", help="one row per module D levels down (default: leaves)"
    )
    parser.add_argument(
        "--elementwise", action="store_true", help="also list activations and dropout"
    )
    parser.add_argument(
        "--train", action="store_true", help="run the forward pass in training mode"
    )
    parser.add_argument(
        "--aux-logits",
        action="store_true",
        help="googlenet: build the auxiliary classifiers (they run with --train)",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help (0) and on bad options (2)
        return int(exit_.code or 0)

    def fail(message: str) -> int:
        print(f"python -m cnnlib summary: error: {message}", file=sys.stderr)
        return 2

    try:
        spec = models.model_spec(args.model)
        input_shape = spec.input_shape if args.input is None else _parse_shape(args.input)
        if args.num_classes is not None and args.num_classes < 1:
            raise ValueError(f"--num-classes must be >= 1, got {args.num_classes}")
        if args.depth is not None and args.depth < 1:
            raise ValueError(f"--depth must be >= 1, got {args.depth}")
        extra = {}
        if args.aux_logits:
            if args.model != "googlenet":
                raise ValueError("--aux-logits: only googlenet has auxiliary classifiers")
            extra["aux_logits"] = True
        with torch.device("meta"):  # no memory for the weights: only shapes are needed
            model = models.create(args.model, num_classes=args.num_classes, **extra)
        table = summary(
            model, input_shape, depth=args.depth, elementwise=args.elementwise,
            training=args.train,
        )  # fmt: skip
    except (ValueError, TypeError) as error:
        return fail(str(error))
    table.model_name = args.model
    print(table)
    return 0
