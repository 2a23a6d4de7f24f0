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
# whose error shrinks like $h^2$. Checks run in float64, where a right backward agrees to about 1e-10.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minivgg
from minivgg import gradcheck
from minivgg.backends.reference import pool
from minivgg.backends.reference.loops import max_pool2d_backward_loops
from minivgg.layers import (Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential,
                            SoftmaxCrossEntropyLoss)

rng = np.random.default_rng(0)
# The layers below run on the readable reference: one short file per op pair in backends/reference/ (conv.py,
# pool.py, lrn.py, activation.py, linear.py, loss.py), the functions every backend starts from.
minivgg.set_backend("reference")

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
print("ReLU:", gradcheck.check_layer(ReLU(), x))

# %% [markdown]
# ## Fully-connected
#
# $y = x W^T + b$. Then $dx = \text{dout}\, W$, $dW = \text{dout}^T x$, $db = \sum_n \text{dout}_n$.

# %%
fc = Linear(6, 4, rng=rng, dtype=np.float64)
print("Linear:", gradcheck.check_layer(fc, rng.standard_normal((5, 6))))

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

# %% [markdown]
# ## Max-pooling
#
# Only the maximum of each window reaches the output, so only it gets gradient: the backward routes `dout`
# to the arg-max, remembered in the forward. On a tie the first maximum (row-major) takes it all; a
# finite-difference check at a tie would be meaningless (the function has a kink there), so we draw
# distinct values.

# %%
distinct = rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) / 10.0
print("MaxPool2d(2, 2):", gradcheck.check_layer(MaxPool2d(2, 2), distinct))
print("MaxPool2d(3, 2), overlapping:", gradcheck.check_layer(MaxPool2d(3, 2), distinct))

# The arg-max mask of backends/reference/pool.py (index i * k + j of the winner in its window), and its
# backward against the naive loop of backends/reference/loops.py, which looks each window's winner up again.
out, cache = pool.max_pool2d_forward(distinct, 2, 2)
print("winning offset of each window, image 0, channel 0:\n", cache.argmax[0, :, :, 0])
dout = rng.standard_normal(out.shape)
print("max |pool.py - loops|:", np.abs(pool.max_pool2d_backward(dout, cache)
                                       - max_pool2d_backward_loops(dout, distinct, 2, 2)).max())

# %% [markdown]
# ## Local Response Normalisation
#
# $y_c = x_c\, s_c^{-\beta}$ with $s_c = k + \alpha \sum_{c' \in N(c)} x_{c'}^2$. Each $x_j$ enters its own
# output directly and every $s_c$ whose window contains $j$:
#
# $$dx_j = \text{dout}_j\, s_j^{-\beta} - 2\alpha\beta\, x_j \sum_{c:\, j \in N(c)} \text{dout}_c\, y_c / s_c$$

# %%
print("LRN:", gradcheck.check_layer(LocalResponseNorm(size=5, alpha=0.5, k=1.0), rng.standard_normal((2, 7, 3, 3))))

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
print("softmax loss:", gradcheck.relative_error(loss.backward(), numeric))

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

# %% [markdown]
# ## Choosing the step h
#
# Too large a step and the $h^2$ truncation error dominates; too small and floating-point cancellation in
# $f(a + h) - f(a - h)$ does. In float64 the sweet spot is around $10^{-5}$; in float32 no step gets close,
# which is why gradient checks run in float64.

# %%
conv = Conv2d(2, 2, 3, padding=1, rng=rng, dtype=np.float64)
x = rng.standard_normal((1, 2, 4, 4))
steps = np.logspace(-10, -1, 10)
errors_by_step = []
for h in steps:
    errors_by_step.append(gradcheck.check_layer(conv, x, h=h)["x"])
plt.loglog(steps, errors_by_step, "o-")
plt.xlabel("finite-difference step h")
plt.ylabel("relative error of dx")
plt.title("Central differences on a 3x3 convolution (float64)")
plt.grid(True, which="both", alpha=0.3)
plt.show()
