"""What ``minivgg.training.train(..., parallel=DataParallel(...))`` asks of a data-parallel run (Sect. 3.3).

The trainer stays the one-process loop; at five points it hands over to this object:

1. ``shard(loader, B)``: the rank's share of every global batch of B images (``shard.py``);
2. ``first_sample(k, d, B)``: where the rank's k-th device batch starts in the global batch, which keys the
   dropout masks, so they are those of one process on the whole batch;
3. ``backward(model, dout, k, accumulation)``: the backward pass, the gradients summed into buckets and, on the
   last device batch of a step, averaged over the ranks while the backward goes on (``buckets.py``); the
   optimizer then sees the mean gradient of the global batch in ``layer.grads``;
4. ``evaluate(model, loader)``: each rank evaluates its part of the validation data and the counts are summed,
   so no rank idles at a collective meanwhile, and the top-1 counts, which drive the learning-rate schedule, are
   exactly one process's (``benchmarks/RESULTS.md`` has its timing);
5. ``is_root``: only rank 0 shows progress, logs and writes checkpoints and weights; ``any(flag)`` makes all
   ranks stop at the same step (Ctrl-C, ``stop_after_steps``).
"""
import zlib

import numpy as np

from ..backend import get_backend
from .buckets import DEFAULT_BUCKET_BYTES, GradientBuckets
from .communicator import LocalCommunicator
from .shard import shard_evaluation, shard_training

__all__ = ["DataParallel"]


def _backward_with_hook(model, dout, after_layer, input_gradient=False):
    """``model.backward(dout, input_gradient)``, calling ``after_layer(layer)`` as soon as each layer with
    parameters has its gradients (``Sequential.backward`` has no such hook; this is its loop with one)."""
    layers = getattr(model, "layers", None)
    if layers is None:  # a single layer
        dout = model.backward(dout)
        if model.params:
            after_layer(model)
        return dout
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        skip_input = index == 0 and not input_gradient
        if hasattr(layer, "layers"):
            dout = _backward_with_hook(layer, dout, after_layer, input_gradient=not skip_input)
            continue
        if skip_input and layer.can_skip_input_gradient:
            dout = layer.backward(dout, input_gradient=False)
        else:
            dout = layer.backward(dout)
        if layer.params:
            # A fused conv+ReLU (``fused_layers.ConvReLU``) holds its convolution's parameters: the buckets know
            # them by that layer.
            after_layer(getattr(layer, "conv", layer))
    return dout


class DataParallel:
    """One rank of a data-parallel run.

    Parameters
    ----------
    communicator : ``MPICommunicator`` (CPU processes, machines), ``NCCLCommunicator`` (GPUs) or
        ``LocalCommunicator`` (one process; the default)
    bucket_bytes : int, the size of a gradient bucket (``buckets.py``)
    """

    def __init__(self, communicator=None, bucket_bytes=DEFAULT_BUCKET_BYTES):
        self.communicator = communicator if communicator is not None else LocalCommunicator()
        self.rank, self.ranks = self.communicator.rank, self.communicator.size
        self.is_root = self.rank == 0
        self.bucket_bytes = int(bucket_bytes)
        self._buckets = None

    @classmethod
    def from_environment(cls, gpus=False, timeout_seconds=300.0, bucket_bytes=DEFAULT_BUCKET_BYTES):
        """The rank this process is in the MPI world; with ``gpus``, on its own GPU and summing through NCCL."""
        from .communicator import MPICommunicator

        communicator = MPICommunicator(timeout_seconds=timeout_seconds)
        if gpus:
            from .nccl import NCCLCommunicator
            communicator = NCCLCommunicator(communicator)
        return cls(communicator, bucket_bytes)

    def __repr__(self):
        return f"DataParallel(rank {self.rank} of {self.ranks}, {type(self.communicator).__name__})"

    # -- the data ---------------------------------------------------------------------------------------------
    def shard(self, loader, global_batch):
        """This rank's share of ``loader`` for steps of ``global_batch`` images (``shard.shard_training``)."""
        return shard_training(loader, self.rank, self.ranks, global_batch)

    def first_sample(self, k, device_batch, global_batch):
        """Index in the global batch of the first sample of this rank's k-th device batch: r B / N + k d."""
        return self.rank * (global_batch // self.ranks) + k * device_batch

    # -- the gradients ----------------------------------------------------------------------------------------
    def _gradient_buckets(self, model):
        if self._buckets is None:
            xp = getattr(self.communicator, "xp", np)  # NCCL sums device arrays; MPI host arrays
            backend = get_backend()
            to_buffer = None if xp is backend.xp else backend.to_host
            self._from_buffer = None if xp is backend.xp else backend.asarray
            self._buckets = GradientBuckets(model, self.communicator, xp, to_buffer, self.bucket_bytes)
        return self._buckets

    def backward(self, model, dout, k, accumulation, net=None):
        """Backward pass of the k-th of ``accumulation`` device batches of a step, through ``net`` (a view of
        ``model`` computing the same numbers, e.g. ``fused_layers.fuse_conv_relu(model)``; default ``model``).
        After the last one, every parameter's ``grads`` hold the mean gradient over the global batch, the same on
        every rank."""
        buckets = self._gradient_buckets(model)
        first, last = k == 0, k == accumulation - 1
        scale = 1.0 / (accumulation * self.ranks)
        _backward_with_hook(model if net is None else net, dout, lambda layer: buckets.add(layer, first, last, scale))
        if last:
            buckets.finish(self._from_buffer)

    def gradient_bytes(self, model):
        """Bytes of gradient each rank contributes to the sum every step."""
        return self._gradient_buckets(model).gradient_bytes()

    def bucket_count(self, model):
        """How many buckets ``model``'s gradients are summed in."""
        return len(self._gradient_buckets(model))

    # -- agreement, parameters --------------------------------------------------------------------------------
    def any(self, flag):
        """True on every rank if ``flag`` is true on any (all ranks stop at the same step)."""
        if self.ranks == 1:
            return bool(flag)
        return bool(self.communicator.sum([1.0 if flag else 0.0])[0] > 0)

    def sum(self, values):
        """The float64 sums over the ranks of a few numbers."""
        return self.communicator.sum(values)

    def broadcast_parameters(self, model):
        """Give every rank rank 0's parameters (ranks built with other seeds would otherwise drift apart)."""
        if self.ranks == 1:
            return
        backend = get_backend()
        for _, layer, key in model.named_parameters():
            host = np.ascontiguousarray(backend.to_host(layer.params[key]))
            self.communicator.broadcast(host)
            layer.params[key] = backend.asarray(host, dtype=layer.params[key].dtype)

    def check_same_parameters(self, model):
        """RuntimeError unless every rank holds bit-identical parameters (checked before each checkpoint)."""
        if self.ranks == 1:
            return
        backend = get_backend()
        digest = 0
        for _, layer, key in model.named_parameters():
            digest = zlib.crc32(np.ascontiguousarray(backend.to_host(layer.params[key])).view(np.uint8), digest)
        digests = self.communicator.gather_object(digest)
        if len(set(digests)) != 1:
            raise RuntimeError(f"the {self.ranks} ranks' parameters differ (CRC-32 {digests}): their gradients "
                               f"were not averaged identically")

    # -- evaluation -------------------------------------------------------------------------------------------
    def evaluate(self, model, loader, progress=False, objective=None):
        """``objective.evaluate`` (default: ``evaluation.validation.evaluate_loader``) on this rank's part of
        ``loader``, summed over the ranks."""
        from ..evaluation.validation import evaluate_loader

        evaluate = evaluate_loader if objective is None else objective.evaluate

        part = shard_evaluation(loader, self.rank, self.ranks)
        totals = np.zeros(5)
        if part is not None:
            result = evaluate(model, part, progress=progress and self.is_root)
            # The metric is over the images that could be read (``evaluate_loader`` leaves the others out).
            skipped = result.get("skipped_images", 0)
            images = len(part.epoch_order(0)) - skipped
            totals = np.array([(1 - result["top1_error"]) * images, (1 - result["top5_error"]) * images,
                               result["loss"] * images, images, skipped])
        correct1, correct5, loss, images, skipped = self.sum(totals)
        if images == 0:
            raise ValueError("the validation loader produced no images")
        return {"top1_error": 1 - round(correct1) / images, "top5_error": 1 - round(correct5) / images,
                "loss": loss / images, "skipped_images": int(skipped)}
