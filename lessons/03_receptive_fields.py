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
# # Lesson 3: receptive fields, or why a stack of 3×3 layers
#
# VGG's one architectural idea is to use "very small (3×3) receptive fields throughout the whole net"
# (Sect. 2.3) where earlier nets used 11×11 or 7×7 filters in their first layers. The paper's argument:
#
# > a stack of two 3×3 conv. layers (without spatial pooling in between) has an effective receptive field
# > of 5×5; three such layers have a 7×7 effective receptive field. So what have we gained by using [...] a
# > stack of three 3×3 conv. layers instead of a single 7×7 layer? First, we incorporate three non-linear
# > rectification layers instead of a single one [...]. Second, we decrease the number of parameters.
#
# This lesson checks both claims twice: with the arithmetic that `minivgg.receptive_field` and
# `model.summary()` use, and empirically, by back-propagating from one output unit of a randomly
# initialised net and looking at which input pixels the gradient reaches.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minivgg.layers import Conv2d, ReLU, Sequential
from minivgg.models import CONFIGURATIONS, layer_specs, vgg
from minivgg.receptive_field import measure_receptive_field, stack_receptive_field, support_extent
from minivgg.summary import summarise

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The arithmetic
#
# A unit of a layer sees a window of the layer below; that window's units each see a window of the layer
# below them, and so on down to the pixels. Three numbers per layer are enough to follow this:
# the field's `size`, the `jump` (how many pixels apart neighbouring units are: the product of the strides
# below) and the `start` (the centre of the first unit's field). A layer with kernel $k$, stride $s$ and
# padding $p$ updates them as
#
# $$\text{size}' = \text{size} + (k-1)\,\text{jump}, \qquad \text{jump}' = s\,\text{jump}, \qquad
# \text{start}' = \text{start} + \left(\tfrac{k-1}{2} - p\right)\text{jump}.$$
#
# With stride 1 the jump stays 1, so every 3×3 layer adds 2 pixels: 3, 5, 7, ...

# %%
for depth in range(1, 6):
    field = stack_receptive_field([3] * depth)
    print(f"{depth} stacked 3x3 layer(s): receptive field {field.size}x{field.size}")
print("one 5x5 layer:", stack_receptive_field([5]).size, "  one 7x7 layer:", stack_receptive_field([7]).size)

# %% [markdown]
# ## 2. The same, measured
#
# Build stacks of 1, 2 and 3 conv+ReLU layers with random weights, push random images through, and
# back-propagate a gradient of 1 from the centre unit of the output. The input pixels whose gradient is
# non-zero are the ones that unit can see. (`measure_receptive_field` unites the supports of several random
# inputs: a ReLU that happens to be off hides part of the field from any single one.)

# %%
def conv_stack(depth, kernel=3, channels=8):
    layers = []
    for i in range(depth):
        layers += [Conv2d(3 if i == 0 else channels, channels, kernel, padding=kernel // 2, rng=rng,
                          weight_init="glorot", dtype=np.float64), ReLU()]
    return Sequential(*layers)


fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (depth, kernel) in zip(axes, [(1, 3), (2, 3), (3, 3), (1, 7)]):
    support, magnitude = measure_receptive_field(conv_stack(depth, kernel), input_size=15, trials=8, rng=1)
    ax.imshow(magnitude, cmap="magma")
    ax.set_title(f"{depth} x {kernel}x{kernel}: sees {support_extent(support)[0]}x{support_extent(support)[1]}")
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle("mean |gradient| at the input, from the centre output unit")
plt.tight_layout()
plt.show()

# %% [markdown]
# Three 3×3 layers and one 7×7 layer see the same 7×7 window. Notice also the shading: the stack does not
# weigh its window evenly. The centre pixel reaches the output along many paths, a corner pixel along one,
# so the gradient is concentrated in the middle (what Luo et al., 2016, call the *effective* receptive
# field). The single 7×7 layer has no such bias.

# %% [markdown]
# ## 3. The parameter argument
#
# With $C$ channels in and out, three 3×3 layers have $3 \cdot (3^2 C^2) = 27C^2$ weights; one 7×7 layer
# has $7^2 C^2 = 49C^2$: "81% more". Counting the weights of actual layers:

# %%
channels = [64, 128, 256, 512]
stack = [sum(Conv2d(c, c, 3, padding=1, rng=0, weight_init="glorot").params["W"].size for _ in range(3))
         for c in channels]
single = [Conv2d(c, c, 7, padding=3, rng=0, weight_init="glorot").params["W"].size for c in channels]
for c, a, b in zip(channels, stack, single):
    print(f"C = {c:3d}: three 3x3 {a:>10,} = {a // c**2}C^2   one 7x7 {b:>10,} = {b // c**2}C^2   "
          f"{100 * (b / a - 1):.0f}% more")

x = np.arange(len(channels))
plt.figure(figsize=(6, 3.5))
plt.bar(x - 0.2, np.array(stack) / 1e6, 0.4, label="three 3x3 layers (27 C²)")
plt.bar(x + 0.2, np.array(single) / 1e6, 0.4, label="one 7x7 layer (49 C²)")
plt.xticks(x, [f"C={c}" for c in channels])
plt.ylabel("weights (millions)")
plt.title("same 7x7 receptive field, different cost")
plt.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. What 1×1 layers add: configuration C
#
# Configuration C puts a 1×1 convolution at the end of blocks 3, 4 and 5. Its receptive field is one pixel
# of the layer below, so it leaves the field unchanged; what it adds is a ReLU: "a way to increase the
# non-linearity of the decision function without affecting the receptive fields" (Sect. 2.3). D replaces
# those 1×1 layers with 3×3 ones, which also widen the field, and the paper finds D better than C: spatial
# context matters, not only depth.

# %%
for config in ("B", "C", "D"):
    rows = [r for r in summarise(layer_specs(config), 224) if r.label.startswith("conv")]
    print(f"{config}: " + "  ".join(f"{r.label}:{r.receptive_field.size}" for r in rows[4:]))

# %% [markdown]
# ## 5. Every layer of A–E, from the arithmetic in `summary()`
#
# `model.summary()` (and `minivgg info D` on the command line) prints these numbers for any configuration.
# Below, the receptive field after each conv layer of every configuration. Pooling doubles the jump, so
# after it each 3×3 layer adds twice as much: 2 pixels per layer in block 1, 4 in block 2, ..., 32 in
# block 5.

# %%
plt.figure(figsize=(8, 4.5))
for config in CONFIGURATIONS:
    rows = [r for r in summarise(layer_specs(config), 224) if r.label.startswith("conv")]
    plt.plot(range(1, len(rows) + 1), [r.receptive_field.size for r in rows], "o-", label=config, markersize=4)
plt.axhline(224, color="gray", linestyle=":", label="224 (the training crop)")
plt.xlabel("conv layer")
plt.ylabel("receptive field (pixels)")
plt.title("receptive field of each conv layer")
plt.legend(ncol=2)
plt.tight_layout()
plt.show()

print(f"{'config':>9} {'last conv':>10} {'after pool5':>12} {'FC1 (as a 7x7 conv)':>20}")
for config in CONFIGURATIONS:
    rows = summarise(layer_specs(config), 224)
    last_conv = [r for r in rows if r.label.startswith("conv")][-1]
    pool5 = [r for r in rows if r.label == "maxpool"][-1]
    fc1 = [r for r in rows if r.label.startswith("FC")][0]
    print(f"{config:>9} {last_conv.receptive_field.size:>10} {pool5.receptive_field.size:>12} "
          f"{fc1.receptive_field.size:>20}")

# %% [markdown]
# (A-LRN's line lies under A's: LRN does not change the field.) E's last conv units see 252×252 pixels,
# more than the 224×224 crop itself (the surplus falls on zero padding), and FC1 sees everything. That is
# also why dense evaluation (Sect. 3.2) gives the net more context than a crop: on a whole image, that
# padding is filled by the neighbouring pixels.
#
# The shallow net of Sect. 4.1 (B-shallow) reaches the same fields as B with one 5×5 layer per pair of 3×3
# layers, and the paper measured it 7% worse in top-1 error: same field, fewer non-linearities.

# %% [markdown]
# ## 6. The same, measured on a VGG
#
# Now the measurement on configuration D itself: a sixteenth of the channels (the receptive field does not
# depend on them), random Glorot weights, and gradients back-propagated from the centre unit after each
# pooling layer. The white square is the arithmetic's prediction.

# %%
net = vgg("D", width_multiplier=1 / 16, fc_width=8, num_classes=2, input_size=32, seed=0, weight_init="glorot",
          dtype=np.float64)
rows = summarise(net.specs, 32)
pools = [i for i, spec in enumerate(net.specs) if spec.label == "maxpool"]
fig, axes = plt.subplots(1, 5, figsize=(16, 3.6))
for ax, (block, index) in zip(axes, enumerate(pools, start=1)):
    predicted = rows[index].receptive_field.size
    size = 32 * ((predicted + 40) // 32 + 1)
    support, magnitude = measure_receptive_field(net.features[:index + 1], size, trials=4, rng=block)
    measured = support_extent(support)
    ax.imshow(np.log10(magnitude + 1e-12), cmap="magma", vmin=np.log10(magnitude.max()) - 6)
    rows_, cols_ = np.nonzero(support)
    centre = (rows_.min() + rows_.max()) / 2, (cols_.min() + cols_.max()) / 2
    half = predicted / 2
    ax.add_patch(plt.Rectangle((centre[1] - half, centre[0] - half), predicted, predicted, fill=False,
                               edgecolor="white", linewidth=1))
    ax.set_title(f"after pool{block}: predicted {predicted}, measured {measured[0]}", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle("configuration D: log10 mean |gradient| at the input, from the centre unit")
plt.tight_layout()
plt.show()

# %% [markdown]
# Measured and predicted agree exactly. The log scale hides how peaked the picture really is: the gradient
# of the outermost pixels is many orders of magnitude below the centre's. Twelve 3×3 layers *can* see
# 212×212 pixels, but most of what a unit responds to comes from the middle of that window.
