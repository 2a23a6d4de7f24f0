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
# # Lesson 4: the six configurations, where the weights are and where the compute is
#
# The paper compares six nets, A to E (Table 1), that "differ only in the depth: from 11 weight layers in
# the network A (8 conv. and 3 FC layers) to 19 weight layers in the network E" (Sect. 2.2). minivgg keeps
# that table as data, `minivgg.models.TABLE_1`, and builds every model from it. This lesson rebuilds
# Tables 1 and 2 from the code, then takes the nets apart block by block: almost all the *parameters* sit
# in the three FC layers, almost all the *computation* in the conv layers.
#
# Everything below is computed from the layer specifications (`layer_specs`) without allocating the
# weights, so it is instant even for the 144-million-parameter E.

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np

from minivgg import summary
from minivgg.exercises import configurations as exercises
from minivgg.exercises.configurations import summary_row
from minivgg.models import CONFIGURATIONS, TABLE_1, layer_specs, num_parameters, vgg
from minivgg.summary import summarise, totals

PAPER = ["A", "A-LRN", "B", "C", "D", "E"]

# %% [markdown]
# ## Table 1, as the code holds it
#
# One column per configuration, rows aligned as in the paper (`-` is an empty cell). The seventh column is
# the shallow net of Sect. 4.1: B with each pair of 3×3 layers replaced by one 5×5 layer.

# %%
print(TABLE_1)

# %% [markdown]
# The builder reads each column top to bottom: `convK-C` is a K×K convolution with C channels and padding
# K // 2 followed by a ReLU, `maxpool` is 2×2 max-pooling with stride 2, `FC-N` a fully-connected layer
# (ReLU and dropout after the first two). Counting the weight layers of each column gives the header of
# Table 1:

# %%
for config in CONFIGURATIONS:
    cells = CONFIGURATIONS[config]
    convs = sum(c.startswith("conv") for c in cells)
    fcs = sum(c.startswith("FC") for c in cells)
    print(f"{config:>9}: {convs + fcs:2d} weight layers ({convs} conv + {fcs} FC)")
weight_layers = {config: sum(c.startswith(("conv", "FC")) for c in cells) for config, cells in CONFIGURATIONS.items()}
assert weight_layers["A"] == 11 and weight_layers["E"] == 19 and weight_layers["D"] == 16

# %% [markdown]
# From 11 weight layers (A: 8 conv + 3 FC) to 19 (E: 16 conv + 3 FC), as the paper's header says; D, VGG-16, has
# 16.

# %% [markdown]
# ## Table 2: number of parameters
#
# The paper rounds to millions; the code counts exactly.

# %%
table_2 = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}
print(f"{'network':>8} {'exact':>13} {'millions':>9} {'Table 2':>8}")
for config in PAPER:
    count = num_parameters(config)
    print(f"{config:>8} {count:>13,} {count / 1e6:>9.1f} {table_2[config]:>8}")
    assert round(count / 1e6) == table_2[config]

# %% [markdown]
# Every exact count rounds to Table 2's number (B's 133.05 million does round to 133). Depth is cheap in
# parameters: going from 11 to 19 layers adds 10.8 million, 8%, because the added layers are 3×3
# convolutions, and the FC layers, which do not change, dominate the count.

# %%
added = num_parameters("E") - num_parameters("A")
print(f"E - A: {added:,} parameters, {added / num_parameters('A'):.1%} of A")
assert round(added / 1e6, 1) == 10.8 and round(100 * added / num_parameters("A")) == 8

# %% [markdown]
# 10.8 million more parameters, 8% of A's.

# %% [markdown]
# ## Parameters and computation per block
#
# Split each net into its five conv blocks (each ends with a max-pool) and the FC part, and add up the
# parameters and multiply-adds (per 224×224 image) of each part, from the same rows `model.summary()`
# prints.

# %%
PARTS = ["block 1", "block 2", "block 3", "block 4", "block 5", "FC"]


def per_part(config, input_size=224, **options):
    rows = summarise(layer_specs(config, input_size=input_size, **options), input_size)
    parameters, macs = np.zeros(len(PARTS)), np.zeros(len(PARTS))
    part = 0
    for row in rows:
        if row.label.startswith("FC"):
            part = 5
        parameters[part] += row.parameters
        macs[part] += row.multiply_adds
        if row.label == "maxpool":
            part += 1
    return parameters, macs


fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
bottom_p, bottom_m = np.zeros(len(PAPER)), np.zeros(len(PAPER))
breakdown = {config: per_part(config) for config in PAPER}
colours = plt.cm.viridis(np.linspace(0, 0.9, len(PARTS)))
for i, (name, colour) in enumerate(zip(PARTS, colours)):
    p = np.array([breakdown[c][0][i] for c in PAPER]) / 1e6
    m = np.array([breakdown[c][1][i] for c in PAPER]) / 1e9
    axes[0].bar(PAPER, p, bottom=bottom_p, color=colour, label=name)
    axes[1].bar(PAPER, m, bottom=bottom_m, color=colour, label=name)
    bottom_p += p
    bottom_m += m
axes[0].set_ylabel("parameters (millions)")
axes[0].set_title("where the weights are")
axes[1].set_ylabel("multiply-adds per image (billions)")
axes[1].set_title("where the compute is")
axes[1].legend(loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# The left bars are almost all FC (the top band), the right ones almost all conv blocks; the numbers:

# %%
print(f"{'':>6}" + "".join(f"{p:>18}" for p in PARTS))
for config in PAPER:
    parameters, macs = breakdown[config]
    print(f"{config:>6}" + "".join(f"{p / 1e6:8.1f}M {m / 1e9:6.2f}G " for p, m in zip(parameters, macs)))
for config in PAPER:
    parameters, macs = breakdown[config]
    print(f"{config}: FC layers hold {100 * parameters[5] / parameters.sum():.0f}% of the parameters and do "
          f"{100 * macs[5] / macs.sum():.1f}% of the multiply-adds")
d_parameters, d_macs = breakdown["D"]
fc6 = summary_row("D", "fc6")
same_width = [summary_row("D", name).multiply_adds for name in ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")]
print(f"fc6: {fc6.parameters / 1e6:.1f}M parameters; the 3x3 layers with C in = C out, blocks 1-5: "
      f"{', '.join(f'{m / 1e9:.2f}G' for m in same_width)}")
assert round(fc6.parameters / 1e6, 1) == 102.8 and 0.7 < fc6.parameters / d_parameters.sum() < 0.8
assert 0.09 < d_parameters[:5].sum() / d_parameters.sum() < 0.12 and d_macs[5] / d_macs.sum() < 0.01
assert round(d_macs.sum() / 1e9, 1) == 15.5 and round(d_macs[:5].sum() / 1e9, 1) == 15.3
assert len(set(same_width[:4])) == 1 and round(same_width[0] / 1e9, 2) == 1.85 and same_width[4] * 4 == same_width[0]
e_parameters, e_macs = breakdown["E"]
assert round(100 * (e_parameters.sum() / d_parameters.sum() - 1)) == 4
assert round(100 * (e_macs.sum() / d_macs.sum() - 1)) == 27

# %% [markdown]
# The split is lopsided both ways. FC1 (fc6) alone, a 25088 × 4096 matrix, has 102.8 million weights: three
# quarters of VGG-16. In VGG-16 the conv layers have about a tenth of the weights but do 99% of the arithmetic,
# because each 3×3 filter is applied at every pixel: VGG-16 costs 15.5 billion multiply-adds (31 GFLOP) per
# image, 15.3 of them in convolutions. (In A, with fewer conv layers, the FC layers' share of the arithmetic is
# 1.6%.) A 3×3 layer with as many channels out as in costs the same 1.85 billion in blocks 1 to 4 (halving the
# resolution quarters the pixels, doubling the channels quadruples the work per pixel); block 5's layers cost a
# quarter of that, because the channels stop doubling at 512.
#
# So the paper adds depth almost for free in parameters (E has 4% more than D) but not in arithmetic (E
# does 27% more per image), and a fast implementation lives or dies by its convolutions.

# %%
print(f"{'network':>8} {'GMACs/image':>12} {'GFLOP/image':>12}")
for config in CONFIGURATIONS:
    _, macs = totals(summarise(layer_specs(config), 224))
    print(f"{config:>8} {macs / 1e9:12.2f} {2 * macs / 1e9:12.1f}")
gmacs = {config: totals(summarise(layer_specs(config), 224))[1] / 1e9 for config in CONFIGURATIONS}
assert gmacs["A"] < gmacs["B"] < gmacs["C"] < gmacs["D"] < gmacs["E"] and gmacs["B-shallow"] < gmacs["B"]

# %% [markdown]
# The cost grows with every added layer, from 7.6 billion multiply-adds for A to 19.6 for E; B-shallow's 5×5
# layers cost less than B's pairs of 3×3 layers, though they see the same field (lesson 3).

# %% [markdown]
# ## Small variants for a CPU
#
# The same table builds nets small enough to train on a laptop: `width_multiplier` scales the conv
# channels, `fc_width` the hidden FC layers, `input_size` the image (and so FC1's input, since five poolings
# divide it by 32), `num_classes` the output. Parameters and compute fall about as the square of the width
# (each conv weight connects two scaled channel counts) and computation about as the square of the input side.

# %%
widths = [1, 1 / 2, 1 / 4, 1 / 8]
sizes = [224, 128, 64, 32]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
scaling = {}
for size in sizes:
    p = [num_parameters("D", input_size=size, width_multiplier=w, fc_width=int(4096 * w)) for w in widths]
    m = [totals(summarise(layer_specs("D", input_size=size, width_multiplier=w, fc_width=int(4096 * w)), size))[1]
         for w in widths]
    scaling[size] = np.array(p), np.array(m)
    axes[0].loglog(widths, p, "o-", label=f"{size}x{size}")
    axes[1].loglog(widths, m, "o-", label=f"{size}x{size}")
for ax, what in zip(axes, ["parameters", "multiply-adds per image"]):
    ax.set_xlabel("width multiplier (conv channels and FC width)")
    ax.set_ylabel(what)
    ax.set_title(f"VGG-16 variants: {what}")
    ax.legend(title="input")
plt.tight_layout()
plt.show()
p224, m224 = scaling[224]
print("halving the width divides the parameters by", np.round(p224[:-1] / p224[1:], 2),
      "and the multiply-adds by", np.round(m224[:-1] / m224[1:], 2))
print("halving the side (width 1) divides the multiply-adds by",
      np.round([scaling[a][1][0] / scaling[b][1][0] for a, b in ((224, 128), (128, 64), (64, 32))], 2))
assert np.all((3.5 < p224[:-1] / p224[1:]) & (p224[:-1] / p224[1:] < 4))
assert np.all((3.9 < m224[:-1] / m224[1:]) & (m224[:-1] / m224[1:] <= 4))
assert np.allclose(scaling[128][1][0] / scaling[64][1][0], 4, rtol=0.02)

# %% [markdown]
# Halving the width divides the multiply-adds by nearly 4 and the parameters by 3.6 to 3.9: the 1000 class
# outputs and the 3 colour channels do not scale, and their share grows as the rest shrinks. Halving the input
# side (128 → 64) divides the multiply-adds by 4 too (224 → 128 is not a halving: that ratio is about
# (224/128)² ≈ 3.1).

# %% [markdown]
# The variant the `minivgg` demo trains on digits: configuration A at a quarter of the width, 32×32 input,
# FC layers of 256 and 10 classes. Its summary is the same table as VGG-16's, only smaller.

# %%
small = vgg("A", width_multiplier=1 / 4, input_size=32, fc_width=256, num_classes=10, seed=0,
            weight_init="glorot")
print(small.summary())
x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
print("class scores:", small.eval().forward(x).shape)
assert small.eval().forward(x).shape == (4, 10)

# %% [markdown]
# Four images in, four rows of 10 class scores out.
#
# ## Paper to code
#
# Every number of this lesson comes from one walk over the layer specifications, `minivgg.summary.summarise`:
# shapes, parameters, multiply-adds and the receptive field of lesson 3, layer by layer.

# %%
print(inspect.getsource(summary.summarise))

# %% [markdown]
# > **What Table 2 counts.** The paper gives the parameters in millions and does not say whether biases are
# > in. minivgg counts weights and biases, as Caffe's and PyTorch's models hold them; biases are 0.01% of D's
# > parameters, so both readings round to the same millions.
# >
# > **A choice the paper leaves open: which FLOPs.** The paper reports no operation counts. minivgg counts
# > multiply-adds of the weight layers only (a FLOP count is twice that); ReLU, pooling and LRN cost none in it.

# %%
biases = sum(row.output_shape[0] for row in summarise(layer_specs("D"), 224) if row.parameters)
print(f"D: {biases:,} biases of {num_parameters('D'):,} parameters ({biases / num_parameters('D'):.3%})")
assert round((num_parameters("D") - biases) / 1e6) == round(num_parameters("D") / 1e6) == 138

# %% [markdown]
# 13,416 biases, 0.01% of the count: with or without them, D has 138 million parameters.
#
# ## Exercises
#
# **1. Parameters from Table 1.** `count_parameters(column)` takes a column as `CONFIGURATIONS` holds it (e.g.
# `CONFIGURATIONS["D"]`: `"conv3-64"`, `"maxpool"`, `"FC-4096"`, `"LRN"`, `"soft-max"` cells) and returns its
# parameters for a 224×224 RGB input. **2.** `count_multiply_adds(column)`: its multiply-adds per image. Both are
# checked against the library on all seven columns.

# %%
def count_parameters(column):
    """A Table 1 column (tuple of cells) -> parameters, weights and biases, at 224x224."""
    raise NotImplementedError  # your code here


def count_multiply_adds(column):
    """A Table 1 column -> multiply-adds of its conv and FC layers for one 224x224 image."""
    raise NotImplementedError  # your code here


print(exercises.check_count_parameters(count_parameters))
print(exercises.check_count_multiply_adds(count_multiply_adds))

# %% [markdown]
# **3. On paper.**

# %%
exercises.check_answers(
    conv3_1_parameters=None,   # parameters (weights and biases) of D's conv3_1?
    fc6_share=None,            # fraction of D's parameters in fc6 (two significant digits)?
    E_minus_D=None,            # how many more parameters has E than D (exactly)?
    D_gigamacs=None,           # billions of multiply-adds of D per 224x224 image (three significant digits)?
    block_cost_ratio=None,     # D's conv3_2 multiply-adds over conv2_2's?
)
