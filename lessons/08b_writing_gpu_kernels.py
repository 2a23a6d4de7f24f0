# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 8b: writing GPU kernels: how the Numba backend computes a convolution
#
# Lesson 1 computed a convolution as im2col followed by one matrix product, and lesson 8 ran the same net on
# a GPU through CuPy and cuDNN. This lesson opens the box: the Numba backend (`minivgg.backends.numba`)
# writes every op of the net as a CUDA kernel *in Python*, and its convolution is a tiled matrix product
# whose unfolded (im2col) matrix is never stored: an **implicit GEMM**.
#
# Everything below runs in Numba's **CUDA simulator**, which executes the kernels on the CPU with one Python
# thread per CUDA thread: slow, but every index can be inspected, and no GPU is needed. The simulator must
# be chosen before Numba is imported. On a machine with a GPU, start Jupyter with `NUMBA_ENABLE_CUDASIM=0`
# and the same cells run on the GPU.

# %%
import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # before Numba is first imported

import inspect  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minivgg.backends import numba as backend  # noqa: E402
from minivgg.backends.reference import conv as reference  # noqa: E402  (the readable reference)
from minivgg.backends.numba import activation, conv  # noqa: E402
from minivgg.backends.numba.arrays import REDUCTION_BLOCKS, grid_for, on_device, reduction_splits  # noqa: E402
from minivgg.backends.reference.conv import im2col  # noqa: E402
from minivgg.exercises import gpu_kernels as exercises  # noqa: E402
from minivgg.backends.shapes import output_size  # noqa: E402
from minivgg.gradcheck import relative_error  # noqa: E402

backend.speed_up_simulator()  # the simulator's threads take turns faster; nothing else changes
print("running on", "the CUDA simulator" if backend.SIMULATOR else "a GPU", "- arrays are", backend.xp.__name__)
rng = np.random.default_rng(8)

# %% [markdown]
# ## 1. Threads, blocks, a grid
#
# A kernel is a function that many threads run at once, each on its own part of the data. Threads come in
# **blocks** (up to 1024 threads that can share fast on-chip *shared memory* and wait for each other at a
# barrier), and blocks make a **grid**. `cuda.grid(1)` is a thread's number in the whole grid. Here is the
# backend's ReLU, the simplest kernel there is:

# %%
print(inspect.getsource(activation.relu_forward_kernel.py_func))

# %% [markdown]
# The loop is a *grid-stride loop*: with T threads in the grid, thread t takes elements t, t + T, t + 2T...
# So any grid covers any size, and neighbouring threads touch neighbouring addresses, which the memory
# system serves in one transaction ("coalesced"). A launch names the grid: `kernel[blocks, threads](...)`.

# %%
x = backend.asarray(rng.standard_normal(10), dtype=np.float32)
out = backend.xp.empty_like(x)
blocks, threads = grid_for(x.size)
activation.relu_forward_kernel[blocks, threads](on_device(x), on_device(out))
print(f"{blocks} block(s) of {threads} threads")
print("x       ", np.round(backend.to_host(x), 2))
print("relu(x) ", np.round(backend.to_host(out), 2))
assert np.array_equal(backend.to_host(out), np.maximum(backend.to_host(x), 0))

# %% [markdown]
# One block of threads covers the ten elements, and the kernel's output is max(x, 0) element by element.

# %% [markdown]
# ## 2. A convolution is a matrix product, and its left factor is huge
#
# Number the output pixels of a batch `m = (n·Ho + y)·Wo + x`. Lesson 1's im2col matrix has one row per output
# pixel and one column per (tap i, tap j, channel c), and
#
# $$\text{out}[m, f] = \sum_{(i, j, c)} \text{unfolded}[m, (i, j, c)]\; W[f, c, i, j],$$
#
# a product of an (N·Ho·Wo) × (k·k·C) matrix by a (k·k·C) × F one. For VGG-16 at batch 64 (the paper trains
# with 256) the unfolded matrix would be:

# %%
vgg16 = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
         (256, 512, 28), (512, 512, 28), (512, 512, 14)]
batch = 64
print(f"{'layer':>14} {'GEMM rows x reduction x cols':>30} {'im2col matrix':>14}")
gigabytes = []
for c_in, c_out, size in vgg16:
    rows, depth = batch * size * size, 9 * c_in
    gigabytes.append(rows * depth * 4 / 1e9)
    print(f"{c_in:>4}->{c_out:<4}@{size:<3} {f'{rows} x {depth} x {c_out}':>30} {gigabytes[-1]:11.2f} GB")
assert round(gigabytes[1], 1) == 7.4 and max(gigabytes) == gigabytes[1]

# %% [markdown]
# 7.4 GB for the second layer alone: written to memory and read back, that traffic would cost more than the
# arithmetic. The implicit GEMM computes the product in tiles and builds each tile of the unfolded matrix in
# shared memory, straight from the input, just before it is used.
#
# ## 3. Tiles: what each block and each thread computes
#
# A block computes a `rows × cols` tile of the output matrix. Here is a small convolution (2 images of 5×7,
# 3 → 5 channels, 3×3, padding 1: a 70 × 5 output matrix) cut into the tiles the kernel uses:

# %%
n, channels, height, width, filters = 2, 3, 5, 7, 5
out_h, out_w = output_size(height, 3, 1, 1), output_size(width, 3, 1, 1)
pixels = n * out_h * out_w
tiling = conv.choose_tiling(filters)
threads_x, threads_y = conv.threads_per_block(tiling)
print(tiling)
print(f"output matrix {pixels} x {filters}; grid of {-(-pixels // tiling.rows)} x {-(-filters // tiling.cols)} "
      f"blocks of {threads_x} x {threads_y} threads")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [1, 1.3]})
ax = axes[0]
ax.add_patch(Rectangle((0, 0), filters, pixels, color="tab:blue", alpha=0.25, label="the output matrix"))
for block_row in range(-(-pixels // tiling.rows)):
    for block_col in range(-(-filters // tiling.cols)):
        ax.add_patch(Rectangle((block_col * tiling.cols, block_row * tiling.rows), tiling.cols, tiling.rows,
                               fill=False, edgecolor="black"))
        ax.text(block_col * tiling.cols + tiling.cols / 2, block_row * tiling.rows + tiling.rows / 2,
                f"block ({block_row}, {block_col})", ha="center", va="center", fontsize=7)
ax.set_xlim(0, tiling.cols)
ax.set_ylim(-(-pixels // tiling.rows) * tiling.rows, 0)
ax.set_xlabel("column = output channel f")
ax.set_ylabel("row = output pixel m")
ax.set_title("blocks tile the output; past the edges\nthey compute nothing")
ax.legend(loc="lower right", fontsize=7)

# Inside one tile: thread (tx, ty) owns rows ty, ty + threads_y, ... and columns tx, tx + threads_x, ...
owner = np.zeros((tiling.rows, tiling.cols), dtype=int)
for ty in range(threads_y):
    for tx in range(threads_x):
        for r in range(tiling.thread_rows):
            for q in range(tiling.thread_cols):
                owner[ty + r * threads_y, tx + q * threads_x] = ty * threads_x + tx
axes[1].imshow(owner, cmap="tab20")
for (row, col), thread in np.ndenumerate(owner):
    axes[1].text(col, row, thread, ha="center", va="center", fontsize=7)
axes[1].set_title(f"one tile: the number of the thread that computes\neach output "
                  f"({tiling.thread_rows} x {tiling.thread_cols} per thread, strided)")
axes[1].set_xlabel("column in the tile")
axes[1].set_ylabel("row in the tile")
plt.tight_layout()
plt.show()

# %% [markdown]
# A thread's outputs are *strided* rather than a contiguous square: at every moment the threads of a warp
# (32 threads that execute together) then read neighbouring words of shared memory and write neighbouring
# output channels, the patterns the hardware serves fastest.
#
# ## 4. The reduction, one step at a time
#
# To fill its tile a block walks along the reduction (i, j, c), `depth` numbers per step. At each step all
# its threads copy an A tile (`rows` pixels × `depth` unfolded inputs) and a B tile (`depth` × `cols`
# weights) into shared memory, wait at a barrier, and each thread multiplies its piece from registers.
# The backend walks the taps one after the other, and within a tap `depth` consecutive channels, so finding
# which input pixel a thread must read takes one line, the library's `input_pixel_read_by`:

# %%
print(inspect.getsource(conv.input_pixel_read_by.py_func))

# %% [markdown]
# Pixels outside the image are the zero padding: the loader writes a 0 into the tile, and the padded input
# never exists in memory. Below, the A tile block 0 builds at each step, assembled with that function, is
# compared with the matching piece of lesson 1's im2col matrix (the reference's `im2col` in
# `backends/reference/conv.py`, whose columns run (c, i, j); the kernel walks them tap by tap, (i, j, c), so the
# columns are reordered): they are the same numbers, but the kernel only ever holds one `rows × depth`
# piece at a time.

# %%
x = rng.standard_normal((n, channels, height, width)).astype(np.float32)
x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
unfolded = im2col(x, 3, 3, 1, 1).reshape(pixels, channels, 9).transpose(0, 2, 1).reshape(pixels, 9 * channels)


def a_tile_of_block_0(i, j, first_channel):
    """The (depth, rows) A tile block 0 copies at tap (i, j), channels first_channel...: a_tile[d, row]."""
    tile = np.zeros((tiling.depth, tiling.rows), dtype=np.float32)
    for row in range(min(tiling.rows, pixels)):
        image, y, x_ = row // (out_h * out_w), (row // out_w) % out_h, row % out_w
        source_y, source_x, inside = conv.input_pixel_read_by.py_func(y, x_, i, j, 1, 1, height, width)
        for d in range(tiling.depth):
            if inside and first_channel + d < channels:
                tile[d, row] = x_nhwc[image, source_y, source_x, first_channel + d]
    return tile


steps = [(i, j, c0) for i in range(3) for j in range(3) for c0 in range(0, channels, tiling.depth)]
for i, j, c0 in steps:
    tile = a_tile_of_block_0(i, j, c0)
    first_column = (3 * i + j) * channels + c0
    piece = unfolded[:tiling.rows, first_column:first_column + min(tiling.depth, channels - c0)]
    assert np.array_equal(tile[:piece.shape[1]].T, piece) and not tile[piece.shape[1]:].any()
print(f"{len(steps)} steps (9 taps x {-(-channels // tiling.depth)} channel step(s)); every A tile equals its "
      f"piece of the im2col matrix")

fig, ax = plt.subplots(figsize=(9, 3.2))
ax.imshow(unfolded.T, cmap="gray", aspect="auto")
for step, (i, j, c0) in enumerate(steps):
    column = (3 * i + j) * channels + c0
    ax.add_patch(Rectangle((-0.5, column - 0.5), tiling.rows, min(tiling.depth, channels - c0), fill=False,
                           edgecolor=plt.cm.viridis(step / len(steps)), linewidth=2))
ax.set_xlabel("output pixel m (im2col row)")
ax.set_ylabel("(i, j, c) (im2col column)")
ax.set_title("the im2col matrix (transposed) that is never stored; block 0's A tiles, one per step")
plt.tight_layout()
plt.show()

# %% [markdown]
# Here is the kernel that does all this, as the backend has it. It is built by a function (`tap_kernel`) so
# that the tile sizes are compile-time constants (Numba can then keep the accumulators in registers), and
# the same code serves the forward pass and the data gradient: only `source_pixel` changes.

# %%
kernel = conv.tap_kernel(conv.input_pixel_read_by, tiling, np.dtype(np.float32))
print(inspect.getsource(kernel.py_func))

# %% [markdown]
# ## 5. Run it, and compare with the reference

# %%
W = rng.standard_normal((filters, channels, 3, 3)).astype(np.float32)
b = rng.standard_normal(filters).astype(np.float32)
out, cache = backend.conv2d_forward(backend.asarray(x), backend.asarray(W), backend.asarray(b), 1, 1)
expected, expected_cache = reference.conv2d_forward(x, W, b, 1, 1)
dout = rng.standard_normal(expected.shape).astype(np.float32)
gradients = backend.conv2d_backward(backend.asarray(dout), cache)
expected_gradients = reference.conv2d_backward(dout, expected_cache)
print(f"forward: relative error {relative_error(backend.to_host(out), expected):.1e}")
for name, got, want in zip(("dx", "dW", "db"), gradients, expected_gradients):
    print(f"{name}: relative error {relative_error(backend.to_host(got), want):.1e}")
assert relative_error(backend.to_host(out), expected) < 1e-6
assert all(relative_error(backend.to_host(g), w) < 1e-6 for g, w in zip(gradients, expected_gradients))

# %% [markdown]
# The kernels' output and all three gradients agree with the reference to float32 rounding (below 1e-6).

# %% [markdown]
# ## 6. The two gradients
#
# **Data gradient.** Input pixel (y, x) fed output pixel ((y + p − i)/s, (x + p − j)/s) through tap (i, j),
# when that is a whole number inside the output. So `dx` is the same tap-walking product, over `dout` and the
# weights laid out (kh, kw, F, C), with this mapping instead:

# %%
print(inspect.getsource(conv.output_pixel_fed_by.py_func))
print("stride 2, padding 1, a 4-row output: input row y receives gradient from output rows")
feeds = {}
for y in range(7):
    fed = [(i, conv.output_pixel_fed_by.py_func(y, 0, i, 1, 2, 1, 4, 4)) for i in range(3)]
    feeds[y] = [(i, row) for i, (row, _, inside) in fed if inside]
    print(f"  y = {y}: " + ", ".join(f"tap i={i} -> row {row}" for i, row in feeds[y]))
assert feeds[0] == [(1, 0)] and feeds[1] == [(0, 1), (2, 0)]

# %% [markdown]
# With stride 2, even input rows feed one output row (through the middle tap), odd rows two (through the outer
# taps): the data gradient is not a plain convolution unless the stride is 1.

# %% [markdown]
# **Weight gradient.** `dW[(i, j, c), f] = Σ_m unfolded[m, (i, j, c)] · dout[m, f]`: a small output
# (27 × 64 for the first layer) and a very long reduction (every pixel of the batch: 3.2 million). One block
# per output tile would leave most of a GPU's 132 multiprocessors idle, so the pixels are split into ranges,
# each block computes a partial tile over its range, and the partial tiles are summed afterwards (the same
# result on every run, unlike atomic additions). With the GPU's tilings, at batch 64:

# %%
print(f"{'layer':>14} {'dW matrix':>12} {'tile':>9} {'tiles':>6} {'splits':>7} {'pixels per block':>17}")
for c_in, c_out, size in vgg16:
    gpu_tiling = conv.choose_tiling(c_out, conv.GPU_TILINGS)
    tiles = -(-9 * c_in // gpu_tiling.rows) * -(-c_out // gpu_tiling.cols)
    splits, chunk = reduction_splits(batch * size * size, tiles, gpu_tiling.depth, 1024)
    print(f"{c_in:>4}->{c_out:<4}@{size:<3} {f'{9 * c_in} x {c_out}':>12} "
          f"{f'{gpu_tiling.rows}x{gpu_tiling.cols}':>9} {tiles:>6} {splits:>7} {chunk:>17}")
print(f"(under the simulator the backend aims at {REDUCTION_BLOCKS} blocks instead of 1024)")

# %% [markdown]
# ## 7. Why tiles make it fast
#
# A GPU does far more arithmetic per second than it can fetch numbers from its main memory, so a kernel is
# fast when each number fetched is used many times. Per step, a block loads `(rows + cols) · depth` numbers
# from global memory and does `rows · cols · depth` multiply-adds; per `d`, a thread reads
# `thread_rows + thread_cols` numbers from shared memory and does `thread_rows · thread_cols`:

# %%
print(f"{'tiling (GPU)':>22} {'threads':>8} {'FMA per global load':>20} {'FMA per shared read':>20} {'shared KB':>10}")
for gpu_tiling in conv.GPU_TILINGS:
    rows, cols, depth, thread_rows, thread_cols = gpu_tiling
    per_global = rows * cols * depth / ((rows + cols) * depth)
    per_shared = thread_rows * thread_cols / (thread_rows + thread_cols)
    block = np.prod(conv.threads_per_block(gpu_tiling))
    print(f"{f'{rows}x{cols}, {thread_rows}x{thread_cols}/thread':>22} {block:>8} {per_global:>20.0f} "
          f"{per_shared:>20.1f} {4 * depth * (rows + cols) / 1024:>10.0f}")
widest = max(conv.GPU_TILINGS, key=lambda t: t.rows * t.cols / (t.rows + t.cols))  # 128 x 128
assert widest.rows * widest.cols / (widest.rows + widest.cols) == 64
assert widest.thread_rows * widest.thread_cols / (widest.thread_rows + widest.thread_cols) == 4

# %% [markdown]
# The 128 × 128 tile uses each number from global memory 64 times and each from shared memory 4 times; the
# narrow tiles trade some of that for not computing outputs that do not exist. `benchmarks/gpu_numba_checks.py`
# measures what this gives on a real GPU, layer by layer, against PyTorch's cuDNN.
#
# **Try it.** Give the backend other tiles, e.g. `conv.TILINGS = (conv.Tiling(8, 8, 2, 1, 2),)` (depth 2, one
# row per thread), rerun section 5 and count the steps; then read `weight_gradient_kernel` in
# `backends/numba/conv.py`, which moves each thread's pixel forward by `depth` at every step instead of
# dividing again.
#
# > **A choice left to the implementation: the reduction's order.** The paper's convolution is a sum; in which
# > order its terms are added is free. The reference's im2col columns run (c, i, j); the Numba kernels walk
# > (i, j, c), tap by tap, because their input is channels-last (NHWC), so `depth` consecutive channels of one
# > tap are neighbours in memory. The results differ by float32 rounding only (section 5).
#
# ## Exercises
#
# **1. The forward's index maths.** `input_pixel_read_by(y, x, i, j, stride, padding, height, width)` returns
# `(row, column, inside)`: the input pixel output pixel (y, x) reads through tap (i, j), and whether it lies
# inside the height × width input (outside, the kernel loads the zero padding). **2. The data gradient's.**
# `output_pixel_fed_by(y, x, i, j, stride, padding, height, width)`: the output pixel input pixel (y, x) fed
# through tap (i, j), and whether there is one (height × width is the output's size here). Both are checked on
# every pixel and tap of five layers against the backend's own.

# %%
def input_pixel_read_by(y, x, i, j, stride, padding, height, width):
    """(row, column, inside) of the input pixel read by output (y, x) through tap (i, j)."""
    raise NotImplementedError  # your code here


def output_pixel_fed_by(y, x, i, j, stride, padding, height, width):
    """(row, column, inside) of the output pixel fed by input (y, x) through tap (i, j)."""
    raise NotImplementedError  # your code here


print(exercises.check_input_pixel_read_by(input_pixel_read_by))
print(exercises.check_output_pixel_fed_by(output_pixel_fed_by))

# %% [markdown]
# **3. On paper.**

# %%
exercises.check_answers(
    reuse_of_widest_tile=None,   # 128 x 128 tile, depth 8: multiply-adds per number loaded from global memory?
    reduction_steps=None,        # 3x3 convolution, 64 input channels, depth 8: steps along the reduction?
)
