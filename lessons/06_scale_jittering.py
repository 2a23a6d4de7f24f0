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
#
# Notation: N(μ, σ²) names the variance, as in lesson 5, so the colour factors' N(0, 0.1²) has standard
# deviation 0.1.

# %%
import inspect
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from minivgg.data import (PCAColourShift, ScaleJitter, TrainAugmentation, compute_statistics, load_digits,
                          rescale_smallest_side)
from minivgg.evaluation.posteriors import posteriors
from minivgg.exercises import scale_jittering as exercises
from minivgg.evaluation.metrics import top_k_error
from minivgg.training.recipes import digits_run
from minivgg.training import train

digits = load_digits(image_size=40, seed=0)
# A 7: unlike a 0 or an 8 it is not its own mirror image, so a flip shows.
index = next(i for i, label in enumerate(digits["train"].labels) if label == 7)
image, label = digits["train"].load(index)
print("one training image:", image.shape, "label", label)
asymmetry = np.abs(image.astype(float) - image[:, ::-1]).mean() / image.astype(float).mean()
print(f"mean |image - its mirror image| / mean pixel: {asymmetry:.2f}")
assert label == 7 and asymmetry > 0.2

# %% [markdown]
# The image is a 7, and it differs from its mirror image by a fifth of its mean brightness or more: a flipped
# crop will be visibly flipped.

# %% [markdown]
# ## Rescaling to S, then cropping
#
# The smallest side becomes S (here the images are square, so both sides); the 32×32 crop then covers all of
# the image at S = 32 and a smaller part of it as S grows.

# %%
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for axis, S in zip(axes, (32, 36, 40, 48)):
    rescaled = rescale_smallest_side(image, S)
    assert rescaled.shape == (S, S, 3)
    axis.imshow(rescaled)
    axis.add_patch(plt.Rectangle(((S - 32) / 2 - 0.5, (S - 32) / 2 - 0.5), 32, 32, fill=False, color="red", lw=2))
    axis.set_title(f"S = {S}: crop covers {32 * 32 / S ** 2:.0%}")
    axis.axis("off")
plt.show()

# %% [markdown]
# The crop covers the whole image at S = 32 and less of it as S grows: 44% at S = 48.

# %% [markdown]
# ## What the training augmentation draws
#
# `TrainAugmentation` draws, per image and in order: S (when jittered), the crop's position, the flip, and three
# colour factors α ~ N(0, 0.1²) that shift every pixel by P·(α·λ) — P and λ the eigenvectors and eigenvalues of
# the training set's RGB covariance (Krizhevsky et al., 2012). Each image has its own generator, seeded by
# (seed, epoch, index), so an epoch can be replayed exactly.

# %%
stats = compute_statistics(digits["train"], cache_path=False, progress=False)
print("mean RGB", np.round(stats.mean_rgb, 1), "eigenvalues", np.round(stats.eigenvalues, 1))
augment = TrainAugmentation(scale=(32, 40), crop_size=32, flip=True, colour_shift_std=0.1,
                            pca=(stats.eigenvalues, stats.eigenvectors))
fig, axes = plt.subplots(2, 8, figsize=(14, 3.8))
unflipped = TrainAugmentation(scale=(32, 40), crop_size=32, flip=False)  # the same S and crop draws, no flip
drawn_scales, flipped = [], 0
for k, axis in enumerate(axes.flat):
    rng = np.random.default_rng(k)
    S = augment.draw_scale(rng)
    crop, offset = augment(image, rng, S)
    same_crop, _ = unflipped(image, np.random.default_rng(k))
    is_flipped = not np.array_equal(crop, same_crop)
    flipped += is_flipped
    drawn_scales.append(S)
    shifted = np.clip(crop.astype(np.float64) + offset, 0, 255).astype(np.uint8)
    axis.imshow(shifted)
    axis.set_title(f"S={S}{', flipped' if is_flipped else ''}", fontsize=8)
    axis.axis("off")
plt.suptitle("16 draws of the training augmentation (flips are why digits need flip=False in the recipe)")
plt.show()
print("scales drawn:", drawn_scales, f"- {flipped} of 16 crops flipped")
assert min(drawn_scales) >= 32 and max(drawn_scales) <= 40 and 0 < flipped < 16

# %% [markdown]
# Every S lies in [32, 40], and some of the 16 crops are mirrored 7s (the titles say which): on ImageNet a
# mirrored cat is still a cat, a mirrored 7 is no digit at all, hence `flip=False` for the digits.
# %% [markdown]
# ## Fixed S versus jittered S
#
# Train the same small net twice, once with S fixed at 36 and once with S drawn from [32, 40], then test both at
# several test scales Q (dense evaluation, lesson 7). The paper's finding (Table 3) is that jittering at training
# time helps even at a single test scale, and makes the model robust to the test scale. (This comparison is to
# be redone on real data; what the digits show is said under the figure.)

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
fixed, jittered = np.array(errors["fixed S = 36"]), np.array(errors["jittered S in [32, 40]"])
assert fixed[-1] > 3 * fixed[1] and jittered[-1] > 3 * jittered[1]
assert min(fixed[0], jittered[0]) < min(fixed[1:].min(), jittered[1:].min())

# %% [markdown]
# Both nets do best at Q = 32, where the dense map is one window, the whole image, and both errors rise steeply
# with Q, to more than three times their error at Q = 36. That rise is not the paper's: with 32×32 crops the
# dense windows step by their own width (lesson 7), so above Q = 32 most windows hang over the image's edge
# and see mostly padding, and the map's average is dominated by them. Which net is better changes from one Q
# to the next, and this is one run of each (one seed, no spread measured): nothing here compares fixed with
# jittered S. The reproduction (`minivgg reproduce`) makes that comparison on real data, over seeds, with test
# scales at which the dense windows see the image; its results follow.
#
# ## What the full reproduction measured
#
# `minivgg reproduce` trains nets D and E at an eighth of the width on Fashion-MNIST, 64×64 crops, twice each:
# with S fixed at 96, and with S jittered in [64, 128] (the paper's [256, 512] scaled to the crop). It tests each
# at Q = 64, 96 and 128, which put the dense windows inside the image (96 is both Sect. 4.1's Q = S and
# (S_min + S_max) / 2), with three seeds. Its full run's measurements are committed with the repository
# (`docs/reproduction/results.json`); this cell reads them and trains nothing.

# %%
from minivgg.reproduction import committed_results
from minivgg.reproduction.statistics import paired_interval

published = committed_results()
print(published.describe(["jitter-d", "jitter-e", "test-scale-fixed", "test-scale-jittered", "multi-scale-D",
                          "multi-scale-E", "multi-scale-D-jittered", "multi-scale-E-jittered"]))
test_scales = published.miniature["test_scales"]
figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for axis, net in zip(axes, ("D", "E")):
    for name, label in ((net, "S = 96"), (f"{net}-jittered", "S in [64, 128]")):
        errors = np.array([published.measurement(f"{name}/dense/{q}") for q in test_scales])  # (scales, seeds)
        line, = axis.plot(test_scales, errors.mean(axis=1), "o-", label=label)
        axis.plot(np.repeat(test_scales, errors.shape[1]), errors.ravel(), ".", color=line.get_color())
    axis.set_title(f"net {net}: dense top-1 error, 3 seeds (dots)")
    axis.set_xlabel("test scale Q")
    axis.set_xticks(test_scales)
    axis.legend()
axes[0].set_ylabel("test top-1 error (%)")
plt.show()
# How much jittering gains away from S = 96: the same paired interval as the report's, at Q = 64.
away = {net: paired_interval(published.measurement(f"{net}-jittered/dense/64"),
                             published.measurement(f"{net}/dense/64")) for net in ("D", "E")}
for net, interval in away.items():
    print(f"net {net} at Q = 64: jittered S gains {interval.mean:+.1f} points over S = 96, 95% interval "
          f"[{interval.low:+.1f}, {interval.high:+.1f}]")
verdicts = {key: published.claim(key).verdict for key in ("jitter-d", "jitter-e", "test-scale-fixed",
                                                          "test-scale-jittered", "multi-scale-D", "multi-scale-E",
                                                          "multi-scale-D-jittered", "multi-scale-E-jittered")}
assert published.complete
assert verdicts == {"jitter-d": "inconclusive", "jitter-e": "inconclusive", "test-scale-fixed": "inconclusive",
                    "test-scale-jittered": "inconclusive", "multi-scale-D": "not reproduced",
                    "multi-scale-E": "not reproduced", "multi-scale-D-jittered": "inconclusive",
                    "multi-scale-E-jittered": "inconclusive"}
assert all(interval.low > 10 and interval.mean > 30 for interval in away.values())
assert all(published.measurement(f"{name}/dense/128").mean() > published.measurement(f"{name}/dense/96").mean()
           for name in ("D", "E", "D-jittered", "E-jittered"))
fixed_at_96 = published.measurement("D/dense/96")
assert fixed_at_96.max() > 60 and np.sort(fixed_at_96)[1] < 30  # one seed of D thrown off at Q = 96

# %% [markdown]
# At the single test scale Q = 96 the paper's finding, jittered S better than fixed S (Table 3), is
# inconclusive for both nets. One seed of the fixed-S D errs on 70% of the test images at Q = 96 where the other
# two err on about 25%, and with three seeds that one seed makes the interval span tens of points. Testing at
# three scales helps neither fixed-S net: both are worse at Q = 64, 96, 128 together than at Q = 96 alone,
# beyond the noise (not reproduced). They were trained at S = 96 only, and Q = 64 and 128 lie a third away from
# it, where the paper's S ± 32 lie an eighth away from S = 256. For the jittered nets, several scales are
# inconclusive.
#
# What the run does show beyond the noise is the robustness the paper attributes to jittering. At Q = 64, a third
# below the fixed nets' S, the jittered nets' error is lower by more than 30 points on average, with 95% intervals
# well above zero for D and for E (the printed lines). At Q = 128 all four nets err more than at 96, since most
# dense windows of the framed item then see its black border (the report's explanation).
#
# ## Paper to code
#
# The draws of Sect. 3.1, as `minivgg.data` makes them: S, then the crop and the flip, then the colour shift.

# %%
print(inspect.getsource(ScaleJitter.draw))
print(inspect.getsource(TrainAugmentation.__call__))
print(inspect.getsource(PCAColourShift.__call__))

# %% [markdown]
# > **Choices the paper leaves open, and minivgg's.**
# >
# > - *How S is drawn.* "Randomly sampling S from a certain range [S_min, S_max]": minivgg draws a whole number
# >   uniformly, both ends included (`rng.integers(S_min, S_max + 1)`).
# > - *The colour shift's units.* Krizhevsky et al.'s eigenvalues are of pixel values; the formula's size depends
# >   on the unit. minivgg applies it to pixels in [0, 1] and scales the offset back to 0–255, as fb.resnet.torch
# >   and ChainerCV do (taken literally in 0–255 units it would be 255 times larger).
# > - *Rescaling.* The paper says "isotropically-rescaled"; minivgg rounds the other side to the nearest pixel
# >   and resamples with Pillow's bilinear filter, antialiased when shrinking.
#
# ## Exercises
#
# **1. Drawing S.** `draw_scale(rng, S_min, S_max)` returns one training scale. The check is statistical: whole
# numbers, both ends reached, uniform. **2. Rescaling.** `rescaled_size(height, width, S)` returns the
# `(height, width)` after rescaling the smallest side to S. **3. The colour shift.**
# `colour_offset(eigenvalues, eigenvectors, alpha)` returns the (3,) RGB offset, 0–255, for given factors α.

# %%
def draw_scale(rng, S_min, S_max):
    """One training scale S from [S_min, S_max] (S_min == S_max: a fixed scale)."""
    raise NotImplementedError  # your code here


def rescaled_size(height, width, S):
    """(height, width) of the image once its smallest side is S, aspect ratio kept."""
    raise NotImplementedError  # your code here


def colour_offset(eigenvalues, eigenvectors, alpha):
    """The RGB offset (0-255) of Krizhevsky et al.'s colour shift for factors alpha (3,)."""
    raise NotImplementedError  # your code here


print(exercises.check_draw_scale(draw_scale))
print(exercises.check_rescaled_size(rescaled_size))
print(exercises.check_colour_offset(colour_offset))

# %% [markdown]
# **4. On paper.**

# %%
exercises.check_answers(
    jittered_test_scales=None,   # S jittered in [256, 512]: the test scales (Q1, Q2, Q3) of Sect. 4.2?
    fixed_test_scales=None,      # S fixed at 384: the test scales (Q1, Q2, Q3)?
    crop_share=None,             # a square image at S = 512: fraction covered by one 224x224 crop?
)
