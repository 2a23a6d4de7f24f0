"""He initialisation (He et al., 2015): N(0, 2 / fan_in), the one of minivgg's random starts that keeps the
activations' scale through a deep stack of ReLU layers, where Glorot's shrinks it and the paper's N(0, 0.01^2)
kills it."""
import numpy as np
import pytest

from minivgg.cli.program import build_parser
from minivgg.layers import Conv2d, Linear
from minivgg.models import vgg

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("make, fan_in", [(lambda seed: Conv2d(128, 256, 3, rng=seed, weight_init="he"), 128 * 9),
                                          (lambda seed: Conv2d(3, 64, 3, rng=seed, weight_init="he"), 27),
                                          (lambda seed: Linear(4096, 1000, rng=seed, weight_init="he"), 4096)])
def test_he_weights_have_std_sqrt_2_over_fan_in_and_zero_biases(make, fan_in):
    for seed in SEEDS:
        layer = make(seed)
        weights = np.asarray(layer.params["W"], np.float64)
        # four standard errors of a sample std (1 / sqrt(2n) relative) and of a sample mean
        assert weights.std() == pytest.approx(np.sqrt(2 / fan_in), rel=4 / np.sqrt(2 * weights.size))
        assert abs(weights.mean()) < 4 * np.sqrt(2 / fan_in) / np.sqrt(weights.size)
        assert not np.any(layer.params["b"])


def test_he_weights_are_normal_and_seeded():
    W = np.asarray(Conv2d(128, 256, 3, rng=5, weight_init="he", dtype=np.float64).params["W"])
    kurtosis = np.mean((W - W.mean()) ** 4) / W.var() ** 2
    assert kurtosis == pytest.approx(3, abs=4 * np.sqrt(24 / W.size))  # Glorot's uniform has 1.8
    assert np.array_equal(W, np.asarray(Conv2d(128, 256, 3, rng=5, weight_init="he", dtype=np.float64).params["W"]))


def relu_output_stds(weight_init, seed):
    """The std of every conv layer's ReLU output in configuration E (16 conv layers, an eighth of the width,
    64x64 inputs of unit variance: block 5 then runs at 4x4, not on a map that is mostly padding), float64."""
    net = vgg("E", width_multiplier=1 / 8, fc_width=16, num_classes=10, input_size=64, seed=seed,
              weight_init=weight_init, dtype=np.float64).eval()
    x = np.random.default_rng(100 + seed).standard_normal((4, 3, 64, 64))
    stds = []
    for spec, layer in zip(net.specs, net.layers):
        x = layer.forward(x)
        if spec.label == "ReLU" and spec.name.startswith("features"):
            stds.append(float(x.std()))
    return np.array(stds)


def test_he_keeps_the_activations_scale_through_16_relu_layers_where_glorot_and_the_paper_lose_it():
    ratios = {init: np.array([relu_output_stds(init, seed)[-1] / relu_output_stds(init, seed)[0] for seed in SEEDS])
              for init in ("he", "glorot", "paper")}
    assert len(relu_output_stds("he", 0)) == 16
    # He: the last layer's std within a factor of 3 of the first's on every seed (measured: 0.75 to 2.2; the
    # max-poolings raise it a little, a max of four being larger than a typical value).
    assert np.all((ratios["he"] > 1 / 3) & (ratios["he"] < 3)), ratios["he"]
    # Glorot: more than 100 times smaller after 16 layers on every seed (measured: 0.003 to 0.004), as its
    # variance 1 / fan_in for equal fans halves the second moment at each ReLU; the paper's start far smaller.
    assert np.all(ratios["glorot"] < 1 / 100), ratios["glorot"]
    assert np.all(ratios["paper"] < 1e-6), ratios["paper"]
    assert ratios["glorot"].max() < ratios["he"].min() / 30


def test_the_command_line_offers_he_where_it_offers_glorot():
    args = build_parser().parse_args(["train", "--init", "he"])
    assert args.init == "he"
    from minivgg.cli.train import _build

    run = _build(args)  # the embedded digits run with --init he
    first = np.asarray(run.model.layers[0].params["W"], np.float64)
    assert first.std() == pytest.approx(np.sqrt(2 / 27), rel=0.1)  # 3 channels x 3 x 3, 16 filters: 432 numbers
