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
# # Lesson 11: very deep features and linear SVMs (Appendix B)
#
# Appendix B takes nets D and E, trained on ILSVRC, and uses them on *other* datasets without retraining them:
# the last FC layer is removed, the 4096-D activations of the penultimate layer are the image's features, and a
# linear SVM is trained on them. The features are computed the way the paper tests (Sect. 3.2): the image is
# rescaled to a smallest side Q, the net runs **densely** over it, the activation map is **globally
# average-pooled**, averaged with that of the **flipped** image, several scales are **stacked or averaged**, and
# the result is **L2-normalised**.
#
# Here the same pipeline runs on the embedded digits, start to finish in about a minute: a small net trained
# on them, its features against the raw pixels and against the features of the same net left untrained, all
# under the same linear SVM. The pieces are in `minivgg.transfer`.

# %%
import inspect
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from minivgg.data import rescale_smallest_side
from minivgg.exercises import transfer_features as exercises
from minivgg.training.recipes import digits_run
from minivgg.evaluation.validation import evaluate_loader
from minivgg.transfer import (FeatureCache, FeatureSettings, average_precision, extract, features_of, precision_recall,
                              stack)
from minivgg.transfer.demonstration import DIGITS_SETTINGS, compare_representations, train_digits_net

# %% [markdown]
# ## A trained net and an untrained one
#
# Configuration A at a quarter of the width, trained for 22 epochs with `minivgg train`'s embedded recipe
# (32×32 crops of the 40×40 digits). The untrained net has the same architecture and preprocessing, and
# random weights.

# %%
trained, splits, run = train_digits_net(max_epochs=22, seed=0)
untrained = digits_run(seed=0, model_seed=1).model.eval()
top1_error = evaluate_loader(trained, run.test_loader)["top1_error"]
trained.eval()  # evaluate_loader leaves the model in training mode
print(f"the trained net's own soft-max: {100 * (1 - top1_error):.1f}% of the test digits right")
print("named layers:", trained.layer_names())
assert 1 - top1_error > 0.9 and "fc7" in trained.layer_names()

# %% [markdown]
# The trained net classifies more than 90% of the test digits with its own soft-max; its layers carry the
# paper's names, fc7 the penultimate.

# %% [markdown]
# ## One descriptor, step by step
#
# `features_at("fc7", fully_convolutional=True)` is the net cut after the penultimate layer, with FC1 as a
# convolution, so it runs on images larger than its 32×32 training crops. At Q = 64 it returns a 2×2 map of
# 256-D activations; the descriptor is its mean over space.

# %%
digit = splits["test"].images[0]
net = trained.features_at("fc7", fully_convolutional=True)
maps = {}
for q in (32, 64, 96):
    x = trained.preprocessing.apply(rescale_smallest_side(digit, q)[None])
    maps[q] = net.forward(x).shape
    print(f"Q = {q:3d}: input {x.shape[2]}x{x.shape[3]} -> fc7 map {maps[q]}")
two_scales = {a: extract(trained, [digit], FeatureSettings(scales=(32, 64), aggregation=a, flip=False))
              for a in ("stack", "average")}
for aggregation, descriptor in two_scales.items():
    print(f"{aggregation:>7}: {descriptor.shape[1]} dimensions, L2 norm {np.linalg.norm(descriptor):.3f}")
assert maps[32] == (1, 256, 1, 1) and maps[64] == (1, 256, 2, 2) and maps[96] == (1, 256, 3, 3)
assert two_scales["stack"].shape[1] == 512 and two_scales["average"].shape[1] == 256
assert all(abs(np.linalg.norm(d) - 1) < 1e-5 for d in two_scales.values())

# %% [markdown]
# The map grows with Q (1×1, 2×2, 3×3 positions of 256 activations); stacking two scales gives 512 dimensions,
# averaging keeps 256, and both descriptors have norm 1.

# %% [markdown]
# ## Do the features separate the classes?
#
# The first two principal components of the test descriptors, one colour per digit: the trained net's
# descriptors fall into clusters, the untrained net's much less so.

# %%
cache = FeatureCache(tempfile.mkdtemp())
test_images = list(splits["test"].images)
labels = splits["test"].labels
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
separation = {}
for axis, (name, model) in zip(axes, (("trained net", trained), ("untrained net", untrained))):
    features = features_of(model, test_images, DIGITS_SETTINGS, cache)
    centred = features - features.mean(axis=0)
    components = np.linalg.svd(centred, full_matrices=False)[2][:2]
    points = centred @ components.T
    axis.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=8)
    axis.set_title(f"{name}: fc7 descriptors, first two PCs")
    # How clustered: the spread of the class means over the mean spread within a class, in the plotted plane.
    means = np.array([points[labels == k].mean(axis=0) for k in np.unique(labels)])
    within = np.mean([points[labels == k].var(axis=0).sum() for k in np.unique(labels)])
    separation[name] = means.var(axis=0).sum() / within
plt.show()
print({name: round(float(value), 2) for name, value in separation.items()})
assert separation["trained net"] > 10 * separation["untrained net"]

# %% [markdown]
# Measured in the plotted plane, the spread of the trained net's class means, relative to the spread within a
# class, is more than ten times the untrained net's (the printed ratios): its clusters are the tighter and the
# better separated.

# %% [markdown]
# ## The same linear SVM on three representations
#
# Raw pixels (40·40·3 = 4800 numbers, L2-normalised like the descriptors), the untrained net's descriptors
# and the trained net's (Q ∈ {32, 64} stacked: 512-D). C is chosen by cross-validation on the training
# images; the measure is Caltech's mean class recall on the 359 test digits. The SVMs train on 50 images
# per class of the training split, then on only 10 (a subset of those 50), where a good representation
# matters most. The descriptors come from the cache filled above (the test images) or are computed once and
# stored.

# %%
models = {"untrained net": untrained, "trained net": trained}
results = {}
for per_class in (50, 10):
    results[per_class] = compare_representations(models, splits, DIGITS_SETTINGS, train_per_class=per_class,
                                                  cache=cache)
print(f"cache: {cache.hits} descriptors read, {cache.misses} computed")
names = ["raw pixels", "untrained net", "trained net"]
print(f"{'representation':<15} {'dims':>5} {'50 per class':>13} {'10 per class':>13}")
for name in names:
    print(f"{name:<15} {results[50]['dimensions'][name]:>5} {results[50][name]:>12.1f}% {results[10][name]:>12.1f}%")

fig, axis = plt.subplots(figsize=(7, 3.5))
positions = np.arange(len(names))
for offset, per_class, label in ((-0.2, 50, "50 per class"), (0.2, 10, "10 per class")):
    axis.bar(positions + offset, [results[per_class][n] for n in names], width=0.4, label=label)
axis.set_xticks(positions, names)
axis.set_ylim(40, 100)
axis.set_ylabel("mean class recall (%)")
axis.legend(loc="lower right")
plt.show()
recall = {(name, n): results[n][name] for name in names for n in (50, 10)}
for n in (50, 10):
    assert recall["trained net", n] > max(recall["raw pixels", n], recall["untrained net", n])
    assert recall["untrained net", n] < recall["raw pixels", n]
drop = {name: recall[name, 50] - recall[name, 10] for name in names}
assert drop["trained net"] < 2 and drop["trained net"] < drop["raw pixels"] < drop["untrained net"]

# %% [markdown]
# The trained net's descriptors give the best recall at both sizes, and keep it (within two points) with only
# 10 training digits per class, where the raw pixels lose more and the untrained net's descriptors the most:
# random conv features, 512 of them, are here worse than the 4800 pixels themselves. One run on 359 test
# digits; Appendix B's comparison on VOC and Caltech is `minivgg transfer` (below).

# %% [markdown]
# ## Stacking or averaging the scales
#
# Stacking keeps every scale's descriptor (S·D dimensions) so the SVM can weigh them; averaging keeps D. The
# paper found them equal on VOC (objects at all scales) and stacking better on Caltech (objects fill the
# image). Here, with 10 training digits per class:

# %%
aggregated = {}
for aggregation in ("stack", "average"):
    settings = FeatureSettings(layer="fc7", scales=(32, 64), aggregation=aggregation, flip=False)
    result = compare_representations({"trained net": trained}, splits, settings, train_per_class=10, cache=cache)
    aggregated[aggregation] = result["trained net"]
    print(f"{aggregation:>7}: {result['dimensions']['trained net']:4d} dimensions, "
          f"{result['trained net']:.1f}% mean class recall")
assert abs(aggregated["stack"] - aggregated["average"]) < 2

# %% [markdown]
# Stacking and averaging the two scales give recalls within two points of each other here, a handful of the 359
# test digits: on these centred digits the choice hardly matters.

# %% [markdown]
# ## Two nets stacked
#
# "Net-D & Net-E" is the stacking of two nets' descriptors: each part is L2-normalised, concatenated, and
# normalised again, so both nets weigh the same.

# %%
both = stack([features_of(trained, test_images[:3], DIGITS_SETTINGS, cache),
              features_of(untrained, test_images[:3], DIGITS_SETTINGS, cache)])
print(both.shape, np.linalg.norm(both, axis=1))
halves = both.shape[1] // 2
assert np.allclose(np.linalg.norm(both, axis=1), 1, atol=1e-5)
assert np.allclose(np.linalg.norm(both[:, :halves], axis=1), np.linalg.norm(both[:, halves:], axis=1), atol=1e-5)

# %% [markdown]
# Each stacked descriptor has norm 1, and its two halves, one per net, have equal norms (1/√2 each).

# %% [markdown]
# ## VOC's average precision, two ways
#
# VOC reports, per class, the average precision of the ranking of the test images by SVM score. VOC 2007 (the
# paper's VOC-2007 column) averages the best precision at recall ≥ 0, 0.1, …, 1 (11 points); from 2010 on
# (VOC-2012 column) it is the area under the precision/recall curve made monotone. Images marked
# "difficult" (flag 0) are left out of both. On one ranking:

# %%
scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
flags = np.array([1, -1, 1, 1, 0, -1, -1, 1, -1, -1])
precision, recall = precision_recall(scores, flags)
print(f"11-point AP {average_precision(scores, flags, 'voc07'):.3f}, "
      f"area AP {average_precision(scores, flags, 'area'):.3f}")
assert len(recall) == int((flags != 0).sum())  # the difficult image is left out: one point per other image
assert average_precision(scores, flags, "voc07") != average_precision(scores, flags, "area")
fig, axis = plt.subplots(figsize=(5, 3.5))
axis.step(recall, np.maximum.accumulate(precision[::-1])[::-1], where="post", label="monotone (area AP)")
axis.plot(recall, precision, "o", label="precision at each threshold")
axis.vlines(np.linspace(0, 1, 11), 0, 1, colors="lightgrey", linewidth=0.8, label="11 recall points")
axis.set_xlabel("recall")
axis.set_ylabel("precision")
axis.legend(loc="lower left")
plt.show()

# %% [markdown]
# Nine points for ten images (the difficult one is left out), and two APs from the same ranking that differ
# (here in the third decimal): the 11-point rule samples the monotone curve at 11 recalls, the area rule
# integrates it. Papers quoting "VOC mAP" must say which.

# %% [markdown]
# ## On the paper's datasets
#
# The same pipeline runs on PASCAL VOC and Caltech from the command line, printing Table 11's columns:
#
#     minivgg transfer --dataset voc2007 --root VOCdevkit --weights vgg16.safetensors vgg19.safetensors
#     minivgg transfer --dataset caltech101 --root caltech --weights vgg16.safetensors --splits 3
#
# and `minivgg features IMAGES... --weights W --out features.npz` writes descriptors for any other use.
#
# ## Paper to code
#
# Appendix B's descriptor (dense application, global average pooling, flip, scales, L2 normalisation), stacking,
# and VOC's average precision, as `minivgg.transfer` has them:

# %%
print(inspect.getsource(extract))
print(inspect.getsource(stack))
print(inspect.getsource(average_precision))

# %% [markdown]
# > **Choices the paper leaves open, and minivgg's.**
# >
# > - *Where the normalisation goes.* The paper L2-normalises the descriptor; minivgg normalises each scale's
# >   and each net's part before stacking and the stack again, so that no part outweighs the others.
# > - *Ties in the ranking.* The VOC devkit sorts tied scores in the order the images are listed; minivgg treats
# >   a run of equal scores as one threshold by default (`ties="group"`), which does not depend on that order,
# >   and reproduces the devkit with `ties="devkit"`.
# > - *Difficult images* are left out of VOC's AP entirely, as the devkit does.
#
# ## Exercises
#
# **1. VOC 2007's AP.** `average_precision(scores, labels)`: the 11-point interpolated AP of one class (labels 1
# present, −1 absent, 0 difficult; the scores are distinct). **2. Stacking.** `stack(parts)`: each (N, D_i)
# part L2-normalised row by row, the parts concatenated, the result normalised again.

# %%
def average_precision_exercise(scores, labels):
    """VOC 2007's 11-point average precision of one class."""
    raise NotImplementedError  # your code here


def stack_exercise(parts):
    """A list of (N, D_i) descriptors -> (N, sum D_i), every row of norm 1, every part weighing the same."""
    raise NotImplementedError  # your code here


print(exercises.check_average_precision(average_precision_exercise))
print(exercises.check_stack(stack_exercise))

# %% [markdown]
# **3. On paper.**

# %%
exercises.check_answers(
    lesson_ranking_ap=None,       # the 11-point AP of the ranking above (three significant digits)?
    stacked_dimensions=None,      # VGG-16's fc7 at three scales, stacked: how many dimensions?
    stacked_norm_of_parts=None,   # two stacked descriptors: the norm of each part of the result?
)
