"""Layers: thin classes that check their input, call the active backend's op pair, and hold parameters.

Every layer has ``forward(x)`` and ``backward(dout)``; parameters live in ``layer.params`` and their
gradients, after ``backward``, in ``layer.grads`` (both dicts keyed ``"W"`` and ``"b"``). The maths is in
``minivgg.backends.<name>``; a layer keeps the cache of its last forward for its backward.

Conventions follow Caffe and PyTorch so published weights map one to one: inputs NCHW, convolution
weights ``(out, in, kh, kw)``, linear weights ``(out, in)``.
"""
import math
import numbers

import numpy as np

from .backend import get_backend
from .backends.reference.dropout import keep_mask
from .initialisation import INITIALISERS, as_generator
from .backends.shapes import output_size

__all__ = ["Layer", "Conv2d", "MaxPool2d", "ReLU", "Dropout", "Linear", "Flatten", "LocalResponseNorm",
           "GlobalAveragePool", "SoftmaxCrossEntropyLoss", "EuclideanLoss", "Sequential", "layers_of_type",
           "dropout_layers", "set_dropout_position"]


def _check_array(layer, x, what="input"):
    """Reject anything that is not a floating array of the active backend, naming the layer."""
    xp = get_backend().xp
    if not isinstance(x, xp.ndarray):
        raise TypeError(f"{layer!r}: expected the {what} as a {xp.__name__}.ndarray (active backend "
                        f"{get_backend().name!r}), got {type(x).__name__}; convert it with minivgg.asarray")
    if x.dtype.kind != "f":
        raise ValueError(f"{layer!r}: expected a floating-point {what} (float32 or float64), got dtype {x.dtype}")


def _check_image_batch(layer, x, channels=None):
    _check_array(layer, x)
    if x.ndim != 4:
        raise ValueError(f"{layer!r}: expected input of shape (N, C, H, W), got {x.ndim}-D shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer!r}: expected input with {channels} channels, shape (N, {channels}, H, W); "
                         f"got shape {x.shape} with {x.shape[1]} channels")


class Layer:
    """Base class: no parameters, train mode, no cache."""

    # True where ``backward(dout, input_gradient=False)`` skips computing the gradient of the input.
    can_skip_input_gradient = False

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True
        self.cache = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def train(self, mode=True):
        """Switch between training (``True``) and evaluation (``False``) behaviour; returns self."""
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def _cached(self):
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        return self.cache

    def to_backend(self):
        """Move the parameters onto the active backend's device (after ``set_backend``); returns self."""
        backend = get_backend()
        self.params = {k: backend.asarray(_host(v)) for k, v in self.params.items()}
        self.grads = {}
        self.cache = None
        return self

    def astype(self, dtype):
        """Cast the parameters to ``dtype`` (float64 for gradient checks); returns self."""
        self.params = {k: v.astype(dtype) for k, v in self.params.items()}
        self.grads = {}
        return self

    @property
    def dtype(self):
        """The dtype of the parameters, or None for a layer without any."""
        weight = self.params.get("W")
        return None if weight is None else weight.dtype

    def _check_dtype(self, x):
        if self.params and x.dtype != self.dtype:
            raise ValueError(f"{self!r}: input dtype {x.dtype} does not match the parameters' {self.dtype}; "
                             f"cast the input or call .astype({x.dtype}) on the model")


def _host(array):
    """Any backend's array to NumPy, without assuming which backend made it."""
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else np.asarray(array)


def _initial_weights(shape, weight_init, rng, dtype):
    """Weights drawn by ``weight_init`` and zero biases; ``weight_init=None`` gives zero weights without
    drawing, for layers whose weights are about to be loaded or shared."""
    if weight_init is not None and weight_init not in INITIALISERS:
        raise ValueError(f"unknown weight_init {weight_init!r}; choose one of {sorted(INITIALISERS)}")
    backend = get_backend()
    host = np.zeros(shape) if weight_init is None else INITIALISERS[weight_init](shape, as_generator(rng))
    W = backend.asarray(host, dtype=dtype)
    b = backend.asarray(np.zeros(shape[0]), dtype=dtype)
    return W, b


def _is_real(value):
    """A real number (NumPy's scalars too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _positive_int(layer_name, name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{layer_name}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Conv2d(Layer):
    """2-D convolution (cross-correlation) with a square kernel, plus bias.

    Shapes: input (N, in_channels, H, W) -> output (N, out_channels, Ho, Wo), ``Ho = (H + 2p - k) // s + 1``;
    ``params["W"]`` (out_channels, in_channels, k, k), ``params["b"]`` (out_channels,).

    The paper uses 3x3 with padding 1 (Table 1), 1x1 (configuration C), 5x5 (the shallow net of Sect. 4.1)
    and 7x7 (the first FC layer as a convolution, Sect. 3.2). Weights start as ``weight_init``
    ("paper": N(0, 0.01^2), "glorot" or "he"), biases at zero.
    """

    can_skip_input_gradient = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, weight_init="paper",
                 rng=None, dtype=np.float32):
        super().__init__()
        name = "Conv2d"
        self.in_channels = _positive_int(name, "in_channels", in_channels)
        self.out_channels = _positive_int(name, "out_channels", out_channels)
        self.kernel_size = _positive_int(name, "kernel_size", kernel_size)
        self.stride = _positive_int(name, "stride", stride)
        self.padding = _positive_int(name, "padding", padding, minimum=0)
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        self.params["W"], self.params["b"] = _initial_weights(shape, weight_init, rng, dtype)

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")

    def output_shape(self, input_shape):
        n, _, h, w = input_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        return (n, self.out_channels, output_size(h, k, s, p), output_size(w, k, s, p))

    def check_input(self, x):
        """ValueError (or TypeError) naming this layer unless ``x`` is a batch it can convolve."""
        _check_image_batch(self, x, self.in_channels)
        self._check_dtype(x)
        padded = (x.shape[2] + 2 * self.padding, x.shape[3] + 2 * self.padding)
        if min(padded) < self.kernel_size:
            raise ValueError(f"{self!r}: the {self.kernel_size}x{self.kernel_size} kernel is larger than the "
                             f"padded input {padded[0]}x{padded[1]} (input shape {x.shape})")

    def forward(self, x):
        self.check_input(x)
        out, self.cache = get_backend().conv2d_forward(x, self.params["W"], self.params["b"], self.stride,
                                                       self.padding)
        return out

    def backward(self, dout, input_gradient=True):
        """Parameter gradients into ``.grads``; returns ``dx``, or None with ``input_gradient=False`` (the
        data gradient is then not computed: as the first layer, nobody reads the images' gradient)."""
        dx, self.grads["W"], self.grads["b"] = get_backend().conv2d_backward(dout, self._cached(), input_gradient)
        return dx


class MaxPool2d(Layer):
    """Max-pooling over square windows (Table 1: 2x2, stride 2).

    Shapes: (N, C, H, W) -> (N, C, (H - k) // s + 1, (W - k) // s + 1). Rows and columns that no full
    window covers are dropped (floor mode, PyTorch's default) and get zero gradient. On ties the first
    maximum in row-major window order receives the whole gradient (as in Caffe).

    ``ceil_mode=True`` pools as the authors' Caffe does: (N, C, ceil((H - k) / s) + 1, ...), the last window
    hanging over the bottom and right edges, so no row or column is dropped. It is the floor-mode op applied
    to the input padded at the bottom and right with the dtype's lowest value, which no maximum ever picks
    (every window keeps at least one input pixel); the gradient of the padding is cropped off. So every
    backend's op serves both modes. The fully convolutional net of dense evaluation uses it
    (``VGG.to_fully_convolutional``): at a crop that is a multiple of 32, as in training, both modes agree.
    """

    def __init__(self, kernel_size=2, stride=2, ceil_mode=False):
        super().__init__()
        self.kernel_size = _positive_int("MaxPool2d", "kernel_size", kernel_size)
        self.stride = _positive_int("MaxPool2d", "stride", stride)
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise TypeError(f"MaxPool2d: ceil_mode must be True or False, got {ceil_mode!r}")
        self.ceil_mode = bool(ceil_mode)
        self._input_size = None  # (H, W) before the ceil-mode padding of the last forward, None if unpadded

    def __repr__(self):
        ceil = ", ceil_mode=True" if self.ceil_mode else ""
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride}{ceil})"

    def output_shape(self, input_shape):
        n, c, h, w = input_shape
        k, s = self.kernel_size, self.stride
        return (n, c, output_size(h, k, s, 0, self.ceil_mode), output_size(w, k, s, 0, self.ceil_mode))

    def _pad_to_ceil_mode(self, x):
        """``x`` with the rows and columns its last ceil-mode windows need, filled with the lowest value."""
        h, w = x.shape[2:]
        _, _, out_h, out_w = self.output_shape(x.shape)
        extra_h = (out_h - 1) * self.stride + self.kernel_size - h
        extra_w = (out_w - 1) * self.stride + self.kernel_size - w
        if extra_h <= 0 and extra_w <= 0:
            return x, None
        xp = get_backend().xp
        lowest = xp.finfo(x.dtype).min
        padded = xp.pad(x, ((0, 0), (0, 0), (0, max(extra_h, 0)), (0, max(extra_w, 0))), constant_values=lowest)
        return padded, (h, w)

    def forward(self, x):
        _check_image_batch(self, x)
        if min(x.shape[2:]) < self.kernel_size:
            raise ValueError(f"{self!r}: the {self.kernel_size}x{self.kernel_size} window is larger than the "
                             f"input {x.shape[2]}x{x.shape[3]} (input shape {x.shape})")
        if self.ceil_mode:
            x, self._input_size = self._pad_to_ceil_mode(x)
        out, self.cache = get_backend().max_pool2d_forward(x, self.kernel_size, self.stride)
        return out

    def backward(self, dout):
        dx = get_backend().max_pool2d_backward(dout, self._cached())
        if self.ceil_mode and self._input_size is not None:
            h, w = self._input_size
            dx = dx[:, :, :h, :w]  # the padding's gradient (zero: it is never a maximum) is no input's
        return dx


class ReLU(Layer):
    """Rectified linear unit, ``max(0, x)``, after every hidden weight layer (Sect. 2.1). Any shape."""

    def __repr__(self):
        return "ReLU()"

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        _check_array(self, x)
        out, self.cache = get_backend().relu_forward(x)
        return out

    def backward(self, dout):
        return get_backend().relu_backward(dout, self._cached())


class Dropout(Layer):
    """Inverted dropout (Sect. 3.1: ratio 0.5 on the first two FC layers). Shapes: (N, ...) -> (N, ...).

    In training mode unit ``j`` of sample ``i`` is zeroed when ``counter_random.uniform(seed, step, i, j) < p``
    and survivors are scaled by ``1 / (1 - p)``; in evaluation mode the layer is the identity. ``i`` is the
    sample's index in the SGD step's *global* batch: the trainer calls ``set_dropout_position(model, step,
    first_sample)`` before each device batch, so a batch of 256 in one piece, accumulated device batches and
    N data-parallel processes (Sect. 3.3) drop the very same units, on every backend. The layer's random
    state is its seed alone. Without a trainer, each training forward moves on to the next step, so
    successive calls draw fresh masks.
    Setting ``fixed_mask`` (a boolean array, True = keep) makes training mode deterministic, for
    gradient checks.
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        # No seed: draw one, so the state is still an integer that a checkpoint can hold.
        self.seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else int(seed)
        self.step, self.first_sample = 0, 0
        self.fixed_mask = None

    def __repr__(self):
        return f"Dropout(p={self.p})"

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def set_position(self, step, first_sample):
        """Key the next forward's mask: SGD step ``step``, first sample at ``first_sample`` of the global batch."""
        self.step, self.first_sample = int(step), int(first_sample)

    def forward(self, x):
        _check_array(self, x)
        if not self.training or self.p == 0.0:
            self.cache = None
            return x
        if self.fixed_mask is not None and self.fixed_mask.shape != x.shape:
            raise ValueError(f"{self!r}: fixed_mask has shape {self.fixed_mask.shape}, input has {x.shape}")
        backend = get_backend()
        mask = self.fixed_mask
        if mask is None:
            mask = keep_mask(backend.xp, self.p, self.seed, self.step, self.first_sample, x.shape)
            self.step += 1
        out, self.cache = backend.dropout_forward(x, self.p, mask)
        return out

    def backward(self, dout):
        if self.cache is None:  # evaluation mode, or p == 0: the identity
            return dout
        return get_backend().dropout_backward(dout, self.cache)


def layers_of_type(model, kind):
    """The layers of ``model`` (nested ``Sequential``s included, ``model`` itself too) that are ``kind``
    instances, in forward order."""
    if isinstance(model, kind):
        return [model]
    return [found for layer in getattr(model, "layers", []) for found in layers_of_type(layer, kind)]


def dropout_layers(model):
    """The ``Dropout`` layers of ``model`` (nested ``Sequential``s included), in forward order."""
    return layers_of_type(model, Dropout)


def set_dropout_position(model, step, first_sample):
    """Key every dropout mask of ``model``'s next forward by SGD step ``step`` and the global index
    ``first_sample`` of the device batch's first sample (Sect. 3.3: the same masks however a batch is split)."""
    for layer in dropout_layers(model):
        layer.set_position(step, first_sample)


class Linear(Layer):
    """Fully-connected layer, ``x @ W.T + b``.

    Shapes: input (N, in_features) -> (N, out_features); ``params["W"]`` (out_features, in_features),
    ``params["b"]`` (out_features,).
    """

    def __init__(self, in_features, out_features, *, weight_init="paper", rng=None, dtype=np.float32):
        super().__init__()
        self.in_features = _positive_int("Linear", "in_features", in_features)
        self.out_features = _positive_int("Linear", "out_features", out_features)
        shape = (self.out_features, self.in_features)
        self.params["W"], self.params["b"] = _initial_weights(shape, weight_init, rng, dtype)

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"

    def output_shape(self, input_shape):
        return (input_shape[0], self.out_features)

    def forward(self, x):
        _check_array(self, x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = " (put a Flatten() before it)" if x.ndim > 2 else ""
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_features}), got {x.shape}{hint}")
        self._check_dtype(x)
        out, self.cache = get_backend().linear_forward(x, self.params["W"], self.params["b"])
        return out

    def backward(self, dout):
        dx, self.grads["W"], self.grads["b"] = get_backend().linear_backward(dout, self._cached())
        return dx


class Flatten(Layer):
    """(N, C, H, W) -> (N, C * H * W) in C, H, W order, as Caffe and PyTorch flatten before FC1."""

    def __repr__(self):
        return "Flatten()"

    def output_shape(self, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:])))

    def forward(self, x):
        _check_array(self, x)
        if x.ndim < 2:
            raise ValueError(f"{self!r}: expected input with a batch axis and at least one more, got {x.shape}")
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._cached())


class LocalResponseNorm(Layer):
    """Local Response Normalisation across channels, as in Krizhevsky et al. (2012); used by A-LRN (Table 1).

    ``y[c] = x[c] / (k + alpha' * sum_{c' in window(c)} x[c']**2) ** beta`` over ``size`` neighbouring
    channels. Shapes: (N, C, H, W) -> (N, C, H, W).

    Which alpha? The paper says the parameters are Krizhevsky et al.'s: size 5, alpha 1e-4, beta 0.75,
    k 2. Their formula multiplies the sum by alpha itself; Caffe and PyTorch multiply by ``alpha / size``.
    The default, ``alpha_divided_by_size=False``, is the AlexNet paper's formula, because that is the one
    whose parameters the VGG paper cites; pass True to match a Caffe or PyTorch model.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_divided_by_size=False):
        super().__init__()
        self.size = _positive_int("LocalResponseNorm", "size", size)
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)
        self.alpha_divided_by_size = bool(alpha_divided_by_size)

    def __repr__(self):
        return (f"LocalResponseNorm(size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
                f"alpha_divided_by_size={self.alpha_divided_by_size})")

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        _check_image_batch(self, x)
        out, self.cache = get_backend().lrn_forward(x, self.size, self.alpha, self.beta, self.k,
                                                    self.alpha_divided_by_size)
        return out

    def backward(self, dout):
        return get_backend().lrn_backward(dout, self._cached())


class GlobalAveragePool(Layer):
    """Spatial mean per channel, (N, C, H, W) -> (N, C): averages a class score map (Sect. 3.2) or the
    penultimate features (Appendix B)."""

    def __repr__(self):
        return "GlobalAveragePool()"

    def output_shape(self, input_shape):
        return tuple(input_shape[:2])

    def forward(self, x):
        _check_image_batch(self, x)
        out, self.cache = get_backend().global_average_pool_forward(x)
        return out

    def backward(self, dout):
        return get_backend().global_average_pool_backward(dout, self._cached())


class SoftmaxCrossEntropyLoss(Layer):
    """Multinomial logistic regression (Sect. 3.1): soft-max, then the mean negative log-likelihood.

    ``forward(scores (N, K), labels (N,) integers in [0, K)) -> float``; ``backward(dloss=1.0) -> (N, K)``.
    Computed through log-sum-exp, so any finite scores give a finite loss.
    """

    def __repr__(self):
        return "SoftmaxCrossEntropyLoss()"

    def forward(self, scores, labels):
        _check_array(self, scores, "scores")
        if scores.ndim != 2:
            raise ValueError(f"{self!r}: expected scores of shape (N, classes), got {scores.shape}")
        labels = self.check_labels(labels, scores.shape)
        loss, self.cache = get_backend().softmax_cross_entropy_forward(scores, labels)
        return float(loss)

    def backward(self, dloss=1.0):
        return get_backend().softmax_cross_entropy_backward(dloss, self._cached())

    def check_labels(self, labels, scores_shape):
        """``labels`` as int64 on the backend's device, after checking they are (N,) integers in [0, K) for
        scores of shape (N, K); ValueError naming this loss otherwise."""
        return _check_labels(self, labels, scores_shape)


def _check_labels(layer, labels, scores_shape):
    backend = get_backend()
    host = np.asarray(backend.to_host(labels)) if isinstance(labels, backend.xp.ndarray) else np.asarray(labels)
    n, classes = scores_shape
    if host.dtype.kind not in "iu":
        raise ValueError(f"{layer!r}: labels must be integers, got dtype {host.dtype}")
    if host.shape != (n,):
        raise ValueError(f"{layer!r}: expected labels of shape ({n},) for scores of shape {scores_shape}, "
                         f"got {host.shape}")
    if n and (host.min() < 0 or host.max() >= classes):
        bad = host[(host < 0) | (host >= classes)][0]
        raise ValueError(f"{layer!r}: labels must lie in [0, {classes}) for {classes} classes; found {bad}")
    return backend.asarray(host.astype(np.int64))


class EuclideanLoss(Layer):
    """Half the mean squared distance, ``sum (p - t)**2 / (2 N)``: Appendix A's bounding-box regression loss.

    ``forward(predictions (N, D), targets (N, D)) -> float``; ``backward(dloss=1.0) -> (N, D)``.
    """

    def __repr__(self):
        return "EuclideanLoss()"

    def forward(self, predictions, targets):
        _check_array(self, predictions, "predictions")
        _check_array(self, targets, "targets")
        if predictions.ndim != 2 or predictions.shape != targets.shape:
            raise ValueError(f"{self!r}: expected predictions and targets of one shape (N, D), got "
                             f"{predictions.shape} and {targets.shape}")
        loss, self.cache = get_backend().euclidean_loss_forward(predictions, targets)
        return float(loss)

    def backward(self, dloss=1.0):
        return get_backend().euclidean_loss_backward(dloss, self._cached())


class Sequential(Layer):
    """A stack of layers: ``forward`` runs them in order, ``backward`` in reverse.

    Parameters are those of the sub-layers; ``named_parameters()`` walks them as
    ``("3.W", layer, "W")``. Indexing, ``len`` and iteration work as on a list.
    """

    can_skip_input_gradient = True

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def append(self, layer):
        self.layers.append(layer)
        return self

    def output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

    def forward(self, x):
        """The layers in order."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, input_gradient=True):
        """Back through the stack; returns the gradient with respect to the input.

        ``input_gradient=False`` (training: the images need no gradient) lets a first ``Conv2d`` skip its
        data gradient, the most expensive part of its backward pass; None is then returned.
        """
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            if index == 0 and not input_gradient and layer.can_skip_input_gradient:
                return layer.backward(dout, input_gradient=False)
            dout = layer.backward(dout)
        return dout

    def train(self, mode=True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def named_parameters(self, prefix=""):
        """Yield ``(name, layer, key)`` for every parameter, depth first; ``layer.params[key]`` is the array."""
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Sequential):
                yield from layer.named_parameters(f"{prefix}{i}.")
            else:
                for key in layer.params:
                    yield f"{prefix}{i}.{key}", layer, key

    def num_parameters(self):
        """Total number of scalar parameters."""
        return sum(int(layer.params[key].size) for _, layer, key in self.named_parameters())

    def to_backend(self):
        for layer in self.layers:
            layer.to_backend()
        return self

    def astype(self, dtype):
        for layer in self.layers:
            layer.astype(dtype)
        return self

    @property
    def dtype(self):
        for _, layer, key in self.named_parameters():
            return layer.params[key].dtype
        return None


class BatchNorm2d(Layer):
    """Batch normalisation of each channel (Ioffe & Szegedy 2015), between a convolution and its ReLU, where
    torchvision's ``vgg*_bn`` put it. Not in the VGG paper, which predates it.

    Shapes: (N, C, H, W) -> (N, C, H, W); ``params["gamma"]`` (scale) and ``params["beta"]`` (shift), both (C,),
    start at 1 and 0; ``buffers["running_mean"]``, ``buffers["running_var"]`` (C,) start at 0 and 1, and
    ``buffers["num_batches_tracked"]`` is a host int64 scalar, the training batches seen.

    In training mode a channel is normalised by its batch mean and biased variance, and the running averages
    move towards the batch's (``minivgg.backends.reference.batchnorm``: PyTorch's momentum convention and its
    unbiased running variance); in evaluation mode the running averages normalise. ``momentum=None`` keeps
    a cumulative average instead (the weight of the k-th batch is 1 / k, ``num_batches_tracked`` counts k),
    as PyTorch does. The running statistics are no parameters (SGD leaves them alone) but are saved in
    weight files and checkpoints with them. ``minivgg.training.optimiser.SGD`` decays gamma and beta like weights (only
    keys named ``"b"`` are spared), as torchvision's training recipe decays every parameter.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        self.num_features = _positive_int("BatchNorm2d", "num_features", num_features)
        if not _is_real(eps) or not 0 < eps < math.inf:  # inf would normalise every map to beta
            raise ValueError(f"BatchNorm2d: eps must be a positive finite number, got {eps!r}")
        if momentum is not None and (not _is_real(momentum) or not 0 < momentum <= 1):
            raise ValueError(f"BatchNorm2d: momentum must be in (0, 1] or None (cumulative average), got {momentum!r}")
        self.eps, self.momentum = float(eps), None if momentum is None else float(momentum)
        backend = get_backend()
        self.params["gamma"] = backend.asarray(np.ones(self.num_features), dtype=dtype)
        self.params["beta"] = backend.asarray(np.zeros(self.num_features), dtype=dtype)
        self.buffers = {"running_mean": backend.asarray(np.zeros(self.num_features), dtype=dtype),
                        "running_var": backend.asarray(np.ones(self.num_features), dtype=dtype),
                        "num_batches_tracked": np.zeros((), np.int64)}

    def __repr__(self):
        return f"BatchNorm2d({self.num_features}, eps={self.eps:g}, momentum={self.momentum})"

    def output_shape(self, input_shape):
        return tuple(input_shape)

    @property
    def dtype(self):
        return self.params["gamma"].dtype

    def forward(self, x):
        _check_image_batch(self, x, self.num_features)
        self._check_dtype(x)
        momentum = self.momentum
        if self.training:
            if x.size // x.shape[1] < 2:
                raise ValueError(f"{self!r}: training needs more than one value per channel to compute a batch "
                                 f"variance, got input of shape {x.shape}; use a larger batch or call .eval()")
            self.buffers["num_batches_tracked"] += 1
            if momentum is None:
                momentum = 1.0 / int(self.buffers["num_batches_tracked"])
        out, self.cache = get_backend().batch_norm2d_forward(
            x, self.params["gamma"], self.params["beta"], self.buffers["running_mean"],
            self.buffers["running_var"], momentum, self.eps, self.training)
        return out

    def backward(self, dout):
        dx, self.grads["gamma"], self.grads["beta"] = get_backend().batch_norm2d_backward(dout, self._cached())
        return dx

    def to_backend(self):
        super().to_backend()
        backend = get_backend()
        for key in ("running_mean", "running_var"):
            self.buffers[key] = backend.asarray(_host(self.buffers[key]))
        return self

    def astype(self, dtype):
        super().astype(dtype)
        for key in ("running_mean", "running_var"):
            self.buffers[key] = self.buffers[key].astype(dtype)
        return self


__all__.append("BatchNorm2d")
