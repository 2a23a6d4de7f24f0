"""Convolution as an implicit GEMM: tiled shared-memory CUDA kernels with no im2col buffer (Sect. 2.1).

The NumPy reference (``backends/reference/conv.py``) unfolds the input into an im2col matrix and multiplies it by
the filters. The unfolded matrix is ``kh * kw`` times the input: on a GPU, 9x VGG-16's largest activations
written to memory and read back. Here the same product is computed one tile at a time, and each tile of the
unfolded matrix is assembled in shared memory, straight from the input, just before it is used. The matrix
exists only in pieces of ``ROWS x DEPTH`` numbers: an *implicit* GEMM.

The three products. Activations are NHWC inside (one pixel's channels are contiguous) and ``m`` numbers the
pixels of a batch, ``m = (n * Ho + y) * Wo + x``:

    forward           out[m, f]       = sum_{i, j, c} x_pad[m moved by tap (i, j), c] * W[f, c, i, j]
    data gradient     dx[m, c]        = sum_{i, j, f} dout[m moved back by tap (i, j), f] * W[f, c, i, j]
    weight gradient   dW[(i, j, c), f] = sum_m x_pad[m moved by tap (i, j), c] * dout[m, f]

The first two are (pixels x ``kh * kw * channels``) times (``kh * kw * channels`` x channels out), the
third is (``kh * kw * C`` x pixels) times (pixels x F). "m moved by tap (i, j)" is the input pixel
``(y * s - p + i, x * s - p + j)`` that output pixel (y, x) sees through the kernel's tap (i, j); outside the
image it is the zero padding, which is never stored: the loader writes a 0 into the tile instead.

Tiling. One block of threads computes one ``ROWS x COLS`` tile of the output matrix, walking along the
reduction ``DEPTH`` numbers at a time. At each step:

  1. all threads together copy an A tile (``ROWS x DEPTH``: pixels by unfolded inputs, zeros where the
     window hangs over the border) and a B tile (``DEPTH x COLS``: weights) into shared memory;
  2. barrier: the tiles are complete;
  3. each thread multiplies its own ``THREAD_ROWS x THREAD_COLS`` piece of the tile: for each of the ``DEPTH``
     columns of A it reads THREAD_ROWS numbers of A and THREAD_COLS of B into registers and does
     THREAD_ROWS * THREAD_COLS multiply-adds into accumulators that stay in registers all along;
  4. barrier: nobody overwrites the tiles while another thread still reads them.

Why this is fast: a number fetched from global memory is used COLS (or ROWS) times from shared memory, and a
number read from shared memory is used THREAD_COLS (or THREAD_ROWS) times from registers. With 128 x 128
tiles and 8 x 8 per thread, a step loads 2 * 128 * 8 numbers and does 128 * 128 * 8 multiply-adds: 64 per
number loaded. A thread's rows are ``ty, ty + threads_y, ...`` (strided, not contiguous), so that the
threads of a warp read one shared-memory row together (a broadcast or consecutive words, no bank
conflicts) and write consecutive output channels (one coalesced store).

The reduction is walked tap by tap: a step is one tap (i, j) and DEPTH consecutive channels, so the
threads that fill one row of the A tile read consecutive channels of one NHWC pixel (coalesced), and finding
the pixel a thread must read needs no division, only ``y * s - p + i``. When the channels are not a multiple
of DEPTH the last step of each tap reads zeros past the end (VGG's first layer, 3 channels, wastes 5 of every
8 multiply-adds; the layer is 0.6% of the net's work).

The weight gradient reduces over all ``N * Ho * Wo`` pixels (3.2 million for the first layers at batch 64)
into a small matrix (27 x 64 for the first layer): one block per output tile would leave most of the GPU
idle. So the pixels are split into ranges, one block per (tile, range) writes a partial tile, and the
partial tiles are summed afterwards. Unlike atomic adds, the sum is the same on every run.
"""
import functools
import math
from collections import namedtuple

import numba
from numba import cuda

from ..shapes import output_size

from .arrays import (REDUCTION_BLOCKS, SIMULATOR, array_module, check_same_dtype, device_function, on_device,
                     reduction_splits)
from .bias import column_sums

ConvCache = namedtuple("ConvCache", "x_nhwc W stride padding out_hw")

# A tiling: a block computes a rows x cols tile of the output matrix, depth reduction steps at a time, each
# thread a thread_rows x thread_cols piece of it; the block has (rows / thread_rows) x (cols / thread_cols)
# threads.
Tiling = namedtuple("Tiling", "rows cols depth thread_rows thread_cols")

# 256 threads each. The 128 x 128 tile with 8 x 8 per thread does 64 multiply-adds per number loaded from
# global memory and 4 per number read from shared memory, in 8 KB of shared memory. The narrower tiles serve
# outputs with few channels: 64 output channels (VGG's first block) in a 128-wide tile would waste half the
# work, 3 (the first layer's data gradient) 97% of it.
GPU_TILINGS = (Tiling(rows=256, cols=16, depth=8, thread_rows=8, thread_cols=2),
               Tiling(rows=256, cols=64, depth=8, thread_rows=8, thread_cols=8),
               Tiling(rows=128, cols=128, depth=8, thread_rows=8, thread_cols=8))
# The simulator runs one Python thread per CUDA thread: small tiles keep it quick, and tiny test shapes still
# cross several tiles and their edges. The kernels are the same code.
SIMULATOR_TILINGS = (Tiling(rows=8, cols=2, depth=4, thread_rows=2, thread_cols=1),
                     Tiling(rows=8, cols=4, depth=4, thread_rows=2, thread_cols=2),
                     Tiling(rows=8, cols=8, depth=4, thread_rows=2, thread_cols=2))
TILINGS = SIMULATOR_TILINGS if SIMULATOR else GPU_TILINGS


def choose_tiling(cols, tilings=None):
    """The narrowest of ``tilings`` (default ``TILINGS``) whose tile is at least ``cols`` wide, or the widest."""
    tilings = TILINGS if tilings is None else tilings
    for tiling in tilings:
        if cols <= tiling.cols:
            return tiling
    return tilings[-1]


def threads_per_block(tiling):
    """``(threads_x, threads_y)``: x runs along the tile's columns, y along its rows."""
    return tiling.cols // tiling.thread_cols, tiling.rows // tiling.thread_rows


def _check_tiling(tiling):
    threads_x, threads_y = threads_per_block(tiling)
    if threads_x * tiling.thread_cols != tiling.cols or threads_y * tiling.thread_rows != tiling.rows:
        raise ValueError(f"tiling {tiling}: rows and cols must be multiples of thread_rows and thread_cols")


def _tile_product(tiling, dtype):
    """A device function ``multiply_accumulate(a_tile, b_tile, acc, ty, tx)``: step 3 above.

    ``a_tile`` (depth, rows) and ``b_tile`` (depth, cols) are in shared memory; ``acc`` (thread_rows,
    thread_cols) is the thread's accumulator, ``acc[r, q] += sum_d a_tile[d, ty + r * threads_y] *
    b_tile[d, tx + q * threads_x]``.
    """
    _check_tiling(tiling)
    threads_x, threads_y = threads_per_block(tiling)
    depth, thread_rows, thread_cols = tiling.depth, tiling.thread_rows, tiling.thread_cols

    @device_function
    def multiply_accumulate(a_tile, b_tile, acc, ty, tx):
        a = cuda.local.array(thread_rows, dtype)  # registers: sizes are compile-time constants
        b = cuda.local.array(thread_cols, dtype)
        for d in range(depth):
            for r in range(thread_rows):
                a[r] = a_tile[d, ty + r * threads_y]
            for q in range(thread_cols):
                b[q] = b_tile[d, tx + q * threads_x]
            for r in range(thread_rows):
                for q in range(thread_cols):
                    acc[r, q] += a[r] * b[q]

    return multiply_accumulate


@device_function
def input_pixel_read_by(y, x, i, j, stride, padding, height, width):
    """Forward (and weight gradient): output pixel (y, x) reads input pixel ``(y*s - p + i, x*s - p + j)``
    through tap (i, j). Returns ``(row, column, inside)``; outside the ``height x width`` image is padding."""
    row = y * stride - padding + i
    column = x * stride - padding + j
    return row, column, 0 <= row < height and 0 <= column < width


@device_function
def output_pixel_fed_by(y, x, i, j, stride, padding, height, width):
    """Data gradient: input pixel (y, x) fed output pixel ``((y + p - i) / s, (x + p - j) / s)`` through tap
    (i, j), when both are whole numbers inside the ``height x width`` output; otherwise it fed nothing."""
    row = y + padding - i
    column = x + padding - j
    if row < 0 or column < 0:
        return row, column, False
    if stride != 1:  # with stride s only every s-th input row is the top row of a window at this tap
        if row % stride != 0 or column % stride != 0:
            return row, column, False
        row //= stride
        column //= stride
    return row, column, row < height and column < width


@functools.lru_cache(maxsize=None)
def tap_kernel(source_pixel, tiling, dtype):
    """The kernel ``tap_convolution[grid, block](source, weights, bias, out, out_h, out_w, stride, padding)``.

    Shapes: ``source`` (N, Hs, Ws, Cs) NHWC, ``weights`` (kh, kw, Cs, F), ``bias`` (F,), ``out``
    (N * out_h * out_w, F). Computes ``out[m, f] = bias[f] + sum_{i, j, c} source[source_pixel(m, i, j), c] *
    weights[i, j, c, f]``: the forward pass with ``input_pixel_read_by`` (source = x, weights = W as
    (kh, kw, C, F)), the data gradient with ``output_pixel_fed_by`` (source = dout, weights = W as
    (kh, kw, F, C), bias 0). Grid: (row tiles, column tiles) of ``out``; block: ``threads_per_block``.
    """
    rows, cols, depth, thread_rows, thread_cols = tiling
    threads_x, threads_y = threads_per_block(tiling)
    threads = threads_x * threads_y
    a_loads = -(-rows * depth // threads)  # A-tile numbers each thread copies per step
    b_loads = -(-depth * cols // threads)
    dtype = numba.from_dtype(dtype)
    multiply_accumulate = _tile_product(tiling, dtype)

    @cuda.jit
    def tap_convolution(source, weights, bias, out, out_h, out_w, stride, padding):
        n_pixels, n_out = out.shape
        _, source_h, source_w, channels = source.shape
        kh, kw = weights.shape[0], weights.shape[1]
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        thread = ty * threads_x + tx
        first_row = cuda.blockIdx.x * rows
        first_col = cuda.blockIdx.y * cols

        # Stored transposed, a_tile[d, row], so that step 3 reads along a row of shared memory.
        a_tile = cuda.shared.array((depth, rows), dtype)
        b_tile = cuda.shared.array((depth, cols), dtype)
        acc = cuda.local.array((thread_rows, thread_cols), dtype)
        for r in range(thread_rows):
            for q in range(thread_cols):
                acc[r, q] = 0

        # The pixels whose A values this thread copies are the same at every step: turn their row numbers
        # into (image, y, x) once, here, not at every step (integer division is slow on a GPU).
        image = cuda.local.array(a_loads, numba.int32)
        pixel_y = cuda.local.array(a_loads, numba.int32)
        pixel_x = cuda.local.array(a_loads, numba.int32)
        for load in range(a_loads):
            element = thread + load * threads
            row = first_row + element // depth
            image[load] = -1  # past the tile or past the last pixel: copies zeros
            pixel_y[load] = 0
            pixel_x[load] = 0
            if element < rows * depth and row < n_pixels:
                pixel_x[load] = row % out_w
                pixel_y[load] = (row // out_w) % out_h
                image[load] = row // (out_w * out_h)

        for i in range(kh):
            for j in range(kw):
                for first_channel in range(0, channels, depth):
                    # Step 1a: A tile. Consecutive threads take consecutive channels of one pixel.
                    for load in range(a_loads):
                        element = thread + load * threads
                        if element < rows * depth:
                            d, row = element % depth, element // depth
                            channel = first_channel + d
                            y, x, inside = source_pixel(pixel_y[load], pixel_x[load], i, j, stride, padding,
                                                        source_h, source_w)
                            if inside and image[load] >= 0 and channel < channels:
                                a_tile[d, row] = source[image[load], y, x, channel]
                            else:
                                a_tile[d, row] = 0
                    # Step 1b: B tile, this tap's weights. Consecutive threads take consecutive filters.
                    for load in range(b_loads):
                        element = thread + load * threads
                        if element < depth * cols:
                            d, col = element // cols, element % cols
                            if first_channel + d < channels and first_col + col < n_out:
                                b_tile[d, col] = weights[i, j, first_channel + d, first_col + col]
                            else:
                                b_tile[d, col] = 0
                    cuda.syncthreads()
                    multiply_accumulate(a_tile, b_tile, acc, ty, tx)
                    cuda.syncthreads()

        for r in range(thread_rows):
            row = first_row + ty + r * threads_y
            for q in range(thread_cols):
                col = first_col + tx + q * threads_x
                if row < n_pixels and col < n_out:
                    out[row, col] = acc[r, q] + bias[col]

    return tap_convolution


@functools.lru_cache(maxsize=None)
def weight_gradient_kernel(tiling, dtype):
    """The kernel ``weight_gradient[grid, block](x, dout, partial, kh, kw, stride, padding, out_h, out_w, chunk)``.

    Shapes: ``x`` (N, H, W, C) NHWC, ``dout`` (N * out_h * out_w, F), ``partial`` (splits, kh * kw * C, F).
    Block (row tile, column tile, split) computes ``partial[split, (i, j, c), f] = sum_m x_pad[m moved by tap
    (i, j), c] * dout[m, f]`` over the pixels ``m`` in ``[split * chunk, (split + 1) * chunk)``.
    Grid: (row tiles, column tiles, splits); block: ``threads_per_block``.
    """
    rows, cols, depth, thread_rows, thread_cols = tiling
    threads_x, threads_y = threads_per_block(tiling)
    threads = threads_x * threads_y
    a_loads = -(-rows * depth // threads)
    b_loads = -(-depth * cols // threads)
    dtype = numba.from_dtype(dtype)
    multiply_accumulate = _tile_product(tiling, dtype)

    @cuda.jit
    def weight_gradient(x, dout, partial, kh, kw, stride, padding, out_h, out_w, chunk):
        _, height, width, channels = x.shape
        n_pixels, n_filters = dout.shape
        n_rows = partial.shape[1]  # kh * kw * channels, ordered (i, j, c)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        thread = ty * threads_x + tx
        first_row = cuda.blockIdx.x * rows
        first_col = cuda.blockIdx.y * cols
        split = cuda.blockIdx.z
        begin = split * chunk
        end = min(n_pixels, begin + chunk)

        a_tile = cuda.shared.array((depth, rows), dtype)
        b_tile = cuda.shared.array((depth, cols), dtype)
        acc = cuda.local.array((thread_rows, thread_cols), dtype)
        for r in range(thread_rows):
            for q in range(thread_cols):
                acc[r, q] = 0

        # Here the A tile is (taps and channels) x pixels, and consecutive threads take consecutive channels.
        # A thread's (i, j, c) stays fixed; its pixel moves on by `depth` each step, which is counted
        # forward instead of divided out again.
        tap_i = cuda.local.array(a_loads, numba.int32)
        tap_j = cuda.local.array(a_loads, numba.int32)
        channel = cuda.local.array(a_loads, numba.int32)
        image = cuda.local.array(a_loads, numba.int32)
        pixel_y = cuda.local.array(a_loads, numba.int32)
        pixel_x = cuda.local.array(a_loads, numba.int32)
        for load in range(a_loads):
            element = thread + load * threads
            row = first_row + element % rows
            tap_i[load] = -1  # past the tile or past the last row: copies zeros
            tap_j[load] = 0
            channel[load] = 0
            if element < rows * depth and row < n_rows:
                channel[load] = row % channels
                tap_i[load] = (row // channels) // kw
                tap_j[load] = (row // channels) % kw
            pixel = begin + element // rows
            pixel_x[load] = pixel % out_w
            pixel_y[load] = (pixel // out_w) % out_h
            image[load] = pixel // (out_w * out_h)

        for step_begin in range(begin, end, depth):
            for load in range(a_loads):
                element = thread + load * threads
                if element < rows * depth:
                    d, row = element // rows, element % rows
                    a_tile[d, row] = 0
                    if tap_i[load] >= 0 and step_begin + d < end:
                        y, x_, inside = input_pixel_read_by(pixel_y[load], pixel_x[load], tap_i[load],
                                                            tap_j[load], stride, padding, height, width)
                        if inside:
                            a_tile[d, row] = x[image[load], y, x_, channel[load]]
                    # This slot's pixel for the next step: `depth` further along (image, y, x).
                    pixel_x[load] += depth
                    while pixel_x[load] >= out_w:
                        pixel_x[load] -= out_w
                        pixel_y[load] += 1
                        if pixel_y[load] == out_h:
                            pixel_y[load] = 0
                            image[load] += 1
            for load in range(b_loads):
                element = thread + load * threads
                if element < depth * cols:
                    d, col = element // cols, element % cols
                    if step_begin + d < end and first_col + col < n_filters:
                        b_tile[d, col] = dout[step_begin + d, first_col + col]
                    else:
                        b_tile[d, col] = 0
            cuda.syncthreads()
            multiply_accumulate(a_tile, b_tile, acc, ty, tx)
            cuda.syncthreads()

        for r in range(thread_rows):
            row = first_row + ty + r * threads_y
            for q in range(thread_cols):
                col = first_col + tx + q * threads_x
                if row < n_rows and col < n_filters:
                    partial[split, row, col] = acc[r, q]

    return weight_gradient


def _launch_tap_kernel(source_pixel, source, weights, bias, out, out_h, out_w, stride, padding):
    """Run ``tap_kernel`` over the whole ``out`` matrix (pixels x channels)."""
    tiling = choose_tiling(out.shape[1])
    kernel = tap_kernel(source_pixel, tiling, out.dtype)
    grid = (math.ceil(out.shape[0] / tiling.rows), math.ceil(out.shape[1] / tiling.cols))
    kernel[grid, threads_per_block(tiling)](on_device(source), on_device(weights), on_device(bias), on_device(out),
                                            out_h, out_w, stride, padding)


def conv2d_forward(x, W, b, stride=1, padding=0):
    """Cross-correlation of a batch with a filter bank, plus bias, as one implicit-GEMM kernel.

    Parameters
    ----------
    x : (N, C, H, W) array (any memory layout; NCHW views of NHWC memory cost no copy)
    W : (F, C, kh, kw) array
    b : (F,) array
    stride, padding : int

    Returns
    -------
    out : (N, F, Ho, Wo) array, a view of NHWC memory; ``out[n, f, y, x] = b[f] + sum_{c, i, j} W[f, c, i, j] *
        x_pad[n, c, y*s + i, x*s + j]``, ``Ho = (H + 2p - kh) // s + 1`` (likewise ``Wo``)
    cache : ConvCache for ``conv2d_backward``
    """
    xp = array_module()
    check_same_dtype("conv2d_forward", x=x, W=W, b=b)
    n, channels, height, width = x.shape
    filters, weight_channels, kh, kw = W.shape
    if channels != weight_channels:
        raise ValueError(f"conv2d_forward: input has {channels} channels, weights W of shape {W.shape} "
                         f"expect {weight_channels}")
    out_h, out_w = output_size(height, kh, stride, padding), output_size(width, kw, stride, padding)
    x_nhwc = xp.ascontiguousarray(x.transpose(0, 2, 3, 1))  # free when x came from this backend
    weights = xp.ascontiguousarray(W.transpose(2, 3, 1, 0))  # (kh, kw, C, F): one C x F slab of B per tap
    out = xp.empty((n * out_h * out_w, filters), dtype=x.dtype)
    _launch_tap_kernel(input_pixel_read_by, x_nhwc, weights, xp.ascontiguousarray(b), out, out_h, out_w,
                       stride, padding)
    cache = ConvCache(x_nhwc, W, stride, padding, (out_h, out_w))
    return out.reshape(n, out_h, out_w, filters).transpose(0, 3, 1, 2), cache


def conv2d_backward(dout, cache, input_gradient=True):
    """Gradients of ``conv2d_forward``: two implicit-GEMM kernels and a column sum.

    Parameters
    ----------
    dout : (N, F, Ho, Wo) array, the loss gradient with respect to the output
    cache : ConvCache
    input_gradient : bool, False to skip ``dx`` (returned as None) and its kernel: a network's first layer

    Returns
    -------
    dx : (N, C, H, W) array (a view of NHWC memory), ``dx[n, c, y, x] = sum_{f, i, j} W[f, c, i, j] *
        dout[n, f, (y + p - i) / s, (x + p - j) / s]`` over the whole, in-range quotients
    dW : (F, C, kh, kw) array, ``sum_{n, y, x} dout[n, f, y, x] * x_pad[n, c, y*s + i, x*s + j]``
    db : (F,) array, ``dout`` summed over batch and space
    """
    xp = array_module()
    x_nhwc, W, stride, padding, (out_h, out_w) = cache
    check_same_dtype("conv2d_backward", dout=dout, x=x_nhwc)
    filters, channels, kh, kw = W.shape
    n, height, width, _ = x_nhwc.shape
    if tuple(dout.shape) != (n, filters, out_h, out_w):
        raise ValueError(f"conv2d_backward: expected dout of shape {(n, filters, out_h, out_w)}, got {dout.shape}")
    dout_nhwc = xp.ascontiguousarray(dout.transpose(0, 2, 3, 1))  # free when dout came from this backend
    dout_matrix = dout_nhwc.reshape(-1, filters)

    if input_gradient:
        dx = xp.empty((n * height * width, channels), dtype=dout.dtype)
        weights_back = xp.ascontiguousarray(W.transpose(2, 3, 0, 1))  # (kh, kw, F, C): filters are the reduction
        _launch_tap_kernel(output_pixel_fed_by, dout_nhwc, weights_back, xp.zeros(channels, dtype=dout.dtype), dx,
                           height, width, stride, padding)

    tiling = choose_tiling(filters)
    rows = kh * kw * channels
    tiles = (math.ceil(rows / tiling.rows), math.ceil(filters / tiling.cols))
    splits, chunk = reduction_splits(dout_matrix.shape[0], tiles[0] * tiles[1], tiling.depth, REDUCTION_BLOCKS)
    partial = xp.empty((splits, rows, filters), dtype=dout.dtype)
    weight_gradient_kernel(tiling, dout.dtype)[tiles + (splits,), threads_per_block(tiling)](
        on_device(x_nhwc), on_device(dout_matrix), on_device(partial), kh, kw, stride, padding, out_h, out_w, chunk)
    dW = xp.ascontiguousarray(partial.sum(axis=0).reshape(kh, kw, channels, filters).transpose(3, 2, 0, 1))

    db = column_sums(dout_matrix)
    if not input_gradient:
        return None, dW, db
    return dx.reshape(n, height, width, channels).transpose(0, 3, 1, 2), dW, db
