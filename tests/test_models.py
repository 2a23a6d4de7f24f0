"""The model zoo: Table 1 as data, Table 2's parameter counts, small variants, initialisation,
pre-initialisation from net A (Sect. 3.1) and the FC-to-conv conversion of dense evaluation (Sect. 3.2)."""
import numpy as np
import pytest

from minivgg import models
from minivgg.layers import Conv2d, Dropout, Linear, LocalResponseNorm, MaxPool2d
from minivgg.models import CONFIGURATIONS, layer_specs, num_parameters, vgg

# Tiny variants of every column: a sixteenth of the channels, small FC layers, 32x32 input.
TINY = dict(width_multiplier=1 / 16, fc_width=16, num_classes=5, input_size=32)

# Table 2 gives these rounded to millions (133, 133, 133, 134, 138, 144); these are the exact counts.
TABLE_2 = {"A": 132_863_336, "A-LRN": 132_863_336, "B": 133_047_848, "C": 133_638_952, "D": 138_357_544,
           "E": 143_667_240}


@pytest.mark.parametrize("config", list(TABLE_2))
def test_table2_parameter_counts(config):
    assert num_parameters(config) == TABLE_2[config]
    assert round(num_parameters(config) / 1e6) == {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138,
                                                   "E": 144}[config]


def test_full_size_vgg16_builds_with_the_counted_parameters():
    """One full-size build shows the builder and the spec counter agree at 224 (the counter is used above)."""
    net = models.vgg16(weight_init="glorot", seed=0)
    assert net.num_parameters() == num_parameters("D") == 138_357_544
    assert net.features[0].params["W"].shape == (64, 3, 3, 3)
    assert net.classifier[0].params["W"].shape == (4096, 512 * 7 * 7)
    assert net.classifier[6].params["W"].shape == (1000, 4096)


@pytest.mark.parametrize("config", list(CONFIGURATIONS))
def test_builder_and_counter_are_the_same_specs(config):
    net = vgg(config, seed=0, **TINY)
    specs = layer_specs(config, **TINY)
    assert net.num_parameters() == num_parameters(config, **TINY)
    assert len(net.layers) == len(specs)
    for spec, layer in zip(specs, net.layers):
        assert type(layer) is spec.layer_class
        assert {k: v.shape for k, v in layer.params.items()} == spec.parameter_shapes()


@pytest.mark.parametrize("config, weight_layers", [("A", 11), ("A-LRN", 11), ("B", 13), ("C", 16), ("D", 16),
                                                    ("E", 19), ("B-shallow", 8)])
def test_table1_depths(config, weight_layers):
    """Table 1's header: 11 weight layers in A ... 19 in E; the shallow net has five conv and three FC."""
    cells = CONFIGURATIONS[config]
    assert sum(c.startswith(("conv", "FC")) for c in cells) == weight_layers
    assert cells.count("maxpool") == 5


def _convs(net):
    return [layer for layer in net.layers if isinstance(layer, Conv2d)]


def test_table1_columns_read_as_the_paper():
    d = vgg("D", seed=0, width_multiplier=1 / 8, fc_width=16, num_classes=5, input_size=32)
    assert [c.out_channels for c in _convs(d)] == [8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 64, 64, 64]
    assert all(c.kernel_size == 3 and c.padding == 1 and c.stride == 1 for c in _convs(d))
    c = vgg("C", seed=0, **TINY)
    assert [conv.kernel_size for conv in _convs(c)] == [3, 3, 3, 3, 3, 3, 1, 3, 3, 1, 3, 3, 1]
    assert [conv.padding for conv in _convs(c)][6] == 0
    lrn = vgg("A-LRN", seed=0, **TINY)
    assert [type(layer).__name__ for layer in lrn.layers[:4]] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    shallow = vgg("B-shallow", seed=0, **TINY)
    assert [(conv.kernel_size, conv.padding) for conv in _convs(shallow)] == [(5, 2)] * 5
    assert sum(isinstance(layer, MaxPool2d) for layer in shallow.layers) == 5


def test_shallow_net_swaps_pairs_of_3x3_for_5x5():
    """Sect. 4.1: B-shallow is B with each pair of 3x3 layers replaced by a single 5x5 one."""
    b, shallow = _convs(vgg("B", seed=0, **TINY)), _convs(vgg("B-shallow", seed=0, **TINY))
    assert [conv.out_channels for conv in b[1::2]] == [conv.out_channels for conv in shallow]


def test_parameter_names_are_torchvisions():
    names = [name for name, _, _ in models.vgg16(seed=0, **TINY).named_parameters()]
    conv_positions = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision's vgg16 features indices
    expected = [f"features.{i}.{p}" for i in conv_positions for p in ("weight", "bias")]
    expected += [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    assert names == expected


@pytest.mark.parametrize("input_size, side", [(32, 1), (64, 2), (96, 3), (100, 3)])
def test_input_size_sets_fc1_inputs(input_size, side, rng):
    net = vgg("A", seed=0, width_multiplier=1 / 16, fc_width=16, num_classes=7, input_size=input_size)
    assert net.classifier[0].in_features == 32 * side * side
    x = rng.standard_normal((2, 3, input_size, input_size)).astype(np.float32)
    assert net.forward(x).shape == (2, 7)
    net.backward(np.ones((2, 7), np.float32))
    assert all(layer.grads["W"].shape == layer.params["W"].shape for _, layer, key in net.named_parameters())


def test_width_multiplier_scales_channels():
    for multiplier, first in [(1.0, 64), (0.5, 32), (0.25, 16), (1 / 64, 1), (1 / 1000, 1)]:
        assert layer_specs("E", width_multiplier=multiplier)[0].arguments["out_channels"] == first


def test_named_constructors_build_their_columns():
    for name, config in models.NAMED_CONFIGURATIONS.items():
        net = getattr(models, name)(seed=0, **TINY)
        assert net.config == config
        assert net.num_parameters() == num_parameters(config, **TINY)


def test_config_names_are_case_insensitive_and_unknown_ones_listed():
    assert vgg("a-lrn", seed=0, **TINY).config == "A-LRN"
    with pytest.raises(ValueError, match=r"unknown VGG configuration 'F'.*'A', 'A-LRN', 'B', 'C', 'D', 'E'"):
        vgg("F")
    with pytest.raises(TypeError, match="config must be a string"):
        vgg(16)


@pytest.mark.parametrize("bad, message", [
    (dict(input_size=16), "input_size must be an integer >= 32"),
    (dict(width_multiplier=0), "width_multiplier must be a positive number"),
    (dict(dropout=1.0), r"dropout must be a ratio in \[0, 1\)"),
    (dict(num_classes=0), "num_classes must be an integer >= 1"),
    (dict(fc_width=2.5), "fc_width must be an integer"),
    (dict(weight_init="kaiming"), "unknown weight_init 'kaiming'"),
    (dict(dtype=np.int32), "dtype must be float32 or float64"),
])
def test_bad_arguments_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        vgg("A", **dict(TINY, **bad))


def test_seed_fixes_weights_and_dropout():
    a, b, c = (vgg("B", seed=s, **TINY) for s in (3, 3, 4))
    for (_, la, k), (_, lb, _), (_, lc, _) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        np.testing.assert_array_equal(la.params[k], lb.params[k])
        if k == "W":
            assert not np.array_equal(la.params[k], lc.params[k])
    seeds = [layer.seed for layer in a.layers if isinstance(layer, Dropout)]
    assert seeds == [layer.seed for layer in b.layers if isinstance(layer, Dropout)] and len(seeds) == 2


def test_paper_initialisation_is_normal_with_std_0_01_and_zero_biases():
    net = vgg("A", seed=0, width_multiplier=1 / 4, fc_width=256, num_classes=10, input_size=32)
    weights = np.concatenate([l.params["W"].ravel() for l in net.layers if "W" in l.params])
    assert abs(weights.std() - 0.01) < 2e-4 and abs(weights.mean()) < 2e-4
    assert all(np.all(l.params["b"] == 0) for l in net.layers if "b" in l.params)


def test_glorot_initialisation_respects_each_layers_fans():
    net = vgg("A", seed=0, weight_init="glorot", width_multiplier=1 / 4, fc_width=256, num_classes=10,
              input_size=32)
    for layer in net.layers:
        if "W" in layer.params:
            W = layer.params["W"]
            receptive = W[0, 0].size if W.ndim == 4 else 1
            limit = np.sqrt(6 / ((W.shape[0] + W.shape[1]) * receptive))
            assert np.abs(W).max() <= limit and np.abs(W).max() > 0.9 * limit


def test_dropout_layers_follow_the_first_two_fc_layers():
    net = vgg("D", seed=0, dropout=0.3, **{k: v for k, v in TINY.items()})
    kinds = [type(layer).__name__ for layer in net.classifier]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [layer.p for layer in net.layers if isinstance(layer, Dropout)] == [0.3, 0.3]


def test_features_and_classifier_share_the_models_layers():
    net = vgg("A", seed=0, **TINY)
    assert net.features.layers + [net.layers[len(net.features)]] + net.classifier.layers == net.layers
    assert all(isinstance(layer, (Linear, Dropout)) or type(layer).__name__ == "ReLU" for layer in net.classifier)
    assert not any(isinstance(layer, (Linear, LocalResponseNorm)) for layer in net.features)


def test_default_preprocessing_is_the_papers_mean_subtraction():
    net = vgg("A", seed=0, **TINY)
    assert net.preprocessing.channel_order == "RGB" and net.preprocessing.input_range == 255.0
    assert net.preprocessing.mean == (0.0, 0.0, 0.0) and net.class_names is None


# Pre-initialisation (Sect. 3.1) -----------------------------------------------------------------------

def _by_name(net):
    return {name: layer.params[key] for name, layer, key in net.named_parameters()}


def test_init_from_net_a_copies_its_first_four_conv_and_three_fc_layers():
    net_a = vgg("A", seed=1, **TINY)
    net_a.preprocessing = net_a.preprocessing.__class__("RGB", 255.0, (120.0, 115.0, 100.0), (1, 1, 1))
    net_d = vgg("D", seed=2, **TINY)
    before = _by_name(net_d)
    assert net_d.init_from(net_a) is net_d
    a, d = _by_name(net_a), _by_name(net_d)
    # A's conv3-64, conv3-128, conv3-256, conv3-256 sit on D's rows: features 0, 5, 10, 12.
    for a_index, d_index in [(0, 0), (3, 5), (6, 10), (8, 12)]:
        for p in ("weight", "bias"):
            np.testing.assert_array_equal(d[f"features.{d_index}.{p}"], a[f"features.{a_index}.{p}"])
    for i in (0, 3, 6):
        np.testing.assert_array_equal(d[f"classifier.{i}.weight"], a[f"classifier.{i}.weight"])
    for unchanged in ("features.2.weight", "features.7.weight", "features.14.weight", "features.28.weight"):
        np.testing.assert_array_equal(d[unchanged], before[unchanged])
    assert net_d.preprocessing.mean == (120.0, 115.0, 100.0)
    # Copies, not shared arrays: training D must not move A.
    assert not np.shares_memory(d["features.0.weight"], a["features.0.weight"])


def test_init_from_explains_layers_that_do_not_line_up():
    net_a = vgg("A", seed=1, **TINY)
    shallow = vgg("B-shallow", seed=0, **TINY)
    with pytest.raises(ValueError, match=r"B-shallow has no conv layer on the Table 1 row of A's features.8 "
                                         r"\(conv3-16, row 7\)"):
        shallow.init_from(net_a)
    with pytest.raises(ValueError, match=r"A's features.0.weight \(conv3-4\) is float32 \(4, 3, 3, 3\) but "
                                         r"B-shallow's features.0.weight \(conv5-4\) is float32 \(4, 3, 5, 5\)"):
        shallow.init_from(net_a, conv_layers=1)
    wider = vgg("D", seed=0, **dict(TINY, width_multiplier=1 / 8))
    with pytest.raises(ValueError, match="features.0.weight"):
        wider.init_from(net_a)
    more_classes = vgg("D", seed=0, **dict(TINY, num_classes=6))
    with pytest.raises(ValueError, match="classifier.6.weight"):
        more_classes.init_from(net_a)
    with pytest.raises(TypeError, match="expects a VGG"):
        vgg("D", seed=0, **TINY).init_from(object())


# FC layers as convolutions (Sect. 3.2) -----------------------------------------------------------------

# Weights that keep the activations' scale through the ReLUs (Glorot's with the ReLU gain), so the class
# scores are of order one: with the paper's N(0, 0.01^2) they are near 1e-12, and any tolerance passes them.
REALISTIC = dict(weight_init="glorot-relu")


def test_dense_equals_single_crop_at_224(rng):
    net = vgg("A", seed=0, width_multiplier=1 / 16, fc_width=32, num_classes=10, **REALISTIC).eval()
    x = rng.standard_normal((2, 3, 224, 224)).astype(np.float32)
    dense = net.to_fully_convolutional()
    assert isinstance(dense[len(net.features)], Conv2d) and dense[len(net.features)].kernel_size == 7
    score_map = dense.forward(x)
    assert score_map.shape == (2, 10, 1, 1)
    scores = net.forward(x)
    assert np.abs(scores).mean() > 0.1
    np.testing.assert_allclose(score_map[:, :, 0, 0], scores, rtol=1e-4, atol=1e-4 * np.abs(scores).max())


def test_larger_input_gives_a_class_score_map(rng):
    """Each score of the map is the FC layers applied to one KxK window of the last feature map."""
    net = vgg("D", seed=0, **dict(TINY, input_size=64), **REALISTIC).eval()  # K = 64 // 32 = 2
    dense = net.to_fully_convolutional()
    x = rng.standard_normal((2, 3, 128, 96)).astype(np.float32)
    score_map = dense.forward(x)
    assert score_map.shape == (2, 5, 3, 2)  # (128 // 32 - 2 + 1, 96 // 32 - 2 + 1)
    assert np.abs(score_map).mean() > 0.1
    feature_map = net.features.forward(x)
    for i in range(3):
        for j in range(2):
            window = np.ascontiguousarray(feature_map[:, :, i:i + 2, j:j + 2]).reshape(2, -1)
            expected = net.classifier.forward(window)
            np.testing.assert_allclose(score_map[:, :, i, j], expected, rtol=1e-4,
                                       atol=1e-4 * np.abs(expected).max())
    with pytest.raises(ValueError, match="smaller than the training size 64x64"):
        dense.forward(x[:, :, :32, :32])


def test_fully_convolutional_weights_are_views_of_the_fc_weights():
    net = vgg("A", seed=0, **dict(TINY, input_size=64))
    dense = net.to_fully_convolutional()
    fc_convs = [layer for layer in dense.layers[len(net.features):] if isinstance(layer, Conv2d)]
    assert [c.kernel_size for c in fc_convs] == [2, 1, 1]
    for conv, linear in zip(fc_convs, [l for l in net.classifier if isinstance(l, Linear)]):
        assert np.shares_memory(conv.params["W"], linear.params["W"])
        np.testing.assert_array_equal(conv.params["W"].reshape(linear.params["W"].shape), linear.params["W"])
    assert dense.preprocessing is net.preprocessing and dense.num_classes == 5


def test_summary_is_returned_as_text():
    text = vgg("C", seed=0, **TINY).summary()
    assert text.splitlines()[0] == "VGG configuration C at 32x32"
    assert f"total: {num_parameters('C', **TINY):,} parameters" in text
    assert "conv1-32" in text


def test_backward_through_a_whole_configuration_matches_central_differences(rng):
    """A-LRN has every layer kind of Table 1 (conv, ReLU, LRN, max-pool, FC, dropout): check its gradients
    end to end, for the input and every parameter, along random directions (central differences)."""
    from minivgg.gradcheck import check_directional
    from minivgg.layers import SoftmaxCrossEntropyLoss

    net = vgg("A-LRN", seed=0, weight_init="glorot", dtype=np.float64, width_multiplier=1 / 16, fc_width=8,
              num_classes=3, input_size=32).eval()  # evaluation mode: dropout is the identity
    loss_layer, x, labels = SoftmaxCrossEntropyLoss(), rng.standard_normal((2, 3, 32, 32)), np.array([0, 2])

    def gradient_of(array, name):
        def f_and_grad():
            loss = loss_layer.forward(net.forward(x), labels)
            dx = net.backward(loss_layer.backward(1.0))
            return loss, dx if name == "x" else owners[name].grads[keys[name]]
        return f_and_grad

    owners = {name: layer for name, layer, _ in net.named_parameters()}
    keys = {name: key for name, _, key in net.named_parameters()}
    arrays = dict({"x": x}, **{name: owners[name].params[keys[name]] for name in owners})
    # A small step: among thousands of ReLUs and pooling windows, a step of 1e-5 would cross some kink.
    errors = {name: check_directional(gradient_of(array, name), array, seed=i, h=1e-7)
              for i, (name, array) in enumerate(arrays.items())}
    assert len(errors) == 1 + 2 * 11
    assert max(errors.values()) < 1e-6, errors


def test_batch_normalised_conv_features_are_taken_after_the_relu(rng):
    """``convB_I`` means the rectified output (the released models apply ReLU in place), also when a
    ``BatchNorm2d`` sits between the convolution and its ReLU."""
    from minivgg.layers import ReLU
    net = vgg("A", batch_norm=True, seed=0, **TINY).eval()
    names = net.layer_names()
    assert names == vgg("A", seed=0, **TINY).layer_names()
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    for name in ("conv1_1", "conv5_2", "fc6", "fc7"):
        end = models.paper_layer_names(net.specs)[name]
        assert isinstance(net.layers[end], ReLU), name
        assert net.features_at(name).forward(x).min() >= 0.0, name
