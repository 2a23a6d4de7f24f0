"""A training step recorded once and replayed, on backends that can capture a CUDA graph.

At a fixed batch shape an SGD step launches the same kernels on the same buffers every time, so a backend with
the ``graph_capture`` capability (the CuPy backend) can record it once and replay it: one launch instead of a
few hundred, which is where small batches spend their time. ``training.steps.choose_step`` asks ``captured_training_step``
for one and falls back to its plain loop when it gets None.

The recorded step reads its batch from two arrays that stay put (each new batch is copied into them), keeps
the loss on the device (a host copy cannot be recorded), and bakes in the learning rate, so a new rate or
batch shape records the step again. A replay runs no Python, so a model whose layers keep per-step state on
the host is not captured: active dropout (its masks are keyed by the step and sample position, Python ints a
recording bakes in) and batch normalisation in training (its ``num_batches_tracked`` counter, and with
``momentum=None`` the weight 1 / k of the running averages, would stay as they were recorded).
"""

from ..backend import get_backend, supports
from ..fused_layers import fuse_conv_relu
from ..layers import BatchNorm2d, dropout_layers, layers_of_type

__all__ = ["captured_training_step", "CapturedTrainingStep"]


def _keeps_host_state_per_step(model):
    """Whether a layer of ``model`` changes host-side state in each training step, which a replay would not."""
    return (any(layer.p > 0 for layer in dropout_layers(model))
            or any(layer.training for layer in layers_of_type(model, BatchNorm2d)))


def captured_training_step(model, loss_layer, optimizer):
    """A ``CapturedTrainingStep`` when the active backend captures graphs and the model can be captured,
    else None (the caller runs its eager step)."""
    if not supports("graph_capture") or _keeps_host_state_per_step(model):
        return None
    return CapturedTrainingStep(model, loss_layer, optimizer)


class CapturedTrainingStep:
    """One SGD step of ``model`` on a batch, recorded by the backend's ``capture_step`` and replayed.

    ``step(x, labels, learning_rate) -> (scores, loss)``: ``x`` a (N, C, H, W) batch (host or device), ``labels``
    (N,) host integers; ``scores`` the (N, K) device scores of the forward pass, ``loss`` a 0-d device array
    (not read back: the caller decides when the host waits). Each call makes exactly
    one SGD step, as the eager ``forward, backward, optimizer.step`` does: the first call at a shape and rate
    runs eagerly (it also builds the backend's plans), then records; later calls replay.
    """

    def __init__(self, model, loss_layer, optimizer):
        self.model, self.loss_layer, self.optimizer = model, loss_layer, optimizer
        self.net = fuse_conv_relu(model)  # the recorded passes run fused where the backend fuses conv and ReLU
        self.key = None  # (batch shape, dtype, learning rate) of the recorded step
        self.recorded = None

    def _record(self, x, labels, learning_rate):
        backend = get_backend()
        self.x_static, self.labels_static = x.copy(), labels.copy()  # the arrays the recording reads

        def step():
            scores = self.net.forward(self.x_static)
            loss, cache = backend.softmax_cross_entropy_forward(scores, self.labels_static)
            self.net.backward(backend.softmax_cross_entropy_backward(1.0, cache), input_gradient=False)
            self.optimizer.step(learning_rate)
            return scores, loss

        # The real step for this batch is the recording's one warm-up run: its memory then comes from the
        # graph's own pool, which the capture reuses, so recording holds one working set, not two.
        self.recorded = backend.capture_step(step, warmup_steps=1)
        return self.recorded.warmup_outputs

    def __call__(self, x, labels, learning_rate):
        backend = get_backend()
        x = backend.asarray(x)
        key = (tuple(x.shape), str(x.dtype), float(learning_rate))
        labels = self.loss_layer.check_labels(labels, (x.shape[0], self.model.output_shape(x.shape)[1]))
        if key != self.key:
            self.key = key
            scores, loss = self._record(x, labels, learning_rate)
        else:
            self.x_static[...] = x
            self.labels_static[...] = labels
            scores, loss = self.recorded.replay()
        return scores, loss
