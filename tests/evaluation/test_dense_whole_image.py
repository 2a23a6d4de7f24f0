"""Dense evaluation sees the whole image (Sect. 3.2): the fully convolutional net's max-poolings round up,
as the authors' Caffe does, so the class score map covers every pixel at every test scale Q; its pooling is
checked against a loop and by central differences, and the averaging of the score map is pinned on maps
larger than 1x1 with weights and inputs at realistic scale (outputs of order one, relative tolerances)."""
import numpy as np
import pytest

import minivgg
from minivgg import gradcheck
from minivgg.backend import asarray
from minivgg.evaluation import posteriors
from minivgg.layers import MaxPool2d
from minivgg.models import vgg
from minivgg.backends.shapes import output_size

from conftest import distinct_values

# A small net A whose weights keep the activations' scale through the ReLUs: outputs of order one.
SMALL_A = dict(num_classes=6, input_size=32, width_multiplier=1 / 8, fc_width=32, weight_init="glorot-relu")


@pytest.fixture(params=["numpy", "reference"])
def cpu_backend(request):
    return minivgg.set_backend(request.param)


@pytest.fixture(params=[name for name in ("numpy", "reference", "numba", "cupy") if name in minivgg.available_backends()])
def any_backend(request):
    """Every backend this machine has (Numba's kernels in its CUDA simulator without a GPU): the ceil mode
    pads with the backend's array module and calls the backend's own floor-mode op."""
    return minivgg.set_backend(request.param)


@pytest.mark.parametrize("size, kernel, stride, floor, ceil", [
    (32, 2, 2, 16, 16), (37, 2, 2, 18, 19), (5, 2, 2, 2, 3), (3, 2, 2, 1, 2), (7, 3, 2, 3, 3), (8, 3, 2, 3, 4),
    (4, 2, 3, 1, 2),  # stride wider than the window: the second window starts at row 3, inside the input
    (3, 1, 3, 1, 1),  # a last window that would start beyond the input is dropped, as Caffe drops it
])
def test_ceil_mode_output_size_is_caffes(size, kernel, stride, floor, ceil):
    assert output_size(size, kernel, stride, 0) == floor
    assert output_size(size, kernel, stride, 0, ceil_mode=True) == ceil


def _caffe_max_pool(x, kernel, stride):
    """Caffe's ceil-mode max-pooling as loops: each window clipped to the input."""
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kernel, stride, 0, True), output_size(w, kernel, stride, 0, True)
    out = np.empty((n, c, out_h, out_w), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, :, i * stride:min(i * stride + kernel, h), j * stride:min(j * stride + kernel, w)]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


SHAPES = [(2, 2, 2, 2, 5, 7), (2, 2, 1, 3, 6, 6), (3, 2, 2, 2, 7, 6), (2, 2, 1, 2, 3, 3)]  # kernel, stride, N, C, H, W


@pytest.mark.parametrize("kernel, stride, n, c, h, w", SHAPES)
def test_ceil_mode_pooling_is_caffes_windows_clipped_to_the_image(any_backend, rng, kernel, stride, n, c, h, w):
    x = rng.standard_normal((n, c, h, w)) * 3 - 5  # negative values: a zero padding would win the maximum
    layer = MaxPool2d(kernel, stride, ceil_mode=True)
    out = np.asarray(minivgg.to_host(layer.forward(asarray(x))))
    np.testing.assert_array_equal(out, _caffe_max_pool(x, kernel, stride))
    dx = np.asarray(minivgg.to_host(layer.backward(asarray(np.ones(out.shape)))))
    assert dx.shape == x.shape and dx.sum() == out.size  # each output's gradient reaches one input pixel


@pytest.mark.parametrize("kernel, stride, n, c, h, w", SHAPES)
def test_ceil_mode_pooling_gradients(cpu_backend, rng, kernel, stride, n, c, h, w):
    layer = MaxPool2d(kernel, stride, ceil_mode=True)
    errors = gradcheck.check_layer(layer, distinct_values(rng, (n, c, h, w)))
    assert max(errors.values()) < 1e-6, errors
    out_shape = layer.output_shape((n, c, h, w))
    dx = np.asarray(layer.backward(asarray(np.ones(out_shape))))
    assert dx.shape == (n, c, h, w)  # the padding cropped off
    assert dx.sum() == np.prod(out_shape)  # and never a maximum: every output's gradient reaches an input pixel


@pytest.mark.parametrize("q, ceil_side, floor_side", [(32, 1, 1), (37, 2, 1), (42, 2, 1), (64, 2, 2), (70, 3, 2)])
def test_dense_map_has_a_position_for_every_32_pixels_begun(q, ceil_side, floor_side):
    model = vgg("A", seed=0, **SMALL_A).eval()
    x = np.zeros((1, 3, q, q), np.float32)
    assert model.to_fully_convolutional().forward(x).shape == (1, 6, ceil_side, ceil_side)
    assert model.to_fully_convolutional(ceil_mode=False).forward(x).shape == (1, 6, floor_side, floor_side)


@pytest.mark.parametrize("crop", [32, 64])
def test_the_dense_windows_cover_every_pixel_at_every_scale(crop):
    """Position (i, j) of the map is the window of side ``crop`` at (32 i, 32 j) (five 2x2 poolings: stride 32).
    Rounding up, the windows reach the bottom-right pixel at every Q and each starts inside the image;
    rounding down, Q = 37 to 63 leaves the map 1x1 at crop 32: the top-left window alone."""
    model = vgg("A", seed=0, **dict(SMALL_A, input_size=crop)).eval()
    dense, floor = model.to_fully_convolutional(), model.to_fully_convolutional(ceil_mode=False)
    uncovered = []
    for q in range(crop, 2 * crop + 40, 3):
        x = np.zeros((1, 3, q, q + 5), np.float32)
        rows, columns = dense.forward(x).shape[2:]
        assert (rows - 1) * 32 + crop >= q and (columns - 1) * 32 + crop >= q + 5  # the last pixel is in a window
        assert (rows - 1) * 32 < q and (columns - 1) * 32 < q + 5  # every window starts inside the image
        floor_rows = floor.forward(x).shape[2]
        if (floor_rows - 1) * 32 + crop < q:
            uncovered.append(q)
    # Rounding down covers the image only when its side is a multiple of 32, as the paper's Q all are.
    assert uncovered == [q for q in range(crop, 2 * crop + 40, 3) if q % 32]


@pytest.mark.parametrize("q", [37, 42, 50])
def test_a_change_in_the_bottom_right_corner_changes_the_scores_of_the_window_holding_it(rng, q):
    model = vgg("A", seed=0, **SMALL_A).eval()
    x = rng.standard_normal((1, 3, q, q)).astype(np.float32) * 60
    changed = x.copy()
    changed[:, :, -3:, -3:] += 200  # outside the top-left 32x32 window, inside the bottom-right one
    net = model.to_fully_convolutional()
    before, after = np.asarray(net.forward(x)), np.asarray(net.forward(changed))
    assert before.shape[2:] == (2, 2)
    corner = np.abs(after[0, :, -1, -1] - before[0, :, -1, -1]).max() / np.abs(before[0, :, -1, -1]).max()
    assert corner > 1e-2


@pytest.mark.parametrize("input_size", [32, 64])
def test_dense_equals_single_crop_at_the_training_size(rng, input_size):
    model = vgg("A", seed=1, **dict(SMALL_A, input_size=input_size)).eval()
    x = rng.standard_normal((2, 3, input_size, input_size)).astype(np.float32) * 60
    scores = np.asarray(model.forward(x))
    assert np.abs(scores).mean() > 0.1  # outputs of realistic size, so a relative tolerance means something
    score_map = np.asarray(model.to_fully_convolutional().forward(x))
    assert score_map.shape == (2, 6, 1, 1)
    np.testing.assert_allclose(score_map[:, :, 0, 0], scores, rtol=1e-4, atol=1e-4 * np.abs(scores).max())


def test_dense_posteriors_average_the_score_map_over_every_window():
    """Dense evaluation at Q = 64 of a net trained on 32x32 crops: the soft-max of the class scores averaged
    over the 2x2 map, each position the FC layers on one window of the last conv map (Sect. 3.2)."""
    # Glorot's weights without the ReLU gain: class scores of a few units, so the soft-max does not saturate.
    model = vgg("A", seed=3, **dict(SMALL_A, weight_init="glorot")).eval()
    image = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    dense = posteriors(model, [image], "dense", scales=(64,), flip=False)
    feature_map = np.asarray(model.features.forward(asarray(model.preprocessing.apply(image[None]))))
    assert feature_map.shape[2:] == (2, 2)
    window_scores = np.stack([np.asarray(model.classifier.forward(
        np.ascontiguousarray(feature_map[:, :, i:i + 1, j:j + 1]).reshape(1, -1)))[0] for i in (0, 1) for j in (0, 1)])
    mean = window_scores.mean(axis=0)
    expected = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
    np.testing.assert_allclose(dense[0], expected, rtol=1e-4)
    # The windows disagree, so a map reduced any other way (one window, the maximum) would not pass.
    def softmax(s):
        return np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    others = [softmax(window_scores[0]), softmax(window_scores.max(axis=0)), softmax(window_scores.sum(axis=0))]
    assert all(np.abs(other - expected).max() > 1e-3 for other in others)
