"""Lesson 7's exercises: the FC layer as a convolution, dense evaluation's score-map averaging with the
flipped image, multi-crop's grid, and questions on the shapes of Sect. 3.2.

::

    from minivgg.exercises import dense_evaluation
    dense_evaluation.check_fc_as_convolution(fc_as_convolution)   # (W (out, C*k*k), C, k) -> (out, C, k, k)
    dense_evaluation.check_dense_posteriors(dense_posteriors)     # (dense_net, x, flip) -> (N, classes)
    dense_evaluation.check_multi_crop_offsets(multi_crop_offsets) # (height, width, crop) -> 25 (top, left)
"""
import numpy as np

from ..backend import asarray, get_backend, to_host
from ..evaluation.posteriors import multi_crop_offsets as library_offsets
from ..evaluation.posteriors import posteriors
from ..layers import Conv2d, Linear
from ..models import vgg
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library

__all__ = ["check_fc_as_convolution", "check_dense_posteriors", "check_multi_crop_offsets", "QUESTIONS",
           "check_answers"]


def _tiny(config="A", input_size=224, **options):
    """A thin net of ``config`` (1/64 of the channels: 1 to 8) whose FC layers are small; seeded."""
    settings = dict(width_multiplier=1 / 64, fc_width=8, num_classes=5, seed=0, weight_init="he")
    return vgg(config, input_size=input_size, **dict(settings, **options))


# ---- FC1 as a convolution -----------------------------------------------------------------------------------

def _library_fc_as_convolution(W, channels, side):
    """What ``VGG.to_fully_convolutional`` makes of FC1 weights ``W``: the kernel of its first KxK conv."""
    model = _tiny(input_size=32 * side, width_multiplier=channels / 512, fc_width=W.shape[0])
    first_fc = next(layer for layer in model.classifier.layers if isinstance(layer, Linear))
    first_fc.params["W"] = asarray(W)
    layers = model.to_fully_convolutional().layers
    after_features = len(model.features.layers)  # FC1's convolution comes right after the last max-pool
    conv = next(layer for layer in layers[after_features:] if isinstance(layer, Conv2d))
    return np.asarray(to_host(conv.params["W"]))


def _fc_cases():
    rng = np.random.default_rng(16)
    cases = []
    for out, channels, side, dtype in ((8, 8, 7, np.float32), (6, 4, 3, np.float64), (5, 8, 2, np.float32)):
        W = rng.normal(0, 0.01, (out, channels * side * side)).astype(dtype)
        cases.append(Case(f"FC1 of {out} units on a {channels}x{side}x{side} map, {np.dtype(dtype).name}",
                          (W, channels, side)))
    return cases


def _channels_last(W, channels, side):
    return W.reshape(len(W), side, side, channels).transpose(0, 3, 1, 2)


def _rows_columns_swapped(W, channels, side):
    return W.reshape(len(W), channels, side, side).transpose(0, 1, 3, 2)


FC_MISTAKES = (
    Mistake.computing(_channels_last,
                      "your kernel reads the flattened map as (height, width, channels): a transposed reshape; "
                      "Flatten orders it (channels, height, width), as NCHW memory is laid out",
                      "W.reshape(out, C, k, k): no transpose needed"),
    Mistake.computing(_rows_columns_swapped, "your kernel's rows and columns are swapped: the flattened index is "
                                             "(c * k + row) * k + column"),
)


def check_fc_as_convolution(fc_as_convolution):
    """Compare ``fc_as_convolution(W, in_channels, kernel_size) -> (out, C, k, k)`` with the kernel
    ``VGG.to_fully_convolutional`` gives FC1 (the convolution computing the same numbers on the last map)."""
    return compare_with_library("fc_as_convolution", fc_as_convolution, _library_fc_as_convolution, _fc_cases(),
                                FC_MISTAKES, ("FC1's input is the last feature map flattened by Flatten; the "
                                              "kernel must multiply each map value by the weight FC1 gives it",))


# ---- dense posteriors ---------------------------------------------------------------------------------------

def _dense_model():
    """A thin A on 32x32 crops whose class scores spread by a few units over the map and the classes (its
    last layer scaled down), so that the posteriors are neither uniform nor one-hot and every way of averaging
    gives a different answer."""
    model = _tiny(input_size=32, width_multiplier=1 / 8, fc_width=16, num_classes=6).eval()
    last = [layer for layer in model.classifier.layers if isinstance(layer, Linear)][-1]
    last.params["W"] = get_backend().asarray(np.asarray(to_host(last.params["W"])) * 0.01)
    return model


def _dense_cases():
    rng = np.random.default_rng(17)
    model = _dense_model()
    cases = []
    for shape, flip in (((2, 64, 96, 3), True), ((3, 96, 64, 3), False), ((1, 64, 128, 3), True)):
        images = rng.integers(0, 256, shape).astype(np.uint8)
        x = np.asarray(model.preprocessing.apply(images))
        cases.append(Case(f"{shape[0]} images of {shape[1]}x{shape[2]}, flip={flip}",
                          (model.to_fully_convolutional().eval(), x, flip), {"images": images, "model": model}))
    return cases


def _library_dense(net, x, flip, images, model):
    return posteriors(model, list(images), "dense", scales=(min(images.shape[1:3]),), flip=flip)


def _learner_dense(dense_posteriors):
    def call(net, x, flip, images, model):
        return np.asarray(to_host(dense_posteriors(net, asarray(x), flip)), dtype=np.float64)
    return call


def _softmax(scores):
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


def _score_maps(net, x):
    return np.asarray(to_host(net.forward(asarray(x))), dtype=np.float64)


def _dense_variant(average="scores-then-softmax", flips="posteriors", flip_axis=3):
    def call(net, x, flip, images, model):
        views = [x, np.flip(x, axis=flip_axis)] if flip and flips != "none" else [x]
        maps = [_score_maps(net, np.ascontiguousarray(view)) for view in views]
        if average == "softmax-then-average":
            per_view = [_softmax(m).mean(axis=(2, 3)) for m in maps]
        else:
            per_view = [_softmax(m.mean(axis=(2, 3))) for m in maps]
        if flips == "scores":
            return _softmax(np.mean([m.mean(axis=(2, 3)) for m in maps], axis=0))
        return np.mean(per_view, axis=0)
    return call


DENSE_MISTAKES = (
    Mistake.computing(_dense_variant(flips="none"),
                      "right without the flip, wrong with it: with flip=True, also run the net on the horizontally "
                      "flipped images and average the two posteriors", "x[:, :, :, ::-1] flips NCHW images "
                      "horizontally"),
    Mistake.computing(_dense_variant(flip_axis=2),
                      "you flipped the images upside down: a horizontal flip reverses the columns, the last axis of "
                      "NCHW", "x[:, :, :, ::-1]"),
    Mistake.computing(_dense_variant(average="softmax-then-average"),
                      "you apply the soft-max at every position and average the posteriors: the paper averages the "
                      "class score map over space first (sum-pooling), then applies the soft-max once",
                      "softmax(score_map.mean(axis=(2, 3)))"),
    Mistake.computing(_dense_variant(flips="scores"),
                      "you average the scores of the image and its flip before the soft-max: the paper averages "
                      "their soft-max posteriors (Sect. 3.2)"),
)


def check_dense_posteriors(dense_posteriors):
    """Compare ``dense_posteriors(dense_net, x, flip) -> (N, classes)`` with ``minivgg.evaluation.posteriors(...,
    "dense")`` at one scale. ``dense_net`` is ``model.to_fully_convolutional()``, ``x`` the preprocessed batch
    (N, 3, H, W); the class score map ``dense_net.forward(x)`` is (N, classes, h, w)."""
    return compare_with_library("dense_posteriors", _learner_dense(dense_posteriors), _library_dense, _dense_cases(),
                                DENSE_MISTAKES, ("the score map is (N, classes, h, w): one class score vector per "
                                                 "position of the net over the image",
                                                 "average the map over (h, w), apply the soft-max; with flip, do the "
                                                 "same on x[:, :, :, ::-1] and average the two posteriors"),
                                rtol=1e-5)


# ---- the multi-crop grid ------------------------------------------------------------------------------------

def _offsets_as_array(function):
    return lambda *arguments: np.array(function(*arguments), dtype=np.int64).reshape(-1, 2)


def _crop_cases():
    return [Case(f"a {h}x{w} image, {crop}x{crop} crops", (h, w, crop))
            for h, w, crop in ((256, 341, 224), (384, 512, 224), (224, 300, 224), (45, 40, 32), (512, 683, 224))]


def _floor_grid(height, width, crop):
    return np.array([(int(i * (height - crop) / 4), int(j * (width - crop) / 4)) for i in range(5) for j in range(5)])


def _column_major(height, width, crop):
    return np.array(library_offsets(height, width, crop)).reshape(5, 5, 2).transpose(1, 0, 2).reshape(-1, 2)


def _over_the_image(height, width, crop):
    return np.array([(int(round(i * height / 5)), int(round(j * width / 5))) for i in range(5) for j in range(5)])


CROP_MISTAKES = (
    Mistake.computing(_floor_grid, "a crop is one pixel off: round the positions to the nearest pixel, as the "
                                   "library does", "round(i * (height - crop) / 4)"),
    Mistake.computing(_column_major, "right crops, wrong order: row by row, the top row first, left to right"),
    Mistake.computing(_over_the_image, "your crops leave the image: the last one must start at height - crop, so "
                                       "that it ends at the border", "top = round(i * (height - crop) / 4), "
                                                                     "i = 0 ... 4"),
)


def check_multi_crop_offsets(multi_crop_offsets):
    """Compare ``multi_crop_offsets(height, width, crop) -> 25 (top, left)`` with
    ``minivgg.evaluation.posteriors.multi_crop_offsets``: a 5x5 grid from the corners, evenly spaced, row by row."""
    return compare_with_library("multi_crop_offsets", _offsets_as_array(multi_crop_offsets),
                                _offsets_as_array(library_offsets), _crop_cases(), CROP_MISTAKES,
                                ("the grid has 5 rows and 5 columns; its corners are the image's corners",))


# ---- questions ----------------------------------------------------------------------------------------------

def _score_map_shape(height=384, width=512):
    net = _tiny("D").eval().to_fully_convolutional()
    return tuple(int(side) for side in net.forward(asarray(np.zeros((1, 3, height, width), np.float32))).shape[2:])


def _fc1_kernel():
    net = _tiny("D").to_fully_convolutional()
    return next(layer.kernel_size for layer in net.layers if isinstance(layer, Conv2d) and layer.kernel_size > 3)


def _crops_per_image():
    return len(library_offsets(384, 512, 224)) * 2 * 3


QUESTIONS = {
    "fc6_kernel": Question("VGG-16's FC1 (fc6) as a convolution: its kernel size k (a k x k kernel)?", _fc1_kernel,
                           hints=("after five 2x2 poolings, how large is the last map of a 224x224 crop?",)),
    "score_map_shape": Question(
        "VGG-16 (trained on 224 crops) run densely on a 384x512 image: the (height, width) of its class score map?",
        _score_map_shape, hints=("the last conv map is 384/32 x 512/32; a 7x7 kernel fits (12 - 7 + 1) times down",),
        mistakes=((lambda: (384 // 32, 512 // 32),
                   ("that is the last conv map; fc6's 7x7 kernel makes it smaller",)),)),
    "multi_crop_count": Question(
        "Multi-crop evaluation at three scales with flips: how many crops are evaluated per image?", _crops_per_image,
        hints=("a 5x5 grid per scale, each crop also flipped",),
        mistakes=((lambda: _crops_per_image() // 2, ("each crop is also flipped",)),)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
