"""Transforms: the geometry of Sect. 3.1-3.2 (smallest side exactly S, crops inside the image, flips,
scale jittering over the whole range) and Krizhevsky's PCA colour shift."""
import numpy as np
import pytest

from minivgg.data import (EvalTransform, PCAColourShift, ScaleJitter, TrainAugmentation, centre_crop, random_crop,
                          random_horizontal_flip, rescale_smallest_side)
from minivgg.data.transforms import rescaled_crop, rescaled_size


def image_of(rng, height, width):
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("height, width, S", [(375, 500, 256), (500, 375, 256), (300, 300, 384), (7, 5, 224),
                                              (480, 640, 512), (333, 1000, 257)])
def test_rescale_makes_the_smallest_side_exactly_S_and_keeps_the_aspect_ratio(rng, height, width, S):
    rescaled = rescale_smallest_side(image_of(rng, height, width), S)
    assert min(rescaled.shape[:2]) == S and rescaled.dtype == np.uint8 and rescaled.shape[2] == 3
    long_side = max(height, width) * S / min(height, width)
    assert abs(max(rescaled.shape[:2]) - long_side) <= 0.5
    assert (rescaled.shape[0] >= rescaled.shape[1]) == (height >= width)


def test_rescale_of_a_uniform_image_stays_uniform_and_at_size_S_is_the_image(rng):
    flat = np.full((40, 60, 3), (10, 120, 250), np.uint8)
    assert (rescale_smallest_side(flat, 25) == (10, 120, 250)).all()
    image = image_of(rng, 32, 48)
    assert rescale_smallest_side(image, 32) is image


def test_random_crop_stays_inside_and_reaches_every_position(rng):
    image = image_of(rng, 6, 5)
    seen = set()
    for _ in range(200):
        crop = random_crop(image, 4, rng)
        assert crop.shape == (4, 4, 3)
        matches = [(t, l) for t in range(3) for l in range(2) if np.array_equal(image[t:t + 4, l:l + 4], crop)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {(t, l) for t in range(3) for l in range(2)}


def test_crops_larger_than_the_image_are_refused(rng):
    with pytest.raises(ValueError, match=r"the 8x8 crop does not fit in the 6x9 image"):
        random_crop(image_of(rng, 6, 9), 8, rng)
    with pytest.raises(ValueError, match=r"centre_crop: the 10x10 crop does not fit"):
        centre_crop(image_of(rng, 6, 9), 10)


def test_center_crop_takes_the_middle(rng):
    image = image_of(rng, 9, 12)
    assert np.array_equal(centre_crop(image, 4), image[2:6, 4:8])


def test_horizontal_flip_mirrors_about_half_the_images(rng):
    image = image_of(rng, 3, 4)
    flips = 0
    for _ in range(400):
        out = random_horizontal_flip(image, rng)
        if not np.array_equal(out, image):
            assert np.array_equal(out, image[:, ::-1])
            flips += 1
    assert 160 < flips < 240


def test_scale_jitter_draws_every_integer_of_the_range_and_a_fixed_scale_draws_nothing(rng):
    jitter = ScaleJitter(256, 260)
    draws = [jitter.draw(rng) for _ in range(500)]
    assert set(draws) == {256, 257, 258, 259, 260}
    fixed = ScaleJitter.from_value(384)
    state = rng.bit_generator.state
    assert fixed.draw(rng) == 384 and rng.bit_generator.state == state
    assert ScaleJitter.from_value((256, 512)).S_max == 512
    with pytest.raises(ValueError, match="S_max 200 is smaller than S_min 256"):
        ScaleJitter(256, 200)


@pytest.mark.parametrize("height, width, S", [(375, 500, 256), (600, 400, 300), (40, 40, 36), (20, 30, 50)])
def test_cropping_while_rescaling_equals_rescaling_then_cropping(rng, height, width, S):
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    rescaled = rescale_smallest_side(image, S)
    for top, left in [(0, 0), (rescaled.shape[0] - 32, rescaled.shape[1] - 32), (3, 4)]:
        difference = np.abs(rescaled_crop(image, S, top, left, 32).astype(int) - rescaled[top:top + 32, left:left + 32])
        # the same filter taps; Pillow rounds to 8 bits after each of its two passes, so pure noise can
        # differ by a level or two here and there
        assert difference.max() <= 2 and difference.mean() < 0.25


def test_train_augmentation_is_rescale_then_random_crop_then_flip(rng):
    image = image_of(rng, 75, 100)
    augmentation = TrainAugmentation(scale=(48, 64), crop_size=40, flip=True, colour_shift_std=0.0)
    for seed in range(20):
        crop, offset = augmentation(image, np.random.default_rng(seed))
        reference = np.random.default_rng(seed)
        S = int(reference.integers(48, 65))
        expected = random_horizontal_flip(random_crop(rescale_smallest_side(image, S), 40, reference), reference)
        assert crop.shape == (40, 40, 3) and offset is None
        assert np.abs(crop.astype(int) - expected).max() <= 2


def test_train_augmentation_and_eval_transform_refuse_scales_below_the_crop():
    with pytest.raises(ValueError, match="S_min=200 is smaller than the 224 crop"):
        TrainAugmentation(scale=(200, 300), crop_size=224)
    with pytest.raises(ValueError, match="Q=100 is smaller than the 224 crop"):
        EvalTransform(100, 224)


def test_eval_transform_is_the_centre_crop_of_the_image_rescaled_to_Q(rng):
    image = image_of(rng, 50, 80)
    crop, offset = EvalTransform(36, 32)(image)
    assert offset is None
    assert np.abs(crop.astype(int) - centre_crop(rescale_smallest_side(image, 36), 32)).max() <= 2


def test_pca_colour_shift_is_krizhevskys_formula_on_unit_pixels():
    eigenvalues = np.array([14143.0, 1222.0, 293.0])  # ImageNet's, as variances in 0-255 units
    eigenvectors = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    shift = PCAColourShift(eigenvalues, eigenvectors, std=0.1)
    offset = shift(np.random.default_rng(5))
    alpha = np.random.default_rng(5).normal(0, 0.1, size=3)
    # offset in 0-255 = 255 * P (alpha * lambda_unit), lambda_unit = lambda / 255**2
    assert np.allclose(offset, 255 * eigenvectors @ (alpha * eigenvalues / 255**2))
    offsets = np.array([shift(np.random.default_rng(s)) for s in range(4000)])
    # along each principal component the offset's spread is std * lambda / 255: about 5.5 levels for the first
    spread = (offsets @ eigenvectors).std(axis=0)
    assert np.allclose(spread, 0.1 * eigenvalues / 255, rtol=0.06)


def test_train_augmentation_returns_the_colour_offset_when_given_the_pca():
    augmentation = TrainAugmentation(32, 32, flip=False, pca=(np.array([900.0, 100.0, 4.0]), np.eye(3)))
    image = np.zeros((32, 32, 3), np.uint8)
    crop, offset = augmentation(image, np.random.default_rng(0))
    assert np.array_equal(crop, image) and offset.shape == (3,)
    assert np.allclose(offset, np.random.default_rng(0).normal(0, 0.1, 3) * [900, 100, 4] / 255)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8),
                                 np.zeros((4, 4, 4), np.uint8)])
def test_transforms_want_rgb_uint8_images(rng, bad):
    with pytest.raises(ValueError, match=r"expected an RGB uint8 image of shape \(H, W, 3\)"):
        rescale_smallest_side(bad, 8)
    with pytest.raises(ValueError, match="TrainAugmentation: expected an RGB uint8 image"):
        TrainAugmentation(4, 4)(bad, rng)


def test_rescaled_size():
    assert rescaled_size(375, 500, 256) == (256, 341)
    assert rescaled_size(500, 375, 256) == (341, 256)
