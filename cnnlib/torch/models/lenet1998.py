"""LeNet-5 as LeCun, Bottou, Bengio and Haffner built it in 1998.

Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied to document
recognition", Proceedings of the IEEE 86(11):2278-2324, 1998; the network is described in
Section II-B and drawn in Fig. 2. Every layer has trainable parameters. Section II-B counts
them layer by layer, and the "connections" too (each input a unit reads, plus its bias):

    input   1 x 32 x 32            a digit of at most 20x20 centred in a 32x32 field
    C1      6 maps, 5x5            ->  6 x 28 x 28      156 parameters     122,304 connections
    S2      2x2 subsampling        ->  6 x 14 x 14       12                  5,880
    C3      16 maps, 5x5, Table I  -> 16 x 10 x 10    1,516                151,600
    S4      2x2 subsampling        -> 16 x  5 x  5       32                  2,000
    C5      120 maps, 5x5          -> 120 x 1 x 1    48,120                 48,120
    F6      120 -> 84                                10,164                 10,164
    output  84 -> 10 Euclidean RBF units                  0 (fixed)            840
                                                     ------                -------
                                                     60,000                340,908

The totals, 60,000 trainable parameters and 340,908 connections, are the paper's own; it gives
no separate figure for the output layer's 84 x 10 = 840 connections, but its total includes
them. `LENET5_1998_PARAMETERS`, `LENET5_1998_CONNECTIONS` and `LENET5_1998_TOTALS` hold these
figures, and tests/test_models.py recomputes every one of them from the model. How each part of
the paper is modelled here:

- C3 (`ConnectionTableConv2d`): each of the 16 maps reads only some of S2's 6 maps, as Table I
  of the paper lists (`LENET5_C3_TABLE`): 6 maps read 3 neighbouring S2 maps, 6 read 4
  neighbouring ones, 3 read 4 that are not all neighbours, 1 reads all 6. That is 60 of the 96
  possible (map, map) pairs, so 60 5x5 kernels and 16 biases: 1,516 parameters, not the 2,416 of
  a full 6 -> 16 convolution. The paper gives two reasons: fewer connections, and maps that see
  different inputs are pushed to learn different features.
- S2 and S4 (`Subsampling`): each unit adds up a 2x2 block of its map, multiplies the sum by a
  trainable coefficient and adds a trainable bias, one coefficient and one bias per map.
- The squashing function after C1, S2, C3, S4, C5 and F6 is the paper's scaled tanh,
  f(a) = 1.7159 tanh(2a / 3) (`ScaledTanh`).
- C5 is a 5x5 convolution on S4's 5x5 maps, so its output is 1x1: fully connected on a 32x32
  input, but a convolution (as the paper points out) on a larger one.
- The output layer, ``output="rbf"`` (the default): one Euclidean RBF unit per class,
  y_i = sum_j (x_j - w_ij)^2, whose centres w_i are fixed vectors of -1 and +1, not trained.
  The paper draws its centres as stylised 7x12 bitmaps of the characters (hence F6's 84 units)
  and notes that random codes would also do; we use random codes, drawn once from a fixed seed
  (`rbf_seed`), so every model gets the same ones. The model returns the scores -y_i (the
  closest centre scores highest), and cross-entropy on those scores, y_D + log sum_i exp(-y_i),
  is the paper's MAP criterion (Section II-C) without its constant "rubbish class" term.
  ``output="linear"`` is the usual modern substitute, an `nn.Linear(84, 10)` trained with the
  rest: 850 more parameters, 60,850 in all.
- Initial weights and biases are uniform in (-2.4 / F, 2.4 / F), F the number of inputs of the
  unit (the paper's Appendix A); F = 4 for S2 and S4.

`lenet5_1998_input` pads digits to the 32x32 input and scales them as the paper does. For the
20/50/500 network with ReLU and max pooling that Caffe's MNIST example and many courses call
"LeNet-5", see `cnnlib.torch.models.lenet5`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlib.arithmetic import conv_output_size, pool_output_size
from cnnlib.numpy._checks import check_ndim, check_positive_int, describe

from ._registry import register

__all__ = [
    "LENET5_1998_CONNECTIONS",
    "LENET5_1998_PARAMETERS",
    "LENET5_1998_TOTALS",
    "LENET5_C3_TABLE",
    "ConnectionTableConv2d",
    "EuclideanRBF",
    "LeNet5_1998",
    "ScaledTanh",
    "Subsampling",
    "lenet5_1998",
    "lenet5_1998_input",
    "lenet5_c3_connections",
]

# Table I of the paper, as printed: one row per S2 map (0-5), one column per C3 map (0-15);
# an X where the C3 map reads the S2 map.
LENET5_C3_TABLE = (
    "X   XXX  XXXX XX",
    "XX   XXX  XXXX X",
    "XXX   XXX  X XXX",
    " XXX  XXXX  X XX",
    "  XXX  XXXX XX X",
    "   XXX  XXXX XXX",
)


# The paper's figures (Section II-B; the output layer's 840 connections are 84 x 10, implied by
# the total), for the tests and the lecture to compare the model with.
LENET5_1998_PARAMETERS = {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164,
                    "output": 0}  # fmt: skip
LENET5_1998_CONNECTIONS = {"c1": 122_304, "s2": 5_880, "c3": 151_600, "s4": 2_000, "c5": 48_120,
                     "f6": 10_164, "output": 840}  # fmt: skip
LENET5_1998_TOTALS = {"parameters": 60_000, "connections": 340_908}


def lenet5_c3_connections(table: Sequence[str] = LENET5_C3_TABLE) -> np.ndarray:
    """Table I as a boolean array (6, 16): [i, j] is True when C3 map j reads S2 map i."""
    rows = [[mark == "X" for mark in row] for row in table]
    return np.array(rows, dtype=bool)


# --------------------------------------------------------------------------------------------
# The layers the paper's network is made of


class ScaledTanh(nn.Tanh):
    """f(a) = amplitude * tanh(slope * a), elementwise; the paper's 1.7159 tanh(2a / 3).

    The paper's Appendix A chose the constants so that f(1) = 1 and f(-1) = -1, the values of
    the RBF centres that F6's outputs are pulled towards, and so that f's second derivative is
    largest (in size) at a = ±1, away from the flat tails. A subclass of nn.Tanh, so that tools
    that treat activations alike (cnnlib.summary) treat it as one.
    """

    def __init__(self, amplitude: float = 1.7159, slope: float = 2 / 3):
        super().__init__()
        self.amplitude, self.slope = float(amplitude), float(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude:g}, slope={self.slope:.4g}"


class Subsampling(nn.Module):
    """The paper's trainable subsampling: (N, C, H, W) -> (N, C, H / size, W / size).

    out[n, c] = coefficient[c] * (sum of each size x size block of x[n, c]) + bias[c], one
    coefficient and one bias per map: 2C parameters. Every block is read once (stride = size).
    """

    def __init__(self, channels: int, size: int = 2):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.size = check_positive_int("size", size)
        self.coefficient = nn.Parameter(torch.ones(self.channels))
        self.bias = nn.Parameter(torch.zeros(self.channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> (N, C, H // size, W // size)."""
        check_ndim("x", x, 4, "(N, C, H, W)")
        if x.shape[1] != self.channels:
            raise ValueError(f"x must have {self.channels} channels, got shape {tuple(x.shape)}")
        # the mean of each block times its size: the sum (exact for 2x2 blocks in floating
        # point, and unlike divisor_override=1 supported on every device)
        block_sums = F.avg_pool2d(x, self.size) * self.fan_in
        return block_sums * self.coefficient.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    @property
    def fan_in(self) -> int:
        """The inputs one unit reads: its size x size block."""
        return self.size * self.size

    def multiply_adds(self, x: torch.Tensor, out: torch.Tensor) -> int:
        """Per image, as `cnnlib.summary` counts: size^2 additions per output (as for a pooling
        window), plus the multiply-add of coefficient and bias. That is the paper's count of
        connections (the block's inputs and the bias): 5,880 for S2."""
        return out[0].numel() * (self.fan_in + 1)

    def extra_repr(self) -> str:
        return f"{self.channels} maps, {self.size}x{self.size} blocks"


class ConnectionTableConv2d(nn.Module):
    """A convolution in which each output map reads only the input maps its table names.

    table: (C_in, C_out) booleans (or 0/1), [i, j] true when output map j reads input map i;
    every output map must read at least one. x: (N, C_in, H, W) -> (N, C_out, H - K + 1,
    W - K + 1) (stride 1, no padding, as in LeNet-5).

    Parameters: one K x K kernel per connection, `weight` (connections, K, K), in the order of
    the output maps (map 0's kernels first, each map's in the order of its input maps), and
    `bias` (C_out,). The forward pass scatters the kernels into a full (C_out, C_in, K, K)
    kernel that is zero where the table has no connection (`dense_weight()`) and runs one
    ordinary convolution: the same result as convolving each map with only its own inputs, and
    on a CPU much faster than one small convolution per map or per group of maps.
    """

    def __init__(self, table, kernel_size: int):
        super().__init__()
        connected = np.asarray(table)
        if connected.ndim != 2 or connected.size == 0:
            raise ValueError(
                f"table must be a 2-D (in_channels, out_channels) array of booleans, got "
                f"{describe(connected)}"
            )
        if not np.all((connected == 0) | (connected == 1)):
            raise ValueError("table must hold booleans (or 0 and 1) only")
        connected = connected.astype(bool)
        unread = np.flatnonzero(~connected.any(axis=0))
        if unread.size:
            raise ValueError(
                f"table: output maps {unread.tolist()} read no input map; each column needs at "
                f"least one True"
            )
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        self.in_channels, self.out_channels = connected.shape
        # torch.tensor, not from_numpy: it follows a `with torch.device(...)` block (the meta
        # device the tests and cnnlib.summary build models on)
        self.register_buffer("table", torch.tensor(connected), persistent=False)
        # the connections in the order of `weight`: output map j, then input map i
        out_maps, in_maps = np.nonzero(connected.T)
        self.register_buffer(
            "dense_index", torch.tensor(out_maps * self.in_channels + in_maps),
            persistent=False,
        )  # fmt: skip
        self._maps_read = connected.sum(axis=0)  # (C_out,): input maps each output map reads
        k = self.kernel_size
        self.weight = nn.Parameter(torch.empty(len(out_maps), k, k))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self.reset_parameters()

    @property
    def fan_in(self) -> tuple[int, ...]:
        """The inputs one unit of each output map reads, (maps it reads) * K * K."""
        return tuple(int(maps) * self.kernel_size**2 for maps in self._maps_read)

    def reset_parameters(self, scale: float = 2.4) -> None:
        """Kernels and bias of each output map uniform in (-scale / F, scale / F), F its fan-in
        (scale 2.4: LeCun et al., 1998, Appendix A)."""
        bound = scale / np.array(self.fan_in, dtype=np.float64)  # (C_out,)
        out_maps = np.repeat(np.arange(self.out_channels), self._maps_read)
        with torch.no_grad():
            for p, bounds in ((self.weight, bound[out_maps][:, None, None]), (self.bias, bound)):
                p.uniform_(-1.0, 1.0).mul_(torch.tensor(bounds, dtype=p.dtype, device=p.device))

    def dense_weight(self) -> torch.Tensor:
        """(C_out, C_in, K, K): the kernels, with zeros where the table has no connection.
        Differentiable: F.conv2d(x, dense_weight(), bias) == self(x)."""
        k = self.kernel_size
        flat = self.weight.new_zeros(self.out_channels * self.in_channels, k, k)
        flat = flat.index_copy(0, self.dense_index, self.weight)
        return flat.view(self.out_channels, self.in_channels, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, H, W) -> (N, C_out, H - K + 1, W - K + 1)."""
        check_ndim("x", x, 4, "(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have {self.in_channels} channels (the table's rows), got shape "
                f"{tuple(x.shape)}"
            )
        return F.conv2d(x, self.dense_weight(), self.bias)

    def multiply_adds(self, x: torch.Tensor, out: torch.Tensor) -> int:
        """Per image, as `cnnlib.summary` counts: K * K per connection and output position
        (the zeros of the dense kernel are not real connections): 150,000 for LeNet-5's C3."""
        positions = out.shape[2] * out.shape[3]
        return positions * self.weight.numel()

    def extra_repr(self) -> str:
        return (f"{self.in_channels} -> {self.out_channels} maps, kernel {self.kernel_size}, "
                f"{self.weight.shape[0]} of {self.table.numel()} map pairs connected")


class EuclideanRBF(nn.Module):
    """Euclidean radial basis function units: (N, D) -> scores (N, K) = -||x - centre_k||^2.

    centres: (K, D) vectors of -1 and +1, a buffer (fixed, not trained), drawn from
    `seed`. The paper's unit outputs the squared distance y_k itself, a penalty; we return -y_k
    so that, as for any classifier here, the highest score is the predicted class.
    """

    def __init__(self, in_features: int, num_classes: int, seed: int = 1998):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.num_classes = check_positive_int("num_classes", num_classes)
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(num_classes, in_features))
        self.register_buffer("centres", torch.tensor(signs, dtype=torch.get_default_dtype()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, D) -> (N, K)."""
        check_ndim("x", x, 2, "(N, D)")
        if x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (N, {self.in_features}), got {tuple(x.shape)}")
        return -(x[:, None, :] - self.centres).pow(2).sum(dim=2)

    def multiply_adds(self, x: torch.Tensor, out: torch.Tensor) -> int:
        """Per image, as `cnnlib.summary` counts: one (x_j - w_kj)^2 per input and class, the
        paper's 840 connections for 84 inputs and 10 classes."""
        return self.num_classes * self.in_features

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, fixed centres"


# --------------------------------------------------------------------------------------------
# The network


class LeNet5_1998(nn.Module):
    """LeNet-5 of LeCun et al. (1998): (N, 1, 32, 32) -> (N, num_classes) scores.

    features: c1, act1, s2, act2, c3, act3, s4, act4, c5, act5 (-> (N, 120, 1, 1));
    flatten; classifier: f6, act6, output. output: "rbf" (the paper's fixed Euclidean RBF
    units; 60,000 trainable parameters) or "linear" (a trained nn.Linear; 60,850).
    See the module docstring for how each layer follows the paper.
    """

    def __init__(
        self,
        num_classes: int = 10,
        output: str = "rbf",
        in_channels: int = 1,
        rbf_seed: int = 1998,
    ):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        if output not in ("rbf", "linear"):
            raise ValueError(f'output must be "rbf" (the paper\'s) or "linear", got {output!r}')
        side = 32
        for _ in range(2):  # conv 5x5, then 2x2 subsampling, twice: 32 -> 28 -> 14 -> 10 -> 5
            side = pool_output_size(conv_output_size(side, 5), 2)
        side = conv_output_size(side, 5)  # C5: 5 -> 1
        self.output_kind = output
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(in_channels, 6, 5),
                act1=ScaledTanh(),
                s2=Subsampling(6),
                act2=ScaledTanh(),
                c3=ConnectionTableConv2d(lenet5_c3_connections(), 5),
                act3=ScaledTanh(),
                s4=Subsampling(16),
                act4=ScaledTanh(),
                c5=nn.Conv2d(16, 120, 5),
                act5=ScaledTanh(),
            )
        )
        self.flatten = nn.Flatten()
        head = (EuclideanRBF(84, num_classes, seed=rbf_seed) if output == "rbf"
                else nn.Linear(84, num_classes))  # fmt: skip
        self.classifier = nn.Sequential(
            OrderedDict(f6=nn.Linear(120 * side * side, 84), act6=ScaledTanh(), output=head)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in (-2.4 / F, 2.4 / F), F the fan-in of its unit."""
        for module in self.modules():
            if isinstance(module, ConnectionTableConv2d):
                module.reset_parameters()
            elif isinstance(module, Subsampling):
                _uniform_by_fan_in(module.coefficient, module.bias, module.fan_in)
            elif isinstance(module, nn.Conv2d):
                _uniform_by_fan_in(module.weight, module.bias, module.weight[0].numel())
            elif isinstance(module, nn.Linear):
                _uniform_by_fan_in(module.weight, module.bias, module.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 32, 32) -> scores (N, num_classes)."""
        return self.classifier(self.flatten(self.features(x)))


def _uniform_by_fan_in(weight: torch.Tensor, bias: torch.Tensor, fan_in: int) -> None:
    bound = 2.4 / fan_in
    with torch.no_grad():
        weight.uniform_(-bound, bound)
        bias.uniform_(-bound, bound)


def lenet5_1998_input(images, size: int = 32) -> np.ndarray:
    """Digits as the paper feeds them to LeNet-5: centred in a size x size field, rescaled.

    images: (N, 1, H, W) in [0, 1] (1 = ink) with H, W <= size: MNIST's 28x28 (digits of at most
    20x20 centred in 28x28), or `cnnlib.data.load_digits(size=20)` for the same 20x20 digits.
    Returns (N, 1, size, size) float32: zero-padded equally on each side (an odd margin puts the
    extra row and column at the bottom and right), then mapped linearly so that the background
    is -0.1 and full ink 1.175, which, in the paper's words, makes the mean input roughly 0 and
    the variance roughly 1.
    """
    x = np.asarray(images, dtype=np.float32)
    check_ndim("images", x, 4, "(N, 1, H, W)")
    size = check_positive_int("size", size)
    h, w = x.shape[2:]
    if h > size or w > size:
        raise ValueError(f"images must be at most {size}x{size} to be padded to it, got shape "
                         f"{tuple(x.shape)}")
    top, left = (size - h) // 2, (size - w) // 2
    padded = np.pad(x, ((0, 0), (0, 0), (top, size - h - top), (left, size - w - left)))
    return (padded * 1.275 - 0.1).astype(np.float32)


@register(input_shape=(1, 32, 32), num_classes=10)
def lenet5_1998(num_classes: int = 10, **kwargs) -> LeNet5_1998:
    """LeNet-5 of LeCun et al. (1998): C3's connection table, trainable subsampling, scaled tanh,
    RBF output; 60,000 trainable parameters (output="linear": 60,850)."""
    return LeNet5_1998(num_classes=num_classes, **kwargs)
