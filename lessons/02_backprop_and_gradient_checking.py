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
# # Lesson 2: back-propagation, layer by layer, and how to check it
#
# Training (Sect. 3.1 of the paper) is "mini-batch gradient descent (based on back-propagation)". Each layer
# of minivgg has a forward pass and a hand-written backward pass: given the gradient of the loss with
# respect to the layer's output, `dout`, it returns the gradient with respect to its input (and its
# parameters). This lesson derives each backward and checks it against **central differences**:
#
# $$\frac{\partial f}{\partial a_i} \approx \frac{f(a + h e_i) - f(a - h e_i)}{2h}$$
#
# whose truncation error shrinks like $h^2$. Checks run in float64, where a right backward agrees to 1e-8 or
# better (every layer below: about 1e-10 or less).

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np

import minivgg
from minivgg import gradcheck
from minivgg.backends.reference import pool
from minivgg.backends.reference.loops import max_pool2d_backward_loops
from minivgg.exercises import backpropagation as exercises
from minivgg.layers import (Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential,
                            SoftmaxCrossEntropyLoss)

rng = np.random.default_rng(0)
# The layers below run on the readable reference: one short file per op pair in backends/reference/ (conv.py,
# pool.py, lrn.py, activation.py, linear.py, loss.py), the functions every backend starts from.
backend = minivgg.set_backend("reference")
print("the layers run on the", backend.name, "backend")

# %% [markdown]
# ## The trick for checking a layer
#
# A layer maps an array to an array, but a gradient check needs a scalar. Pick a fixed random `dout` and use
# $f(x) = \sum \text{forward}(x) \odot \text{dout}$: its gradient with respect to $x$ is exactly
# `backward(dout)`. `gradcheck.check_layer` does this for the input and every parameter.

# %% [markdown]
# ## ReLU
#
# $y = \max(0, x)$, so $\partial y / \partial x$ is 1 where $x > 0$ and 0 elsewhere: `dx = dout * (x > 0)`.

# %%
x = rng.standard_normal((2, 3, 4, 4))
relu_errors = gradcheck.check_layer(ReLU(), x)
print("ReLU:", relu_errors)
assert relu_errors["x"] < 1e-8

# %% [markdown]
# The relative error of `dx` is at the level of rounding: the backward is right. (With probability one, no
# input lies within h of 0, ReLU's kink.)

# %% [markdown]
# ## Fully-connected
#
# $y = x W^T + b$. Then $dx = \text{dout}\, W$, $dW = \text{dout}^T x$, $db = \sum_n \text{dout}_n$.

# %%
fc = Linear(6, 4, rng=rng, dtype=np.float64)
linear_errors = gradcheck.check_layer(fc, rng.standard_normal((5, 6)))
print("Linear:", linear_errors)
assert max(linear_errors.values()) < 1e-8

# %% [markdown]
# All three gradients, of the input, the weights and the biases, agree with central differences.

# %% [markdown]
# ## Convolution
#
# With im2col (lesson 1) the forward is a matrix product, `out = cols @ W_mat + b`, so the backward is
# the linear layer's: $dW_{mat} = \text{cols}^T\, \text{dout}$ and $d\text{cols} = \text{dout}\, W_{mat}^T$.
# Then **col2im** adds each row of $d\text{cols}$ back onto the input pixels it was copied from: a pixel in
# nine windows receives nine contributions. Borders (padding) and strides are where hand-written
# backwards usually go wrong, so check those cases.

# %%
for kernel, stride, padding, shape in [(3, 1, 1, (2, 3, 5, 7)), (3, 2, 1, (1, 3, 7, 6)), (1, 1, 0, (2, 4, 3, 3)),
                                       (7, 1, 0, (1, 2, 7, 7))]:
    conv = Conv2d(shape[1], 3, kernel, stride, padding, rng=rng, dtype=np.float64)
    errors = gradcheck.check_layer(conv, rng.standard_normal(shape))
    print(f"{conv!r:55} " + ", ".join(f"{k}: {v:.1e}" for k, v in errors.items()))
    assert max(errors.values()) < 1e-10

# %% [markdown]
# Every case, strides and paddings included, agrees to 1e-10 or better.

# %% [markdown]
# ## Max-pooling
#
# Only the maximum of each window reaches the output, so only it gets gradient: the backward routes `dout`
# to the arg-max, remembered in the forward. On a tie the first maximum (row-major) takes it all; a
# finite-difference check at a tie would be meaningless (the function has a kink there), so we draw
# distinct values.

# %%
distinct = rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) / 10.0
pool_errors = {"2x2": gradcheck.check_layer(MaxPool2d(2, 2), distinct)["x"],
               "3x3, overlapping": gradcheck.check_layer(MaxPool2d(3, 2), distinct)["x"]}
print("MaxPool2d:", pool_errors)
assert max(pool_errors.values()) < 1e-8

# The arg-max mask of backends/reference/pool.py (index i * k + j of the winner in its window), and its
# backward against the naive loop of backends/reference/loops.py, which looks each window's winner up again.
out, cache = pool.max_pool2d_forward(distinct, 2, 2)
print("winning offset of each window, image 0, channel 0:\n", cache.argmax[0, :, :, 0])
dout = rng.standard_normal(out.shape)
difference = np.abs(pool.max_pool2d_backward(dout, cache) - max_pool2d_backward_loops(dout, distinct, 2, 2)).max()
print("max |pool.py - loops|:", difference)
assert difference == 0

# %% [markdown]
# Both poolings pass the check; the mask holds one offset in 0..3 per window, and the vectorised backward equals
# the loop's exactly (it only moves numbers).
#
# A tie, where the rule matters, on one window of four zeros (a ReLU makes such windows):

# %%
tied = np.zeros((1, 1, 2, 2))
out, cache = pool.max_pool2d_forward(tied, 2, 2)
routed = pool.max_pool2d_backward(np.ones((1, 1, 1, 1)), cache)
print("gradient of a window of four equal values:\n", routed[0, 0])
assert routed[0, 0, 0, 0] == 1 and routed.sum() == 1

# %% [markdown]
# The whole gradient goes to the first maximum, the top-left pixel; the others get none.

# %% [markdown]
# ## Local Response Normalisation
#
# $y_c = x_c\, s_c^{-\beta}$ with $s_c = k + \alpha \sum_{c' \in N(c)} x_{c'}^2$. Each $x_j$ enters its own
# output directly and every $s_c$ whose window contains $j$:
#
# $$dx_j = \text{dout}_j\, s_j^{-\beta} - 2\alpha\beta\, x_j \sum_{c:\, j \in N(c)} \text{dout}_c\, y_c / s_c$$

# %%
lrn_errors = gradcheck.check_layer(LocalResponseNorm(size=5, alpha=0.5, k=1.0), rng.standard_normal((2, 7, 3, 3)))
print("LRN:", lrn_errors)
assert lrn_errors["x"] < 1e-8

# %% [markdown]
# LRN's backward, cross-channel term included, passes (α = 0.5 makes that term large enough to matter; the
# paper's 1e-4 on inputs of size 1 would hide a mistake in it).

# %% [markdown]
# ## Soft-max cross-entropy
#
# For scores $s$ and true class $t$, $L = \log \sum_k e^{s_k} - s_t$ and $\partial L / \partial s_k =
# \text{softmax}(s)_k - [k = t]$, divided by the batch size for the mean.

# %%
loss = SoftmaxCrossEntropyLoss()
scores, labels = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
numeric = gradcheck.numerical_gradient(lambda: loss.forward(scores, labels), scores)
loss.forward(scores, labels)
softmax_error = gradcheck.relative_error(loss.backward(), numeric)
print("softmax loss:", softmax_error)
assert softmax_error < 1e-8

# %% [markdown]
# The loss layer's gradient, soft-max minus the one-hot target over the batch size, agrees too.

# %% [markdown]
# ## A whole small VGG-like net, end to end
#
# The chain rule composes the layers' backwards; the whole-net check catches a layer that is right alone
# but wired wrongly. Dropout draws a new mask each forward, so for the check we fix its mask.

# %%
init = dict(rng=rng, dtype=np.float64, weight_init="glorot")
net = Sequential(Conv2d(3, 4, 3, padding=1, **init), ReLU(), MaxPool2d(),
                 Conv2d(4, 4, 3, padding=1, **init), ReLU(), MaxPool2d(),
                 Flatten(), Linear(16, 8, **init), ReLU(), Dropout(0.5), Linear(8, 3, **init))
net[9].fixed_mask = rng.random((2, 8)) > 0.5
errors = gradcheck.check_model(net, SoftmaxCrossEntropyLoss(), rng.standard_normal((2, 3, 8, 8)), np.array([1, 2]))
for name, error in errors.items():
    print(f"{name:>5}: {error:.1e}")
assert max(errors.values()) < 1e-8

# %% [markdown]
# Every parameter of the whole net, and its input, agree with central differences through the loss.
#
# ## Choosing the step h
#
# Central differences make two errors. **Truncation**: the Taylor terms of order $h^3$ do not cancel, so the
# quotient is off by about $h^2 |f^{(3)}(a)| / 6$. **Rounding**: $f(a + h)$ and $f(a - h)$ are each rounded to
# about $\varepsilon |f|$ ($\varepsilon \approx 10^{-16}$ in float64), and dividing their difference by $2h$ makes
# that about $\varepsilon |f| / h$. For a nonlinear layer the sum has a V shape, smallest near
# $h \approx \varepsilon^{1/3} \approx 10^{-5}$. A convolution is *linear* in its input: $f(x + h e) - f(x - h e)$
# is exactly $2h\, \partial f / \partial x$ for every $h$, so it has no truncation error at all, and its error
# keeps falling as $h$ grows. Both, measured on the input gradient:

# %%
conv = Conv2d(2, 2, 3, padding=1, rng=rng, dtype=np.float64)
lrn = LocalResponseNorm(size=3, alpha=0.5, k=1.0)
x = rng.standard_normal((1, 2, 4, 4))
x_lrn = rng.standard_normal((1, 3, 2, 2))
steps = np.logspace(-10, -1, 10)
conv_by_step = np.array([gradcheck.check_layer(conv, x, h=h)["x"] for h in steps])
lrn_by_step = np.array([gradcheck.check_layer(lrn, x_lrn, h=h)["x"] for h in steps])
plt.loglog(steps, conv_by_step, "o-", label="3x3 convolution (linear in x)")
plt.loglog(steps, lrn_by_step, "s-", label="LRN (nonlinear)")
plt.xlabel("finite-difference step h")
plt.ylabel("relative error of dx")
plt.title("Central differences in float64")
plt.grid(True, which="both", alpha=0.3)
plt.legend()
plt.show()
best = steps[np.argmin(lrn_by_step)]
print(f"convolution: error {conv_by_step[0]:.1e} at h = 1e-10, {conv_by_step[-1]:.1e} at h = 0.1")
print(f"LRN: smallest error {lrn_by_step.min():.1e} at h = {best:.0e}; {lrn_by_step[-1]:.1e} at h = 0.1")
assert conv_by_step[-1] < 1e-12 and conv_by_step[0] > 1e3 * conv_by_step[-1]  # no truncation error: falls with h
assert 1e-7 <= best <= 1e-4 and lrn_by_step[-1] > 1e4 * lrn_by_step.min() and lrn_by_step[0] > 10 * lrn_by_step.min()

# %% [markdown]
# The convolution's error falls steadily as h grows, to rounding level at h = 0.1: no truncation error, as its
# linearity promised. LRN shows the V: rounding on the left, truncation on the right, the minimum near $10^{-5}$,
# where `numerical_gradient`'s default step sits. In float32, $\varepsilon \approx 10^{-7}$: by the same arithmetic
# the best step would be near $\varepsilon^{1/3} \approx 5 \cdot 10^{-3}$ with both errors near
# $\varepsilon^{2/3} \approx 10^{-5}$, too coarse to tell a small mistake from rounding. Gradient checks run in
# float64 (`numerical_gradient` refuses anything else).
#
# ## Paper to code
#
# The gradient check the lesson used, as the library has it (`minivgg/gradcheck.py`):

# %%
print(inspect.getsource(gradcheck.numerical_gradient))
print(inspect.getsource(gradcheck.check_layer))

# %% [markdown]
# > **A choice the paper leaves open: max-pooling's ties.** The paper does not say which input of a tied window
# > gets the gradient. minivgg gives all of it to the first maximum in row-major order, as Caffe (the authors'
# > library) does; splitting it among the tied inputs would be another valid subgradient. Ties are common: a
# > window of four ReLU zeros is one.
# >
# > **Another: LRN's α.** The paper uses LRN with Krizhevsky et al.'s parameters (size 5, α = 1e-4, β = 0.75,
# > k = 2) in A-LRN. AlexNet's paper multiplies the window's sum of squares by α; Caffe and PyTorch by α / size.
# > minivgg's default is the AlexNet formula, whose parameters the VGG paper cites; `alpha_divided_by_size=True`
# > reproduces a Caffe or PyTorch model.
#
# ## Exercises
#
# Write the three backward passes below. Each check compares yours with the library's on random inputs
# (shapes, strides, float32 and float64, ties for max-pooling) and then runs a float64 gradient check of it
# against the library's forward. A function that still raises `NotImplementedError` is reported as not
# attempted; `.hint()` on a failed result gives a more specific hint.
#
# **1. col2im**, the adjoint of im2col: `my_col2im(dcols, x_shape, kh, kw, stride, padding)` adds every row of
# `dcols` (columns in (c, i, j) order) back onto the pixels it was copied from, and drops the padding.

# %%
def my_col2im(dcols, x_shape, kh, kw, stride, padding):
    """dcols (N * Ho * Wo, C * kh * kw) -> dx of shape x_shape (N, C, H, W)."""
    raise NotImplementedError  # your code here


exercises.check_col2im(my_col2im)

# %% [markdown]
# **2. Max-pooling's backward**, from the input itself (no cache): each output's gradient goes to the first
# maximum of its window.

# %%
def max_pool_backward(dout, x, kernel_size, stride):
    """dout (N, C, Ho, Wo), x (N, C, H, W) -> dx (N, C, H, W)."""
    raise NotImplementedError  # your code here


exercises.check_max_pool_backward(max_pool_backward)

# %% [markdown]
# **3. LRN's backward**, the formula of the LRN section, with α multiplying the window's sum as it is.

# %%
def lrn_backward(dout, x, size, alpha, beta, k):
    """dout, x (N, C, H, W) -> dx (N, C, H, W)."""
    raise NotImplementedError  # your code here


exercises.check_lrn_backward(lrn_backward)

# %% [markdown]
# **4. On paper.**

# %%
exercises.check_answers(
    forward_passes=None,      # numerical_gradient on weights of shape (4, 3, 3, 3): how many objective evaluations?
    truncation_order=None,    # central differences' truncation error shrinks like h to which power?
    max_pool_share=None,      # 2x2/2 max-pool, no ties: what fraction of input pixels get a non-zero gradient?
    windows_per_pixel=None,   # 3x3/1/1 on 6x6: col2im of all ones at (an interior pixel, a corner)?
)
