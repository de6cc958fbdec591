"""Trusted checks of a4_resnets_and_transfer: how each grade cell is graded (never released).

The student's modules are compared with the course zoo's (`cnnlib.torch.models`): the basic
block with `resnet.BasicBlock` (projection shortcut, option B) and `cifar_resnet.CifarBasicBlock`
(zero-padding shortcut, option A), the bottleneck with `resnet.Bottleneck(stride_in_3x3=True)`
and the network with `CifarResNet`. The same probe builds the student's module and the zoo's on
each side of the sandbox wall, and, where it compares outputs, gives both the same weights:
every tensor of the state dict, in the order of its name, filled from one seeded generator. The
names therefore matter (they are torchvision's, as the starter code asks), and that is what lets
the course's pretrained ResNet-20 load into the student's own network in part 5.

Blocked while the student's code runs: the zoo's `resnet.py` and `cifar_resnet.py`, whose
blocks a student could otherwise subclass. Nothing else of the zoo is blocked: the course's
pretrained networks (`cnnlib.pretrained.load`) are built from `cifar_resnet.py` too, but the
notebook only loads them while training (never while grading), into the student's own class;
the graded outcome is the student's network with the weights handed in.

Trained networks are graded by outcome, as in a2: the weights handed in (safetensors, read with
`safetensors.torch.load_file`, which never unpickles), loaded in the sandbox into the student's
own `CifarResNet`, predicting the digits 5-9 of the test split drawn onto textures with the
grader's seed; the labels stay on the grader's side.

Float32 throughout: a conv summed in another order moves an output by ~1e-6 relative, so outputs
are compared with rtol 1e-4 and atol 1e-5 (a wrong wiring moves them by 1e-1 or more).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from cnnlib.grading import Accuracy, Assignment, Close, HeldOut, Probe
from cnnlib.pretrained import digits_task
from cnnlib.torch.models import cifar_resnet, resnet

RESNET8_WEIGHTS = "a4_resnet8.weights.safetensors"
TRANSFER_WEIGHTS = "a4_transfer.weights.safetensors"

assignment = Assignment(
    blocked=["torch/models/resnet.py", "torch/models/cifar_resnet.py"],
    submitted_files=[RESNET8_WEIGHTS, TRANSFER_WEIGHTS],
)

EXACT = Close(rtol=0, atol=0)
FLOAT32 = Close(rtol=1e-4, atol=1e-5)
NAMES_HINT = (
    "name the layers as the starter's docstring does (conv1, bn1, conv2, bn2, [conv3, bn3,] "
    "downsample = Sequential(1x1 conv, BatchNorm2d)): the grader fills the weights by name"
)


# ------------------------------------------------------------------------------ the zoo's side


def zoo_basic_block(in_channels, out_channels, stride=1, shortcut="B"):
    if shortcut == "A":
        return cifar_resnet.CifarBasicBlock(in_channels, out_channels, stride)
    return resnet.BasicBlock(in_channels, out_channels, stride)


def zoo_bottleneck(in_channels, planes, stride=1):
    return resnet.Bottleneck(in_channels, planes, stride, stride_in_3x3=True)


def zoo_cifar_resnet(depth=20, num_classes=10):
    return cifar_resnet.CifarResNet(depth, num_classes)


ZOO = {"BasicBlock": zoo_basic_block, "Bottleneck": zoo_bottleneck,
       "CifarResNet": zoo_cifar_resnet}  # fmt: skip


def module_probe(ns, build, args, want, x=None, seed=None, zero=(), train=False):
    """Build ns[build](**args) and report `want` about it:

    "parameters": the number of parameters; "expansion": the class's `expansion`; "shape": the
    output's shape for input x; "out": the output (float32) for x, in train or eval mode, after
    every tensor of the state dict is filled from `seed` (in the order of its name) and the
    tensors named in `zero` are zeroed; "grads": which parameters get no gradient from a random
    weighting of the output, and whether the input gets one.
    """
    import numpy as np
    import torch

    torch.manual_seed(0)
    module = ns[build](**args)
    if want == "parameters":
        return int(sum(p.numel() for p in module.parameters()))
    if want == "expansion":
        return int(module.expansion)
    state = module.state_dict()
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name in sorted(state):
                tensor = state[name]
                if not tensor.is_floating_point():
                    continue
                r = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
                if name.endswith("running_var") or (name.endswith("weight") and tensor.ndim == 1):
                    r = 0.5 + r  # variances and batch norm scales: positive, about 1
                elif tensor.ndim == 1:
                    r = r - 0.5  # means and shifts
                else:  # uniform with the variance of He's initialisation
                    r = (2 * r - 1) * (6.0 / tensor[0].numel()) ** 0.5
                tensor.copy_(r.to(tensor.dtype))
    with torch.no_grad():
        for name in zero:
            state[name].zero_()
    module.train(train)
    inputs = torch.from_numpy(np.array(x, dtype=np.float32))
    if want == "grads":
        inputs.requires_grad_(True)
        out = module(inputs)
        weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(1))
        (out * weights).sum().backward()
        silent = sorted(n for n, p in module.named_parameters()
                        if p.grad is None or not bool(p.grad.abs().sum() > 0))
        return {"parameters without a gradient": silent,
                "input gets a gradient": bool(inputs.grad is not None
                                              and inputs.grad.abs().sum() > 0)}
    with torch.no_grad():
        out = module(inputs)
    if want == "shape":
        return [int(n) for n in out.shape]
    return out.numpy()


def _probe(title, *subjects):
    return Probe(module_probe, subjects=subjects, title=title)


def _images(rng, n, channels, size, relu=False):
    x = rng.standard_normal((n, channels, size, size)).astype(np.float32)
    return np.maximum(x, 0) if relu else x


# ------------------------------------------------------------------------------ the basic block

# (in_channels, out_channels, stride, shortcut): identity shortcuts, stage transitions (stride 2,
# twice the channels) with both options, an odd size, one channel, a 1x1 map.
_BASIC = [
    (16, 16, 1, "B"), (16, 32, 2, "B"), (32, 64, 2, "A"), (8, 8, 1, "A"), (3, 5, 1, "B"),
    (4, 4, 2, "B"), (4, 6, 2, "A"), (1, 1, 1, "B"), (5, 9, 3, "B"),
]  # fmt: skip


def basic_cases(seed, want, n_random=2, **extra):
    rng = np.random.default_rng(seed)
    configs = list(_BASIC)
    for _ in range(n_random):
        c_in = int(rng.integers(1, 12))
        stride = int(rng.integers(1, 3))
        shortcut = "A" if rng.random() < 0.4 else "B"
        c_out = c_in + int(rng.integers(0, 9)) if shortcut == "A" else int(rng.integers(1, 12))
        configs.append((c_in, c_out, stride, shortcut))
    cases = []
    for i, (c_in, c_out, stride, shortcut) in enumerate(configs):
        case = {"build": "BasicBlock", "want": want,
                "args": {"in_channels": c_in, "out_channels": c_out, "stride": stride,
                         "shortcut": shortcut}}  # fmt: skip
        if want != "parameters":
            size = [7, 8, 1, 5][i % 4]
            case["x"] = _images(rng, 2, c_in, size, relu=bool(extra.get("zero")))
        if want in ("out", "grads"):
            case["seed"] = int(rng.integers(0, 2**31))
        case.update(extra)
        cases.append(case)
    return cases


assignment.check(
    "test_basic_block_shapes", _probe("your BasicBlock's output shape", "BasicBlock"),
    cases=lambda seed: basic_cases(seed, "shape"), reference=ZOO, compare=EXACT,
    hint="the first 3x3 conv has the stride and pad 1: (H + 2 - 3) // stride + 1 rows",
)
assignment.check(
    "test_basic_block_parameters", _probe("your BasicBlock's parameter count", "BasicBlock"),
    cases=lambda seed: basic_cases(seed, "parameters"), reference=ZOO, compare=EXACT,
    hint="3x3 convs without bias (batch norm follows), a batch norm after each (2 parameters per "
    "channel); option B's projection is a 1x1 conv and a batch norm, option A has none",
)
assignment.check(
    "test_basic_block_forward", _probe("your BasicBlock, zoo weights", "BasicBlock"),
    cases=lambda seed: basic_cases(seed, "out"), reference=ZOO, compare=FLOAT32,
    hint="relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); " + NAMES_HINT,
)
assignment.check(
    "test_basic_block_identity", _probe("your BasicBlock, residual branch zeroed", "BasicBlock"),
    cases=lambda seed: basic_cases(seed, "out", zero=("bn2.weight", "bn2.bias"), train=True),
    reference=ZOO, compare=FLOAT32,
    hint="with bn2's scale and shift at zero the residual branch gives 0, and the block must "
    "give relu(shortcut(x)): x itself when the shapes match",
)
assignment.check(
    "test_basic_block_gradients", _probe("your BasicBlock's backward pass", "BasicBlock"),
    cases=lambda seed: basic_cases(seed, "grads", n_random=0)[:4], reference=ZOO,
    compare=EXACT,
    hint="every parameter and the input must get a gradient: no .detach(), .data or "
    "torch.no_grad() in forward, and every layer you create must be used",
)

# ------------------------------------------------------------------------------ the bottleneck

# (in_channels, planes, stride): ResNet-50's first block (64 -> 256), a block inside a stage
# (identity shortcut), stage transitions, odd sizes.
_BOTTLENECK = [(64, 64, 1), (256, 64, 1), (16, 4, 1), (8, 4, 2), (3, 2, 1), (12, 3, 3),
               (5, 7, 2)]  # fmt: skip


def bottleneck_cases(seed, want, **extra):
    rng = np.random.default_rng(seed)
    configs = list(_BOTTLENECK)
    for _ in range(2):
        configs.append((int(rng.integers(1, 20)), int(rng.integers(1, 9)),
                        int(rng.integers(1, 3))))  # fmt: skip
    cases = []
    for i, (c_in, planes, stride) in enumerate(configs):
        case = {"build": "Bottleneck", "want": want,
                "args": {"in_channels": c_in, "planes": planes, "stride": stride}}
        if want in ("shape", "out"):
            case["x"] = _images(rng, 2, c_in, [6, 7, 4, 1][i % 4], relu=bool(extra.get("zero")))
        if want == "out":
            case["seed"] = int(rng.integers(0, 2**31))
        case.update(extra)
        cases.append(case)
    return cases


BOTTLENECK_PROBE = _probe("your Bottleneck", "Bottleneck")
for want in ("expansion", "shape", "parameters"):
    assignment.check(
        "test_bottleneck_shapes", BOTTLENECK_PROBE,
        cases=lambda seed, want=want: bottleneck_cases(seed, want)[: 1 if want == "expansion"
                                                                    else None],
        reference=ZOO, compare=EXACT,
        hint="1x1 conv to planes, 3x3 conv (with the stride), 1x1 conv to expansion * planes "
        "(expansion = 4), a batch norm after each; a projection when the shape changes",
    )  # fmt: skip
assignment.check(
    "test_bottleneck_forward", BOTTLENECK_PROBE,
    cases=lambda seed: bottleneck_cases(seed, "out"), reference=ZOO, compare=FLOAT32,
    hint="relu(bn1(conv1)), relu(bn2(conv2)), bn3(conv3), add the shortcut, relu; the stride "
    "in the 3x3 conv; " + NAMES_HINT,
)
assignment.check(
    "test_bottleneck_forward", BOTTLENECK_PROBE,
    cases=lambda seed: bottleneck_cases(seed, "out", zero=("bn3.weight", "bn3.bias"), train=True),
    reference=ZOO, compare=FLOAT32,
    hint="with bn3's scale and shift at zero the block must give relu(shortcut(x))",
)

# ------------------------------------------------------------------------------ the network


def resnet_cases(seed, want):
    rng = np.random.default_rng(seed)
    configs = [(20, 10), (8, 5), (14, 3), (20, 5), (32, 10)]
    cases = []
    for depth, classes in configs if want == "parameters" else configs[:2]:
        case = {"build": "CifarResNet", "want": want,
                "args": {"depth": depth, "num_classes": classes}}
        if want != "parameters":
            case["x"] = _images(rng, 3, 3, 16 if depth != 8 else 32)
            case["seed"] = int(rng.integers(0, 2**31))
        cases.append(case)
    return cases


# A failing BasicBlock is replaced by the solution's for these: one mistake, one cell.
assignment.check(
    "test_resnet_parameters", _probe("your CifarResNet's parameter count", "CifarResNet"),
    cases=lambda seed: resnet_cases(seed, "parameters"), reference=ZOO, compare=EXACT,
    plug_in=("BasicBlock",),
    hint="ResNet-20 (option A shortcuts, 10 classes) has 269,722 parameters: conv1 3->16 and "
    "bn1, three stages of (depth - 2) / 6 blocks with 16, 32, 64 channels, fc 64 -> classes",
)
assignment.check(
    "test_resnet_forward_backward", _probe("your CifarResNet, zoo weights", "CifarResNet"),
    cases=lambda seed: resnet_cases(seed, "out"), reference=ZOO, compare=FLOAT32,
    plug_in=("BasicBlock",),
    hint="relu(bn1(conv1(x))), layer1, layer2, layer3, global average pooling, fc; " + NAMES_HINT,
)
assignment.check(
    "test_resnet_forward_backward", _probe("your CifarResNet's backward pass", "CifarResNet"),
    cases=lambda seed: resnet_cases(seed, "grads"), reference=ZOO, compare=EXACT,
    plug_in=("BasicBlock",),
    hint="the gradient must reach every layer, conv1 included",
)

# ------------------------------------------------------------------------------ the training loop


def reference_train(model, train_data, val_data, epochs=10, lr=0.05, batch_size=32,
                    weight_decay=5e-4, seed=0):
    """The solution's loop: SGD with momentum 0.9, cosine decay per step, eval-mode validation."""
    X, y = (torch.as_tensor(a) for a in train_data)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr,
                                momentum=0.9, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(X) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    history = {"train_loss": [], "val_accuracy": [], "lr": []}
    for _ in range(epochs):
        history["lr"].append(optimizer.param_groups[0]["lr"])
        model.train()
        order, total = torch.randperm(len(X), generator=generator), 0.0
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            loss = F.cross_entropy(model(X[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        history["train_loss"].append(total / len(X))
        model.eval()
        with torch.no_grad():
            Xv, yv = (torch.as_tensor(a) for a in val_data)
            history["val_accuracy"].append(float((model(Xv).argmax(1) == yv).float().mean()))
    return history


def train_probe(ns, epochs, lr, batch_size, n_train, n_val, seed):
    """The student's train() on a tiny separable problem, with a model that records how it is
    called: train mode with gradients on training images, eval mode without gradients on
    validation images (it knows which are which), and a frozen layer that must not move."""
    import itertools

    import numpy as np
    import torch
    from torch import nn

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.frozen = nn.Linear(4, 4)
            self.frozen.requires_grad_(False)
            self.bn = nn.BatchNorm1d(4)
            self.fc = nn.Linear(4, 3)
            self.calls = []

        def forward(self, x):
            x = x.reshape(len(x), -1)
            seen = rows(x.detach().numpy())
            kind = "train" if seen <= train_rows else "val" if seen <= val_rows else "mixed"
            self.calls.append((kind, self.training, torch.is_grad_enabled()))
            return self.fc(self.bn(self.frozen(x)))

    rng = np.random.default_rng(seed)
    centres = 1 + 3 * np.eye(3, 4) + rng.uniform(0, 0.3, size=(3, 4))  # well apart

    def data(n):
        y = np.arange(n) % 3
        x = centres[y] + 0.1 * rng.standard_normal((n, 4))
        return x.reshape(n, 1, 2, 2).astype(np.float32), y.astype(np.int64)

    def rows(x):
        return {tuple(np.round(row, 4)) for row in np.asarray(x, np.float64).reshape(len(x), -1)}

    train, val = data(n_train), data(n_val)
    train_rows, val_rows = rows(train[0]), rows(val[0])
    torch.manual_seed(seed)
    model = Recorder()
    frozen = [p.detach().clone() for p in model.frozen.parameters()]
    trained = [p.detach().clone() for p in model.fc.parameters()]
    history = ns["train"](model, train, val, epochs=epochs, lr=lr, batch_size=batch_size,
                          seed=seed)
    kinds = {kind for kind, _, _ in model.calls}
    accuracy = history["val_accuracy"]
    rates = [float(r) for r in history["lr"]]
    with torch.no_grad():
        model.eval()
        final = float((model(torch.from_numpy(val[0])).argmax(1).numpy() == val[1]).mean())
    return {
        "keys": sorted(k for k in ("train_loss", "val_accuracy", "lr") if k in history),
        "epochs of val_accuracy": len(accuracy),
        "epochs of lr": len(rates),
        "val_accuracy are floats in [0, 1]": all(isinstance(a, float) and 0 <= a <= 1
                                                for a in accuracy),
        "last val_accuracy is the final model's": abs(accuracy[-1] - final) < 1e-6,
        "first lr is lr": abs(rates[0] - lr) < 1e-12 * lr,
        "lr decays": rates[-1] < rates[0] and all(b <= a for a, b in itertools.pairwise(rates)),
        "training batches in train mode with gradients": all(
            t and g for kind, t, g in model.calls if kind == "train"),
        "validation in eval mode without gradients": all(
            not t and not g for kind, t, g in model.calls if kind == "val"),
        "never mixes training and validation images": kinds <= {"train", "val"},
        "frozen layer unchanged": all(torch.equal(a, b) for a, b in
                                      zip(frozen, model.frozen.parameters(), strict=True)),
        "trained layer changed": any(not torch.equal(a, b) for a, b in
                                     zip(trained, model.fc.parameters(), strict=True)),
        "separable problem learnt": final >= 0.9,
    }  # fmt: skip


def train_cases(seed):
    rng = np.random.default_rng(seed)
    cases = [{"epochs": 6, "lr": 0.1, "batch_size": 8, "n_train": 60, "n_val": 21, "seed": 3},
             {"epochs": 4, "lr": 0.2, "batch_size": 16, "n_train": 45, "n_val": 9, "seed": 4}]
    batch_size = int(rng.integers(4, 17))
    n_train = int(rng.integers(40, 80))
    if n_train % batch_size == 1:  # a last batch of one: batch norm cannot train on it
        n_train += 1
    cases.append({"epochs": int(rng.integers(4, 7)), "lr": float(rng.choice([0.1, 0.2])),
                  "batch_size": batch_size, "n_train": n_train,
                  "n_val": int(rng.integers(5, 30)), "seed": int(rng.integers(0, 1000))})
    return cases


assignment.check(
    "test_train_loop", Probe(train_probe, subjects=("train",), title="your train()"),
    cases=train_cases, reference={"train": reference_train}, compare=EXACT,
    hint="model.train() before the training batches, model.eval() and torch.no_grad() for the "
    "validation pass after every epoch; optimise only parameters with requires_grad; record "
    "the learning rate at the start of each epoch and let the schedule lower it",
)

# ------------------------------------------------------------------------------ trained networks


def textured_digits59(seed, copies=2):
    """The test split's digits 5-9 drawn `copies` times onto textures from the grader's seed
    (a network trained on the training split never saw these digits, nor these drawings)."""
    task = digits_task(range(5, 10), copies=(1, 1, copies), seed=seed)
    return task.X_test, task.y_test


def predict_resnet8(ns, images):
    """The ResNet-8 handed in, in the student's own class, on the grader's images."""
    import torch
    from safetensors.torch import load_file

    model = ns["CifarResNet"](depth=8, num_classes=5)
    model.load_state_dict(load_file("a4_resnet8.weights.safetensors"))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(images)).argmax(dim=1).numpy()


def predict_transfer(ns, images):
    """The fine-tuned ResNet-20 handed in, in the student's own class, on the grader's images."""
    import torch
    from safetensors.torch import load_file

    model = ns["CifarResNet"](depth=20, num_classes=5)
    model.load_state_dict(load_file("a4_transfer.weights.safetensors"))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(images)).argmax(dim=1).numpy()


RESNET8_DIGITS = HeldOut(textured_digits59)
assignment.check(
    "test_resnet8_accuracy",
    Probe(predict_resnet8, subjects=("CifarResNet",), title="your trained ResNet-8"),
    cases=RESNET8_DIGITS.cases, expected=RESNET8_DIGITS.expected, compare=Accuracy(at_least=0.75),
    hint=f"train until your ResNet-8 reaches 75% on new drawings of the test digits, and hand in "
    f"{RESNET8_WEIGHTS} with the notebook",
)
TRANSFER_DIGITS = HeldOut(textured_digits59)
assignment.check(
    "test_transfer_accuracy",
    Probe(predict_transfer, subjects=("CifarResNet",), title="your fine-tuned ResNet-20"),
    cases=TRANSFER_DIGITS.cases, expected=TRANSFER_DIGITS.expected,
    compare=Accuracy(at_least=0.5),
    hint=f"fine-tune the pretrained ResNet-20 on 10 labels per class until it reaches 50% on new "
    f"drawings of the test digits (from scratch it reaches about 30%), and hand in "
    f"{TRANSFER_WEIGHTS} with the notebook",
)

# ------------------------------------------------------------------------------ freezing


def freeze_probe(ns, depth, steps, seed):
    """freeze_early on the student's own ResNet, then a few training steps in train mode: which
    parameters train, which batch norm layers stay in eval mode, which running means move."""
    import torch

    torch.manual_seed(seed)
    model = ns["CifarResNet"](depth=depth, num_classes=5)
    ns["freeze_early"](model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x = torch.rand((8, 3, 8, 8), generator=torch.Generator().manual_seed(seed))
    for _ in range(steps):
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
    after = model.state_dict()
    return {
        "trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
        "batch norm in train mode": sorted(
            n for n, m in model.named_modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training),
        "changed": sorted(k for k in before if not k.endswith("num_batches_tracked")
                          and not torch.equal(before[k], after[k])),
    }  # fmt: skip


def reference_freeze_early(model):
    from cnnlib.pretrained import freeze

    return freeze(model, "conv1", "bn1", "layer1")


assignment.check(
    "test_freeze_early",
    Probe(freeze_probe, subjects=("freeze_early",), title="freeze_early on your CifarResNet"),
    cases=[{"depth": 8, "steps": 2, "seed": 0}, {"depth": 14, "steps": 1, "seed": 1}],
    reference={"freeze_early": reference_freeze_early, "CifarResNet": zoo_cifar_resnet},
    compare=EXACT, plug_in=("BasicBlock", "CifarResNet"),
    hint="requires_grad_(False) for conv1, bn1 and layer1, and their batch norm layers must "
    "stay in eval mode (running statistics fixed) even after model.train()",
)
