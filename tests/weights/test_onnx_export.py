"""ONNX export: the file ``minivgg export`` writes, run in onnxruntime (CPU), gives minivgg's class scores, for a
classification net, the fully convolutional net of Sect. 3.2 on a non-square image, and a batch-normalised
net; it carries the preprocessing and the class names; bad options and unwritable outputs are clear errors.
"""
import sys

import numpy as np
import pytest

from minivgg import weights
from minivgg.cli.program import main
from minivgg.evaluation.posteriors import posteriors
from minivgg.models import vgg
from minivgg.preprocessing import Preprocessing
from test_batchnorm import randomise_batch_norm

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from minivgg.weights.onnx_export import SUPPORTED_OPSETS, read_metadata, to_onnx  # noqa: E402

TINY = dict(width_multiplier=1 / 16, fc_width=16, num_classes=10, input_size=32)
CLASSES = [f"digit {i}" for i in range(10)]


def weight_file(tmp_path, name, config="A-LRN", batch_norm=False, seed=0):
    """A small trained-looking net (Glorot weights, so scores are not tiny) saved as a weight file."""
    model = vgg(config, batch_norm=batch_norm, seed=seed, weight_init="glorot", **TINY)
    rng = np.random.default_rng(seed)
    for _, layer, key in model.named_parameters():
        if key == "b":
            layer.params[key][:] = rng.normal(0, 0.1, layer.params[key].shape)
    randomise_batch_norm(model, rng)
    model.preprocessing = Preprocessing("BGR", 255.0, (100.0, 110.0, 120.0), (50.0, 60.0, 70.0))
    model.class_names = CLASSES
    path = tmp_path / f"{name}.safetensors"
    weights.save(model, path)
    return path, weights.load(path).eval()


def run_onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"images": x})))


def assert_float32_close(found, expected):
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5 * float(np.abs(expected).max()))


def test_classification_net_gives_minivggs_scores_in_onnxruntime(tmp_path, rng, capsys):
    path, model = weight_file(tmp_path, "a-lrn")  # A-LRN: an LRN layer, written in ONNX's alpha convention
    assert main(["export", str(path), str(tmp_path / "a-lrn.onnx")]) == 0
    assert "input images (N, 3, 32, 32) float32, output scores (N, 10)" in capsys.readouterr().out
    for batch in (1, 3):  # the batch axis is dynamic
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        scores = run_onnx(tmp_path / "a-lrn.onnx", x)["scores"]
        assert scores.shape == (batch, 10)
        assert_float32_close(scores, model.forward(x))


def test_dense_net_on_a_non_square_image_gives_the_score_map_and_dense_evaluation(tmp_path, rng):
    path, model = weight_file(tmp_path, "b", config="B")
    assert main(["export", str(path), str(tmp_path / "dense.onnx"), "--dense"]) == 0
    # Q = 64: a 2x3 score map.
    image = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    x = model.preprocessing.apply(image[None])
    outputs = run_onnx(tmp_path / "dense.onnx", x)
    expected_map = model.to_fully_convolutional().forward(x)
    assert outputs["class_score_map"].shape == expected_map.shape == (1, 10, 2, 3)
    assert_float32_close(outputs["class_score_map"], expected_map)
    # The averaged map, soft-maxed, is the paper's dense evaluation of the image (Sect. 3.2).
    scores = outputs["scores"].astype(np.float64)
    softmax = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    np.testing.assert_allclose(softmax, posteriors(model, [image], "dense", scales=(64,), flip=False),
                               rtol=1e-4, atol=1e-6)
    # At the training size the map is 1x1: the classification net's scores
    square = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert_float32_close(run_onnx(tmp_path / "dense.onnx", square)["scores"], model.forward(square))


@pytest.mark.parametrize("dense", [False, True], ids=["classification", "dense"])
def test_batch_normalised_net_gives_minivggs_eval_scores(tmp_path, rng, dense):
    path, model = weight_file(tmp_path, "bn", config="A", batch_norm=True, seed=4)
    arguments = ["export", str(path), str(tmp_path / "bn.onnx"), "--opset", "18"] + (["--dense"] if dense else [])
    assert main(arguments) == 0
    nodes = [node.op_type for node in onnx.load(str(tmp_path / "bn.onnx")).graph.node]
    assert nodes.count("BatchNormalization") == 8 and "Dropout" not in nodes
    x = rng.standard_normal((2, 3, 40, 56) if dense else (2, 3, 32, 32)).astype(np.float32)
    outputs = run_onnx(tmp_path / "bn.onnx", x)
    if dense:
        assert_float32_close(outputs["class_score_map"], model.to_fully_convolutional().forward(x))
    else:
        assert_float32_close(outputs["scores"], model.forward(x))
        assert_float32_close(outputs["scores"], model.fold_batch_norm().forward(x))


def test_the_file_carries_preprocessing_and_class_names(tmp_path):
    path, model = weight_file(tmp_path, "meta")
    assert main(["export", str(path), str(tmp_path / "meta.onnx"), "--dense"]) == 0
    metadata = read_metadata(tmp_path / "meta.onnx")
    assert metadata["preprocessing"] == model.preprocessing and metadata["class_names"] == CLASSES
    assert metadata["minivgg"]["dense"] and metadata["minivgg"]["architecture"] == model.architecture()
    proto = onnx.load(str(tmp_path / "meta.onnx"))
    assert {entry.key for entry in proto.metadata_props} == {"minivgg", "preprocessing", "class_names"}
    assert proto.producer_name == "minivgg"
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    initialisers = {tensor.name for tensor in proto.graph.initializer}
    assert {"features.0.weight", "classifier.6.bias"} <= initialisers  # torchvision's names


def test_bad_options_and_unwritable_outputs_are_clear_errors(tmp_path, capsys):
    path, model = weight_file(tmp_path, "w")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(path), str(tmp_path / "x.onnx"), "--opset", "12"])
    assert exit_info.value.code == 2 and "argument --opset: must be one of 13" in capsys.readouterr().err
    for output, message in [(tmp_path / "no-such-folder" / "x.onnx", "does not exist"),
                            (tmp_path, "it is a folder")]:
        assert main(["export", str(path), str(output)]) == 1
        assert message in capsys.readouterr().err
    assert main(["export", str(tmp_path / "absent.safetensors"), str(tmp_path / "x.onnx")]) == 1
    assert "no weight file" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(ValueError, match=r"float64.*astype"):
        to_onnx(model.astype(np.float64))
    with pytest.raises(ValueError, match="opset must be one of"):
        to_onnx(model.astype(np.float32), opset=SUPPORTED_OPSETS[-1] + 1)
    with pytest.raises(TypeError, match="VGG model"):
        to_onnx(model.features)


def test_missing_onnx_package_says_how_to_install_it(tmp_path, monkeypatch):
    _, model = weight_file(tmp_path, "w")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'minivgg\[onnx\]'"):
        to_onnx(model)
