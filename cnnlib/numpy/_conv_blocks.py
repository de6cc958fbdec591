"""The fast convolution's engineering: how conv_forward and conv_backward lay out and cut work.

cnnlib.numpy.conv's fast pair is im2col and matrix products (see its docstring for the math);
this module holds the plan for doing that quickly, BlockPlan, and the measurements behind it.

The fast pair works through the batch a few images at a time (about ``_BLOCK_COLUMNS`` output
positions per block) rather than building one column matrix for the whole batch: a block's
columns (a few MiB) stay in the CPU's caches while they are built, multiplied and scattered
back, instead of streaming a matrix KH*KW times the size of x through main memory. For the same
reason the backward pass rebuilds the columns from x_padded instead of keeping them from the
forward pass. Both choices were measured (benchmarks/bench_conv.py's layer, one thread): one
whole-batch product was slower, and keeping the columns made forward + backward about 1.4x
slower than rebuilding them.

At stride 1 the backward pass gets dx as lecture 04 derives it, the full convolution of dout
with the rotated kernel, run through conv_forward and so through these same blocks (see
conv_backward and full_dx_pays). Before, dx came from dcols = w_rows.T @ dout_rows and col2im,
or, in layers with no more filters than channels, tap by tap: one (C, F) @ (F, positions)
product per kernel tap with dout laid out on x_padded's grid. The full convolution measured as
fast or a few percent faster wherever it applies (see _FULL_DX_MIN_CHANNELS), and needs no
layout of its own: col2im's adds run over a matrix KH*KW times the size of dx, the taps'
products, with an inner size of only F, run below BLAS's best, and the full convolution is one
product of the usual shape per block.

The blocks are independent, so they run on a few worker threads (cnnlib.numpy._workers), as
many as BLAS would use (threadpoolctl reads the count; ``threadpool_limits(1)`` makes the fast
pair serial). Each thread does whole blocks, padding, copies and matrix products alike, with
BLAS held to one thread inside it: NumPy releases the GIL while it copies, adds and
multiplies, so the copies (about a quarter of the time) run in parallel as well, where BLAS's
own threads would only share each product while one thread copies. Measured on the benchmark
layer with 2 threads: forward + backward went from 79 ms (one Python thread, BLAS threaded) to
55 ms (torch: 44 ms). With other programs keeping both CPUs busy the serial loop took 850 ms,
its BLAS threads waiting for each other, the workers 100 ms (torch 145 ms). The shares of dw
and db are summed in block order, so the numbers do not depend on the thread count. Block
sizes from 1 to 8 images of the benchmark layer made no difference beyond 2%.

Tried, measured slower on the sweep's layers (bench_conv.py section 4, 2 threads), and so not
here: Winograd's F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks", 2016), which needs 2.25x fewer multiply-adds, but whose input and output transforms
cost NumPy more than the products they save (64 -> 64 at 8x8: 1.6-1.8x torch's time against
im2col's 1.8x; 32 -> 32 at 16x16: 2.3-2.6x against 1.8x); columns laid out channels last, so
that every copy moves C numbers in a row instead of W' (1.8x against 1.7x at 64 -> 64, 8x8;
2.2x against 1.8x at 32 -> 32, 16x16); and at stride 2, wide rows on the four phase planes as
max pooling reads them (16 -> 32 at 32x32: 1.85x against 1.62x; only ResNet's 7x7 first layer
gained, 0.60x against 0.66x).

The constants below carry their measurements (2-core AMD EPYC without AVX-512 unless said;
benchmarks/bench_conv.py).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ._windows import col2im_add, im2col_padded

__all__ = ["BlockPlan", "full_dx_pays", "workspace"]

# Output positions per block in the fast path: 4096 columns of C*KH*KW float32 numbers are a few
# MiB (4.5 MiB for C=32, 3x3), which stay in the CPU's caches. Much smaller blocks make BLAS
# multiply thin matrices (slow with several threads), much larger ones spill to main memory.
_BLOCK_COLUMNS = 4096
# ... of _BLOCK_ROWS rows: a block holds about _BLOCK_COLUMNS * _BLOCK_ROWS numbers whatever the
# rows. With more rows (C = 256, 3x3: 2304) it has fewer columns, but never fewer than
# _MIN_BLOCK_COLUMNS (thinner products run BLAS well below its best); with fewer rows (a first
# layer's 3 channels, 3x3: 27) more: its blocks of 4096 columns were 3 images, and the costs
# every block pays (a few dozen NumPy calls) took about half the time (ResNet-20's 3 -> 16 at
# 32x32, forward + backward: 18.9 ms in 4096-column blocks, 10.2 ms in blocks of the same bytes;
# blocks of twice or four times the bytes made other layers up to 2x slower; measured, 2 threads,
# 2-core AMD EPYC without AVX-512). And the batch is cut into at least _MIN_BLOCKS blocks where
# that keeps them that wide, so that small images (8x8: 64 positions) still give every worker
# thread blocks to do. The cut depends on the shapes only, never on the thread count, so the
# numbers do not either. Measured on the sweep's VGG layers (bench_conv.py section 4): with
# C = 128 and 256 at 8x8 and 4x4, one block for the whole batch (the old cut) ran 3x torch's time.
_BLOCK_ROWS = 288
_MIN_BLOCK_COLUMNS = 512
_MIN_BLOCKS = 4
# The "wide rows" layout at stride 1 (see BlockPlan) computes Wp columns per output row to keep
# W', and saves copying. It pays where copies are a large share of the time, that is where the
# products are small: used only for C*KH*KW <= _WIDE_MAX_ROWS and Wp <= _WIDE_MAX_WASTE * W'.
# Measured (bench_conv.py section 4, interleaved): wide vs plain im2col, as numpy/torch ratios,
# 16 -> 16 at 32x32 0.47 vs 0.70 and 32 -> 32 at 16x16 0.77 vs 0.88, but 64 -> 128 at 16x16
# 0.84 vs 0.74, 128 -> 128 at 14x14 1.35 vs 0.95, and 64 -> 64 at 8x8 (Wp/W' = 1.25) 0.81
# vs 0.74: with many channels the products dominate and the junk columns cost more than the
# copies they save.
_WIDE_MAX_ROWS = 288
_WIDE_MAX_WASTE = 1.2
# How conv_backward gets dx: at stride 1, as the full convolution of dout (conv_forward of dout
# through the rotated kernel), in layers of at least _FULL_DX_MIN_CHANNELS input channels;
# elsewhere from dcols = w_rows.T @ dout_rows by col2im (add_back). Measured against what it
# replaced (col2im, or a (C, F) product per kernel tap with dout laid out on x_padded's grid),
# bench_conv.py's sweep, forward + backward as numpy/torch, two runs of each version taking
# turns: 32 -> 32 at 16x16 1.79-1.89 -> 1.76-1.78, 64 -> 64 at 8x8 1.83-1.85 -> 1.79-1.82,
# 128 -> 128 at 14x14 1.39-1.40 -> 1.34, 256 -> 512 at 4x4 1.41-1.43 -> 1.36-1.39, the other
# layers within the noise (geometric mean 1.21-1.23 both). A first layer's 3 channels make the
# full convolution's product 3 rows tall, and there it lost: the backward pass alone of 3 -> 16
# at 32x32 took 11.5 ms against col2im's 10.2, of 3 -> 64 11.0 ms against 4.1.
_FULL_DX_MIN_CHANNELS = 16


def full_dx_pays(channels: int, stride, pad, span, finite: bool) -> bool:
    """Whether conv_backward should get dx as the full convolution of dout (see above).

    It needs stride 1 and pad <= K_eff - 1 (the full convolution's pad, K_eff - 1 - pad, must
    not be negative), and finite weights: it multiplies dout's zero padding by every weight, and
    0 * NaN would reach dx pixels that torch (and col2im) leave finite.
    """
    fits = all(p <= s - 1 for p, s in zip(pad, span, strict=True))
    return finite and stride == (1, 1) and fits and channels >= _FULL_DX_MIN_CHANNELS


# Each thread's reusable memory for the fast path's arrays, one store per purpose (see workspace)
_workspaces = threading.local()


def workspace(purpose: str, shape, dtype) -> np.ndarray:
    """An array of `shape` and `dtype` in this thread's memory for `purpose`: the same memory
    from block to block and from call to call. Its contents are whatever was last left there.

    Why: a fresh array of a few MiB for every block (or every call) is memory that has to be
    handed over and cleared again each time, which cost more than the copies into it (ResNet-20's
    64 -> 64 at 8x8, forward + backward, 2 threads: 26.0 ms with arrays made per call, 20.5 ms
    with the same arrays kept). Each thread has its own stores, so blocks running at the same
    time never share one; a store grows to the largest size asked of it, and blocks are bounded
    (_BLOCK_COLUMNS), so a store stays a few MiB.
    """
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    stores = _workspaces.__dict__
    store = stores.get(purpose)
    if store is None or store.nbytes < nbytes:
        store = stores[purpose] = np.empty(max(nbytes, 1), dtype=np.uint8)
    return store[:nbytes].view(dtype).reshape(shape)


class BlockPlan:
    """How conv_forward and conv_backward lay out the columns of one block of images.

    The batch is cut into blocks of about _BLOCK_COLUMNS output positions. For a block of n
    images, ``columns`` is im2col of the block, a (C*KH*KW, n*H'*R) matrix whose columns run
    over (image, output row, output column), with R columns per output row:

    - otherwise: R = W', exactly im2col's layout. Building it copies, for each kernel tap,
      W'-long pieces of x_padded's rows.
    - stride 1, few channels (see _WIDE_MAX_ROWS): R = Wp, the padded width ("wide rows").
      Output rows are computed Wp wide and
      the last Wp - W' entries of each are junk that is dropped, but now a tap reads, for a
      whole image, one contiguous run of x_padded's flattened rows: im2col becomes long
      contiguous copies. That costs Wp/W' - 1 more multiply-adds (6% for 32x32 inputs with
      pad 1) and saves more time than that in copying (measured on the benchmark layer). The
      backward pass puts dout on the same layout with zeros in the junk places, so they add
      nothing to dw or dx; col2im (``add_back``) is then long contiguous adds, the wide copies
      run backwards.

    Buffers are kept per thread, so blocks can run on several threads at once.
    """

    def __init__(self, x_padded_shape, kernel, stride, dilation, out_size, dtype,
                 finite=True):
        self.num_images, self.channels, self.padded_h, self.padded_w = x_padded_shape
        self.kernel, self.stride, self.dilation, self.out_size = kernel, stride, dilation, out_size
        self.dtype = dtype
        # wide rows only where they pay: few rows and few junk columns (see _WIDE_MAX_ROWS)
        rows = self.channels * kernel[0] * kernel[1]
        self.wide = (stride == (1, 1) and rows <= _WIDE_MAX_ROWS
                     and self.padded_w <= _WIDE_MAX_WASTE * out_size[1])
        # ... and, in the backward pass, only for finite x and w (finite=False otherwise): junk
        # entries are 0 times an input, and 0 * inf or 0 * NaN is NaN, which would reach
        # gradients that torch leaves finite (a NaN pixel would spoil a dw tap whose windows
        # never read it, a NaN weight dx pixels no window takes it to). Plain columns and
        # col2im read only real windows, so NaN goes exactly where torch's backward sends it
        self.wide = self.wide and finite
        self.row_width = self.padded_w if self.wide else out_size[1]
        # see _BLOCK_COLUMNS for how the batch is cut
        columns = max(_MIN_BLOCK_COLUMNS, _BLOCK_COLUMNS * _BLOCK_ROWS // max(1, rows))
        per_image = out_size[0] * self.row_width
        per_block = max(1, columns // per_image)
        enough = max(-(-self.num_images // _MIN_BLOCKS), -(-_MIN_BLOCK_COLUMNS // per_image))
        per_block = min(per_block, enough)
        self.blocks = [
            slice(start, min(start + per_block, self.num_images))
            for start in range(0, self.num_images, per_block)
        ]

    def buffer(self, shape, purpose: str) -> np.ndarray:
        """An array of `shape` in the plan's dtype from this thread's workspace for `purpose`:
        reused from block to block and call to call, its contents undefined."""
        return workspace(purpose, shape, self.dtype)

    def padded_buffer(self, shape) -> np.ndarray:
        """A zeroed (n, C, Hp, Wp) array for a block's dx_padded, reused from block to block."""
        buffer = self.buffer(shape, "dx_padded")
        buffer.fill(0)
        return buffer

    def _wide_taps(self):
        """(p, q, offset): tap (p, q) reads x_padded's flattened image from `offset` on."""
        for p in range(self.kernel[0]):
            for q in range(self.kernel[1]):
                yield p, q, p * self.dilation[0] * self.padded_w + q * self.dilation[1]

    def columns(self, x_padded_block: np.ndarray) -> np.ndarray:
        """im2col of a block (n, C, Hp, Wp): (C*KH*KW, n*H'*R), R columns per output row."""
        n = x_padded_block.shape[0]
        (kernel_h, kernel_w), (out_h, out_w) = self.kernel, self.out_size
        cols = self.buffer((self.channels, kernel_h, kernel_w, n, out_h * self.row_width),
                           "cols")
        if not self.wide:
            return im2col_padded(x_padded_block, self.kernel, self.stride, self.dilation,
                                  self.out_size, out=cols.reshape(*cols.shape[:4], out_h, out_w))
        flat = x_padded_block.reshape(n, self.channels, -1).transpose(1, 0, 2)  # (C, n, Hp*Wp)
        # output (i, j) of tap (p, q) reads flat position offset + i*Wp + j: one run per image
        run = (out_h - 1) * self.padded_w + out_w
        for p, q, offset in self._wide_taps():
            cols[:, p, q, :, :run] = flat[:, :, offset : offset + run]
        # the last Wp - W' junk columns of each image read no run: set them to 0, finite (the
        # memory is reused and may hold anything, and 0 * NaN in dw would be NaN)
        cols[..., run:] = 0
        return cols.reshape(-1, n * out_h * self.row_width)

    def outputs(self, out_rows: np.ndarray) -> np.ndarray:
        """(F, n*H'*R) product rows as the block's (F, n, H', W') outputs: a view."""
        out_h, out_w = self.out_size
        return out_rows.reshape(out_rows.shape[0], -1, out_h, self.row_width)[..., :out_w]

    def dout_rows(self, dout_block: np.ndarray) -> np.ndarray:
        """dout of a block (n, F, H', W') in the columns' order: (F, n*H'*R), junk entries 0."""
        n, num_filters, out_h, out_w = dout_block.shape
        rows = self.buffer((num_filters, n, out_h, self.row_width), "dout_rows")
        rows[..., :out_w] = dout_block.transpose(1, 0, 2, 3)
        rows[..., out_w:] = 0  # junk columns (wide rows): nothing flows back from them
        return rows.reshape(num_filters, -1)

    def add_back(self, dcols: np.ndarray, dx_padded_block: np.ndarray) -> None:
        """col2im for a block: add dcols (C*KH*KW, n*H'*R), laid out as `columns` made them,
        onto dx_padded_block (n, C, Hp, Wp), zeroed and contiguous."""
        if not self.wide:
            col2im_add(dcols, dx_padded_block, self.kernel, self.stride, self.dilation,
                        self.out_size)
            return
        # the adjoint of the wide copies in `columns`: each tap's run goes back, added, where
        # it was read from. Junk columns of dcols are 0 (dout_rows is 0 there), so the parts of
        # a run that wrap into the next row add nothing
        n = dx_padded_block.shape[0]
        flat = dx_padded_block.reshape(n, self.channels, -1).transpose(1, 0, 2)  # (C, n, Hp*Wp)
        out_h, out_w = self.out_size
        runs = dcols.reshape(self.channels, *self.kernel, n, out_h * self.row_width)
        run = (out_h - 1) * self.padded_w + out_w
        for p, q, offset in self._wide_taps():
            flat[:, :, offset : offset + run] += runs[:, p, q, :, :run]
