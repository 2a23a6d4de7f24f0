"""Batches onto the device: uint8 pixels, copied while the previous step computes, preprocessed where they land.

A float32 batch is four times the bytes of the uint8 pixels it was made from, and preprocessing (scaling, the
mean subtracted, the channel order, the colour shift of training) is a multiply and an add per pixel: cheap on
any device. So the loader hands over the pixels as they are (``DataLoader.pixel_epoch``), they are copied to the
device as they are, and ``Preprocessing.apply_affine`` runs there: the float32 operations ``Preprocessing.apply``
runs on the host, in the same order, so the model sees the same numbers on every path (training, validation,
evaluation, features, localisation).

On a backend with the ``copy_stream`` capability (CuPy) the copies of batch k + 1 are queued on a stream of their
own as soon as batch k is preprocessed, so they travel while batch k's step computes; events order the two
streams, and the host never waits for either. Elsewhere the same calls run in the same order on the one stream
there is (NumPy: the host arrays are used as they are), which is why the numbers are the same bit for bit.
The labels stay on the host: the loss checks them there, then copies them asynchronously (``asarray``).

    for x, labels in loader_batches(loader, epoch):     # x on the device, preprocessed; labels as the loader gave
        ...
"""
import contextlib
import itertools

from ..backend import asarray, get_backend, supports
from ..preprocessing import Preprocessing

__all__ = ["loader_batches", "device_batches", "gives_pixels"]


def gives_pixels(loader):
    """Whether ``loader`` can hand over its batches before preprocessing: it has ``pixel_epoch`` and its
    preprocessing is a ``Preprocessing`` (whose arithmetic runs on any device; a preprocessing of another kind
    has only its host ``apply``, and the loader applies it)."""
    return hasattr(loader, "pixel_epoch") and isinstance(getattr(loader, "preprocessing", None), Preprocessing)


def loader_batches(loader, epoch, start_batch=0, stop_batch=None):
    """Batches ``start_batch`` up to ``stop_batch`` (default: the epoch's last) of ``loader``'s epoch ``epoch``,
    as ``(x, targets)``: x the model's (B, 3, H, W) input on the active backend's device, targets as the loader
    gives them.

    A loader that ``gives_pixels`` has its uint8 pixels copied and preprocessed on the device, the next batch
    on its way while the current one is used (``device_batches``); any other loader's batches are copied as it
    gives them. The iterator's ``close()`` closes the loader's epoch (stopping its workers)."""
    count = None if stop_batch is None else max(0, stop_batch - start_batch)
    if gives_pixels(loader):
        return device_batches(loader.pixel_epoch(epoch, start_batch), loader.preprocessing, count)
    return _copied(loader.epoch(epoch, start_batch), count)


def device_batches(batches, preprocessing, count=None):
    """Host batches of pixels as the model's input on the device, the next one copied while this one is used.

    Parameters
    ----------
    batches : iterator of ``(pixels (B, H, W, 3) uint8 host array, colour_offsets (B, 3) or None, targets)``
    preprocessing : the ``Preprocessing`` the model expects
    count : take at most this many batches from ``batches`` (None: all), so that nothing is read ahead of what
        the consumer will use

    Yields
    ------
    ``(x (B, 3, H, W) float32 array on the active backend's device, targets)``
    """
    backend = get_backend()
    copies = backend.copy_stream() if supports("copy_stream", backend) else _InOrderCopies()
    shared_shift = []  # without colour offsets every batch adds the same (1, 3) shift: copied once

    def send(batch):
        """Queue the copies of a host batch (None: nothing to send)."""
        if batch is None:
            return None
        pixels, colour_offsets, targets = batch
        gain, shift = preprocessing.affine(len(pixels), colour_offsets)
        if colour_offsets is None:
            if not shared_shift:
                shared_shift.extend(copies.take(copies.upload([shift])))
            return copies.upload([pixels]), gain, shared_shift[0], targets
        return copies.upload([pixels, shift]), gain, None, targets

    host_batches = batches if count is None else itertools.islice(batches, count)
    with _closing(batches):
        ahead = send(next(host_batches, None))
        while ahead is not None:
            uploaded, gain, shift, targets = ahead
            arrays = copies.take(uploaded)
            x = preprocessing.apply_affine(arrays[0], gain, arrays[1] if shift is None else shift)
            del arrays
            copies.release()  # the copies are read by the work queued so far; their memory may be reused after it
            ahead = send(next(host_batches, None))  # the next batch travels while this one is used
            yield x, targets


class _InOrderCopies:
    """The copies of a backend without a copy stream: made where everything else runs, in the same order
    (``asarray``; on NumPy the host arrays themselves)."""

    def upload(self, host_arrays):
        return [asarray(array) for array in host_arrays]

    def take(self, uploaded):
        return uploaded

    def release(self):
        pass


def _copied(batches, count):
    """``(x, targets)`` batches of a loader that preprocesses itself, x copied to the device as it is."""
    with _closing(batches):
        for x, targets in (batches if count is None else itertools.islice(batches, count)):
            yield asarray(x), targets


def _closing(batches):
    """Close ``batches`` (a loader's epoch: its workers stop) when the block ends, if it can be closed."""
    return contextlib.closing(batches) if hasattr(batches, "close") else contextlib.nullcontext()
