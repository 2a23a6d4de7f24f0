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
import matplotlib.pyplot as plt
import numpy as np

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

# %% [markdown]
# (Table 2 prints 133 for B: its exact count, 133.05 million, does round to 133.) Depth is cheap in
# parameters: going from 11 to 19 layers adds 10.8 million, 8%, because the added layers are 3×3
# convolutions, and the FC layers, which do not change, dominate the count.

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

# %%
print(f"{'':>6}" + "".join(f"{p:>18}" for p in PARTS))
for config in PAPER:
    parameters, macs = breakdown[config]
    print(f"{config:>6}" + "".join(f"{p / 1e6:8.1f}M {m / 1e9:6.2f}G " for p, m in zip(parameters, macs)))
for config in PAPER:
    parameters, macs = breakdown[config]
    print(f"{config}: FC layers hold {100 * parameters[5] / parameters.sum():.0f}% of the parameters and do "
          f"{100 * macs[5] / macs.sum():.1f}% of the multiply-adds")

# %% [markdown]
# The split is lopsided both ways. FC1 alone, a 25088 × 4096 matrix, has 102.8 million weights: three
# quarters of VGG-16. The conv layers have a tenth of the weights but do 99% of the arithmetic, because each
# 3×3 filter is applied at every pixel: VGG-16 costs 15.5 billion multiply-adds (31 GFLOP) per image, 15.3
# of them in convolutions. A 3×3 layer with as many channels out as in costs the same 1.85 billion in
# blocks 1 to 4 (halving the resolution quarters the pixels, doubling the channels quadruples the work per
# pixel); block 5's layers cost a quarter of that, because the channels stop doubling at 512.
#
# So the paper adds depth almost for free in parameters (E has 4% more than D) but not in arithmetic (E
# does 27% more per image), and a fast implementation lives or dies by its convolutions.

# %%
print(f"{'network':>8} {'GMACs/image':>12} {'GFLOP/image':>12}")
for config in CONFIGURATIONS:
    _, macs = totals(summarise(layer_specs(config), 224))
    print(f"{config:>8} {macs / 1e9:12.2f} {2 * macs / 1e9:12.1f}")

# %% [markdown]
# ## Small variants for a CPU
#
# The same table builds nets small enough to train on a laptop: `width_multiplier` scales the conv
# channels, `fc_width` the hidden FC layers, `input_size` the image (and so FC1's input, since five poolings
# divide it by 32), `num_classes` the output. Parameters and compute fall as the square of the width
# (each conv weight connects two scaled channel counts) and computation as the square of the input side.

# %%
widths = [1, 1 / 2, 1 / 4, 1 / 8]
sizes = [224, 128, 64, 32]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for size in sizes:
    p = [num_parameters("D", input_size=size, width_multiplier=w, fc_width=int(4096 * w)) for w in widths]
    m = [totals(summarise(layer_specs("D", input_size=size, width_multiplier=w, fc_width=int(4096 * w)), size))[1]
         for w in widths]
    axes[0].loglog(widths, p, "o-", label=f"{size}x{size}")
    axes[1].loglog(widths, m, "o-", label=f"{size}x{size}")
for ax, what in zip(axes, ["parameters", "multiply-adds per image"]):
    ax.set_xlabel("width multiplier (conv channels and FC width)")
    ax.set_ylabel(what)
    ax.set_title(f"VGG-16 variants: {what}")
    ax.legend(title="input")
plt.tight_layout()
plt.show()

# %% [markdown]
# The variant the `minivgg` demo trains on digits: configuration A at a quarter of the width, 32×32 input,
# FC layers of 256 and 10 classes. Its summary is the same table as VGG-16's, only smaller.

# %%
small = vgg("A", width_multiplier=1 / 4, input_size=32, fc_width=256, num_classes=10, seed=0,
            weight_init="glorot")
print(small.summary())
x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
print("class scores:", small.eval().forward(x).shape)
