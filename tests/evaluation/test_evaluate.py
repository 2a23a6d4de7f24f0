"""Evaluation as in Sect. 3.2 and 4: dense equals single-crop where it must, the multi-crop grid, fusion,
top-k errors, and clear errors for wrong input."""
import numpy as np
import pytest

import minivgg
from minivgg.evaluation.posteriors import (error_table, format_table, fuse, load_posteriors, multi_crop_offsets,
                                           paper_scales, posteriors, save_posteriors)
from minivgg.evaluation.metrics import top_k_error


@pytest.fixture(scope="module")
def model():
    net = minivgg.vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, weight_init="glorot",
                      seed=1)
    net.preprocessing = minivgg.preprocessing.paper_mean_rgb((120.0, 110.0, 100.0))
    return net


@pytest.fixture
def images(rng):
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in [(32, 32, 3), (40, 52, 3), (48, 36, 3)]]


def test_dense_at_the_training_size_equals_single_crop(model, images):
    """A 32x32 image at Q=32 without flip: the fully-convolutional net sees exactly the single crop."""
    square = images[:1]
    dense = posteriors(model, square, "dense", scales=(32,), flip=False)
    single = posteriors(model, square, "single-crop", scales=(32,), flip=False)
    np.testing.assert_allclose(dense, single, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", ["single-crop", "dense", "multi-crop", "multi-crop+dense"])
def test_posteriors_are_distributions_for_any_image_size(model, images, method):
    p = posteriors(model, images, method, scales=(32, 40), flip=True)
    assert p.shape == (3, 5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)  # float32 soft-max
    assert np.all(p > 0)


def test_flip_averages_the_mirrored_image(model, images):
    image = images[1]
    both = posteriors(model, [image], "dense", scales=(40,), flip=True)
    plain = posteriors(model, [image], "dense", scales=(40,), flip=False)
    mirrored = posteriors(model, [np.ascontiguousarray(image[:, ::-1])], "dense", scales=(40,), flip=False)
    np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=1e-6)


def test_multi_scale_averages_the_scales(model, images):
    per_scale = [posteriors(model, images, "dense", scales=(q,)) for q in (32, 48)]
    np.testing.assert_allclose(posteriors(model, images, "dense", scales=(32, 48)), np.mean(per_scale, axis=0),
                               rtol=1e-6)


def test_multi_crop_grid_is_5x5_with_corners_and_centre():
    offsets = multi_crop_offsets(256, 300, 224)
    assert len(offsets) == 25 and len(set(offsets)) == 25
    assert offsets[0] == (0, 0) and offsets[4] == (0, 76) and offsets[20] == (32, 0) and offsets[24] == (32, 76)
    assert offsets[12] == (16, 38)  # the centre crop
    tops = sorted({top for top, _ in offsets})
    assert tops == [0, 8, 16, 24, 32]


def test_multi_crop_uses_50_crops_per_scale(model, images, monkeypatch):
    seen = []
    forward = type(model).forward

    def counting_forward(self, x):
        seen.append(x.shape[0])
        return forward(self, x)
    monkeypatch.setattr(type(model), "forward", counting_forward)
    posteriors(model, images[:1], "multi-crop", scales=(32, 40, 48), batch_size=100)
    assert sum(seen) == 150  # 5 x 5 grid x 2 flips x 3 scales, as Sect. 4.3
    seen.clear()
    posteriors(model, images[:1], "multi-crop", scales=(32, 40, 48), flip=False, batch_size=100)
    assert sum(seen) == 75  # without flips (data that is not mirror-symmetric)


def test_fusing_one_model_is_that_model_and_posteriors_round_trip(model, images, tmp_path):
    p = posteriors(model, images, "dense", scales=(32,))
    np.testing.assert_array_equal(fuse([p]), p)
    q = np.full_like(p, 0.2)
    np.testing.assert_allclose(fuse([p, q]), (p + q) / 2)
    save_posteriors(tmp_path / "p.npz", p, labels=[0, 1, 2], metadata={"method": "dense"})
    loaded, labels, metadata = load_posteriors(tmp_path / "p.npz")
    np.testing.assert_array_equal(loaded, p)
    assert labels.tolist() == [0, 1, 2] and metadata == {"method": "dense"}


def test_top_k_errors_on_hand_made_scores():
    scores = np.array([[0.1, 0.5, 0.2, 0.15, 0.05, 0.0],   # true 1: top-1 right
                       [0.3, 0.25, 0.2, 0.1, 0.1, 0.05],   # true 2: third, inside the top 5
                       [0.5, 0.2, 0.1, 0.1, 0.06, 0.04]])  # true 5: last, outside the top 5
    labels = np.array([1, 2, 5])
    assert top_k_error(scores, labels, 1) == pytest.approx(2 / 3)
    assert top_k_error(scores, labels, 5) == pytest.approx(1 / 3)
    table = error_table([{"configuration": "D", "train_S": "256", "test_Q": "256", "method": "dense",
                          "posteriors": scores, "labels": labels}])
    assert table[0]["top1_error"] == pytest.approx(200 / 3) and "posteriors" not in table[0]
    assert "top-1 err" in format_table(table) and "66.7%" in format_table(table)


def test_paper_scale_sets():
    assert paper_scales(256) == (224, 256, 288)
    assert paper_scales((256, 512)) == (256, 384, 512)


def test_wrong_input_is_a_clear_error(model, images):
    with pytest.raises(ValueError, match=r"at least the crop size 32"):
        posteriors(model, images, "dense", scales=(24,))
    with pytest.raises(ValueError, match="unknown evaluation method"):
        posteriors(model, images, "ten-crop")
    with pytest.raises(ValueError, match=r"image 0: expected an image array \(H, W\) grey, \(H, W, 3\) RGB or "
                                         r"\(H, W, 4\) RGBA, got uint8 of shape \(32, 32, 5\)"):
        posteriors(model, [np.zeros((32, 32, 5), np.uint8)])
    with pytest.raises(ValueError, match="model has 5 classes"):
        error_table([{"posteriors": np.full((2, 5), 0.2), "labels": np.array([0, 7])}])
    with pytest.raises(ValueError, match="2 posteriors but 3 labels"):
        error_table([{"posteriors": np.full((2, 5), 0.2), "labels": np.array([0, 1, 2])}])
    with pytest.raises(ValueError, match="different shapes"):
        fuse([np.zeros((2, 5)), np.zeros((2, 4))])


@pytest.mark.parametrize("scales, batch_size, message", [
    ((40.5,), 4, "whole numbers of pixels"), ((float("nan"),), 4, "whole numbers of pixels"),
    (("48",), 4, "whole numbers of pixels"), ((48,), 0, "batch_size must be a positive integer"),
    ((48,), -1, "batch_size must be a positive integer"), ((48,), 2.5, "batch_size must be a positive integer")])
def test_posteriors_refuse_fractional_scales_and_non_positive_batches(scales, batch_size, message):
    from minivgg.models import vgg
    model = vgg("A", width_multiplier=1 / 16, fc_width=8, num_classes=3, input_size=32, seed=0)
    image = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match=message):
        minivgg.evaluation.posteriors(model, [image], "dense", scales, batch_size=batch_size)
