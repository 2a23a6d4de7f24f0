"""The miniature's sizes and data: the geometry that keeps dense evaluation meaningful, the framed images,
and the steps every seed runs."""
import numpy as np
import pytest

from minivgg.data import ArrayDataset
from minivgg.models import vgg
from minivgg.reproduction import DEFAULT, QUICK, steps
from minivgg.reproduction.classification import framed
from minivgg.reproduction.experiments import NETS


@pytest.mark.parametrize("miniature", [DEFAULT, QUICK])
def test_every_test_scale_is_the_crop_plus_a_multiple_of_the_net_s_stride(miniature):
    # The dense windows then lie inside the image and overlap by half (benchmarks/RESULTS.md).
    for q in miniature.test_scales + (miniature.single_test_scale, miniature.fixed_scale) + miniature.jittered_scale:
        assert q >= miniature.crop and (q - miniature.crop) % 32 == 0
    assert miniature.single_test_scale == (miniature.jittered_scale[0] + miniature.jittered_scale[1]) // 2
    assert miniature.test_scales == (miniature.fixed_scale - 32, miniature.fixed_scale, miniature.fixed_scale + 32)


def test_the_dense_map_at_the_test_scales_is_the_windows_the_geometry_says():
    model = vgg("A", num_classes=10, input_size=DEFAULT.crop, width_multiplier=DEFAULT.width_multiplier,
                fc_width=DEFAULT.fc_width, seed=0).eval()
    net = model.to_fully_convolutional().eval()
    for q, side in ((64, 1), (96, 2), (128, 3)):
        out = net.forward(np.zeros((1, 3, q, q), np.float32))
        assert out.shape[2:] == (side, side)


def test_framed_images_sit_in_the_middle_of_a_black_square():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28) % 200 + 10
    dataset = ArrayDataset(images, [0, 1], ["a", "b"])
    out = framed(dataset, 40)
    assert out.images.shape == (2, 40, 40)
    np.testing.assert_array_equal(out.images[:, 6:34, 6:34], images)
    assert out.images[:, :6].max() == 0 and out.images[:, 34:].max() == 0
    assert out.images[:, :, :6].max() == 0 and out.images[:, :, 34:].max() == 0
    np.testing.assert_array_equal(out.labels, [0, 1])
    image, label = out.load(1)
    assert image.shape == (40, 40, 3) and label == 1
    assert framed(dataset, None) is dataset
    with pytest.raises(ValueError, match="smaller"):
        framed(dataset, 20)


def test_rgb_images_are_framed_too():
    images = np.full((1, 32, 30, 3), 7, np.uint8)
    out = framed(ArrayDataset(images, [0], ["a"]), 40)
    assert out.images.shape == (1, 40, 40, 3)
    np.testing.assert_array_equal(out.images[0, 4:36, 5:35], 7)
    assert out.images.sum() == 7 * 32 * 30 * 3


def test_appendix_b_s_digits_are_white_on_black_like_the_items_the_nets_learnt_from():
    from minivgg.data.digits import render_digits, render_white_on_black
    from minivgg.reproduction.transfer import digits_split

    train, train_labels, test, test_labels = digits_split(DEFAULT, seed=1)
    assert train.shape == (300, 64, 64, 3) and train.dtype == np.uint8 and test.shape == (300, 64, 64, 3)
    assert np.bincount(train_labels).tolist() == [30] * 10 and np.bincount(test_labels).tolist() == [30] * 10
    for images in (train, test):
        assert (images[..., 0] == images[..., 1]).all() and (images[..., 1] == images[..., 2]).all()  # grey
        assert (images[:, :4, :4] == 0).all() and images.max() > 250  # a black border, white strokes
    # The same shape as the coloured rendering, whose every channel is background + (stroke - background) * m:
    # a straight-line fit of each coloured channel on the white image leaves only the two roundings.
    glyphs = np.random.default_rng(0).integers(0, 17, size=(3, 8, 8))
    white = render_white_on_black(glyphs, 40)[..., 0].astype(float).reshape(3, -1)
    coloured = render_digits(glyphs, 40, np.random.default_rng(1)).astype(float).reshape(3, -1, 3)
    for image in range(3):
        design = np.stack([np.ones_like(white[image]), white[image]], axis=1)
        for channel in range(3):
            fit, *_ = np.linalg.lstsq(design, coloured[image, :, channel], rcond=None)
            assert np.abs(design @ fit - coloured[image, :, channel]).max() < 1.0
    other = digits_split(DEFAULT, seed=2)
    assert not np.array_equal(other[1], train_labels) or not np.array_equal(other[0], train)  # seeded apart


def test_each_seed_trains_each_net_once_before_a_step_uses_it():
    names = [step.name for step in steps(DEFAULT)]
    assert len(names) == len(set(names))
    for spec in NETS:
        train = names.index(f"train/{spec.name}")
        if spec.init_from:
            assert names.index(f"train/{spec.init_from}") < train
        if not spec.stall:
            assert names.index(f"evaluate/{spec.name}") > train
    assert names.index("fusion") > max(names.index(f"table5/{net}") for net in ("D-jittered", "E-jittered"))
    assert names.index("transfer") > names.index("train/E-jittered")


@pytest.mark.parametrize("miniature", [DEFAULT, QUICK])
def test_the_sizes_read_back_from_their_json_are_the_same(miniature):
    import json

    from minivgg.reproduction import Miniature

    fields = json.loads(json.dumps(miniature.to_dict()))
    assert Miniature.from_dict(fields, miniature.seeds) == miniature
    assert Miniature.from_dict(fields, 7).seeds == 7
    assert Miniature.from_dict(dict(fields, data="elsewhere"), 1).preset == ("default" if miniature is DEFAULT
                                                                            else "quick")
    assert Miniature.from_dict(dict(fields, epochs=miniature.epochs + 1), 1).preset is None


def test_sizes_of_another_version_are_refused_naming_the_field():
    from minivgg.reproduction import Miniature

    fields = DEFAULT.to_dict()
    with pytest.raises(ValueError, match="unknown: colour"):
        Miniature.from_dict(dict(fields, colour=1), 1)
    del fields["crop"]
    with pytest.raises(ValueError, match="missing: crop"):
        Miniature.from_dict(fields, 1)


def test_every_step_comes_after_the_steps_it_needs():
    from minivgg.reproduction.localisation import LOCALISATION_NETS
    from minivgg.reproduction.transfer import TRANSFER_NETS

    names = [step.name for step in steps(DEFAULT)]
    assert len(names) == len(set(names))

    def before(first, then):
        assert names.index(first) < names.index(then), (first, then)
    for spec in NETS:
        if spec.init_from:
            before(f"train/{spec.init_from}", f"train/{spec.name}")
        if not spec.stall:
            before(f"train/{spec.name}", f"evaluate/{spec.name}")
    before("train/A", "localisation/classifier")
    for name, _, _ in LOCALISATION_NETS:
        before("localisation/classifier", f"localisation/{name}")
        before(f"localisation/{name}", "localisation/evaluate")
    for net in ("D-jittered", "E-jittered"):
        before(f"evaluate/{net}", f"table5/{net}")  # Table 5 and fusion read the posteriors evaluate wrote
        before(f"table5/{net}", "fusion")
    for net in TRANSFER_NETS:
        before(f"train/{net}", "transfer")
    # What needs only net A runs before the deeper nets, so a stopped run has measured it.
    before("localisation/evaluate", "train/B")
    before("train/D-Glorot", "train/B")
