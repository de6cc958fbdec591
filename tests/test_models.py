"""The model zoo: exact published parameter counts, shapes, and each building block's behaviour.

Whole models are built on the meta device (shapes, no memory, no initialisation cost) to count
parameters and check output shapes; real forward passes run only on blocks and small models.
"""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from cnnlib import arithmetic as ar
from cnnlib import data
from cnnlib.torch import models
from cnnlib.torch.models import (
    BasicBlock,
    Bottleneck,
    CifarBasicBlock,
    ConnectionTableConv2d,
    DenseBlock,
    DenseLayer,
    DepthwiseSeparable,
    EuclideanRBF,
    Fire,
    GoogLeNetOutput,
    Inception,
    InceptionAux,
    ResNeXtBottleneck,
    ScaledTanh,
    SEBasicBlock,
    SEBottleneck,
    SqueezeExcitation,
    Subsampling,
    Transition,
    WideBasicBlock,
    ZeroPadShortcut,
)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def on_meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return models.create(name, **kwargs)


# Published parameter counts (default number of classes), and where each comes from.
PUBLISHED = {
    # the course's modern LeNet-5 variant (tests/test_arithmetic.py, arithmetic.layer_table)
    "lenet5": 1_256_080,
    # LeCun et al. (1998), Section II-B: the paper's total of trainable parameters (the RBF
    # output's centres are fixed); test_lenet5_1998_* below check every layer's figure too
    "lenet5_1998": 60_000,
    # torchvision's *_Weights meta["num_params"]
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "densenet121": 7_978_856,
    "squeezenet1_0": 1_248_424,
    # Caffe's bvlc_alexnet (grouped conv2/4/5, LRN), summed layer by layer from its prototxt
    "alexnet2012": 60_965_224,
    # bvlc_googlenet without its auxiliary heads (with them: 13,378,280, NVIDIA DIGITS PR #221)
    "googlenet": 6_998_552,
    # akamaster/pytorch_resnet_cifar10 (option A shortcuts); plain nets: the same layers
    "cifar_resnet20": 269_722,
    "cifar_resnet32": 464_154,
    "cifar_resnet44": 658_586,
    "cifar_resnet56": 853_018,
    "cifar_resnet110": 1_727_962,
    "cifar_plain20": 269_722,
    "cifar_plain32": 464_154,
    "cifar_plain44": 658_586,
    "cifar_plain56": 853_018,
    "cifar_plain110": 1_727_962,
    # osmr/imgclsmob model tests (wrn_cifar, seresnet, mobilenet_w1); MobileNet also equals the
    # trainable parameters Keras reports (4,253,864 total - 21,888 BN moving statistics)
    "wrn_16_10": 17_116_634,
    "wrn_28_10": 36_479_194,
    "se_resnet18": 11_778_592,
    "se_resnet50": 28_088_024,
    "mobilenet_v1": 4_231_976,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_equals_the_published_one(name):
    assert n_params(on_meta(name)) == PUBLISHED[name]


def test_vgg_variants_without_a_reference_implementation():
    # A-LRN: LRN has no parameters, so A's count. C: D with three 3x3 convs made 1x1 loses 8/9 of
    # their weights; the paper's Table 2 says 134M.
    assert n_params(on_meta("vgg11_lrn")) == PUBLISHED["vgg11"]
    lost = 8 * (ar.conv_params(256, 256, 1, bias=False) + 2 * ar.conv_params(512, 512, 1, False))
    c = n_params(on_meta("vgg16_c"))
    assert c == PUBLISHED["vgg16"] - lost == 133_638_952
    assert round(c / 1e6) == 134


def test_googlenet_auxiliary_heads():
    # NVIDIA DIGITS reports 13,378,280 learned parameters for bvlc_googlenet (with both heads).
    assert n_params(on_meta("googlenet", aux_logits=True)) == 13_378_280
    aux1 = n_params(InceptionAux(512, 1000))
    aux2 = n_params(InceptionAux(528, 1000))
    assert (aux1, aux2) == (3_188_840, 3_190_888)
    assert PUBLISHED["googlenet"] + aux1 + aux2 == 13_378_280


def test_lenet_without_padding_is_caffes_mnist_lenet():
    # Caffe's examples/mnist LeNet (no padding): 431,080 parameters, as DIGITS reports.
    with torch.device("meta"):
        assert n_params(models.LeNet5(padding=0)) == 431_080


def test_wrn_16_4_from_its_layers():
    # No published count confirmed for WRN-16-4: rebuild it from the architecture instead.
    def block(c_in, c_out):
        convs = ar.conv_params(c_in, c_out, 3, False) + ar.conv_params(c_out, c_out, 3, False)
        shortcut = ar.conv_params(c_in, c_out, 1, False) if c_in != c_out else 0
        return convs + shortcut + 2 * c_in + 2 * c_out  # two batch norms (gamma, beta)

    widths = [16, 64, 128, 256]  # stem, then 16k, 32k, 64k with k = 4; n = (16 - 4) / 6 = 2
    expected = ar.conv_params(3, 16, 3, False)
    for c_in, c_out in itertools.pairwise(widths):
        expected += block(c_in, c_out) + block(c_out, c_out)
    expected += 2 * 256 + ar.linear_params(256, 10)
    assert n_params(on_meta("wrn_16_4")) == expected


# ------------------------------------------------------------------ registry


REQUIRED = {
    "lenet5", "lenet5_1998", "alexnet", "alexnet2012", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c",
    "vgg16", "vgg19", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    *(f"cifar_{kind}{d}" for kind in ("resnet", "plain") for d in (20, 32, 44, 56, 110)),
}  # fmt: skip


def test_available_lists_every_model_sorted():
    names = models.available()
    assert names == sorted(names)
    assert set(names) >= REQUIRED
    assert set(PUBLISHED) | {"vgg11_lrn", "vgg16_c", "wrn_16_4"} == set(names)


@pytest.mark.parametrize("name", models.available())
def test_each_model_maps_its_default_input_to_class_scores(name):
    # Shapes only: the forward pass runs on the meta device.
    model = on_meta(name).eval()
    x = torch.empty((2, *models.default_input_shape(name)), device="meta")
    out = model(x)
    small = name.startswith(("cifar", "wrn", "lenet"))
    assert out.shape == (2, 10 if small else 1000)


def test_default_input_shapes():
    assert models.default_input_shape("lenet5") == (1, 28, 28)
    assert models.default_input_shape("lenet5_1998") == (1, 32, 32)
    assert models.default_input_shape("cifar_resnet20") == (3, 32, 32)
    assert models.default_input_shape("alexnet2012") == (3, 227, 227)
    assert models.default_input_shape("alexnet") == (3, 227, 227)  # the lecture's table
    assert models.default_input_shape("resnet50") == (3, 224, 224)


def test_create_num_classes():
    assert on_meta("lenet5_1998").classifier.output.centres.shape == (10, 84)
    letters = on_meta("lenet5_1998", num_classes=26, output="linear")
    assert letters.classifier.output.out_features == 26
    assert on_meta("resnet18").fc.out_features == 1000
    assert on_meta("resnet18", num_classes=7).fc.out_features == 7
    assert on_meta("cifar_resnet20").fc.out_features == 10
    assert on_meta("lenet5").classifier.fc2.out_features == 10
    assert on_meta("squeezenet1_0", num_classes=5).classifier.conv10.out_channels == 5
    # resnet18 with 10 classes: the fc loses (512 + 1) * 990 parameters
    assert n_params(on_meta("resnet18", num_classes=10)) == 11_689_512 - 513 * 990


def test_create_passes_keyword_arguments():
    assert on_meta("googlenet", aux_logits=True).aux1 is not None
    assert on_meta("googlenet").aux1 is None
    paper = on_meta("resnet50").layer2[0]
    v15 = on_meta("resnet50", stride_in_3x3=True).layer2[0]
    assert (paper.conv1.stride, paper.conv2.stride) == ((2, 2), (1, 1))
    assert (v15.conv1.stride, v15.conv2.stride) == ((1, 1), (2, 2))


def test_unknown_model_names_close_matches():
    with pytest.raises(ValueError, match=r"unknown model 'alexnett'.*alexnet"):
        models.create("alexnett")
    with pytest.raises(ValueError, match="resnet50"):
        models.create("resnet05")
    with pytest.raises(ValueError, match="available"):
        models.create("transformer")
    with pytest.raises(TypeError, match="name"):
        models.create(50)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        models.create("lenet5", num_classes=0)
    with pytest.raises(TypeError, match="num_classes"):
        models.create("lenet5", num_classes=2.5)


def test_bad_depths_and_configs():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.CifarResNet(depth=21)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        models.WideResNet(depth=27)
    with pytest.raises(ValueError, match="config"):
        models.VGG("F")
    with pytest.raises(ValueError, match="unknown item"):
        models.vgg.make_features(["conv3-64", "avgpool"])
    with pytest.raises(ValueError, match="layers"):
        models.ResNet(BasicBlock, [2, 2, 2])


# ------------------------------------------------------------------ real forward passes


def test_lenet5_trains_on_a_batch():
    torch.manual_seed(0)
    model = models.lenet5()
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert model.features.conv1.weight.grad is not None
    assert torch.isfinite(loss)


# ------------------------------------------------------------------ LeNet-5 of 1998


def _c3_inputs() -> list[list[int]]:
    """The S2 maps each C3 map reads, from the model's table (LeCun et al., 1998, Table I)."""
    table = models.lenet5_c3_connections()
    return [np.flatnonzero(table[:, j]).tolist() for j in range(table.shape[1])]


def test_lenet5_1998_c3_table_is_the_papers():
    # Section II-B: the first six C3 maps read every contiguous subset of three S2 maps, the
    # next six every contiguous subset of four, the next three some discontinuous subsets of
    # four, the last one all six ("contiguous" wraps around: map 4 reads 4, 5, 0).
    inputs = _c3_inputs()
    assert len(inputs) == 16 and models.lenet5_c3_connections().shape == (6, 16)
    for j in range(6):
        assert sorted(inputs[j]) == sorted((j + k) % 6 for k in range(3)), j
    for j in range(6, 12):
        assert sorted(inputs[j]) == sorted((j - 6 + k) % 6 for k in range(4)), j
    contiguous_fours = {frozenset((s + k) % 6 for k in range(4)) for s in range(6)}
    for j in range(12, 15):
        assert len(inputs[j]) == 4 and frozenset(inputs[j]) not in contiguous_fours, j
    assert inputs[15] == list(range(6))
    # every S2 map feeds ten C3 maps; 60 of the 96 pairs are connected
    assert models.lenet5_c3_connections().sum(axis=1).tolist() == [10] * 6
    assert models.lenet5_c3_connections().sum() == 60


def _paper_connections(model: nn.Module) -> dict[str, int]:
    """Each layer's connections as the paper counts them: per unit, the inputs it reads plus
    one for its bias (the RBF units have none), times the number of units."""
    f, c = model.features, model.classifier
    c3_fan_in = [len(maps) * 5 * 5 for maps in _c3_inputs()]  # per C3 map
    return {
        "c1": 6 * 28 * 28 * (f.c1.weight[0].numel() + 1),
        "s2": 6 * 14 * 14 * (f.s2.fan_in + 1),
        "c3": 10 * 10 * sum(fan_in + 1 for fan_in in c3_fan_in),
        "s4": 16 * 5 * 5 * (f.s4.fan_in + 1),
        "c5": 120 * 1 * 1 * (f.c5.weight[0].numel() + 1),
        "f6": 84 * (c.f6.in_features + 1),
        "output": 10 * c.output.in_features,
    }


def test_lenet5_1998_layers_match_the_papers_figures():
    model = on_meta("lenet5_1998")
    layers = {**dict(model.features.named_children()), **dict(model.classifier.named_children())}
    params = {name: n_params(layers[name]) for name in models.LENET5_1998_PARAMETERS}
    assert params == models.LENET5_1998_PARAMETERS == {
        "c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164, "output": 0,
    }  # fmt: skip
    assert _paper_connections(model) == models.LENET5_1998_CONNECTIONS == {
        "c1": 122_304, "s2": 5_880, "c3": 151_600, "s4": 2_000, "c5": 48_120, "f6": 10_164,
        "output": 840,
    }  # fmt: skip
    # the paper's totals: 60,000 trainable parameters, 340,908 connections
    totals = models.LENET5_1998_TOTALS
    assert n_params(model) == sum(params.values()) == totals["parameters"] == 60_000
    assert sum(_paper_connections(model).values()) == totals["connections"] == 340_908
    # a full 6 -> 16 C3 would have 2,416 parameters: the table saves 900
    assert ar.conv_params(6, 16, 5) - params["c3"] == 900
    # the modern substitute for the RBF units: a trained linear layer, 850 more parameters
    linear = on_meta("lenet5_1998", output="linear")
    assert n_params(linear) == 60_000 + ar.linear_params(84, 10) == 60_850


def test_lenet5_1998_shapes_and_squashing():
    model = models.lenet5_1998().eval()
    x = torch.randn(2, 1, 32, 32)
    shapes, h = [], x
    for name, layer in model.features.named_children():
        h = layer(h)
        if not name.startswith("act"):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
    assert model(x).shape == (2, 10)
    acts = [m for m in model.modules() if isinstance(m, ScaledTanh)]
    assert len(acts) == 6  # after C1, S2, C3, S4, C5 and F6
    with pytest.raises(ValueError, match="output"):
        models.LeNet5_1998(output="softmax")


def test_scaled_tanh_is_the_papers_squashing_function():
    f = ScaledTanh()
    a = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    # 1.7159 tanh(2/3) = 1.00000 to 5 digits: the constant A was chosen for f(1) = 1
    assert torch.allclose(f(a), a, atol=1e-5)
    # |f''| is largest near a = 1 (exactly at atanh(1/sqrt(3)) / (2/3) = 0.988)
    grid = torch.linspace(0, 3, 30_001, dtype=torch.float64, requires_grad=True)
    (d1,) = torch.autograd.grad(f(grid).sum(), grid, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), grid)
    assert float(grid.detach()[d2.abs().argmax()]) == pytest.approx(1.0, abs=0.015)
    assert isinstance(f, nn.Tanh)  # so that cnnlib.summary files it with the activations


def test_subsampling_is_a_coefficient_times_the_block_sum_plus_a_bias():
    torch.manual_seed(0)
    layer = Subsampling(3)
    nn.init.normal_(layer.coefficient)
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    out = layer.double()(x)
    assert out.shape == (2, 3, 3, 3)
    for c in range(3):
        block_sum = x[:, c, 2:4, 4:6].sum(dim=(1, 2))
        expected = layer.coefficient[c] * block_sum + layer.bias[c]
        assert torch.allclose(out[:, c, 1, 2], expected)
    assert n_params(layer) == 6
    with pytest.raises(ValueError, match="channels"):
        layer(torch.randn(1, 4, 6, 6, dtype=torch.float64))


def test_connection_table_conv_reads_only_its_table():
    torch.manual_seed(0)
    table = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]], dtype=bool)  # 3 in, 4 out
    conv = ConnectionTableConv2d(table, 3).double()
    assert conv.weight.shape == (8, 3, 3) and n_params(conv) == 8 * 9 + 4
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    out = conv(x)
    assert out.shape == (2, 4, 5, 5)
    # map by map: each output convolved with only the inputs its column names, in order
    start = 0
    for j in range(4):
        reads = np.flatnonzero(table[:, j])
        kernels = conv.weight[start : start + len(reads)][None]
        expected = nn.functional.conv2d(x[:, reads], kernels, conv.bias[j : j + 1])
        assert torch.allclose(out[:, j : j + 1], expected)
        start += len(reads)
    dense = conv.dense_weight()
    assert dense.shape == (4, 3, 3, 3)
    assert not dense[torch.from_numpy(~table.T)].any()  # zeros where nothing is connected
    # the gradient reaches every connected kernel, and only those exist
    out.sum().backward()
    assert conv.weight.grad.shape == conv.weight.shape and bool(conv.weight.grad.abs().gt(0).all())


def test_connection_table_conv_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"table: output maps \[1\] read no input map"):
        ConnectionTableConv2d(np.array([[1, 0], [1, 0]]), 3)
    with pytest.raises(ValueError, match="table must be a 2-D"):
        ConnectionTableConv2d(np.ones(4), 3)
    with pytest.raises(ValueError, match="booleans"):
        ConnectionTableConv2d(np.array([[2, 1]]), 3)
    conv = ConnectionTableConv2d(models.lenet5_c3_connections(), 5)
    with pytest.raises(ValueError, match="x must have 6 channels"):
        conv(torch.randn(1, 5, 14, 14))


def test_rbf_output_scores_are_minus_squared_distances():
    rbf = EuclideanRBF(84, 10)
    assert n_params(rbf) == 0 and "centres" in dict(rbf.named_buffers())
    assert set(rbf.centres.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(rbf.centres, EuclideanRBF(84, 10).centres)  # the same for every model
    x = torch.randn(5, 84, dtype=torch.float64)
    scores = rbf.double()(x)
    assert torch.allclose(scores, -torch.cdist(x, rbf.centres) ** 2)
    # cross-entropy on these scores is the paper's MAP criterion without its constant j:
    # y_D + log(sum_i exp(-y_i)), y_i the squared distances
    y = torch.tensor([3, 1, 4, 1, 5])
    penalties = -scores
    map_criterion = penalties[torch.arange(5), y] + torch.logsumexp(-penalties, dim=1)
    assert torch.allclose(nn.functional.cross_entropy(scores, y, reduction="none"), map_criterion)


def test_lenet5_1998_input_pads_and_scales_as_the_paper():
    digits = np.zeros((2, 1, 20, 20), dtype=np.float32)
    digits[:, :, 0, 0] = 1.0
    x = models.lenet5_1998_input(digits)
    assert x.shape == (2, 1, 32, 32) and x.dtype == np.float32
    assert x[0, 0, 6, 6] == pytest.approx(1.175)  # the ink, 6 pixels in: centred
    assert np.count_nonzero(np.isclose(x, -0.1)) == 2 * (32 * 32 - 1)  # all the background
    odd = models.lenet5_1998_input(np.ones((1, 1, 27, 27)))
    assert odd[0, 0, 2, 2] == pytest.approx(1.175) and odd[0, 0, 1, 1] == pytest.approx(-0.1)
    with pytest.raises(ValueError, match="at most 32x32"):
        models.lenet5_1998_input(np.zeros((1, 1, 33, 33)))


@pytest.fixture
def one_torch_thread():
    # A network this small runs faster on one thread; on a busy 2-core machine two threads that
    # wait for each other made the test below 30x slower (measured: 25 s against 0.8 s).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("output", "lr"), [("rbf", 1e-3), ("linear", 3e-3)])
def test_lenet5_1998_learns_a_batch_of_digits(output, lr, one_torch_thread):
    # 64 bundled digits, padded to 32x32 as the paper pads MNIST: 40 Adam steps on them bring
    # the loss below a tenth of where it started (measured: 2.34 -> 0.020 with the RBF output,
    # 2.30 -> 0.016 with the linear one; RBF with lr 3e-3 overshoots, linear with 1e-3 is slow)
    digits = data.load_digits(size=20)
    x = torch.from_numpy(models.lenet5_1998_input(digits.X_train[:64]))
    y = torch.from_numpy(digits.y_train[:64])
    torch.manual_seed(0)
    model = models.lenet5_1998(output=output)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]


@pytest.mark.parametrize("name", ["cifar_resnet20", "cifar_plain20", "wrn_16_4"])
def test_cifar_models_forward_and_backward(name):
    torch.manual_seed(0)
    model = models.create(name)
    side = 16 if name.startswith("wrn") else 32  # global pooling takes any size; WRN is wide
    out = model(torch.randn(2, 3, side, side))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_alexnet2012_towers_are_groups():
    model = on_meta("alexnet2012")
    f = model.features
    assert [f.conv2.groups, f.conv3.groups, f.conv4.groups, f.conv5.groups] == [2, 1, 2, 2]
    assert isinstance(f.norm1, nn.LocalResponseNorm) and isinstance(f.norm2, nn.LocalResponseNorm)
    # a tower's conv2 filter sees 48 of conv1's 96 channels
    assert f.conv2.weight.shape == (256, 48, 5, 5)
    with pytest.raises(RuntimeError):  # the paper's "224" does not fit fc6
        model(torch.empty(1, 3, 224, 224, device="meta"))


def test_vgg_layer_names_follow_the_paper():
    f = on_meta("vgg16_c").features
    assert f.conv3_3.kernel_size == (1, 1) and f.conv3_3.padding == (0, 0)
    assert f.conv5_3.kernel_size == (1, 1)
    assert f.conv5_2.kernel_size == (3, 3)
    assert isinstance(on_meta("vgg11_lrn").features.norm1, nn.LocalResponseNorm)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in on_meta("vgg11").modules())


# ------------------------------------------------------------------ GoogLeNet's blocks


def test_inception_module_concatenates_its_branches():
    torch.manual_seed(0)
    block = Inception(192, *models.GOOGLENET_TABLE["3a"]).eval()
    x = torch.randn(2, 192, 28, 28)
    out = block(x)
    assert out.shape == (2, 256, 28, 28) and block.out_channels == 256
    # channels in the order 1x1 | 3x3 | 5x5 | pool projection
    assert torch.equal(out[:, :64], block.branch1x1(x))
    assert torch.equal(out[:, 64:192], block.branch3x3(x))
    assert torch.equal(out[:, 224:], block.branch_pool(x))
    weights = (
        ar.conv_params(192, 64, 1) + ar.conv_params(192, 96, 1) + ar.conv_params(96, 128, 3)
        + ar.conv_params(192, 16, 1) + ar.conv_params(16, 32, 5) + ar.conv_params(192, 32, 1)
    )  # fmt: skip
    assert n_params(block) == weights == 163_696


def test_inception_rejects_zero_width():
    with pytest.raises(ValueError, match="ch5x5"):
        Inception(192, 64, 96, 128, 16, 0, 32)


def test_googlenet_returns_auxiliary_scores_only_while_training():
    model = on_meta("googlenet", aux_logits=True)
    x = torch.empty(2, 3, 224, 224, device="meta")
    out = model.train()(x)
    assert isinstance(out, GoogLeNetOutput)
    assert [t.shape for t in out] == [(2, 1000)] * 3
    assert model.eval()(x).shape == (2, 1000)


# ------------------------------------------------------------------ ResNet's blocks


def test_basic_block_identity_shortcut():
    torch.manual_seed(0)
    block = BasicBlock(16, 16).eval()
    assert block.downsample is None
    # silence the residual branch: the block becomes relu(x)
    nn.init.zeros_(block.bn2.weight)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), torch.relu(x))


def test_basic_block_projection_shortcut():
    block = BasicBlock(16, 32, stride=2)
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    conv, _ = block.downsample
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and conv.bias is None
    assert n_params(block.downsample) == ar.conv_params(16, 32, 1, bias=False) + 2 * 32


@pytest.mark.parametrize("stride_in_3x3", [False, True])
def test_bottleneck(stride_in_3x3):
    block = Bottleneck(256, 128, stride=2, stride_in_3x3=stride_in_3x3)
    assert block(torch.randn(1, 256, 8, 8)).shape == (1, 512, 4, 4)
    strides = (block.conv1.stride, block.conv2.stride)
    assert strides == (((1, 1), (2, 2)) if stride_in_3x3 else ((2, 2), (1, 1)))
    convs = (
        ar.conv_params(256, 128, 1, False) + ar.conv_params(128, 128, 3, False)
        + ar.conv_params(128, 512, 1, False) + ar.conv_params(256, 512, 1, False)
    )  # fmt: skip
    assert n_params(block) == convs + 2 * (128 + 128 + 512 + 512)


def test_resnext_bottleneck_is_grouped():
    block = ResNeXtBottleneck(64, 64, cardinality=32, base_width=4)
    # 32 groups of 4 channels in the 3x3; the stride (none here) would sit in the 3x3
    assert block.conv2.groups == 32 and block.conv2.in_channels == 128
    assert block.conv2.weight.shape == (128, 4, 3, 3)
    assert block(torch.randn(1, 64, 8, 8)).shape == (1, 256, 8, 8)
    grouped = ar.conv_params(128, 128, 3, bias=False, groups=32)
    assert grouped == ar.conv_params(128, 128, 3, bias=False) // 32


def test_squeeze_excitation_gates_channels():
    torch.manual_seed(0)
    se = SqueezeExcitation(64, reduction=16)
    x = torch.randn(2, 64, 5, 5)
    gates = se.gates(x)
    assert gates.shape == (2, 64)
    assert bool((gates > 0).all() and (gates < 1).all())
    assert torch.allclose(se(x), x * gates[:, :, None, None])
    assert n_params(se) == ar.linear_params(64, 4) + ar.linear_params(4, 64)


@pytest.mark.parametrize(
    ("se_block", "plain_block", "args", "channels"),
    [(SEBasicBlock, BasicBlock, (64, 64), 64), (SEBottleneck, Bottleneck, (256, 64), 256)],
)
def test_se_resnet_blocks_add_se_to_the_residual(se_block, plain_block, args, channels):
    torch.manual_seed(0)
    block = se_block(*args).eval()
    assert isinstance(block.se, SqueezeExcitation)
    assert n_params(block) - n_params(plain_block(*args)) == n_params(SqueezeExcitation(channels))
    # with the gates forced to 0 the residual vanishes: the block is relu(x)
    nn.init.zeros_(block.se.fc2.weight)
    nn.init.constant_(block.se.fc2.bias, -1e4)
    x = torch.randn(2, channels, 6, 6)
    assert torch.allclose(block(x), torch.relu(x))


# ------------------------------------------------------------------ CIFAR ResNets (option A)


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    x = torch.arange(2 * 16 * 8 * 8, dtype=torch.float32).reshape(2, 16, 8, 8)
    out = ZeroPadShortcut(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert not out[:, 16:].any()
    assert n_params(ZeroPadShortcut(16, 32)) == 0
    with pytest.raises(ValueError, match="out_channels"):
        ZeroPadShortcut(32, 16)


def test_cifar_block_residual_and_plain():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 8)
    for residual in (True, False):
        block = CifarBasicBlock(16, 32, stride=2, residual=residual).eval()
        nn.init.zeros_(block.bn2.weight)  # residual branch gives 0
        out = block(x)
        expected = torch.relu(ZeroPadShortcut(16, 32)(x)) if residual else torch.zeros_like(out)
        assert torch.equal(out, expected)
    assert CifarBasicBlock(16, 16).shortcut is None  # identity: nothing to do


def test_cifar_resnet_layout():
    model = models.cifar_resnet56()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 56  # 6n + 1 convs and the fc layer, n = 9
    assert [len(model.layer1), len(model.layer2), len(model.layer3)] == [9, 9, 9]
    plain = models.cifar_plain56()
    assert all(block.shortcut is None for block in plain.layer2)


# ------------------------------------------------------------------ Wide ResNet, DenseNet, ...


def test_wide_basic_block():
    torch.manual_seed(0)
    block = WideBasicBlock(16, 64, stride=2, dropout=0.3)
    assert isinstance(block.dropout, nn.Dropout) and block.dropout.p == 0.3
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 64, 4, 4)
    assert block.shortcut.kernel_size == (1, 1) and block.shortcut.stride == (2, 2)
    same = WideBasicBlock(64, 64).eval()
    assert same.shortcut is None and same.dropout is None
    nn.init.zeros_(same.conv2.weight)  # residual branch gives 0: pre-activation leaves x as is
    x = torch.randn(2, 64, 4, 4)
    assert torch.equal(same(x), x)
    with pytest.raises(ValueError, match="dropout"):
        WideBasicBlock(16, 16, dropout=1.5)


def test_dense_layer_appends_growth_rate_channels():
    torch.manual_seed(0)
    layer = DenseLayer(64, growth_rate=32).eval()
    x = torch.randn(2, 64, 7, 7)
    out = layer(x)
    assert out.shape == (2, 96, 7, 7)
    assert torch.equal(out[:, :64], x)  # the input passes through untouched
    bottleneck = ar.conv_params(64, 128, 1, False) + ar.conv_params(128, 32, 3, False)
    assert n_params(layer) == bottleneck + 2 * 64 + 2 * 128


def test_dense_block_and_transition():
    block = DenseBlock(6, 64, growth_rate=32)
    assert len(block) == 6 and block.out_channels == 64 + 6 * 32 == 256
    x = torch.randn(1, 64, 8, 8)
    assert block(x).shape == (1, 256, 8, 8)
    assert [layer.norm1.num_features for layer in block] == [64 + 32 * i for i in range(6)]
    assert Transition(256, 128)(block(x)).shape == (1, 128, 4, 4)


def test_fire_module():
    fire = Fire(96, 16, 64, 64)
    assert fire(torch.randn(1, 96, 10, 10)).shape == (1, 128, 10, 10)
    assert n_params(fire) == (
        ar.conv_params(96, 16, 1) + ar.conv_params(16, 64, 1) + ar.conv_params(16, 64, 3)
    )


def test_depthwise_separable_block():
    block = DepthwiseSeparable(32, 64, stride=2)
    assert block.depthwise.groups == 32 and block.depthwise.weight.shape == (32, 1, 3, 3)
    assert block(torch.randn(1, 32, 16, 16)).shape == (1, 64, 8, 8)
    weights = 32 * 9 + 32 * 64
    assert n_params(block) == weights + 2 * 32 + 2 * 64
    # against a standard 3x3 conv from 32 to 64 channels: 1/C_out + 1/9 of its weights
    standard = ar.conv_params(32, 64, 3, bias=False)
    assert weights / standard == pytest.approx(1 / 64 + 1 / 9)


def test_mobilenet_width_multiplier():
    half = models.MobileNetV1(width_multiplier=0.5)
    assert half.conv1.out_channels == 16 and half.fc.in_features == 512
    with pytest.raises(ValueError, match="width_multiplier"):
        models.MobileNetV1(width_multiplier=0)


def test_the_zoo_is_reachable_from_cnnlib_torch():
    # the README's example: `import cnnlib.torch as ct; ct.models.create("vgg16")`
    import cnnlib.torch as ct

    assert ct.models is models and ct.models.create("lenet5") is not None
