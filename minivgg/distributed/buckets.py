"""Gradients averaged over the ranks in buckets, each sent as soon as the backward pass has produced it.

The backward pass runs from the last layer to the first, so the FC layers' gradients -- about 90% of VGG-16's
552 MB -- are ready first. Parameters are grouped, in that backward order, into buckets of about
``bucket_bytes``; when the last parameter of a bucket arrives, its sum over the ranks starts (non-blocking)
while the backward pass goes on through the lower layers, as PyTorch's DistributedDataParallel and Horovod's
tensor fusion do. Only the last bucket's sum is not hidden behind computation.

The same parameters always fall in the same bucket and the sums start in the same order on every rank, so a
run is reproducible. Accumulated device batches are summed into the same buffers, so the sum sent is already
the rank's share of the step's gradient, scaled by ``1 / (accumulation * ranks)``: the result is the mean
over the global batch.
"""
import numpy as np

__all__ = ["GradientBuckets", "DEFAULT_BUCKET_BYTES"]

DEFAULT_BUCKET_BYTES = 25 * 2 ** 20  # PyTorch DDP's default: a few buckets for VGG-16, many for ResNets


class _Bucket:
    def __init__(self, entries, xp, dtype):
        self.entries = entries          # [(layer, key, offset, shape), ...]
        size = sum(int(np.prod(shape)) for _, _, _, shape in entries)
        self.buffer = xp.empty(size, dtype=dtype)
        self.arrived = 0
        self.request = None

    def view(self, offset, shape):
        return self.buffer[offset:offset + int(np.prod(shape))].reshape(shape)


class GradientBuckets:
    """Buffers for every parameter's gradient, grouped into buckets in backward order.

    Parameters
    ----------
    model : anything with ``named_parameters()`` yielding ``(name, layer, key)`` in forward order
    communicator : ``communicator.MPICommunicator``, ``nccl.NCCLCommunicator`` or ``LocalCommunicator``
    xp : the array module of the buffers (NumPy for MPI between CPU processes, CuPy for NCCL)
    to_buffer : function turning a gradient into an array of ``xp`` (e.g. device to host); identity by default
    bucket_bytes : int, the size at which a bucket is closed
    """

    def __init__(self, model, communicator, xp=np, to_buffer=None, bucket_bytes=DEFAULT_BUCKET_BYTES):
        self.communicator, self.xp = communicator, xp
        self.to_buffer = to_buffer if to_buffer is not None else (lambda array: array)
        parameters = list(model.named_parameters())[::-1]
        dtype = parameters[0][1].params[parameters[0][2]].dtype if parameters else np.float32
        self.buckets, self.slot = [], {}
        entries, offset = [], 0
        for index, (_, layer, key) in enumerate(parameters):
            shape = tuple(layer.params[key].shape)
            entries.append((layer, key, offset, shape))
            offset += int(np.prod(shape))
            if offset * np.dtype(dtype).itemsize >= bucket_bytes or index == len(parameters) - 1:
                bucket = _Bucket(entries, xp, dtype)
                self.buckets.append(bucket)
                for layer_, key_, offset_, shape_ in entries:
                    self.slot[id(layer_), key_] = (bucket, offset_, shape_)
                entries, offset = [], 0

    def __len__(self):
        return len(self.buckets)

    def add(self, layer, first, last, scale):
        """Add ``layer``'s fresh gradients to its slots (``first``: overwrite); on the ``last`` device batch of
        a step, start the sum of every bucket this completes, scaled by ``scale`` first."""
        for key in layer.params:
            bucket, offset, shape = self.slot[id(layer), key]
            view = bucket.view(offset, shape)
            gradient = self.to_buffer(layer.grads[key])
            if first:
                view[...] = gradient
            else:
                view += gradient
            if last:
                bucket.arrived += 1
                if bucket.arrived == len(bucket.entries):
                    if scale != 1.0:
                        bucket.buffer *= bucket.buffer.dtype.type(scale)
                    bucket.request = self.communicator.start_sum(bucket.buffer)
        started = [b.request for b in self.buckets if b.request is not None]
        self.communicator.progress(started)

    def finish(self, from_buffer=None):
        """Wait for every bucket's sum and hand the averaged gradients back to the layers' ``grads``."""
        from_buffer = from_buffer if from_buffer is not None else (lambda array: array)
        pending = [b.request for b in self.buckets if b.request is not None]
        if len(pending) != len(self.buckets):
            raise RuntimeError("GradientBuckets.finish: some parameters received no gradient this step "
                               "(a layer was skipped in the backward pass)")
        self.communicator.wait(pending, "gradients")
        for bucket in self.buckets:
            for layer, key, offset, shape in bucket.entries:
                layer.grads[key] = from_buffer(bucket.view(offset, shape))
            bucket.arrived, bucket.request = 0, None

    def gradient_bytes(self):
        """Bytes sent per step by each rank's sum (before the all-reduce's own 2(N-1)/N factor)."""
        return sum(b.buffer.nbytes for b in self.buckets)
