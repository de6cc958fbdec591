"""NumPy convolution (cnnlib.numpy.conv) against PyTorch's CPU convolution, side by side.

    python benchmarks/bench_conv.py [--threads T] [--rounds R]

Prints, in one process on one CPU:

1. forward + backward of a 64x32x32x32 float32 batch through 64 3x3 filters (pad 1):
   cnnlib.numpy's conv_forward + conv_backward against torch.nn.functional.conv2d with
   autograd (input, weight and bias requiring grad): the time of each, numpy/torch, and GFLOP/s;
2. the machine's float32 matrix-multiply rate (np.matmul, 2048x2048), the ceiling for an
   im2col convolution, whose work is three matrix products;
3. the vectorised conv against the lecture's loops (conv_*_naive) on a CIFAR-sized layer.

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
from cnnlib.numpy.conv import (  # noqa: E402
    conv_backward,
    conv_backward_naive,
    conv_forward,
    conv_forward_naive,
)


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


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    print(f"threads: {ARGS.threads} (torch.get_num_threads() = {torch.get_num_threads()}, "
          f"OPENBLAS/OMP/MKL_NUM_THREADS = {ARGS.threads}); numpy {np.__version__}, "
          f"torch {torch.__version__}; best of {ARGS.repeats} calls x {ARGS.rounds} rounds")
    blas_threads = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    print(f"   BLAS threads {blas_threads}: cnnlib.numpy's conv runs its blocks on "
          f"{max(blas_threads, default=1)} worker thread(s)")
    flops, numpy_time, torch_time = numpy_vs_torch()
    rate = matmul_ceiling()
    print(f"   at that rate the three matrix products of the conv alone would take "
          f"{flops / rate / 1e6:.1f} ms; numpy reached {flops / numpy_time / 1e9 / rate:.0%} of "
          f"the ceiling, torch {flops / torch_time / 1e9 / rate:.0%}")
    fast_vs_naive()


if __name__ == "__main__":
    main()
