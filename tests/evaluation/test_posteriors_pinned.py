"""``posteriors`` pinned where mutation testing found it loose: every method is what it says at a scale above
the crop, each option reaches every half of "multi-crop+dense", and the bars, batches, modes and messages are
the ones asked for. Each test failed on the mutant it was written against (benchmarks/RESULTS.md).

The net's inputs are 0-255 minus the mean, with Glorot weights, so its posteriors differ between images, crops
and flips by far more than the tolerances used here (checked in each test where it matters).
"""
import importlib
import re

import numpy as np
import pytest

import minivgg
from minivgg.backend import get_backend
from minivgg.data.transforms import centre_crop, rescale_smallest_side
from minivgg.evaluation.dense import forward_in_batches
from minivgg.evaluation.posteriors import multi_crop_offsets, posteriors
from minivgg.evaluation.shape_buckets import crop_to_bucket, shape_step

posteriors_module = importlib.import_module("minivgg.evaluation.posteriors")  # the package re-exports the function


@pytest.fixture(scope="module")
def model():
    net = minivgg.vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, weight_init="glorot",
                      seed=1)
    net.preprocessing = minivgg.preprocessing.paper_mean_rgb((120.0, 110.0, 100.0))
    return net.eval()  # no dropout in the posteriors computed by hand


@pytest.fixture
def images(rng):
    # Wider or taller than square, so that the crops, the buckets and the mirror all see something else.
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in [(40, 52, 3), (48, 36, 3), (40, 40, 3)]]


def _distinct(a, b, by=1e-3):
    return np.max(np.abs(a - b)) > by


def _softmax_of(model, crops):
    assert not model.training
    return forward_in_batches(model, model.preprocessing, crops, pool=get_backend().softmax)


def test_multi_crop_and_dense_is_the_mean_of_the_two_with_the_flip_and_the_buckets(model, images):
    both = posteriors(model, images, "multi-crop+dense", scales=(40,), flip=True, shape_buckets=True)
    multi = posteriors(model, images, "multi-crop", scales=(40,), flip=True)
    dense = posteriors(model, images, "dense", scales=(40,), flip=True, shape_buckets=True)
    np.testing.assert_allclose(both, (multi + dense) / 2, rtol=1e-9)
    # Each option changes the answer, so a half that lost it would be seen.
    assert _distinct(multi, dense)
    assert _distinct(multi, posteriors(model, images, "multi-crop", scales=(40,), flip=False))
    assert _distinct(dense, posteriors(model, images, "dense", scales=(40,), flip=True))  # buckets off


def test_dense_with_shape_buckets_is_dense_on_each_image_s_bucket_crop(model, images):
    rescaled = [rescale_smallest_side(image, 40) for image in images]
    cropped = [np.ascontiguousarray(crop_to_bucket(image, shape_step(32))) for image in rescaled]
    assert cropped[0].shape == (40, 50, 3)  # 52 lowered to 40 plus a multiple of 5 (32 / 224 of 32, rounded)
    expected = posteriors(model, cropped, "dense", scales=(40,), flip=True)
    np.testing.assert_allclose(posteriors(model, images, "dense", scales=(40,), flip=True, shape_buckets=True),
                               expected, rtol=1e-9)


def test_single_crop_above_the_crop_size_is_the_centre_crop_and_its_mirror(model, images):
    views = [rescale_smallest_side(image, 40) for image in images]
    plain = _softmax_of(model, [np.ascontiguousarray(centre_crop(view, 32)) for view in views])
    mirrored = _softmax_of(model, [np.ascontiguousarray(centre_crop(view[:, ::-1], 32)) for view in views])
    assert _distinct(plain, mirrored)
    np.testing.assert_allclose(posteriors(model, images, "single-crop", scales=(40,), flip=True),
                               (plain + mirrored) / 2, rtol=1e-9)
    np.testing.assert_allclose(posteriors(model, images, "single-crop", scales=(40,), flip=False), plain, rtol=1e-9)


def test_multi_crop_above_the_crop_size_is_the_mean_of_the_grid_s_crops_and_their_mirrors(model, images):
    expected = []
    for image in images:
        view = rescale_smallest_side(image, 40)
        per_flip = []
        for seen in (view, view[:, ::-1]):
            crops = [np.ascontiguousarray(seen[top:top + 32, left:left + 32])
                     for top, left in multi_crop_offsets(seen.shape[0], seen.shape[1], 32)]
            per_flip.append(_softmax_of(model, crops).mean(axis=0))  # each crop's posteriors, averaged
        expected.append(np.mean(per_flip, axis=0))
    got = posteriors(model, images, "multi-crop", scales=(40,), flip=True)
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-9)
    assert _distinct(got, posteriors(model, images, "single-crop", scales=(40,), flip=True))


@pytest.mark.parametrize("method", ["single-crop", "dense", "multi-crop", "multi-crop+dense"])
def test_the_batch_size_reaches_every_forward_pass(model, images, monkeypatch, method):
    sizes = []

    def recording(function):
        def wrapper(*args, **kwargs):
            sizes.append(kwargs["batch_size"] if "batch_size" in kwargs else args[3 if function is forward else 5])
            return function(*args, **kwargs)
        return wrapper

    forward, dense = posteriors_module.forward_in_batches, posteriors_module.dense_outputs
    monkeypatch.setattr(posteriors_module, "forward_in_batches", recording(forward))
    monkeypatch.setattr(posteriors_module, "dense_outputs", recording(dense))
    posteriors(model, images, method, scales=(40,), flip=False, batch_size=3)
    assert sizes and set(sizes) == {3}


@pytest.mark.parametrize("batch_size", [1, 2])
def test_batches_of_one_or_two_images_give_the_same_posteriors(model, images, batch_size):
    np.testing.assert_allclose(posteriors(model, images, "dense", scales=(40,), batch_size=batch_size),
                               posteriors(model, images, "dense", scales=(40,)), rtol=1e-9)


def test_a_single_scale_may_be_given_as_a_number(model, images):
    np.testing.assert_array_equal(posteriors(model, images, "dense", scales=40),
                                  posteriors(model, images, "dense", scales=(40,)))


def test_the_model_s_training_mode_is_given_back(model, images):
    try:
        for mode in (True, False):
            model.train(mode)
            posteriors(model, images[:1], "dense", scales=(32,))
            assert model.training is mode
    finally:
        model.eval()


def test_progress_shows_a_bar_over_the_scales_for_each_half(model, images, capsys):
    posteriors(model, images[:1], "multi-crop+dense", scales=(32, 40), progress=True)
    err = capsys.readouterr().err
    for method in ("multi-crop", "dense"):
        assert f"{method} evaluation: 100%" in err and "2/2" in err
    assert "scale/s" in err or "s/scale" in err
    posteriors(model, images[:1], "dense", scales=(32,), progress=False)
    assert capsys.readouterr().err == ""


def test_an_image_that_is_not_one_is_named_by_its_place(model, images):
    with pytest.raises(TypeError, match="image 2 is a float"):
        posteriors(model, images[:2] + [3.5], "dense", scales=(40,))


def test_non_finite_scores_are_named_with_the_preprocessing_that_overflowed():
    from minivgg.errors import NonFiniteOutputError

    net = minivgg.vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, seed=1)
    net.preprocessing = minivgg.preprocessing.paper_mean_rgb((120.0, 110.0, 100.0))
    _, layer, key = next(iter(net.named_parameters()))
    layer.params[key][...] = np.nan
    image = np.full((32, 32, 3), 100, np.uint8)
    with pytest.raises(NonFiniteOutputError) as error:
        posteriors(net, [image], "single-crop", scales=(32,))
    message = str(error.value)
    assert "the model's scores are NaN or infinite" in message and f"({net.preprocessing})" in message


# --- the dense loop (dense.py) and the finite-output check ---------------------------------------------------------
def test_a_float64_net_computes_in_float64_from_the_preprocessed_pixels(images):
    from minivgg.evaluation.dense import dense_outputs

    net = minivgg.vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, weight_init="glorot",
                      seed=1, dtype=np.float64).eval()
    square = [image[:32, :32] for image in images]
    x = net.preprocessing.apply(np.stack(square)).astype(np.float64)
    expected = net.forward(x)
    got = forward_in_batches(net, net.preprocessing, square, batch_size=2)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    maps = dense_outputs(net.to_fully_convolutional(), net.preprocessing, square, pool=None)
    assert isinstance(maps, list) and [m.shape for m in maps] == [(5, 1, 1)] * 3  # pool=None: each map whole
    np.testing.assert_allclose(np.stack(maps)[:, :, 0, 0], expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_no_images_is_refused_by_name(model):
    with pytest.raises(ValueError, match=r"^forward_in_batches: no images \(a batch of 0\)$"):
        forward_in_batches(model, model.preprocessing, [])


def test_the_finite_check_names_at_most_five_images_and_passes_nothing_through():
    from minivgg.errors import NonFiniteOutputError
    from minivgg.evaluation.posteriors import check_finite_outputs

    empty = np.zeros((0, 5))
    assert check_finite_outputs(empty, "scores", np.float32, "p") is not None
    for bad, listed in ((5, "image 0, 1, 2, 3, 4)"), (7, "image 0, 1, 2, 3, 4 ...)")):
        outputs = np.ones((9, 2, 3))
        outputs[:bad, 1, 2] = np.inf
        with pytest.raises(NonFiniteOutputError, match=re.escape(f"for {bad} of 9 images ({listed}")):
            check_finite_outputs(outputs, "scores", np.float32, "p")


@pytest.mark.parametrize("dtype, scale, batch_size", [(np.float32, 48, 5), (np.float64, None, 1)])
def test_the_dense_memory_check_asks_for_one_batch_of_the_largest_rescaled_image(monkeypatch, dtype, scale,
                                                                                 batch_size):
    import minivgg.limits
    from minivgg.data.transforms import rescaled_size
    from minivgg.evaluation.dense import dense_outputs
    from minivgg.summary import evaluation_memory

    net = minivgg.vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, weight_init="glorot",
                      seed=1, dtype=dtype).eval().to_fully_convolutional()
    asked = []
    monkeypatch.setattr(minivgg.limits, "check_memory", lambda needed, what: asked.append((needed, what)))
    images = [np.zeros((40, 52, 3), np.uint8), np.zeros((36, 36, 3), np.uint8), np.zeros((40, 52, 3), np.uint8)]
    dense_outputs(net, minivgg.preprocessing.paper_mean_rgb((1.0, 2.0, 3.0)), images, scale, batch_size=batch_size)
    height, width = rescaled_size(40, 52, scale) if scale else (40, 52)  # the largest: two images of it
    batch = min(batch_size, 2)
    itemsize = np.dtype(dtype).itemsize
    needed = evaluation_memory(net.layers, height, width, batch, itemsize) + 4 * 3 * height * width * batch
    assert asked == [(needed, f"dense evaluation of {batch} image{'s' if batch > 1 else ''} rescaled to "
                              f"{width}x{height} pixels")]


# --- defaults, messages and the nets the dense loop takes (the fourth round of mutation testing) -------------------
def _recorded_batches(monkeypatch):
    """The number of images in each batch fed to a net, appended as the batches are fed."""
    dense_module = importlib.import_module("minivgg.evaluation.dense")
    sizes, feed = [], dense_module.device_batches

    def recording(pixels, preprocessing):
        for x, y in feed(pixels, preprocessing):
            sizes.append(len(x))
            yield x, y

    monkeypatch.setattr(dense_module, "device_batches", recording)
    return sizes


def test_the_documented_default_batch_size_of_32_reaches_every_forward_pass(model, monkeypatch):
    from minivgg.evaluation.dense import dense_outputs

    images = [np.full((32, 32, 3), i, np.uint8) for i in range(33)]
    sizes = _recorded_batches(monkeypatch)
    forward_in_batches(model, model.preprocessing, images)
    dense_outputs(model.to_fully_convolutional(), model.preprocessing, images)
    posteriors(model, images, "single-crop", scales=(32,), flip=False)
    assert sizes == [32, 1] * 3


def test_an_image_too_small_for_the_grid_is_named_with_its_size():
    with pytest.raises(ValueError, match=r"^multi-crop: image 20x40 is smaller than the 32x32 crop$"):
        multi_crop_offsets(20, 40, 32)


def test_the_finite_check_marks_a_cut_list_of_six_images_and_checks_one_value_per_image():
    from minivgg.errors import NonFiniteOutputError
    from minivgg.evaluation.posteriors import check_finite_outputs

    outputs = np.ones((9, 4))
    outputs[:6, 3] = np.nan
    with pytest.raises(NonFiniteOutputError, match=re.escape("for 6 of 9 images (image 0, 1, 2, 3, 4 ...)")):
        check_finite_outputs(outputs, "scores", np.float32, "p")
    vector = np.array([1.0, -np.inf, 2.0])  # one value per image
    with pytest.raises(NonFiniteOutputError, match=re.escape("for 1 of 3 images (image 1)")):
        check_finite_outputs(vector, "scores", np.float32, "p")
    np.testing.assert_array_equal(check_finite_outputs(vector[::2], "scores", np.float32, "p"), [1.0, 2.0])


def test_the_error_table_takes_one_class_and_refuses_no_images_by_name():
    from minivgg.evaluation.posteriors import error_table

    [row] = error_table([{"posteriors": np.ones((3, 1)), "labels": [0, 0, 0], "method": "dense"}])
    assert row == {"method": "dense", "top1_error": 0.0, "top5_error": 0.0}
    with pytest.raises(ValueError, match="^top_k_error: no images to measure$"):
        error_table([{"posteriors": np.ones((0, 5)), "labels": np.zeros(0, np.int64)}])
    with pytest.raises(ValueError, match=r"^labels reach class 5 but the model has 5 classes$"):
        error_table([{"posteriors": np.ones((2, 5)), "labels": [0, 5]}])


class _Recording(minivgg.layers.Layer):
    """One layer as the whole net: the identity, which notes the dtype of what it was given. With ``dtype`` its
    parameter's dtype, without one it has no parameters (``dtype`` None)."""

    def __init__(self, dtype=None):
        super().__init__()
        if dtype is not None:
            self.params["W"] = np.zeros(1, dtype)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.dtype)
        return x


@pytest.mark.parametrize("dtype", [None, np.float16, np.float64])
def test_one_layer_takes_the_pixels_in_its_dtype_and_its_own_memory_is_checked(images, monkeypatch, dtype):
    import minivgg.limits
    from minivgg.evaluation.dense import dense_outputs
    from minivgg.summary import evaluation_memory

    asked = []
    monkeypatch.setattr(minivgg.limits, "check_memory", lambda needed, what: asked.append((needed, what)))
    layer, preprocessing = _Recording(dtype), minivgg.preprocessing.paper_mean_rgb((120.0, 110.0, 100.0))
    means = dense_outputs(layer, preprocessing, images[:2], batch_size=4)
    preprocessed = [preprocessing.apply(image[None]).astype(dtype or np.float32) for image in images[:2]]
    np.testing.assert_array_equal(means, [p.mean(axis=(2, 3))[0] for p in preprocessed])
    assert layer.seen == [np.dtype(dtype or np.float32)] * 2  # None: the float32 pixels as they are
    itemsize = np.dtype(dtype or np.float32).itemsize
    assert asked == [(evaluation_memory([layer], 40, 52, 1, itemsize) + 4 * 3 * 40 * 52,
                      "dense evaluation of 1 image rescaled to 52x40 pixels")]


def test_the_memory_check_asks_for_the_batch_that_needs_the_most(monkeypatch):
    """Three images of 36x36 in one batch need more than one of 40x52, which is the largest; and of two sizes
    that batch alone, the largest area, which is neither the widest nor the tallest, is asked for."""
    import minivgg.limits
    from minivgg.evaluation.dense import dense_outputs
    from minivgg.summary import evaluation_memory

    net = minivgg.vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, weight_init="glorot",
                      seed=1).eval().to_fully_convolutional()
    asked = []
    monkeypatch.setattr(minivgg.limits, "check_memory", lambda needed, what: asked.append((needed, what)))

    def needed(height, width, batch):
        return evaluation_memory(net.layers, height, width, batch, 4) + 4 * 3 * height * width * batch

    square, wide = np.zeros((36, 36, 3), np.uint8), np.zeros((40, 52, 3), np.uint8)
    dense_outputs(net, net.preprocessing, [wide, square, square, square], batch_size=5)
    assert needed(36, 36, 3) > needed(40, 52, 1)
    assert asked[-1] == (needed(36, 36, 3), "dense evaluation of 3 images rescaled to 36x36 pixels")
    tall, wider, largest = (np.zeros(shape, np.uint8) for shape in [(64, 33, 3), (33, 70, 3), (50, 50, 3)])
    dense_outputs(net, net.preprocessing, [tall, largest, wider], batch_size=5)
    assert asked[-1] == (needed(50, 50, 1), "dense evaluation of 1 image rescaled to 50x50 pixels")


def test_a_panorama_is_refused_by_its_size_before_the_net_runs(model):
    from minivgg.errors import TooLargeError
    from minivgg.evaluation.dense import dense_outputs

    with pytest.raises(TooLargeError, match=r"^an image of 680x40 pixels: 680x40 pixels has an aspect ratio of 17:1"):
        dense_outputs(model.to_fully_convolutional(), model.preprocessing, [np.zeros((40, 680, 3), np.uint8)])


def test_images_of_one_size_and_another_depth_go_into_separate_batches():
    from minivgg.evaluation.dense import group_by_size

    rgb, grey, rgba = np.zeros((4, 4, 3)), np.zeros((4, 4)), np.zeros((4, 4, 4))
    assert group_by_size([rgb, grey, rgb, rgba, grey]) == [[0, 2], [1, 4], [3]]


def test_centre_crops_mirror_the_rescaled_image_when_asked(images):
    from minivgg.evaluation.dense import centre_crops

    crops, sizes = centre_crops(images, 40, 32)
    mirrored, mirrored_sizes = centre_crops(images, 40, 32, flip=True)
    assert sizes == mirrored_sizes == [(40, 52), (53, 40), (40, 40)]
    for image, crop, mirror in zip(images, crops, mirrored):
        rescaled = rescale_smallest_side(image, 40)
        np.testing.assert_array_equal(crop, centre_crop(rescaled, 32))
        np.testing.assert_array_equal(mirror, centre_crop(rescaled[:, ::-1], 32))
        assert mirror.flags.c_contiguous and _distinct(mirror.astype(float), crop.astype(float))
