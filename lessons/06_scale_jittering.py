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
# # Lesson 6: scale jittering and the other augmentations
#
# The network always sees a fixed-size crop (224×224 in the paper), but the image it is cut from is first
# rescaled so that its smallest side is S, the *training scale* (Sect. 3.1). A fixed S = 256 gives crops that
# see most of the image; S = 512 gives crops of object parts. **Scale jittering** draws S per image from
# [S_min, S_max] = [256, 512], so one model learns objects over a range of sizes. The crops are also flipped at
# random and their colours shifted along the principal components of the training set's RGB values.
#
# Here the same ideas at digit scale (crop 32, S in [32, 40]), then a fixed-S vs jittered-S comparison.

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from minivgg.data import TrainAugmentation, compute_statistics, load_digits, rescale_smallest_side
from minivgg.evaluation.posteriors import posteriors
from minivgg.evaluation.metrics import top_k_error
from minivgg.training.recipes import digits_run
from minivgg.training import train

digits = load_digits(image_size=40, seed=0)
image, label = digits["train"].load(0)
print("one training image:", image.shape, "label", label)

# %% [markdown]
# ## Rescaling to S, then cropping
#
# The smallest side becomes S (here the images are square, so both sides); the 32×32 crop then covers all of
# the image at S = 32 and a smaller part of it as S grows.

# %%
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for axis, S in zip(axes, (32, 36, 40, 48)):
    rescaled = rescale_smallest_side(image, S)
    axis.imshow(rescaled)
    axis.add_patch(plt.Rectangle(((S - 32) / 2 - 0.5, (S - 32) / 2 - 0.5), 32, 32, fill=False, color="red", lw=2))
    axis.set_title(f"S = {S}: crop covers {32 * 32 / S ** 2:.0%}")
    axis.axis("off")
plt.show()

# %% [markdown]
# ## What the training augmentation draws
#
# `TrainAugmentation` draws, per image and in order: S (when jittered), the crop's position, the flip, and three
# colour factors α ~ N(0, 0.1) that shift every pixel by P·(α·λ) — P and λ the eigenvectors and eigenvalues of
# the training set's RGB covariance (Krizhevsky et al., 2012). Each image has its own generator, seeded by
# (seed, epoch, index), so an epoch can be replayed exactly.

# %%
stats = compute_statistics(digits["train"], cache_path=False, progress=False)
print("mean RGB", np.round(stats.mean_rgb, 1), "eigenvalues", np.round(stats.eigenvalues, 1))
augment = TrainAugmentation(scale=(32, 40), crop_size=32, flip=True, colour_shift_std=0.1,
                            pca=(stats.eigenvalues, stats.eigenvectors))
fig, axes = plt.subplots(2, 8, figsize=(14, 3.8))
for k, axis in enumerate(axes.flat):
    rng = np.random.default_rng(k)
    S = augment.draw_scale(rng)
    crop, offset = augment(image, rng, S)
    shifted = np.clip(crop.astype(np.float64) + offset, 0, 255).astype(np.uint8)
    axis.imshow(shifted)
    axis.set_title(f"S={S}", fontsize=9)
    axis.axis("off")
plt.suptitle("16 draws of the training augmentation (flips are why digits need flip=False in the recipe)")
plt.show()

# %% [markdown]
# ## Fixed S versus jittered S
#
# Train the same small net twice, once with S fixed at 36 and once with S drawn from [32, 40], then test both at
# several test scales Q (dense evaluation, lesson 7). The paper's finding (Table 3): jittering at training time
# helps even at a single test scale, and it makes the model robust to the test scale.

# %%
test_images = [digits["test"].load(i)[0] for i in range(len(digits["test"]))]
test_labels = np.asarray(digits["test"].labels)
scales = (32, 36, 40, 44, 48)
errors = {}
for name, S in (("fixed S = 36", 36), ("jittered S in [32, 40]", (32, 40))):
    run = digits_run(scale=S, flip=False)  # the default recipe, about a minute each
    with tempfile.TemporaryDirectory() as run_dir:
        train(run.model, run.train_loader, run.val_loader, run.settings, run_dir, progress=False)
    errors[name] = [100 * top_k_error(posteriors(run.model, test_images, "dense", scales=(q,), flip=False),
                                      test_labels, 1) for q in scales]
    print(f"{name:>24}: test top-1 error (%) at Q = {scales}: {np.round(errors[name], 1)}")
for name, values in errors.items():
    plt.plot(scales, values, "o-", label=name)
plt.xlabel("test scale Q")
plt.ylabel("test top-1 error (%)")
plt.legend()
plt.grid(alpha=0.3)
plt.show()
