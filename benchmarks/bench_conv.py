"""NumPy convolution (cnnlib.numpy.conv) against PyTorch's CPU convolution, side by side.

    python benchmarks/bench_conv.py [--threads T] [--rounds R] [--sweep-only] [--only TEXT]

Prints, in one process on one CPU:

1. forward + backward of a 64x32x32x32 float32 batch through 64 3x3 filters (pad 1):
   cnnlib.numpy's conv_forward + conv_backward against torch.nn.functional.conv2d with
   autograd (input, weight and bias requiring grad): the time of each, numpy/torch, and GFLOP/s;
2. the machine's float32 matrix-multiply rate (np.matmul, 2048x2048), the ceiling for an
   im2col convolution, whose work is three matrix products;
3. the vectorised conv against the lecture's loops (conv_*_naive) on a CIFAR-sized layer;
4. a sweep over the layers students train: every distinct conv of the CIFAR ResNet-20 (batch
   128), a VGG-style CIFAR net (batch 32), the first layers of AlexNet and ResNet (224x224,
   batch 8), 1x1 and stride-2 layers, and three max-pooling layers: forward + backward,
   numpy/torch per layer and the geometric mean of the ratios; for each conv also the time of
   the layer's three im2col matrix products alone, the floor for any im2col convolution. Each
   layer's functions take turns within a round (see `rounds`), so the ratio holds on a machine
   shared with other programs even when the absolute times do not.

The BLAS library and kernel in use (threadpoolctl's "architecture") are printed first: OpenBLAS
picks its kernel for the CPU unless OPENBLAS_CORETYPE forces one, so measure what users get with
`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py`.

FLOPs are counted as the lectures count them: a forward pass does N*F*H'*W'*C*KH*KW
multiply-adds (cnnlib.arithmetic.conv_macs), each 2 floating-point operations; the backward pass
does twice the forward's work (one product for dw, one for dx), so forward + backward is
3 * 2 * MACs. Times are the best of several calls after a warm-up (the least disturbed by other
programs), repeated over rounds whose spread is printed: on a shared machine, trust the minimum
and read the spread as the noise. Both libraries run with the same number of threads: torch's
intra-op threads, and for cnnlib.numpy the BLAS thread count, which its conv uses as that many
worker threads, each doing whole blocks of images with BLAS held to one thread inside.
Other programs on the CPUs hurt the two differently (BLAS and torch threads that wait for
each other suffer most), so compare quiet runs, or --threads 1.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1
    )
    parser.add_argument("--threads", type=int, default=default_threads,
                        help="threads for BLAS and torch (default: the CPUs this process may use)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of timings (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="calls per round (default 5)")
    parser.add_argument("--sweep-only", action="store_true", help="only section 4, the sweep")
    parser.add_argument("--sweep-rounds", type=int, default=3,
                        help="rounds of the sweep (default 3; each layer best of 3 calls)")
    parser.add_argument("--only", default="",
                        help="sweep only the layers whose name contains this text, e.g. '1x1'")
    return parser.parse_args()


ARGS = _parse_args()
# BLAS reads its thread count when NumPy is first imported, so set it before the imports below
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from threadpoolctl import threadpool_info  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cnnlib.arithmetic import conv_macs  # noqa: E402
from cnnlib.numpy._conv_blocks import BlockPlan  # noqa: E402
from cnnlib.numpy._workers import run_blocks  # noqa: E402
from cnnlib.numpy.conv import (  # noqa: E402
    conv_backward,
    conv_backward_naive,
    conv_forward,
    conv_forward_naive,
)
from cnnlib.numpy.pool import max_pool_backward, max_pool_forward  # noqa: E402


def best_time(function, repeats: int) -> float:
    """The fastest of `repeats` calls of function(), in seconds (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def rounds(functions: dict, num_rounds: int, repeats: int) -> dict[str, list[float]]:
    """best_time of each function, once per round; the functions take turns within a round so
    that a burst of load from other programs hits all of them alike."""
    results = {name: [] for name in functions}
    for _ in range(num_rounds):
        for name, function in functions.items():
            results[name].append(best_time(function, repeats))
    return results


def spread(times: list[float]) -> str:
    return (f"best {min(times) * 1e3:7.1f} ms   median {statistics.median(times) * 1e3:7.1f} ms"
            f"   worst {max(times) * 1e3:7.1f} ms")


def layer(shape_x, shape_w, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape_x, dtype=np.float64).astype(dtype),
            rng.standard_normal(shape_w, dtype=np.float64).astype(dtype) * 0.1,
            rng.standard_normal(shape_w[0], dtype=np.float64).astype(dtype))


def numpy_vs_torch() -> tuple[float, float, float]:
    """Section 1; returns (FLOPs of one step, best numpy time, best torch time)."""
    n, c, h, w, f, k, pad = 64, 32, 32, 32, 64, 3, 1
    x, weights, bias = layer((n, c, h, w), (f, c, k, k), np.float32)
    dout = np.random.default_rng(1).standard_normal((n, f, h, w)).astype(np.float32)
    flops = 3 * 2 * n * conv_macs(c, f, k, (h, w))

    def numpy_step():
        _, cache = conv_forward(x, weights, bias, stride=1, pad=pad)
        return conv_backward(dout, cache)

    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, weights, bias))
    tdout = torch.from_numpy(dout)

    def torch_step():
        tx.grad = tw.grad = tb.grad = None
        F.conv2d(tx, tw, tb, stride=1, padding=pad).backward(tdout)

    # the two must compute the same thing before their times mean anything
    grads = numpy_step()
    torch_step()
    for ours, theirs in zip(grads, (tx.grad, tw.grad, tb.grad), strict=True):
        scale = float(np.abs(theirs.numpy()).max())
        assert np.abs(ours - theirs.numpy()).max() <= 1e-4 * scale, "numpy and torch disagree"
        assert ours.dtype == np.float32

    times = rounds({"numpy": numpy_step, "torch": torch_step}, ARGS.rounds, ARGS.repeats)
    print(f"1. conv forward+backward, float32, x ({n}, {c}, {h}, {w}), w ({f}, {c}, {k}, {k}), "
          f"pad {pad}: {flops / 1e9:.2f} GFLOP (3 x 2 x {n * conv_macs(c, f, k, (h, w)):,} MACs)")
    for name, label in (("numpy", "cnnlib.numpy conv_forward+conv_backward"),
                        ("torch", "torch conv2d + autograd backward")):
        print(f"   {label:42s} {spread(times[name])}   "
              f"{flops / min(times[name]) / 1e9:6.1f} GFLOP/s")
    ratios = [a / b for a, b in zip(times["numpy"], times["torch"], strict=True)]
    print(f"   ratio numpy/torch: {min(times['numpy']) / min(times['torch']):.2f} (best vs best); "
          f"per round {', '.join(f'{r:.2f}' for r in ratios)}")
    return flops, min(times["numpy"]), min(times["torch"])


def matmul_ceiling() -> float:
    size = 2048
    rng = np.random.default_rng(2)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    times = rounds({"matmul": lambda: a @ b}, ARGS.rounds, ARGS.repeats)["matmul"]
    rate = 2 * size**3 / min(times) / 1e9
    print(f"2. np.matmul float32 {size}x{size} @ {size}x{size}: {spread(times)}   "
          f"{rate:6.1f} GFLOP/s (the BLAS ceiling)")
    return rate


def fast_vs_naive() -> None:
    n, c, h, w, f, k, pad = 4, 3, 32, 32, 16, 3, 1
    x, weights, bias = layer((n, c, h, w), (f, c, k, k), np.float32, seed=3)
    dout = np.random.default_rng(4).standard_normal((n, f, h, w)).astype(np.float32)

    def fast():
        _, cache = conv_forward(x, weights, bias, pad=pad)
        return conv_backward(dout, cache)

    def naive():
        _, cache = conv_forward_naive(x, weights, bias, pad=pad)
        return conv_backward_naive(dout, cache)

    fast_times = rounds({"fast": fast}, ARGS.rounds, 20)["fast"]
    naive_times = rounds({"naive": naive}, 1, 1)["naive"]  # one warm-up and one timed call
    for ours, reference in zip(fast(), naive(), strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
    print(f"3. CIFAR-sized layer, float32, x ({n}, {c}, {h}, {w}), w ({f}, {c}, {k}, {k}), "
          f"pad {pad}, forward+backward:")
    print(f"   conv_forward+conv_backward              {spread(fast_times)}")
    print(f"   conv_*_naive (the lecture's loops)      best {min(naive_times) * 1e3:7.1f} ms")
    print(f"   speed-up of the vectorised version: {min(naive_times) / min(fast_times):.0f}x")


# name: (N, C, H, W, F, K, stride, pad) for a conv; (N, C, H, W, size, stride, pad) for a pool
SWEEP_CONVS = {
    "resnet20 conv1 3->16 @32": (128, 3, 32, 32, 16, 3, 1, 1),
    "resnet20 16->16 @32": (128, 16, 32, 32, 16, 3, 1, 1),
    "resnet20 16->32 s2 @32": (128, 16, 32, 32, 32, 3, 2, 1),
    "resnet20 32->32 @16": (128, 32, 16, 16, 32, 3, 1, 1),
    "resnet20 32->64 s2 @16": (128, 32, 16, 16, 64, 3, 2, 1),
    "resnet20 64->64 @8": (128, 64, 8, 8, 64, 3, 1, 1),
    "vgg 3->64 @32": (32, 3, 32, 32, 64, 3, 1, 1),
    "vgg 64->128 @16": (32, 64, 16, 16, 128, 3, 1, 1),
    "vgg 128->128 @14": (32, 128, 14, 14, 128, 3, 1, 1),
    "vgg 128->256 @8": (32, 128, 8, 8, 256, 3, 1, 1),
    "vgg 256->512 @4": (32, 256, 4, 4, 512, 3, 1, 1),
    "alexnet conv1 11x11 s4 @224": (8, 3, 224, 224, 64, 11, 4, 2),
    "resnet conv1 7x7 s2 @224": (8, 3, 224, 224, 64, 7, 2, 3),
    "1x1 64->64 @8": (128, 64, 8, 8, 64, 1, 1, 0),
    "1x1 s2 64->128 @16": (128, 64, 16, 16, 128, 1, 2, 0),
    "3x3 s2 64->128 @28": (32, 64, 28, 28, 128, 3, 2, 1),
}
SWEEP_POOLS = {
    "maxpool 2x2 s2 (32,64,32,32)": (32, 64, 32, 32, 2, 2, 0),
    "maxpool 3x3 s2 p1 (8,64,112,112)": (8, 64, 112, 112, 3, 2, 1),
    "maxpool 3x3 s2 (8,64,55,55)": (8, 64, 55, 55, 3, 2, 0),
}


def _conv_pair(n, c, h, w, f, k, stride, pad):
    """numpy and torch forward+backward steps of one conv layer, float32, checked to agree."""
    x, weights, bias = layer((n, c, h, w), (f, c, k, k), np.float32, seed=5)
    out_shape = F.conv2d(torch.from_numpy(x), torch.from_numpy(weights), None, stride, pad).shape
    dout = np.random.default_rng(6).standard_normal(tuple(out_shape)).astype(np.float32)

    def numpy_step():
        _, cache = conv_forward(x, weights, bias, stride=stride, pad=pad)
        return conv_backward(dout, cache)

    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, weights, bias))
    tdout = torch.from_numpy(dout)

    def torch_step():
        tx.grad = tw.grad = tb.grad = None
        F.conv2d(tx, tw, tb, stride=stride, padding=pad).backward(tdout)

    torch_step()
    for ours, theirs in zip(numpy_step(), (tx.grad, tw.grad, tb.grad), strict=True):
        scale = float(np.abs(theirs.numpy()).max())
        assert np.abs(ours - theirs.numpy()).max() <= 1e-4 * scale, "numpy and torch disagree"
    return numpy_step, torch_step


def _products(n, c, h, w, f, k, stride, pad):
    """The three matrix products of an im2col conv of this layer and nothing else: forward
    w_rows (F, C*K*K) @ cols (C*K*K, n*H'*W'), dw += cols @ dout_rows.T, dcols = w_rows.T @
    dout_rows, a block of n images at a time on cnnlib.numpy's worker threads (BLAS held to
    one thread in each), cut into blocks as conv_forward and conv_backward cut the batch
    (BlockPlan). No copies: the time an im2col convolution would take if building and folding
    its columns cost nothing, the columns of every block being the same (cached) numbers."""
    out_size = tuple((size + 2 * pad - k) // stride + 1 for size in (h, w))
    plan = BlockPlan((n, c, h + 2 * pad, w + 2 * pad), (k, k), (stride, stride), (1, 1),
                     out_size, np.float32)
    widths = [len(range(n)[block]) * out_size[0] * out_size[1] for block in plan.blocks]
    rng = np.random.default_rng(9)
    w_rows = rng.standard_normal((f, c * k * k), dtype=np.float32)
    cols = rng.standard_normal((c * k * k, max(widths)), dtype=np.float32)
    dout_rows = rng.standard_normal((f, max(widths)), dtype=np.float32)

    def block_products(width):
        block_cols, block_dout = cols[:, :width], dout_rows[:, :width]
        return (w_rows @ block_cols, block_cols @ block_dout.T, w_rows.T @ block_dout)

    return lambda: run_blocks(block_products, widths)


def _pool_pair(n, c, h, w, size, stride, pad):
    """numpy and torch forward+backward steps of one max-pooling layer, float32."""
    x = np.random.default_rng(7).standard_normal((n, c, h, w)).astype(np.float32)
    out_shape = F.max_pool2d(torch.from_numpy(x), size, stride, pad).shape
    dout = np.random.default_rng(8).standard_normal(tuple(out_shape)).astype(np.float32)

    def numpy_step():
        _, cache = max_pool_forward(x, size, stride, pad)
        return max_pool_backward(dout, cache)

    tx = torch.from_numpy(x.copy()).requires_grad_()
    tdout = torch.from_numpy(dout)

    def torch_step():
        tx.grad = None
        F.max_pool2d(tx, size, stride, pad).backward(tdout)

    torch_step()
    np.testing.assert_allclose(numpy_step(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)
    return numpy_step, torch_step


def sweep() -> None:
    """Section 4: numpy/torch, forward + backward, layer by layer, and the geometric mean.

    For each conv layer also the time of its three matrix products alone (see _products):
    products/torch below 1 is how much room BLAS leaves an im2col convolution for its copies;
    at or above 1 no im2col convolution can match torch on that layer on this machine.
    """
    print(f"4. layer sweep, float32, forward+backward, best of 3 calls x {ARGS.sweep_rounds} "
          f"rounds (numpy and torch alternating): numpy/torch time; for convs also the time of "
          f"the im2col matrix products alone (block by block on the worker threads, no "
          f"copies), and products/torch")
    print(f"   {'layer':34s} {'numpy ms':>9s} {'torch ms':>9s} {'ratio':>6s}   per round"
          f"{'':9s}{'products ms':>12s} {'/torch':>6s}")
    for title, layers, make in (("conv", SWEEP_CONVS, _conv_pair),
                                ("pool", SWEEP_POOLS, _pool_pair)):
        ratios, floors = [], []
        for name, geometry in layers.items():
            if ARGS.only not in name:
                continue
            numpy_step, torch_step = make(*geometry)
            times = rounds({"numpy": numpy_step, "torch": torch_step}, ARGS.sweep_rounds, 3)
            if title == "conv":
                # after the layer's rounds, not between them, as a measure of the machine
                times |= rounds({"products": _products(*geometry)}, ARGS.sweep_rounds, 3)
            ratio = min(times["numpy"]) / min(times["torch"])
            per_round = [a / b for a, b in zip(times["numpy"], times["torch"], strict=True)]
            ratios.append(ratio)
            line = (f"   {name:34s} {min(times['numpy']) * 1e3:9.2f}"
                    f" {min(times['torch']) * 1e3:9.2f} {ratio:6.2f}   "
                    f"{' '.join(f'{r:.2f}' for r in per_round)}")
            if "products" in times:
                floors.append(min(times["products"]) / min(times["torch"]))
                line += f"   {min(times['products']) * 1e3:10.2f} {floors[-1]:6.2f}"
            print(line, flush=True)
        if not ratios:
            continue
        mean = math.exp(statistics.fmean(math.log(r) for r in ratios))
        print(f"   {title}: geometric mean of numpy/torch {mean:.2f}, worst {max(ratios):.2f}")
        if floors:
            floor = math.exp(statistics.fmean(math.log(r) for r in floors))
            print(f"   {title}: the matrix products alone / torch: geometric mean {floor:.2f}, "
                  f"worst {max(floors):.2f}")


def blas_kernel() -> str:
    """The BLAS libraries NumPy loaded, with version, kernel ("architecture") and threads."""
    return "; ".join(
        f"{lib['internal_api']} {lib.get('version')} kernel {lib.get('architecture')} "
        f"({lib['num_threads']} threads)"
        for lib in threadpool_info() if lib["user_api"] == "blas"
    )


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    print(f"threads: {ARGS.threads} (torch.get_num_threads() = {torch.get_num_threads()}, "
          f"OPENBLAS/OMP/MKL_NUM_THREADS = {ARGS.threads}); numpy {np.__version__}, "
          f"torch {torch.__version__}; best of {ARGS.repeats} calls x {ARGS.rounds} rounds")
    blas_threads = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    print(f"   BLAS threads {blas_threads}: cnnlib.numpy's conv runs its blocks on "
          f"{max(blas_threads, default=1)} worker thread(s)")
    print(f"   BLAS: {blas_kernel()}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    if ARGS.sweep_only:
        sweep()
        return
    flops, numpy_time, torch_time = numpy_vs_torch()
    rate = matmul_ceiling()
    print(f"   at that rate the three matrix products of the conv alone would take "
          f"{flops / rate / 1e6:.1f} ms; numpy reached {flops / numpy_time / 1e9 / rate:.0%} of "
          f"the ceiling, torch {flops / torch_time / 1e9 / rate:.0%}")
    fast_vs_naive()
    sweep()


if __name__ == "__main__":
    main()
