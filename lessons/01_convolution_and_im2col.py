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
# Every weight layer of VGG (Table 1 of the paper) is a convolution: 3×3 filters, stride 1, padding 1.
# This lesson computes one convolution three ways and shows why minivgg uses the third:
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

from minivgg.backends.numpy import conv2d_forward as engine_conv2d_forward  # what the NumPy backend exports
from minivgg.backends.reference.conv import col2im, conv2d_backward, conv2d_forward, im2col
from minivgg.backends.reference.loops import conv2d_backward_loops, conv2d_forward_loops
from minivgg.backends.shapes import output_size

rng = np.random.default_rng(0)

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

# %% [markdown]
# The unfolded matrix, drawn: each row is a receptive field, and neighbouring output pixels share most of
# their inputs, which is why the matrix has 9 shifted copies of the image in it (and why it is 9 times
# larger than the input).

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].imshow(x[0, 0], cmap="gray")
axes[0].set_title("input image 0, channel 0 (8x8)")
axes[1].imshow(matrix[:64, :], aspect="auto", cmap="gray")
axes[1].set_title("im2col rows of image 0 (64 pixels x 27)")
axes[1].set_xlabel("column = (i, j, c)")
axes[1].set_ylabel("row = output pixel")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Why one big product?
#
# A matrix product is the one operation a CPU (and a GPU) runs near its peak: the BLAS library blocks it
# for the caches and vector units. Copying the input 9 times costs memory traffic, but turns
# ~C·k² tiny dot products per pixel into one large, fast GEMM. Time the three on a VGG-like layer
# (64 → 64 channels), with the loops on a much smaller input because they are so slow.

# %%
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
for c_in, c_out, size in layers:
    rows, columns = size * size, 9 * c_in
    print(f"{c_in:>4}->{c_out:<4}@{size:<3} {f'{rows} x {columns}':>20} {rows * columns * 4 / 2**20:9.1f} "
          f"{2 * rows * columns * c_out / 1e9:12.2f}")
