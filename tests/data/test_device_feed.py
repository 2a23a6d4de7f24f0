"""Feeding the device uint8 pixels and preprocessing them there (issue 26, item 7) changes no number: every path
that feeds images to a model (training, validation, evaluation, features, localisation, prediction) gives, on the
NumPy backend, bit for bit what the float32 path gave, where the loader preprocessed on the host.

"The float32 path as it was" is kept below as it stood before the change (``_apply_as_before``, and a feeder that
hands its output over), so the comparison does not lean on the code it checks."""
import numpy as np
import pytest

import minivgg
from minivgg.data import DataLoader, TrainAugmentation
from minivgg.data.datasets import ArrayDataset
from minivgg.data.device_feed import device_batches, gives_pixels, loader_batches
from minivgg.models import vgg
from minivgg.preprocessing import CAFFE_VGG, TORCHVISION, Preprocessing, paper_mean_rgb

PREPROCESSINGS = {"paper": paper_mean_rgb((123.7, 116.8, 103.9)), "caffe": CAFFE_VGG, "torchvision": TORCHVISION,
                  "std": Preprocessing("RGB", 255.0, (120.5, 110.25, 99.0), (57.5, 61.0, 63.25))}


def _apply_as_before(preprocessing, images, colour_offsets=None):
    """``Preprocessing.apply`` as it was when the loader preprocessed every batch on the host, in float32."""
    images = np.asarray(images)
    order = (2, 1, 0) if preprocessing.channel_order == "BGR" else (0, 1, 2)
    std = np.asarray(preprocessing.std, np.float32)
    gain = np.float32(preprocessing.input_range / 255.0) / std
    shift = np.broadcast_to(-np.asarray(preprocessing.mean, np.float32) / std, (len(images), 3))
    if colour_offsets is not None:
        shift = shift + np.asarray(colour_offsets, np.float32)[:, list(order)] * gain
    out = np.empty((images.shape[0], 3) + images.shape[1:3], np.float32)
    for channel, source in enumerate(order):
        np.multiply(images[..., source], gain[channel], out=out[:, channel], dtype=np.float32)
        out[:, channel] += shift[:, channel, None, None]
    return out


def _device_batches_as_before(batches, preprocessing, count=None):
    """The feeding as it was: float32 batches preprocessed on the host, copied to the device as they are."""
    for number, (pixels, colour_offsets, targets) in enumerate(batches):
        if count is not None and number >= count:
            return
        yield minivgg.asarray(_apply_as_before(preprocessing, pixels, colour_offsets)), targets


@pytest.fixture
def as_before(monkeypatch):
    """A function that switches every path's feeding back to the float32 host path."""
    import minivgg.data.device_feed
    import minivgg.evaluation.dense

    def switch():
        monkeypatch.setattr(minivgg.data.device_feed, "device_batches", _device_batches_as_before)
        monkeypatch.setattr(minivgg.evaluation.dense, "device_batches", _device_batches_as_before)
    return switch


def _both(as_before, run):
    """``run()`` with the uint8 feeding, then with the float32 feeding as it was."""
    new = run()
    as_before()
    return new, run()


def _assert_identical(found, expected):
    """The same numbers bit for bit, through nested dicts, lists and arrays."""
    if isinstance(expected, dict):
        assert found.keys() == expected.keys()
        for key in expected:
            _assert_identical(found[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(found) == len(expected)
        for a, b in zip(found, expected):
            _assert_identical(a, b)
    else:
        np.testing.assert_array_equal(np.asarray(found), np.asarray(expected))


def _photos(count=12, seed=4):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (int(rng.integers(40, 56)), int(rng.integers(40, 56)), 3), dtype=np.uint8)
            for _ in range(count)]


def _model(preprocessing, classes=5, dropout=0.0):
    model = vgg("A", num_classes=classes, input_size=32, width_multiplier=0.0625, fc_width=16, dropout=dropout,
                weight_init="glorot", seed=3)
    model.preprocessing = preprocessing
    return model


# --- the arithmetic ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PREPROCESSINGS))
@pytest.mark.parametrize("colour_shift", [False, True])
def test_preprocessing_on_the_pixels_gives_the_float32_path_bit_for_bit(name, colour_shift, rng):
    preprocessing = PREPROCESSINGS[name]
    pixels = rng.integers(0, 256, (5, 7, 6, 3), dtype=np.uint8)
    offsets = rng.normal(0, 8, (5, 3)) if colour_shift else None
    expected = _apply_as_before(preprocessing, pixels, offsets)
    np.testing.assert_array_equal(preprocessing.apply(pixels, offsets), expected)
    gain, shift = preprocessing.affine(len(pixels), offsets)
    np.testing.assert_array_equal(preprocessing.apply_affine(pixels, gain, shift), expected)
    assert np.abs(expected).max() > 1  # realistic magnitudes: the values are not all near zero


@pytest.mark.parametrize("workers", [0, 2])
def test_the_loaders_pixels_are_a_quarter_of_the_bytes_and_preprocess_to_its_batches(workers):
    dataset = ArrayDataset(np.stack([photo[:40, :40] for photo in _photos()]), np.arange(12) % 5,
                           [str(c) for c in range(5)])
    augmentation = TrainAugmentation((32, 40), 32, flip=True, colour_shift_std=0.1,
                                     pca=(np.array([0.2, 0.02, 0.004]), np.eye(3)))
    loader = DataLoader(dataset, 4, augmentation, PREPROCESSINGS["std"], seed=5, num_workers=workers)
    assert gives_pixels(loader)
    floats = list(loader.epoch(1))
    pixels = list(loader.pixel_epoch(1))
    assert len(floats) == len(pixels) == 3
    for (x, labels), (crops, offsets, pixel_labels) in zip(floats, pixels):
        assert crops.dtype == np.uint8 and crops.shape == (4, 32, 32, 3) and offsets.shape == (4, 3)
        assert crops.nbytes * 4 == x.nbytes
        np.testing.assert_array_equal(labels, pixel_labels)
        np.testing.assert_array_equal(_apply_as_before(loader.preprocessing, crops, offsets), x)


def test_the_device_feed_takes_no_batch_beyond_the_ones_asked_for():
    taken = []

    def batches():
        for number in range(5):
            taken.append(number)
            yield np.zeros((2, 4, 4, 3), np.uint8), None, np.array([number, number])

    fed = list(device_batches(batches(), PREPROCESSINGS["paper"], count=3))
    assert [int(targets[0]) for _, targets in fed] == [0, 1, 2] and taken == [0, 1, 2]


def test_a_loader_with_a_preprocessing_of_its_own_is_fed_its_own_batches(rng):
    class Doubled:  # only ``apply``: it runs on the host, as the loader always ran it
        def apply(self, images, colour_offsets=None):
            return PREPROCESSINGS["paper"].apply(images, colour_offsets) * 2

    dataset = ArrayDataset(rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), np.arange(6) % 2, ["a", "b"])
    loader = DataLoader(dataset, 3, None, Doubled(), shuffle=False)
    assert not gives_pixels(loader)
    (x, _), _ = list(loader_batches(loader, 0))
    np.testing.assert_array_equal(x, PREPROCESSINGS["paper"].apply(np.stack([dataset.load(i)[0] for i in range(3)]))
                                  * 2)


# --- every path that feeds a model ---------------------------------------------------------------------------------

def test_training_and_validation_give_the_float32_paths_weights_bit_for_bit(as_before, tmp_path):
    from minivgg.evaluation.validation import evaluate_loader
    from minivgg.training import train
    from minivgg.training.recipes import digits_run

    def run():
        job = digits_run(seed=1, width_multiplier=0.0625, fc_width=16, max_epochs=1)  # colour shift on
        folder = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        train(job.model, job.train_loader, job.val_loader, job.settings, folder, progress=False, stop_after_steps=4)
        weights = [layer.params[key].copy() for _, layer, key in job.model.named_parameters()]
        return weights, evaluate_loader(job.model, job.val_loader)

    (new_weights, new_validation), (old_weights, old_validation) = _both(as_before, run)
    _assert_identical(new_weights, old_weights)
    _assert_identical(new_validation, old_validation)
    assert new_validation["loss"] > 0.5  # an untrained net's loss: the numbers compared are not all zero


@pytest.mark.parametrize("name", ["caffe", "torchvision"])
@pytest.mark.parametrize("method", ["dense", "multi-crop", "single-crop"])
def test_evaluation_gives_the_float32_paths_posteriors_bit_for_bit(as_before, name, method):
    from minivgg.evaluation import posteriors

    model = _model(PREPROCESSINGS[name]).eval()
    new, old = _both(as_before, lambda: posteriors(model, _photos(5), method, scales=(32, 40), batch_size=2))
    _assert_identical(new, old)


def test_prediction_and_features_give_the_float32_paths_numbers_bit_for_bit(as_before):
    from minivgg.transfer import extract

    model = _model(PREPROCESSINGS["std"]).eval()
    model.class_names = [f"class {c}" for c in range(5)]

    def run():
        return (minivgg.predict(model, _photos(3), top=3, scales=(32, 40)),
                extract(model, _photos(3), scales=(32, 48), layer="fc7"))

    (new_predictions, new_features), (old_predictions, old_features) = _both(as_before, run)
    assert new_predictions == old_predictions
    _assert_identical(new_features, old_features)


def test_localisation_gives_the_float32_paths_boxes_and_weights_bit_for_bit(as_before, tmp_path):
    from minivgg.localisation import BoxRegression, fine_tune_localisation, localisation_net
    from minivgg.localisation.data import BoxCropLoader
    from minivgg.localisation.dense import dense_boxes
    from minivgg.localisation.scenes import load_digit_scenes
    from minivgg.training import TrainSettings

    scenes = load_digit_scenes(counts={"train": 8, "val": 4, "test": 4}, seed=3)
    classifier = _model(PREPROCESSINGS["std"], classes=10).eval()

    def run():
        net = localisation_net(classifier, "PCR", "all", seed=1)
        folder = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        fine_tune_localisation(net, scenes["train"], scenes["val"], folder, 40,
                               TrainSettings(batch_size=4, learning_rate=1e-3, max_epochs=1), stop_after_steps=2)
        loader = BoxCropLoader(scenes["val"], 2, 40, 32, net.preprocessing, train=False)
        boxes = dense_boxes(net, classifier, scenes["test"].images[0], scales=(40,))
        return ([layer.params[key].copy() for _, layer, key in net.model.named_parameters()],
                BoxRegression(net).evaluate(net.model, loader), boxes.boxes, boxes.posteriors)

    new, old = _both(as_before, run)
    _assert_identical(new, old)
