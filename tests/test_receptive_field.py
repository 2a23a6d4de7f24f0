"""Receptive fields (Sect. 2.3) by arithmetic and by back-propagation, and the summary table's numbers."""
import numpy as np
import pytest

from minivgg.layers import Conv2d, ReLU, Sequential
from minivgg.models import CONFIGURATIONS, layer_specs, vgg
from minivgg.receptive_field import (INPUT_PIXEL, ReceptiveField, measure_receptive_field, stack_receptive_field,
                                     support_extent)
from minivgg.summary import format_summary, summarise, totals


def _conv_stack(depth, kernel=3, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(depth):
        layers += [Conv2d(3 if i == 0 else channels, channels, kernel, padding=kernel // 2, rng=rng,
                          weight_init="glorot", dtype=np.float64), ReLU()]
    return Sequential(*layers)


@pytest.mark.parametrize("depth, size", [(1, 3), (2, 5), (3, 7)])
def test_stacks_of_3x3_layers_see_3_5_7(depth, size):
    assert stack_receptive_field([3] * depth).size == size
    support, _ = measure_receptive_field(_conv_stack(depth), input_size=21, trials=4, rng=0)
    assert support_extent(support) == (size, size)


def test_two_3x3_layers_see_5x5_like_one_5x5_layer():
    assert stack_receptive_field([3, 3]) == stack_receptive_field([5])
    support, _ = measure_receptive_field(_conv_stack(1, kernel=5), input_size=15, trials=4, rng=0)
    assert support_extent(support) == (5, 5)


def test_three_3x3_layers_have_27_not_49_c_squared_weights():
    """3 (3^2 C^2) = 27 C^2 weights against 7^2 C^2 = 49 C^2 for one 7x7 layer: 81% more."""
    c = 16
    stack = sum(Conv2d(c, c, 3, padding=1, rng=0).params["W"].size for _ in range(3))
    single = Conv2d(c, c, 7, padding=3, rng=0).params["W"].size
    assert (stack, single) == (27 * c * c, 49 * c * c)
    assert round(100 * (single / stack - 1)) == 81


def test_one_by_one_layers_leave_the_receptive_field_unchanged():
    """Configuration C's 1x1 layers add non-linearity without widening the field (Sect. 2.3)."""
    b = summarise(layer_specs("B"), 224)
    c = summarise(layer_specs("C"), 224)
    last_conv = {config: [r for r in rows if r.label.startswith("conv")][-1]
                 for config, rows in (("B", b), ("C", c))}
    assert last_conv["B"].receptive_field == last_conv["C"].receptive_field
    assert all(r.receptive_field.size == prev.receptive_field.size
               for prev, r in zip(c, c[1:]) if r.label.startswith("conv1-"))


def test_receptive_field_recurrence():
    field = INPUT_PIXEL.after(3, 1, 1).after(2, 2, 0)
    assert field == ReceptiveField(size=4, jump=2, start=0.5)
    assert field.after(3, 1, 1) == ReceptiveField(size=8, jump=2, start=0.5)


def test_vgg16_receptive_fields_and_cost():
    rows = {r.name: r for r in summarise(layer_specs("D"), 224)}
    conv5_3, pool5 = rows["features.28"], rows["features.30"]
    assert (conv5_3.receptive_field.size, conv5_3.receptive_field.jump) == (196, 16)
    assert (pool5.receptive_field.size, pool5.receptive_field.jump) == (212, 32)
    assert pool5.output_shape == (512, 7, 7)
    # FC1 seen as a 7x7 convolution centred on the image: its field is centred at pixel (224 - 1) / 2.
    assert rows["classifier.0"].receptive_field.start == 111.5
    parameters, macs = totals(rows.values())
    assert parameters == 138_357_544
    assert round(parameters / 1e6, 1) == 138.4 and round(macs / 1e9, 1) == 15.5
    assert "138,357,544 parameters (138.4M), 15.47 G multiply-adds" in format_summary(list(rows.values()))


def test_summary_shapes_match_a_forward_pass(rng):
    net = vgg("A-LRN", seed=0, width_multiplier=1 / 16, fc_width=8, num_classes=3, input_size=64)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    for row, layer in zip(summarise(net.specs, 64), net.layers):
        x = layer.forward(x)
        assert x.shape[1:] == row.output_shape, row.name
        if isinstance(layer, Conv2d):
            assert row.multiply_adds == x[0].size * layer.params["W"][0].size


@pytest.mark.parametrize("config", list(CONFIGURATIONS))
def test_arithmetic_matches_measured_receptive_field(config):
    """Back-propagate from the centre of the fourth pooling layer's output through a random net: the
    gradient reaches exactly the pixels the arithmetic predicts."""
    net = vgg(config, seed=0, weight_init="glorot", dtype=np.float64, width_multiplier=1 / 16, fc_width=8,
              num_classes=3, input_size=32)
    fourth_pool = [i for i, spec in enumerate(net.specs) if spec.label == "maxpool"][3]
    predicted = summarise(net.specs, 32)[fourth_pool].receptive_field
    size = 16 * ((predicted.size + 40) // 16)  # room around the field, and a centre unit far from the borders
    support, magnitude = measure_receptive_field(net.features[:fourth_pool + 1], size, trials=6, rng=1)
    assert support_extent(support) == (predicted.size, predicted.size)
    assert magnitude[support].min() > 0 and np.all(magnitude[~support] == 0)
