"""Weight initialisation (Sect. 3.1).

The paper samples weights "from a normal distribution with the zero mean and 10^-2 variance" and sets
biases to zero. The released models and the authors' Caffe solver used 0.01 as the *standard deviation*
(a variance of 1e-4); we follow what was run: ``paper_normal`` draws N(0, 0.01**2). The paper adds that
Glorot & Bengio's initialisation trains deep nets without pre-training; ``glorot_uniform`` is Caffe's
"xavier" filler with Glorot's average of fan-in and fan-out. ``he_normal`` (He et al., 2015, published after
the paper) is the one that keeps the activations' scale through ReLUs: Glorot's variance, 1/fan_in for a layer
with as many inputs as outputs, halves the signal's second moment at every ReLU.

Weights are drawn on the host with a NumPy generator, so a seed gives the same net on every backend.
"""
import numpy as np

__all__ = ["paper_normal", "glorot_uniform", "glorot_relu_uniform", "he_normal", "INITIALISERS", "as_generator",
           "fans"]


def as_generator(rng):
    """A ``numpy.random.Generator`` from a generator, an integer seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def fans(shape):
    """(fan_in, fan_out) of a weight of shape ``(out, in)`` or ``(out, in, kh, kw)``."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def paper_normal(shape, rng, std=1e-2):
    """Weights drawn from N(0, std**2), std = 0.01 (Sect. 3.1, read as the released models were trained)."""
    return as_generator(rng).normal(0.0, std, size=shape)


def glorot_uniform(shape, rng):
    """Weights drawn from U(-a, a), ``a = sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return as_generator(rng).uniform(-limit, limit, size=shape)


def glorot_relu_uniform(shape, rng):
    """Glorot's uniform weights times the ReLU gain sqrt(2): U(-a, a), ``a = sqrt(2) sqrt(6 / (fan_in +
    fan_out))`` (Glorot & Bengio's argument with He et al.'s correction for ReLUs, which halve the variance).
    The activations keep their scale through the ReLUs, so a small deep net without normalisation leaves
    its first plateau within a few hundred steps (the embedded localisation runs)."""
    return np.sqrt(2.0) * glorot_uniform(shape, rng)


def he_normal(shape, rng):
    """Weights drawn from N(0, 2 / fan_in), ``fan_in = in_channels * kh * kw`` (He et al., 2015, "Delving deep
    into rectifiers", eq. 10): a ReLU zeroes half of a symmetric input, so a layer keeps the second moment of
    its ReLU output when ``fan_in * Var(W) / 2 = 1``."""
    fan_in, _ = fans(shape)
    return as_generator(rng).normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


INITIALISERS = {"paper": paper_normal, "glorot": glorot_uniform, "glorot-relu": glorot_relu_uniform,
                "he": he_normal}
