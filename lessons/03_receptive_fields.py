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
import inspect

import matplotlib.pyplot as plt
import numpy as np

from minivgg import receptive_field
from minivgg.exercises import receptive_fields as exercises
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
assert [stack_receptive_field([3] * depth).size for depth in range(1, 6)] == [3, 5, 7, 9, 11]
assert stack_receptive_field([3, 3]).size == stack_receptive_field([5]).size
assert stack_receptive_field([3, 3, 3]).size == stack_receptive_field([7]).size

# %% [markdown]
# Two 3×3 layers see 5×5 and three see 7×7, the fields of a single 5×5 and a single 7×7 layer: the paper's
# first claim, from the arithmetic.

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
measured = {}
for ax, (depth, kernel) in zip(axes, [(1, 3), (2, 3), (3, 3), (1, 7)]):
    support, magnitude = measure_receptive_field(conv_stack(depth, kernel), input_size=15, trials=8, rng=1)
    measured[depth, kernel] = support_extent(support), magnitude
    ax.imshow(magnitude, cmap="magma")
    ax.set_title(f"{depth} x {kernel}x{kernel}: sees {support_extent(support)[0]}x{support_extent(support)[1]}")
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle("mean |gradient| at the input, from the centre output unit")
plt.tight_layout()
plt.show()


def centre_over_corner(magnitude, size=7):
    """Mean |gradient| at the centre pixel over the mean at the four corners of the centred size x size window."""
    c, h = magnitude.shape[0] // 2, size // 2
    corners = [magnitude[c + dy, c + dx] for dy in (-h, h) for dx in (-h, h)]
    return magnitude[c, c] / np.mean(corners)


assert [measured[key][0] for key in [(1, 3), (2, 3), (3, 3), (1, 7)]] == [(3, 3), (5, 5), (7, 7), (7, 7)]
stack_ratio, single_ratio = centre_over_corner(measured[3, 3][1]), centre_over_corner(measured[1, 7][1])
print(f"centre / corner of the 7x7 window: three 3x3 layers {stack_ratio:.0f}, one 7x7 layer {single_ratio:.1f}")
assert stack_ratio > 5 and single_ratio < 3

# %% [markdown]
# Three 3×3 layers and one 7×7 layer see the same 7×7 window. Notice also the shading: the stack does not
# weigh its window evenly. The centre pixel reaches the output along many paths, a corner pixel along one,
# so the gradient is concentrated in the middle (what Luo et al., 2016, call the *effective* receptive
# field): here the centre gets more than five times a corner's gradient. The single 7×7 layer has no such bias:
# its centre and corners differ only by the random weights, by less than a factor of three.

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
    assert a == 27 * c * c and b == 49 * c * c and round(100 * (b / a - 1)) == 81

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
# At every width the single 7×7 layer has 81% more weights than the stack of three 3×3 layers: the paper's
# second claim, exactly 49/27.
#
# ## 4. What 1×1 layers add: configuration C
#
# Configuration C puts a 1×1 convolution at the end of blocks 3, 4 and 5. Its receptive field is one pixel
# of the layer below, so it leaves the field unchanged; what it adds is a ReLU: "a way to increase the
# non-linearity of the decision function without affecting the receptive fields" (Sect. 2.3). D replaces
# those 1×1 layers with 3×3 ones, which also widen the field, and the paper finds D better than C: spatial
# context matters, not only depth.

# %%
fields = {}
for config in ("B", "C", "D"):
    rows = [r for r in summarise(layer_specs(config), 224) if r.label.startswith("conv")]
    fields[config] = [(r.label, r.receptive_field.size) for r in rows]
    print(f"{config}: " + "  ".join(f"{r.label}:{r.receptive_field.size}" for r in rows[4:]))
for (label, size), (_, before) in zip(fields["C"][1:], fields["C"]):
    assert (size == before) == label.startswith("conv1-")  # a 1x1 layer, and only it, leaves the field as it is
assert fields["C"][-1][1] == fields["B"][-1][1] < fields["D"][-1][1]

# %% [markdown]
# Each of C's `conv1` layers has the field of the layer below it, and every other layer widens it: C's last
# layer sees exactly what B's does (140 pixels), D's, with 3×3 layers in those places, 196.

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
d_rows = summarise(layer_specs("D"), 224)
growth_per_block, block, previous = {}, 1, 1
for row in d_rows:
    if row.label.startswith("conv"):
        growth_per_block.setdefault(block, set()).add(row.receptive_field.size - previous)
    if row.label == "maxpool":
        block += 1
    previous = row.receptive_field.size
print("what each 3x3 layer of D adds, block by block:", growth_per_block)
assert growth_per_block == {1: {2}, 2: {4}, 3: {8}, 4: {16}, 5: {32}}

# %% [markdown]
# The curves climb faster block after block: each 3×3 layer of D adds 2 pixels in block 1, 4 in block 2, 8, 16
# and 32 in block 5, as the jump doubles at every pooling.

# %%
print(f"{'config':>9} {'last conv':>10} {'after pool5':>12} {'FC1 (as a 7x7 conv)':>20}")
table = {}
for config in CONFIGURATIONS:
    rows = summarise(layer_specs(config), 224)
    last_conv = [r for r in rows if r.label.startswith("conv")][-1]
    pool5 = [r for r in rows if r.label == "maxpool"][-1]
    fc1 = [r for r in rows if r.label.startswith("FC")][0]
    table[config] = (last_conv.receptive_field.size, pool5.receptive_field.size, fc1.receptive_field.size)
    print(f"{config:>9} {last_conv.receptive_field.size:>10} {pool5.receptive_field.size:>12} "
          f"{fc1.receptive_field.size:>20}")
assert table["A-LRN"] == table["A"] and table["B-shallow"] == table["B"]
assert table["E"][0] == 252 and all(fc1 > 224 for _, _, fc1 in table.values())

# %% [markdown]
# (A-LRN's line lies under A's: LRN does not change the field.) E's last conv units see 252×252 pixels,
# more than the 224×224 crop itself (the surplus falls on zero padding), and FC1's field, over 224 in every
# configuration, covers the whole crop. That is
# also why dense evaluation (Sect. 3.2) gives the net more context than a crop: on a whole image, that
# padding is filled by the neighbouring pixels.
#
# The shallow net of Sect. 4.1 (B-shallow) reaches the same fields as B (the table's two rows are equal) with one
# 5×5 layer per pair of 3×3 layers, and the paper measured it 7% worse in top-1 error: same field, fewer
# non-linearities.

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
agreement = []
for ax, (block, index) in zip(axes, enumerate(pools, start=1)):
    predicted = rows[index].receptive_field.size
    size = 32 * ((predicted + 40) // 32 + 1)
    support, magnitude = measure_receptive_field(net.features[:index + 1], size, trials=4, rng=block)
    measured = support_extent(support)
    agreement.append((predicted, measured))
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
assert all(measured == (predicted, predicted) for predicted, measured in agreement)
full_rows = summarise(layer_specs("D"), 224)
conv5_3 = [r for r in full_rows if r.label.startswith("conv")][-1]
pool5 = [r for r in full_rows if r.label == "maxpool"][-1]
assert sum(r.label.startswith("conv") for r in full_rows) == 13
assert conv5_3.receptive_field.size == 196 and pool5.receptive_field.size == 212 == agreement[-1][0]
centre = magnitude[magnitude.shape[0] // 2, magnitude.shape[1] // 2]
edge = magnitude[support].min()
print(f"after pool5: the weakest pixel of the field gets {edge / magnitude.max():.0e} of the strongest's gradient")
assert edge < 1e-4 * magnitude.max()

# %% [markdown]
# Measured and predicted agree exactly, after every pooling. The log scale hides how peaked the picture really
# is: after pool5 the weakest pixel of the field gets less than 1e-4 of the strongest's gradient. D's 13 3×3
# layers and 5 poolings *can* see 212×212 pixels after pool5 (conv5_3's units, before it, see 196×196), but most
# of what a unit responds to comes from the middle of that window.
#
# ## Paper to code
#
# The recursion of section 1 and the stack of section 2, as `minivgg/receptive_field.py` has them (the summary
# walks every configuration with `ReceptiveField.after`):

# %%
print(inspect.getsource(receptive_field.ReceptiveField))
print(inspect.getsource(receptive_field.stack_receptive_field))

# %% [markdown]
# > **A choice the paper leaves open: floor or ceil pooling.** "Max-pooling is performed over a 2×2 pixel window,
# > with stride 2" says nothing about an odd-sized input. Caffe, the authors' library, rounds the output size up
# > (ceil), so a last row that is half a window still makes an output; PyTorch rounds down (floor) and drops it.
# > minivgg floors, as PyTorch. At 224×224 it never matters (every pooling gets an even side: 224, 112, 56, 28,
# > 14); it matters for dense evaluation at a test scale Q that is not a multiple of 32.

# %%
pool_inputs = [224 // 2 ** block for block in range(5)]
print("sides entering the five poolings at 224:", pool_inputs)
assert all(side % 2 == 0 for side in pool_inputs)

# %% [markdown]
# All five are even, so floor and ceil give the same net at the training size.
#
# ## Exercises
#
# **1. The recursion.** Write `receptive_field_after(size, jump, start, kernel, stride, padding)`, returning the
# `(size, jump, start)` of a layer on top of a layer whose field is `(size, jump, start)`. The check compares it
# with the library's on single layers, then walks every configuration of Table 1 with it.

# %%
def receptive_field_after(size, jump, start, kernel, stride, padding):
    """The (size, jump, start) of a kernel x kernel layer with this stride and padding."""
    raise NotImplementedError  # your code here


exercises.check_receptive_field_after(receptive_field_after)

# %% [markdown]
# **2. On paper** (the library computes the answers when you check them).

# %%
exercises.check_answers(
    E_after_pool4=None,    # configuration E's receptive field after pool4 (its size in pixels)?
    D_conv5_3=None,        # configuration D's conv5_3 units: receptive field?
    D_3x3_layers=None,     # how many 3x3 conv layers has D?
    ratio_7x7=None,        # one 7x7 layer's weights over three 3x3 layers' (C in, C out), two decimals?
    C_1x1_widening=None,   # by how many pixels does C's conv3_3 (1x1) widen the field?
)
