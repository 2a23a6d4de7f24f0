"""Bad input gets an error that names the layer, what it expected and what came."""
import numpy as np
import pytest

import minivgg
from minivgg.layers import (Conv2d, Dropout, Linear, LocalResponseNorm, MaxPool2d, ReLU, SoftmaxCrossEntropyLoss,
                            EuclideanLoss)


def test_conv_wrong_number_of_dimensions():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*\(N, C, H, W\).*3-D"):
        Conv2d(3, 8, 3, padding=1).forward(np.zeros((3, 8, 8), np.float32))


def test_conv_wrong_channels():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*3 channels.*got shape \(2, 4, 8, 8\) with 4"):
        Conv2d(3, 8, 3, padding=1).forward(np.zeros((2, 4, 8, 8), np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, object, bool])
def test_integer_object_and_bool_arrays(dtype):
    for layer in (Conv2d(3, 2, 3), MaxPool2d(), ReLU(), LocalResponseNorm()):
        with pytest.raises(ValueError, match=f"{type(layer).__name__}.*floating-point.*dtype"):
            layer.forward(np.zeros((1, 3, 4, 4), dtype=dtype))


def test_not_an_array():
    with pytest.raises(TypeError, match=r"ReLU\(\).*numpy.ndarray.*got list"):
        ReLU().forward([[1.0, -1.0]])


def test_dtype_mismatch_with_parameters_is_not_silently_cast():
    with pytest.raises(ValueError, match=r"float64 does not match the parameters' float32"):
        Conv2d(3, 2, 3).forward(np.zeros((1, 3, 4, 4), np.float64))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"7x7 kernel is larger than the padded input 5x5"):
        Conv2d(3, 2, 7, padding=1).forward(np.zeros((1, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool2d.*2x2 window is larger than the input 1x5"):
        MaxPool2d().forward(np.zeros((1, 3, 1, 5), np.float32))


def test_linear_wrong_features_suggests_flatten():
    with pytest.raises(ValueError, match=r"Linear\(12, 4\).*\(N, 12\).*Flatten"):
        Linear(12, 4).forward(np.zeros((2, 3, 2, 2), np.float32))


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 5]), r"\[0, 5\).*found 5"), (np.array([-1, 0]), "found -1"),
    (np.array([0.0, 1.0]), "integers"), (np.array([0, 1, 2]), r"shape \(2,\)"),
])
def test_labels_out_of_range_or_malformed(labels, message):
    with pytest.raises(ValueError, match=message):
        SoftmaxCrossEntropyLoss().forward(np.zeros((2, 5), np.float32), labels)


def test_euclidean_shape_mismatch():
    with pytest.raises(ValueError, match="one shape"):
        EuclideanLoss().forward(np.zeros((2, 4)), np.zeros((2, 3)))


@pytest.mark.parametrize("make", [lambda: Conv2d(0, 3, 3), lambda: Conv2d(3, 3, 3, stride=0),
                                  lambda: Conv2d(3, 3, 3, padding=-1), lambda: MaxPool2d(2.5),
                                  lambda: Conv2d(3, 3, 3, weight_init="he-ish")])
def test_bad_hyperparameters(make):
    with pytest.raises(ValueError):
        make()


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Conv2d(3, 2, 3).backward(np.zeros((1, 2, 2, 2), np.float32))


def test_unknown_backend_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'.*'numpy'"):
        minivgg.set_backend("tpu")


def test_dropout_fixed_mask_shape_mismatch():
    layer = Dropout(0.5)
    layer.fixed_mask = np.ones((2, 2), bool)
    with pytest.raises(ValueError, match="fixed_mask has shape"):
        layer.forward(np.zeros((3, 3), np.float32))
