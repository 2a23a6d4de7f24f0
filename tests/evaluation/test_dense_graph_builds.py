"""Dense evaluation (Sect. 3.2) on the CuPy backend, through the GPU stand-ins (issue 26, item 8): a test set's
many image sizes make a bounded number of input shapes (each one costs a cuDNN graph per layer on a GPU),
the graph cache stays within its limit, FC1-as-a-convolution's weights are laid out once per evaluation and
not per batch, and building the fully-convolutional net allocates no throwaway weights on the host."""
import tracemalloc

import numpy as np
import pytest

import minivgg
from minivgg.evaluation.shape_buckets import bucketed_size, crop_to_bucket, shape_step
from minivgg.evaluation import posteriors
from minivgg.models import vgg


def _spread_of_sizes(count, rng, short=40):
    """Sizes with the short side ``short`` and aspect ratios from 1 to 2, both orientations."""
    longs = rng.integers(short, 2 * short + 1, count)
    return [(short, int(long)) if i % 3 else (int(long), short) for i, long in enumerate(longs)]


@pytest.fixture
def images(rng):
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in _spread_of_sizes(60, rng)]


@pytest.fixture
def model():
    net = vgg("A", num_classes=5, input_size=32, width_multiplier=1 / 16, fc_width=8, weight_init="glorot", seed=0)
    net.preprocessing = minivgg.preprocessing.paper_mean_rgb((120.0, 110.0, 100.0))
    return net


def test_buckets_crop_only_the_long_side_by_less_than_a_step(rng):
    step = shape_step(224)
    assert step == 32 and shape_step(32) == 5
    for height, width in _spread_of_sizes(50, rng, short=384):
        new_height, new_width = bucketed_size(height, width, step)
        assert min(new_height, new_width) == 384 and (max(new_height, new_width) - 384) % step == 0
        assert 0 <= max(height, width) - max(new_height, new_width) < step
        assert (new_height <= new_width) if height <= width else (new_height >= new_width)  # orientation kept
    image = np.arange(40 * 53 * 3, dtype=np.uint8).reshape(40, 53, 3)
    np.testing.assert_array_equal(crop_to_bucket(image, 5), image[:, 1:51])  # centred: 1 left, 2 right


def test_input_shapes_stay_within_two_per_bucket_whatever_the_number_of_sizes(standin_gpu, model, images):
    _, _, backend = standin_gpu()
    minivgg.set_backend("cupy")
    from minivgg.backends.cupy import conv_cudnn
    seen, graph_key = set(), conv_cudnn.graph_key

    def spy(kind, x_shape, w_shape, *rest, **keywords):
        if kind == "fprop" and w_shape[1] == 3:  # the first convolution: it sees the images' shapes
            seen.add(tuple(x_shape))
        return graph_key(kind, x_shape, w_shape, *rest, **keywords)

    conv_cudnn.graph_key = spy
    try:
        posteriors(model.to_backend(), images, "dense", scales=(32,), batch_size=8, shape_buckets=True)
    finally:
        conv_cudnn.graph_key = graph_key
    from minivgg.data.transforms import rescaled_size
    rescaled = {rescaled_size(image.shape[0], image.shape[1], 32) for image in images}
    buckets = {bucketed_size(h, w, shape_step(32)) for h, w in rescaled}
    assert len(rescaled) > 2 * len(buckets)  # the test set has many more sizes than buckets
    assert len(seen) <= 2 * len(buckets)     # a group's full batches and its last one


def test_the_graph_cache_keeps_at_most_its_limit_and_the_numbers_do_not_change(standin_gpu, model, images,
                                                                               monkeypatch):
    expected = posteriors(model, images[:20], "dense", scales=(32, 37), batch_size=8)  # the NumPy backend
    standin_gpu()
    minivgg.set_backend("cupy")
    from minivgg.backends.cupy import conv_cudnn
    monkeypatch.setattr(conv_cudnn, "GRAPH_CACHE_LIMIT", 12)
    found = posteriors(model.to_backend(), images[:20], "dense", scales=(32, 37), batch_size=8)
    assert conv_cudnn.cached_graphs() == 12
    np.testing.assert_allclose(found, expected, rtol=1e-5)


def test_fc1_as_a_convolution_is_laid_out_once_per_evaluation_not_per_batch(standin_gpu, rng):
    cupy, _, _ = standin_gpu()
    minivgg.set_backend("cupy")
    model = vgg("A", num_classes=5, input_size=64, width_multiplier=1 / 16, fc_width=40, seed=0)
    fc1_layout = (40, 2, 2, 32)  # FC1 as a 2x2 convolution over 32 channels, its weights channels-last
    relayouts, ascontiguousarray = [], cupy.ascontiguousarray

    def spy(array, dtype=None):
        result = ascontiguousarray(array, dtype)
        if result.shape == fc1_layout and array.data.ptr != result.data.ptr:
            relayouts.append(result.shape)
        return result

    cupy.ascontiguousarray = spy
    square = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(12)]
    posteriors(model, square, "dense", scales=(64,), flip=True, batch_size=4)  # 6 batches
    assert len(relayouts) == 1


def test_the_fully_convolutional_net_allocates_no_throwaway_weights_on_the_host():
    model = vgg("A", num_classes=10, input_size=224, width_multiplier=1 / 16, fc_width=4096, seed=0)
    fc1_bytes = model.classifier[0].params["W"].nbytes  # 4096 x 1568 float32: 25.7 MB
    tracemalloc.start()
    try:
        dense = model.to_fully_convolutional()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dense[len(model.features)].params["W"].shape == (4096, 32, 7, 7)
    assert peak < fc1_bytes / 100, f"to_fully_convolutional allocated {peak} bytes at its peak"
