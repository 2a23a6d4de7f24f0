"""Weights carry their preprocessing: the paper's mean RGB, the Caffe models' BGR, torchvision's normalisation."""
import numpy as np
import pytest

from minivgg.preprocessing import CAFFE_VGG, TORCHVISION, Preprocessing, paper_mean_rgb


@pytest.mark.parametrize("preprocessing", [CAFFE_VGG, TORCHVISION, paper_mean_rgb((123.7, 116.3, 103.5))])
def test_apply_matches_the_formula(rng, preprocessing):
    images = rng.integers(0, 256, size=(2, 5, 4, 3), dtype=np.uint8)
    offsets = rng.normal(0, 3, size=(2, 3))
    x = images.astype(np.float64) + offsets[:, None, None, :]
    if preprocessing.channel_order == "BGR":
        x = x[..., ::-1]
    expected = ((x * preprocessing.input_range / 255 - np.array(preprocessing.mean)) / np.array(preprocessing.std))
    out = preprocessing.apply(images, colour_offsets=offsets)
    assert out.dtype == np.float32 and out.shape == (2, 3, 5, 4) and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-4)


def test_caffe_models_get_bgr_minus_the_bgr_mean():
    red = np.zeros((1, 1, 1, 3), np.uint8)
    red[..., 0] = 255
    out = CAFFE_VGG.apply(red)[0, :, 0, 0]
    np.testing.assert_allclose(out, [0 - 103.939, 0 - 116.779, 255 - 123.68], rtol=1e-6)


def test_round_trip_and_bad_values():
    assert Preprocessing.from_dict(TORCHVISION.to_dict()) == TORCHVISION
    with pytest.raises(ValueError, match="channel_order"):
        Preprocessing("GBR")
    with pytest.raises(ValueError, match="three values"):
        Preprocessing(mean=(1.0, 2.0))
    with pytest.raises(ValueError, match="positive"):
        Preprocessing(std=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        TORCHVISION.apply(np.zeros((4, 4, 3), np.uint8))
