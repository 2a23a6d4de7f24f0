"""``minivgg.predict``: images (paths, PIL images, arrays) in, the top classes by name out, with the
preprocessing the weights record applied, as Keras's decode_predictions and torchvision's meta["categories"]."""
import numpy as np
import pytest
from PIL import Image

import minivgg
from minivgg import weights
from minivgg.cli.program import main
from minivgg.evaluation.posteriors import posteriors
from minivgg.models import vgg
from minivgg.evaluation.prediction import Prediction, decode_predictions, predict
from minivgg.preprocessing import CAFFE_VGG

TINY = dict(width_multiplier=1 / 16, fc_width=16, num_classes=10, input_size=32)
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def model():
    net = vgg("A", seed=11, weight_init="glorot", **TINY).eval()
    net.class_names = list(NAMES)
    net.preprocessing = CAFFE_VGG
    return net


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in ((40, 48, 3), (36, 36, 3))]


def test_predict_is_the_package_function_and_ranks_named_classes(model, images):
    assert minivgg.predict is predict and minivgg.Prediction is Prediction
    ranked = minivgg.predict(model, images, top=3, method="dense", scales=(36,))
    expected = posteriors(model, images, "dense", (36,))
    assert len(ranked) == 2
    for row, top3 in zip(expected, ranked):
        assert [p.class_id for p in top3] == list(np.argsort(-row, kind="stable")[:3])
        assert [p.name for p in top3] == [NAMES[p.class_id] for p in top3]
        assert [p.probability for p in top3] == pytest.approx(row[[p.class_id for p in top3]], abs=0)
        assert top3[0].probability >= top3[1].probability >= top3[2].probability
    everything = predict(model, images[0], top=10, scales=(36,))[0]
    assert sorted(p.class_id for p in everything) == list(range(10))
    assert sum(p.probability for p in everything) == pytest.approx(1.0)


def test_the_weights_preprocessing_is_applied(model, images):
    """Single 32x32 crop, no flip: the posterior is the soft-max of the net on the recorded (BGR) preprocessing."""
    image = images[1][:32, :32]
    ranked = predict(model, [image], top=10, method="single-crop", scales=(32,), flip=False)[0]
    scores = model.forward(CAFFE_VGG.apply(image[None]))[0].astype(np.float64)
    expected = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    for p in ranked:
        assert p.probability == pytest.approx(expected[p.class_id], rel=1e-5)
    # The same weights with the default preprocessing (RGB minus a zero mean): other posteriors.
    other = vgg("A", seed=11, weight_init="glorot", **TINY).eval()
    other.class_names = NAMES
    unprocessed = predict(other, [image], top=10, method="single-crop", scales=(32,), flip=False)[0]
    assert [p.probability for p in unprocessed] != pytest.approx([p.probability for p in ranked], rel=1e-3)


def test_paths_pil_images_and_arrays_give_the_same_classes(model, images, tmp_path):
    path = tmp_path / "image.png"
    Image.fromarray(images[0]).save(path)
    as_array = predict(model, images[0], scales=(40,))
    assert len(as_array) == 1 and len(as_array[0]) == 5  # one image: a list of one
    assert predict(model, str(path), scales=(40,)) == as_array
    assert predict(model, [path], scales=(40,)) == as_array
    assert predict(model, [Image.open(path)], scales=(40,)) == as_array
    assert predict(model, np.stack([images[0], images[0]]), scales=(40,)) == as_array * 2
    gray = Image.fromarray(images[0][..., 0])  # a grayscale PIL image is converted to RGB, as the decoder does
    assert len(predict(model, gray, scales=(40,))[0]) == 5


def test_every_evaluation_method_of_the_paper(model, images):
    for method in minivgg.evaluation.METHODS:
        ranked = predict(model, images, top=2, method=method, scales=(36, 40))
        expected = posteriors(model, images, method, (36, 40))
        assert [[p.class_id for p in r] for r in ranked] == [list(np.argsort(-row, kind="stable")[:2])
                                                              for row in expected]


def test_a_weight_file_path_and_models_without_names(model, images, tmp_path):
    weights.save(model, tmp_path / "m.safetensors")
    assert predict(str(tmp_path / "m.safetensors"), images, scales=(36,)) == predict(model, images, scales=(36,))
    anonymous = vgg("A", seed=11, weight_init="glorot", **TINY).eval()
    assert [p.name for p in predict(anonymous, images[0], top=2)[0]][0].startswith("class ")
    assert decode_predictions([[0.1, 0.7, 0.2]], top=2) == [[Prediction(1, "class 1", 0.7),
                                                            Prediction(2, "class 2", 0.2)]]


def test_bad_requests_are_named(model, images):
    with pytest.raises(ValueError, match="top must be between 1 and the model's 10 classes, got 11"):
        predict(model, images, top=11)
    with pytest.raises(ValueError, match="got 0"):
        predict(model, images, top=0)
    with pytest.raises(TypeError, match="top must be an int"):
        predict(model, images, top=2.5)
    with pytest.raises(TypeError, match="image 1 is a int"):
        predict(model, [images[0], 7])
    with pytest.raises(ValueError, match=r"image 0: expected uint8 pixels \(0-255\) or uint16 \(0-65535\), got "
                                         r"float32 \(pixels in \[0, 1\]\? multiply by 255"):
        predict(model, images[0].astype(np.float32))
    with pytest.raises(ValueError, match="unknown evaluation method 'densest'"):
        predict(model, images, method="densest")
    with pytest.raises(ValueError, match="no images"):
        predict(model, [])
    with pytest.raises(FileNotFoundError):
        predict(model, ["no-such-image.jpg"])
    with pytest.raises(ValueError, match="3 class names for 2 classes"):
        decode_predictions(np.ones((1, 2)), ["a", "b", "c"], top=1)


def test_the_predict_command_prints_what_the_function_returns(model, images, tmp_path, capsys):
    weights.save(model, tmp_path / "m.safetensors")
    Image.fromarray(images[0]).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--weights", str(tmp_path / "m.safetensors"), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ranked = predict(model, tmp_path / "a.png", top=3)[0]  # default scale: 8/7 of the 32 input, 37
    assert lines == [str(tmp_path / "a.png")] + [f"  {p.probability:7.2%}  {p.name}" for p in ranked]
