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
# # Lesson 7: dense evaluation — the fully-connected layers as convolutions
#
# At test time (Sect. 3.2) the paper does not crop. It turns the first FC layer into a 7×7 convolution and the
# other two into 1×1 convolutions, runs the resulting *fully-convolutional* net over the whole rescaled image,
# and averages the resulting **class score map**. This lesson shows the conversion, draws score maps, and
# compares dense evaluation with multi-crop evaluation (speed and accuracy), then fuses two models — every
# number computed here, on the digits.

# %%
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

from minivgg.backend import asarray, to_host
from minivgg.evaluation.posteriors import fuse, posteriors
from minivgg.evaluation.metrics import top_k_error
from minivgg.training.recipes import digits_run
from minivgg.training import train

# %% [markdown]
# ## Two small models to evaluate
#
# Configuration A of Table 1 at a quarter of the width, 32×32 crops, trained twice with `minivgg train`'s
# recipe on the same data from two different initial weights (about a minute each).

# %%
models = {}
for seed in (0, 1):
    run = digits_run(model_seed=seed)
    with tempfile.TemporaryDirectory() as run_dir:
        train(run.model, run.train_loader, run.val_loader, run.settings, run_dir, progress=False)
    models[f"A, seed {seed}"] = run.model.eval()
test = run.test_loader.dataset
images = [test.load(i)[0] for i in range(len(test))]
labels = np.asarray(test.labels)
print(len(images), "test digits of", images[0].shape)

# %% [markdown]
# ## FC layers as convolutions
#
# FC1 sees the last feature map (here 1×1×128 for a 32×32 input, 7×7×512 for VGG at 224²). Reshaping its weight
# matrix (out, in·k·k) into (out, in, k, k) gives a convolution computing exactly the same numbers on that map,
# and on a larger map it computes them at every position.

# %%
model = models["A, seed 0"]
dense_net = model.to_fully_convolutional()
print(dense_net)
x = asarray(model.preprocessing.apply(np.stack(images[:2])[:, 4:36, 4:36]))
print("FC output        :", np.round(to_host(model.forward(x))[0, :4], 4))
print("dense net, 1x1 map:", np.round(to_host(dense_net.forward(x))[0, :4, 0, 0], 4))

# %% [markdown]
# ## A class score map
#
# Put two digits side by side in one 40×80 image: the dense net returns a score map 2×3 cells, and each
# digit's class wins where that digit is. (On images this close to the crop size the map is coarse — one cell
# per 32 pixels begun: the dense net's poolings round up, as the authors' Caffe does, so the last cells' windows
# reach the bottom and right edges — which is also why dense evaluation below does worse than crops on the
# digits; the paper evaluates at Q = 256–512 for 224 crops, where the map is 2×2 to 10×10 cells.)

# %%
first, second = next(i for i in range(len(labels)) if labels[i] == 3), next(i for i in range(len(labels)) if labels[i] == 7)
pair = np.concatenate([images[first], images[second]], axis=1)
score_map = to_host(dense_net.forward(asarray(model.preprocessing.apply(pair[None]))))[0]
print("score map shape (classes, h, w):", score_map.shape)
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
axes[0].imshow(pair)
axes[0].set_title("input, 40x80")
for axis, digit in zip(axes[1:], (3, 7)):
    axis.imshow(score_map[digit], cmap="viridis")
    axis.set_title(f"score map of class {digit}")
for axis in axes:
    axis.axis("off")
plt.show()

# %% [markdown]
# ## Dense vs multi-crop, one and several scales
#
# Multi-crop evaluation (Sect. 4.3) runs the net on a 5×5 grid of crops, each also flipped: 50 forward passes per
# scale. Dense evaluation runs once on the whole image (twice with the flip). Compare error and speed. Digits are
# not mirror-symmetric and the models never saw a flipped one, so here `flip=False` (25 crops per scale); on
# ImageNet the paper's `flip=True` is the default.

# %%
subset, subset_labels = images[:150], labels[:150]  # enough to compare; multi-crop is the slow one
rows = []
for scales in ((36,), (32, 36, 40)):
    results = {}
    for method in ("single-crop", "dense", "multi-crop"):
        start = time.perf_counter()
        results[method] = (posteriors(model, subset, method, scales=scales, flip=False), time.perf_counter() - start)
    # "multi-crop & dense" (Table 5) averages the two: its cost is both of theirs.
    results["multi-crop+dense"] = (fuse([results["multi-crop"][0], results["dense"][0]]),
                                   results["multi-crop"][1] + results["dense"][1])
    for method, (p, seconds) in results.items():
        rows.append((method, scales, 100 * top_k_error(p, subset_labels, 1), len(subset) / seconds))
        print(f"{method:>17} Q={str(scales):>13}: top-1 error {rows[-1][2]:5.2f}%  {rows[-1][3]:7.0f} images/s")

# %%
fig, axis = plt.subplots(figsize=(7, 4))
for method, scales, error, speed in rows:
    axis.scatter(speed, error, s=60, marker="o" if len(scales) == 1 else "s")
    axis.annotate(f"{method} {len(scales)} scale{'s' if len(scales) > 1 else ''}", (speed, error), fontsize=8)
axis.set_xscale("log")
axis.set_xlabel("images per second (log)")
axis.set_ylabel("top-1 error (%)")
axis.set_title("dense evaluation avoids multi-crop's recomputation")
plt.show()

# %% [markdown]
# ## Fusion
#
# Averaging the posteriors of several models (Sect. 4.4) helps when their errors differ.

# %%
fused = {name: posteriors(net, images, "single-crop", scales=(32, 36, 40), flip=False) for name, net in models.items()}
fused["both, fused"] = fuse(list(fused.values()))
for name, p in fused.items():
    print(f"{name:>12}: top-1 error {100 * top_k_error(p, labels, 1):.2f}%")
