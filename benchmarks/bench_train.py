"""Training throughput: images per second of one SGD step, torch.nn's layers against the course's.

    python benchmarks/bench_train.py [--threads T] [--rounds R] [--device cpu|cuda|all] [--quick]

A training step is what `cnnlib.torch.fit` does per batch: forward, cross-entropy, backward,
SGD-with-momentum update. Measured for LeNet-5 (1x28x28, batch 64) and the CIFAR ResNet-20
(3x32x32, batch 128) of `cnnlib.torch.models`, on the CPU and, when there is one, a CUDA GPU,
each in three versions built from the same weights:

    torch.nn         the zoo model as it is (torch's own convolution, cuDNN / oneDNN)
    ours: Conv2d     every nn.Conv2d replaced by cnnlib.torch.modules.Conv2d (our forward and
                     backward, as autograd Functions); everything else still torch.nn
    ours: all        cnnlib.torch.modules.swap_layers: conv, linear, pooling, batch norm, ReLU

and printed in one table with the ratio to torch.nn (ours / torch.nn images per second: below
1 means ours is slower). On CUDA one more row, torch.nn under automatic mixed precision (what
fit(amp="auto") does), shows what lower precision buys.

Times are the best of several rounds of a few steps each, after warm-up steps (the first steps
pay for memory allocation, cuDNN's algorithm search and one-off lazy initialisation). On a
shared CPU the best round is the one least disturbed by other programs: trust it, and read the
worst as the noise. GPU times are taken between torch.cuda.synchronize() calls.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import time


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1
    )
    parser.add_argument("--threads", type=int, default=default_threads,
                        help="CPU threads for torch (default: the CPUs this process may use)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="where to run (default all: the CPU, and CUDA if present)")
    parser.add_argument("--quick", action="store_true",
                        help="one round of one step: a smoke test, not a measurement")
    return parser.parse_args()


ARGS = _parse_args()
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(ARGS.threads)

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cnnlib.torch import models  # noqa: E402
from cnnlib.torch import modules as ours  # noqa: E402

# (zoo name, batch size, steps per round on the CPU, on CUDA)
NETS = (("lenet5", 64, 5, 50), ("cifar_resnet20", 128, 2, 20))
WARMUP = {"cpu": 2, "cuda": 10}


def conv_only(model: nn.Module) -> nn.Module:
    """Replace every nn.Conv2d inside `model` by ours, weights copied; nothing else."""
    for name, child in model.named_children():
        if type(child) is nn.Conv2d:
            setattr(model, name, ours.Conv2d.from_torch(child))
        else:
            conv_only(child)
    return model


def out_of_place(model: nn.Module) -> nn.Module:
    """Turn off `inplace` on torch.nn activations: autograd forbids modifying in place the
    output of a custom Function when that output is a view (as our conv's can be)."""
    for module in model.modules():
        if getattr(module, "inplace", False):
            module.inplace = False
    return model


def variants(name: str, device: torch.device) -> dict[str, tuple[nn.Module, bool]]:
    """label -> (model on device, use AMP); all built from the same weights."""
    torch.manual_seed(0)
    base = models.create(name)
    built = {
        "torch.nn": (copy.deepcopy(base), False),
        "ours: Conv2d": (out_of_place(conv_only(copy.deepcopy(base))), False),
        "ours: all layers": (ours.swap_layers(copy.deepcopy(base)), False),
    }
    if device.type == "cuda":
        built["torch.nn, AMP"] = (copy.deepcopy(base), True)
    return {label: (model.to(device).train(), amp) for label, (model, amp) in built.items()}


def precision(amp: bool):
    """Autocast to bfloat16 on the GPU for AMP (float16 where the GPU lacks bfloat16), as
    fit(amp="auto") does; float32 otherwise."""
    if not amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: bool):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with precision(amp):
            loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def check_same_loss(built: dict, x: torch.Tensor, y: torch.Tensor) -> None:
    """The variants must compute the same function before their speeds mean anything: the
    float32 losses from the same weights agree to 1e-4 relative (1e-2 on a GPU where cuDNN
    convolves in TF32, 10 bits of mantissa; AMP's to 5e-2, bfloat16 has 8 bits)."""
    tf32 = x.is_cuda and torch.backends.cudnn.allow_tf32
    losses = {}
    with torch.no_grad():
        for label, (model, amp) in built.items():
            with precision(amp):
                losses[label] = float(nn.functional.cross_entropy(model(x).float(), y))
    reference = losses["torch.nn"]
    for label, value in losses.items():
        tolerance = 5e-2 if built[label][1] else 1e-2 if tf32 else 1e-4
        assert abs(value - reference) <= tolerance * abs(reference), (
            f"{label} computes a loss of {value}, torch.nn {reference}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(steps: dict, device: torch.device, batch: int, num_steps: int,
                      rounds: int) -> dict[str, list[float]]:
    """Each round times `num_steps` steps of every variant in turn (so a burst of outside load
    hits them alike); returns label -> images/s per round."""
    for step in steps.values():
        for _ in range(WARMUP[device.type] if not ARGS.quick else 1):
            step()
    sync(device)
    rates = {label: [] for label in steps}
    for _ in range(rounds):
        for label, step in steps.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(num_steps):
                step()
            sync(device)
            rates[label].append(batch * num_steps / (time.perf_counter() - start))
    return rates


def devices() -> list[torch.device]:
    found = [torch.device("cpu")] if ARGS.device in ("cpu", "all") else []
    if ARGS.device in ("cuda", "all"):
        if torch.cuda.is_available():
            found.append(torch.device("cuda"))
        elif ARGS.device == "cuda":
            sys.exit("--device cuda: no CUDA GPU here")
    return found


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return (f"cuda: {torch.cuda.get_device_name(device)}, TF32 for convolutions "
                f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'}, for matmul "
                f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}")
    return f"cpu: {torch.get_num_threads()} threads ({os.cpu_count()} CPUs in the machine)"


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    rounds = 1 if ARGS.quick else ARGS.rounds
    print(f"torch {torch.__version__}; threads: {ARGS.threads} (torch.get_num_threads() = "
          f"{torch.get_num_threads()}); float32 unless marked AMP; best of {rounds} round(s) "
          f"after warm-up; images/s of forward + backward + SGD step")
    header = (f"{'model':15s} {'device':6s} {'batch':>5s}  {'layers':17s} {'img/s':>9s} "
              f"{'ms/step':>8s} {'vs torch.nn':>11s}   {'worst img/s':>11s}")
    for device in devices():
        print(f"\n{describe(device)}")
        print(header)
        print("-" * len(header))
        for name, batch, cpu_steps, cuda_steps in NETS:
            num_steps = 1 if ARGS.quick else (cuda_steps if device.type == "cuda" else cpu_steps)
            channels, height, width = models.default_input_shape(name)
            gen = torch.Generator().manual_seed(1)
            x = torch.randn(batch, channels, height, width, generator=gen).to(device)
            y = torch.randint(0, 10, (batch,), generator=gen).to(device)
            built = variants(name, device)
            check_same_loss(built, x, y)
            steps = {label: make_step(model, x, y, amp) for label, (model, amp) in built.items()}
            rates = images_per_second(steps, device, batch, num_steps, rounds)
            reference = max(rates["torch.nn"])
            for label, per_round in rates.items():
                best = max(per_round)
                print(f"{name:15s} {device.type:6s} {batch:5d}  {label:17s} {best:9.0f} "
                      f"{batch / best * 1e3:8.1f} {best / reference:11.2f}   "
                      f"{min(per_round):11.0f}")


if __name__ == "__main__":
    main()
