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
# # Lesson 10: localisation — a VGG that regresses boxes (Appendix A)
#
# The VGG team won the ILSVRC-2014 *localisation* task with the classification net itself: the last
# fully-connected layer predicts a bounding box — centre x, centre y, width, height — instead of class
# scores, trained with a Euclidean loss from the classification weights. Two choices (Table 8): one box for
# all classes (**single-class regression, SCR**) or one per class (**per-class regression, PCR**), and
# fine-tuning **all layers** or only the **first two FC layers**. At test time (Table 9) the box net runs
# densely over the whole image, like dense classification, and the boxes of all positions and scales are
# merged greedily as in OverFeat, each rated by the classifier's posteriors.
#
# Everything here runs in about a minute on a laptop CPU: the "images" are scikit-learn's real handwritten
# digits placed on its two real photographs (nothing is downloaded), and the nets are a quarter-width
# configuration A on 32×32 crops.

# %%
import inspect
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

from minivgg.localisation import (encode_boxes, evaluate_localisation, fine_tune_localisation,
                                  format_localisation_table, greedy_merge, localisation_net, localise,
                                  mean_relative_size, train_classifier_on_boxes)
from minivgg.exercises import localisation as exercises
from minivgg.localisation import match_scores
from minivgg.localisation.draw import draw_boxes
from minivgg.localisation.recipe import digit_scenes_run

run = digit_scenes_run(seed=0, classifier_epochs=8, localisation_epochs=6)
splits, options = run.splits, run.options
print({name: len(split) for name, split in splits.items()}, "scenes of", options["size"], "x", options["size"])

figure, axes = plt.subplots(1, 6, figsize=(12, 2.3))
for ax, index in zip(axes, range(6)):
    image, label, boxes = splits["train"].load(index)
    draw_boxes(ax, image, truth=boxes, truth_labels=[splits["train"].class_names[label]])
figure.suptitle("training scenes and their ground-truth boxes (green)")
plt.show()

# %% [markdown]
# ## What the net regresses
#
# A box is predicted relative to the square window the net sees: its centre and size divided by the window's
# side. The box that fills the window is (0.5, 0.5, 1, 1) at any image size, so the loss means the same at
# S = 256, 384 or, here, 64; a box cut by the crop just reaches beyond [0, 1].

# %%
encoded = encode_boxes([[16, 16, 48, 48], [0, 0, 384, 384], [20, 8, 40, 40]], [(16, 16, 32), (0, 0, 384), (16, 16, 32)])
print(encoded)
assert np.allclose(encoded[0], [0.5, 0.5, 1, 1]) and np.allclose(encoded[1], [0.5, 0.5, 1, 1])
assert encoded[2][1] - encoded[2][3] / 2 < 0  # its top edge (centre y minus half the height) is above the window

# %% [markdown]
# The box that fills its window is (0.5, 0.5, 1, 1) at 32 pixels and at 384; the third box, cut by its window,
# reaches below 0 at the top.

# %% [markdown]
# ## The classification net first
#
# The localisation nets start from a trained classifier. It is trained on crops that hold the whole digit
# (32×32 windows of the 64×64 scenes at the fixed S = 64), with the training loop of Sect. 3.1.

# %%
start = time.perf_counter()
folder = tempfile.mkdtemp()
history = train_classifier_on_boxes(run.classifier, splits["train"], splits["val"], f"{folder}/classifier",
                                    options["scale"], run.settings("classifier"), min_object_fraction=1.0)["history"]
print(f"classifier: training top-1 error {history[-1]['train_top1_error']:.0%} after {len(history)} epochs "
      f"({time.perf_counter() - start:.0f} s)")
classifier_error = history[-1]["train_top1_error"]
assert classifier_error > 0.2

# %% [markdown]
# The classifier is far from trained: after its 8 epochs it still gets a large share of its own training crops
# wrong (the printed error; the embedded run stops there to keep the lesson to a few minutes). The localisation
# nets below start from its weights all the same, and in protocol 2 its top five classes decide which boxes are
# kept, so both protocols inherit its weakness.

# %% [markdown]
# ## Table 8 in miniature
#
# Three localisation nets from that classifier, fine-tuned with the same loop (the box loss replaces the
# soft-max through `train(..., objective=BoxRegression(net))`): SCR and PCR with only FC1/FC2 (and the new box
# layer) trained, as OverFeat did, and PCR with every layer trained. Testing protocol 1: the box from the
# central crop, for the ground-truth class.

# %%
nets = {}
for regression, fine_tune in (("SCR", "fc"), ("PCR", "fc"), ("PCR", "all")):
    start = time.perf_counter()
    net = localisation_net(run.classifier, regression, fine_tune, seed=1)
    fine_tune_localisation(net, splits["train"], splits["val"], f"{folder}/{regression}-{fine_tune}",
                           options["scale"], settings=run.settings("localisation"))
    nets[regression, fine_tune] = net
    print(f"{regression}, fine-tuning {fine_tune}: {net.num_parameters():,} trained parameters, "
          f"{time.perf_counter() - start:.0f} s")

rows = evaluate_localisation(splits["test"], list(nets.values()), scales=[options["scale"]],
                             baseline_size=mean_relative_size(splits["train"]))
print(format_localisation_table(rows))
table_8 = {(row["method"], row["regression"], row["fine_tuned"]): row["error"] for row in rows}
baselines = [error for (method, _, _), error in table_8.items() if not method.startswith("centre crop")]
scr_fc, pcr_fc, pcr_all = (table_8["centre crop, GT class", regression, layers]
                           for regression, layers in (("SCR", "fc"), ("PCR", "fc"), ("PCR", "all")))
assert min(baselines) >= 90 and max(scr_fc, pcr_fc, pcr_all) < min(baselines)
assert pcr_all < min(scr_fc, pcr_fc) and scr_fc < pcr_fc

# %% [markdown]
# Both baselines — the whole scene as the box, or a box of the average size in the centre — miss 90% of the
# digits or more: the digits are small and anywhere in the scene. Every fine-tuned net does better than the
# baselines, and fine-tuning all layers does best, as in the paper: the conv features of a classifier trained
# for seconds say little about *where* the digit is. The paper's other finding, PCR over SCR, is reversed here
# (SCR's error is the lower of the two FC-only nets'): it came from 1.3 million images, and here PCR gives each
# class's box a tenth of a thousand scenes (OverFeat, with less data than VGG, also found SCR better). This is
# one run of each net; the comparison is to be redone at a size where its spread can be measured.
#
# ## Protocol 2: dense boxes, merged
#
# The box net applied fully-convolutionally to the whole scene gives one box per 32-pixel step of its
# output map (2×2 positions at Q = 64, 3×3 at Q = 96), per class for PCR. For each of the classifier's
# top-5 classes, the boxes of all positions and scales are merged greedily (the closest pair by centre
# distance and overlap is averaged, until no pair is close enough), each merged box carrying the summed
# posteriors of its windows; the best one is the guess.

# %%
net = nets["PCR", "all"]
figure, axes = plt.subplots(3, 4, figsize=(12, 9.6))
for column, index in enumerate(range(4)):
    image, label, truth = splits["test"].load(index)
    answer = localise(net, run.classifier, image, options["test_scales"])
    # The ground-truth class's dense boxes, each rated by its window's posterior of that class.
    dense, ratings = answer.dense.boxes_for(label), answer.dense.posteriors[:, label]
    merged, scores, _ = greedy_merge(dense, ratings)
    draw_boxes(axes[0, column], image, faint=dense, truth=truth,
               title=f"{len(dense)} dense boxes of class {label}")
    draw_boxes(axes[1, column], image, merged[:1], [f"{label}: score {scores[0]:.2f}"], truth=truth,
               faint=merged[1:], title=f"merged into {len(merged)}; the best in red")
    guesses = [f"{c} ({answer.class_posteriors[c]:.0%})" for c in answer.classes]
    draw_boxes(axes[2, column], image, answer.boxes[:1], guesses[:1], truth=truth,
               title="guesses " + ", ".join(guesses[:3]))
figure.suptitle("dense boxes before (top) and after (middle) greedy merging; bottom: protocol 2's first "
                "guess; ground truth dashed green")
plt.show()

# %% [markdown]
# The merge itself, on hand-made boxes: two windows see one object, three another, one is a stray.

# %%
boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [51, 50, 61, 60], [50, 51, 60, 61],
                  [0, 80, 5, 85]], dtype=float)
merged, scores, members = greedy_merge(boxes, [0.4, 0.3, 0.2, 0.2, 0.2, 0.05])
for box, score, parts in zip(merged, scores, members):
    print(f"box {np.round(box, 2)} score {score:.2f} from inputs {parts}")
assert members == [[0, 1], [2, 3, 4], [5]] and np.allclose(scores, [0.7, 0.6, 0.05])

# %% [markdown]
# Three boxes come out: the first object's two windows (score 0.7), the second's three (0.6), and the stray
# alone (0.05), in decreasing order of score.

# %% [markdown]
# ## Table 9 in miniature: top-5 error with dense boxes
#
# Now the classes are the classifier's top five rather than the ground truth. Pooling several nets'
# boxes before merging ("the union of their sets of bounding box predictions") is the paper's fusion.

# %%
start = time.perf_counter()
some = splits["test"].subset(range(96))  # dense evaluation costs more: a third of the test scenes
rows = evaluate_localisation(some, [nets["PCR", "all"]], run.classifier, scales=options["test_scales"])
rows += evaluate_localisation(some, [nets["PCR", "all"], nets["SCR", "fc"]], run.classifier,
                              scales=options["test_scales"])
print(format_localisation_table([row for row in rows if row["method"].startswith("centre")][:1]
                                + [row for row in rows if row["method"].startswith("dense")]))
print(f"{len(some)} test scenes ({time.perf_counter() - start:.0f} s)")
centre_error = [row["error"] for row in rows if row["method"].startswith("centre")][0]
dense_errors = [row["error"] for row in rows if row["method"].startswith("dense")]
assert centre_error < min(dense_errors)

# %% [markdown]
# In the paper, dense application over the whole image beat the centre crop (Table 9 against Table 8),
# because ILSVRC's objects are often far from the centre. In this miniature it does not: the centre crop's error
# (with the ground-truth class) is below both dense rows', for two reasons worth knowing. The classes come
# from the weak classifier above, so the right class can be missing from the top five. And the geometry
# differs: VGG-D's windows are 224 pixels wide and step by 32, so seven overlapping windows see every object
# along each axis; a 32-pixel net's windows step by a whole window, so at Q = 64 the scene is cut into four
# disjoint windows and a digit is often split between them, while at Q = 96 the digits are larger than
# in training. The machinery is the paper's either way: `minivgg localize evaluate` prints these columns for
# nets of any size.
#
# ## What the full reproduction measured
#
# `minivgg reproduce` makes the same three comparisons with three seeds on a larger miniature: Fashion-MNIST
# items of 32 to 64 pixels placed on photographs, in 96×96 scenes (1,500 for training, 300 for testing). The
# classifier is net A trained on Fashion-MNIST and then on the scenes, at an eighth of the width; the box nets
# start from it. Its full run's measurements are committed with the repository
# (`docs/reproduction/results.json`); this cell reads them and trains nothing.

# %%
from minivgg.reproduction import committed_results

published = committed_results()
print(published.describe(["pcr-scr", "fine-tune-all", "dense-localisation"]))
measured = {name: published.measurement(f"localisation/{key}") for name, key in (
    ("classifier, training error (%)", "classifier/train-error"),
    ("classifier, top-1 test error (%)", "classifier/top-1"),
    ("classifier, top-5 test error (%)", "classifier/top-5"),
    ("whole image as the box (%)", "baseline/whole-image box"),
    ("mean-sized centre box (%)", "baseline/centre box"))}
for name, values in measured.items():
    print(f"{name:>34}: {np.round(values, 1)} per seed")
pcr_over_scr = published.claim("pcr-scr").gains
assert published.complete
assert [published.claim(key).verdict for key in ("pcr-scr", "fine-tune-all", "dense-localisation")] == \
    ["inconclusive"] * 3
assert np.all(pcr_over_scr < 0)  # SCR's error is the lower in every seed
assert np.all(measured["classifier, training error (%)"] > 30)
assert np.all(measured["classifier, top-5 test error (%)"] < 10)
boxes = np.concatenate([published.measurement(f"localisation/{key}") for key in (
    "SCR-fc/protocol-1", "PCR-fc/protocol-1", "PCR-all/protocol-1", "PCR-all/protocol-2")])
assert boxes.max() < measured["mean-sized centre box (%)"].min()

# %% [markdown]
# All three comparisons are inconclusive at this size. SCR's localisation error is below PCR's in every seed, as
# in this lesson's own run, the reverse of the paper's Table 8, but the 95% interval of the difference still
# contains zero. Each class's box of PCR learns from about 150 scenes where SCR's one box learns from all
# 1,500. Fine-tuning every layer and dense boxes with merging each gain in some seeds and lose in others. Every
# box net beats both baselines in every seed. The reproduction's classifier is better than this lesson's but
# still weak: it gets 32–43% of its own training crops wrong, and 47–56% of the test scenes at top-1. Its top
# five hold the right class for more than nine scenes in ten, which is what protocol 2 uses.
#
# ## Paper to code
#
# OverFeat's greedy merging as minivgg reads it, and the match score it merges by:

# %%
print(inspect.getsource(match_scores))
print(inspect.getsource(greedy_merge))

# %% [markdown]
# > **Choices the paper leaves open, and minivgg's.**
# >
# > - *The match score.* OverFeat merges by "the sum of the distance between centers of the two bounding boxes
# >   and the intersection area of the boxes"; taken literally the sum grows with the overlap, so identical boxes
# >   would merge last. minivgg uses the centre distance in units of the boxes' mean side plus 1 − IoU, and
# >   merges pairs scoring at most 0.75.
# > - *The box's coordinates.* The paper regresses "centre coordinates, width and height"; minivgg expresses
# >   them relative to the window the net sees, so one loss means the same at every scale.
# > - *Pixel convention.* ILSVRC's boxes are inclusive pixel indices (+1 in widths); minivgg's are continuous
# >   coordinates, x_max − x_min wide.
#
# ## Exercises
#
# **1. IoU.** `iou(box_a, box_b)` for two boxes (x_min, y_min, x_max, y_max): intersection over union, the
# ILSVRC criterion (a guess is right at IoU ≥ 0.5). **2. Greedy merging.** `greedy_merge(boxes, scores,
# threshold, match_scores)` returns `(merged_boxes, merged_scores)` in decreasing order of score, using the
# library's `match_scores(a, b)` (given to your function) for the pairwise distances.

# %%
def iou(box_a, box_b):
    """Intersection over union of two (x_min, y_min, x_max, y_max) boxes."""
    raise NotImplementedError  # your code here


def greedy_merge_exercise(boxes, scores, threshold, match_scores):
    """(N, 4) boxes, (N,) scores -> (merged boxes (M, 4), merged scores (M,)), highest score first."""
    raise NotImplementedError  # your code here


print(exercises.check_iou(iou))
print(exercises.check_greedy_merge(greedy_merge_exercise))

# %% [markdown]
# **3. On paper.**

# %%
exercises.check_answers(
    iou_half_shift=None,        # two equal squares, one shifted by half its side: IoU?
    match_half_shift=None,      # the same two: their match score?
    merged_at_threshold=None,   # do they merge at minivgg's threshold? 1 (yes) or 0 (no)
)
