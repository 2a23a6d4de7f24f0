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
# # Lesson 1: convolution, and why im2col
#
# Every conv layer of VGG (Table 1 of the paper) is a 3×3 convolution with stride 1 and padding 1, except the
# three 1×1 layers of configuration C; the three FC layers at the top are matrix products (lesson 7 reads them
# as convolutions too). This lesson computes one convolution three ways and shows why minivgg uses the third:
#
# 1. the definition, as nested loops over images, filters and pixels;
# 2. **im2col**: unfold every 3×3×C receptive field into a row of a matrix;
# 3. one matrix product of that matrix with the filters.
#
# Everything here is the library's own code: the readable reference `backends/reference/conv.py` (the maths every
# backend starts from, and what the CuPy backend runs when cuDNN is not used), the loops of
# `backends/reference/loops.py`, and the NumPy backend's engine `backends/numpy/fast_conv.py`, which computes the
# same numbers faster. The lesson shows them; it does not rewrite them.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import inspect

from minivgg.backends.numpy import conv2d_forward as engine_conv2d_forward  # what the NumPy backend exports
from minivgg.backends.reference import conv as reference_conv
from minivgg.backends.reference.conv import col2im, conv2d_backward, conv2d_forward, im2col
from minivgg.backends.reference.loops import conv2d_backward_loops, conv2d_forward_loops
from minivgg.exercises import convolution as exercises
from minivgg.models import CONFIGURATIONS
from minivgg.backends.shapes import output_size

rng = np.random.default_rng(0)

# %% [markdown]
# ## Which layers are 3×3 convolutions
#
# Table 1 as the code holds it (`minivgg.models.CONFIGURATIONS`): the kernel sizes of each column's conv cells
# (`convK-C` is a K×K convolution with C filters), and how many FC cells it has.

# %%
for config, cells in CONFIGURATIONS.items():
    kernels = sorted({int(cell[4:cell.index("-")]) for cell in cells if cell.startswith("conv")})
    print(f"{config:>9}: conv kernels {kernels}, {sum(c.startswith('FC') for c in cells)} FC layers")
kernels = {config: {int(c[4:c.index("-")]) for c in cells if c.startswith("conv")}
           for config, cells in CONFIGURATIONS.items()}
assert all(kernels[c] == {3} for c in ("A", "A-LRN", "B", "D", "E")) and kernels["C"] == {1, 3}
assert all(sum(c.startswith("FC") for c in cells) == 3 for cells in CONFIGURATIONS.values())

# %% [markdown]
# The paper's six nets use 3×3 kernels in every conv layer, C adds 1×1 layers, and all of them end with three FC
# layers. (The seventh column, B-shallow, is Sect. 4.1's control with 5×5 layers.)

# %% [markdown]
# ## 1. The definition
#
# For an input `x` of shape (N, C, H, W), filters `W` of shape (F, C, k, k) and biases `b` of shape (F,),
#
# $$\text{out}[n, f, y, x] = b[f] + \sum_{c, i, j} W[f, c, i, j]\; x_{\text{pad}}[n, c, y s + i, x s + j]$$
#
# and the output is $H_o = \lfloor (H + 2p - k) / s \rfloor + 1$ pixels high. With $k = 3, p = 1, s = 1$,
# $H_o = H$: "the spatial resolution is preserved after convolution" (Sect. 2.1).

# %%
x = rng.standard_normal((2, 3, 8, 8))
W = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
by_loops = conv2d_forward_loops(x, W, b, stride=1, padding=1)
print("input", x.shape, "-> output", by_loops.shape)
print("output size formula:", output_size(8, 3, 1, 1))
assert by_loops.shape == (2, 4, 8, 8) and output_size(8, 3, 1, 1) == 8

# %% [markdown]
# Four filters make four output channels, and 3×3 with padding 1 keeps the 8×8 size.

# %% [markdown]
# ## 2. im2col: every receptive field becomes a row
#
# `im2col` has one row per output pixel and one column per (c, i, j): the C·3·3 numbers that pixel's
# filter looks at, in the order of `W[f].reshape(-1)`. The loop inside runs over the 9 kernel offsets,
# never over pixels: each offset copies one shifted view of the padded batch.

# %%
matrix = im2col(x, 3, 3, stride=1, padding=1)
print("as a matrix:", matrix.shape, "= (N*Ho*Wo, C*kh*kw)")

# The row of output pixel (n=0, y=0, x=0) holds its 3x3 window, zero padding included:
print("window of the corner pixel, channel 0:\n", matrix[0].reshape(3, 3, 3)[0])
print("the same pixels read from the input:\n", np.pad(x[0, 0], 1)[0:3, 0:3])
corner = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))[:, 0:3, 0:3]  # (c, i, j): channel first
assert matrix.shape == (2 * 8 * 8, 3 * 3 * 3) and np.array_equal(matrix[0], corner.reshape(-1))

# %% [markdown]
# The corner's row is its window, padding zeros in the first row and column, and the whole row equals the
# (C, 3, 3) window flattened channel first: the columns are in (c, i, j) order.

# %% [markdown]
# ## 3. One matrix product
#
# Each filter `W[f]`, flattened, is a row in the same (c, i, j) order, and the whole convolution is
# `matrix @ W.reshape(F, -1).T + b`: exactly what `conv2d_forward` in `backends/reference/conv.py` computes.

# %%
by_product = (matrix @ W.reshape(4, -1).T + b).reshape(2, 8, 8, 4).transpose(0, 3, 1, 2)
print("max |loops - im2col|:", np.abs(by_loops - by_product).max())
reference_out, cache = conv2d_forward(x, W, b, stride=1, padding=1)
engine_out, _ = engine_conv2d_forward(x, W, b, stride=1, padding=1)
print("max |loops - reference|:", np.abs(by_loops - reference_out).max())
print("max |loops - engine|:   ", np.abs(by_loops - engine_out).max())
for other in (by_product, reference_out, engine_out):
    assert np.abs(by_loops - other).max() < 1e-12 * np.abs(by_loops).max()

# %% [markdown]
# The three agree to rounding (about 1e-15 of the outputs, which are of order 1–10 here): one product of the
# unfolded matrix with the filters is the convolution.

# %% [markdown]
# ## The backward pass: the transposed products, and col2im
#
# With the output gradient as a matrix `dout_mat` (one row per output pixel, one column per filter), the
# weight gradient is `dout_mat.T @ cols` and the gradient of the unfolded rows is `dout_mat @ W_mat`;
# `col2im`, the adjoint of `im2col`, adds each row back onto the 3x3 pixels it was copied from (a pixel
# inside the image is in 9 windows, so it gets 9 contributions). The loops compute the same by the chain
# rule, one output at a time.

# %%
dout = rng.standard_normal(by_loops.shape)
dx, dW, db = conv2d_backward(dout, cache)
dx_loops, dW_loops, db_loops = conv2d_backward_loops(dout, x, W, stride=1, padding=1)
print("max |dx loops - dx|:", np.abs(dx - dx_loops).max(), " max |dW loops - dW|:", np.abs(dW - dW_loops).max())
hits = col2im(im2col(np.ones((1, 1, 8, 8)), 3, 3, 1, 1), (1, 1, 8, 8), 3, 3, 1, 1)
print("how many windows each pixel is in (col2im of all ones):\n", hits[0, 0].astype(int))
for ours, loops in ((dx, dx_loops), (dW, dW_loops), (db, db_loops)):
    assert np.abs(ours - loops).max() < 1e-12 * np.abs(loops).max()
assert hits[0, 0, 0, 0] == 4 and hits[0, 0, 0, 3] == 6 and hits[0, 0, 3, 3] == 9

# %% [markdown]
# The backward passes agree too, and col2im of an all-ones matrix counts the windows: 9 inside, 6 along an edge,
# 4 in a corner (the rest of their windows fell on the padding).

# %% [markdown]
# The unfolded matrix, drawn: each row is a receptive field, and neighbouring output pixels share most of
# their inputs, which is why the matrix has 9 shifted copies of the image in it (and why it is 9 times
# larger than the input). Its 27 columns run (c, i, j): the 9 offsets of channel 0, then of channel 1, then 2.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].imshow(x[0, 0], cmap="gray")
axes[0].set_title("input image 0, channel 0 (8x8)")
axes[1].imshow(matrix[:64, :], aspect="auto", cmap="gray")
axes[1].set_title("im2col rows of image 0 (64 pixels x 27)")
axes[1].set_xlabel("column = (c, i, j): 9 offsets of channel 0, then 1, then 2")
axes[1].set_ylabel("row = output pixel")
plt.tight_layout()
plt.show()
assert matrix.size == 9 * x.size
# Column 4 of the channel-0 block is offset (1, 1), the centre: image 0's channel 0 itself, row by row.
assert np.array_equal(matrix[:64, 4], x[0, 0].reshape(-1))

# %% [markdown]
# The matrix holds 9 times as many numbers as the input, and its centre column (offset (1, 1) of channel 0) is
# image 0's channel 0 read row by row: every column is the image, shifted.
#
# ## Why one big product?
#
# A matrix product is the one operation a CPU (and a GPU) runs near its peak: the BLAS library blocks it
# for the caches and vector units. Copying the input 9 times costs memory traffic, but turns the F dot
# products of length C·k² that each output pixel needs (one per filter) into one large, fast GEMM. Time the
# three on a VGG-like layer (64 → 64 channels), with the loops on a much smaller input because they are so slow.

# %% tags=["numbers-vary"]
def seconds(fn, reps=3):
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps

small = rng.standard_normal((1, 8, 16, 16)).astype(np.float32)
W_small = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
b_small = np.zeros(8, np.float32)
t_loops = seconds(lambda: conv2d_forward_loops(small, W_small, b_small, 1, 1), reps=1)
t_im2col = seconds(lambda: conv2d_forward(small, W_small, b_small, 1, 1))
flops = 2 * 8 * 8 * 9 * 16 * 16
print(f"8->8 channels at 16x16: loops {flops / t_loops / 1e9:.3f} GFLOP/s, im2col {flops / t_im2col / 1e9:.2f} GFLOP/s "
      f"({t_loops / t_im2col:.0f}x faster)")

big = rng.standard_normal((2, 64, 56, 56)).astype(np.float32)
W_big = (rng.standard_normal((64, 64, 3, 3)) * 0.01).astype(np.float32)
flops_big = 2 * 2 * 64 * 64 * 9 * 56 * 56
for label, forward in (("reference: im2col + GEMM", conv2d_forward), ("engine (fast_conv.py)", engine_conv2d_forward)):
    t_big = seconds(lambda: forward(big, W_big, np.zeros(64, np.float32), 1, 1))
    print(f"64->64 channels at 56x56, batch 2, {label}: {flops_big / t_big / 1e9:.0f} GFLOP/s")
assert t_loops > 20 * t_im2col

# %% [markdown]
# The loops run at a small fraction of a GFLOP/s; one product is more than twenty times faster on the same
# small layer (the printed numbers are this machine's, and vary with its load).

# %% [markdown]
# ## Shapes through VGG-16
#
# The paper's configuration D applies this to 13 layers. The im2col matrix of each, per image, shows
# where the memory goes: the first layers have few channels but 224² pixels. The NumPy backend's engine
# therefore builds the matrix in chunks that fit the cache (see `CHUNK_BYTES` in
# `backends/numpy/fast_conv.py`), never whole, and runs the chunks on all cores.

# %%
layers = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
          (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28), (512, 512, 14), (512, 512, 14),
          (512, 512, 14)]
print(f"{'layer':>14} {'im2col matrix':>20} {'MB/image':>9} {'GFLOP/image':>12}")
megabytes = []
for c_in, c_out, size in layers:
    rows, columns = size * size, 9 * c_in
    megabytes.append(rows * columns * 4 / 2**20)
    print(f"{c_in:>4}->{c_out:<4}@{size:<3} {f'{rows} x {columns}':>20} {megabytes[-1]:9.1f} "
          f"{2 * rows * columns * c_out / 1e9:12.2f}")
assert len(layers) == sum(cell.startswith("conv") for cell in CONFIGURATIONS["D"]) == 13
assert int(np.argmax(megabytes)) == 1 and megabytes[1] > 100

# %% [markdown]
# The largest matrix belongs to conv1_2 (64 → 64 channels at 224²): over 100 MB per image in float32, which is
# why the engine never builds it whole.
#
# ## Paper to code
#
# The reference convolution the lesson ran, as the library has it (`backends/reference/conv.py`): im2col, one
# product, and the NCHW view of its result.

# %%
print(inspect.getsource(reference_conv.im2col))
print(inspect.getsource(reference_conv.conv2d_forward))

# %% [markdown]
# > **A choice the paper leaves open: convolution or cross-correlation.** The paper says "convolution" and never
# > writes the formula. Signal processing flips the kernel (`W[f, c, k-1-i, k-1-j]`); Caffe, which the authors
# > used, computes the cross-correlation without the flip, and so do PyTorch and minivgg. For learned filters it
# > makes no difference, but weights moved between libraries must agree on it: minivgg reads torchvision's and
# > the authors' Caffe weights unflipped (`minivgg convert`).
# >
# > **Another: the order of im2col's columns.** Any order works if the filters are flattened the same way;
# > minivgg uses (c, i, j), the order of `W[f].reshape(-1)` for weights stored (F, C, k, k) as Caffe and
# > PyTorch store them. The Numba kernels of lesson 8b walk (i, j, c) instead, for their memory layout.
#
# ## Exercises
#
# Fill in the two functions below (the cells run as they are: a function that still raises
# `NotImplementedError` is reported as not attempted). Each check compares your function with the library's on
# six or four random cases (shapes, strides, paddings, float32 and float64) and, when it differs, says what is
# wrong; call `.hint()` on the result for a more specific hint.
#
# **1. The definition.** `conv_forward_naive(x, W, b, stride, padding)`: nested loops over images, filters and
# output pixels, the formula of section 1.

# %%
def conv_forward_naive(x, W, b, stride, padding):
    """x (N, C, H, W), W (F, C, k, k), b (F,) -> out (N, F, Ho, Wo), of x's dtype."""
    raise NotImplementedError  # your code here


exercises.check_conv_forward(conv_forward_naive)

# %% [markdown]
# **2. im2col.** `my_im2col(x, kh, kw, stride, padding)` returns the (N·Ho·Wo, C·kh·kw) matrix of section 2, rows
# in (n, y, x) order, columns in (c, i, j) order.

# %%
def my_im2col(x, kh, kw, stride, padding):
    """x (N, C, H, W) -> (N * Ho * Wo, C * kh * kw)."""
    raise NotImplementedError  # your code here


exercises.check_im2col(my_im2col)

# %% [markdown]
# **3. On paper.** Replace each `None` by your answer and run the cell; the answers are computed by the library
# when you check, and written nowhere.

# %%
exercises.check_answers(
    output_side=None,     # a 7x7 convolution, stride 2, padding 3, on a 224x224 image: output width?
    im2col_shape=None,    # VGG-16's conv1_1 on one 224x224 RGB image: (rows, columns) of its im2col matrix?
    dot_products=None,    # D's conv3_1, per output pixel: (how many dot products, length of each)?
    im2col_growth=None,   # 3x3, stride 1, padding 1: how many times more numbers in im2col than in the input?
)
