"""Batches for the trainer: shuffling, augmentation, preprocessing, worker processes, exact resumption.

Reproducible by construction: the order of epoch e is a permutation drawn from (seed, e), and every random
draw for an image (its scale S, crop, flip and colour shift) comes from a generator seeded with
(seed, e, image index). So a batch depends on nothing but (seed, e, batch number): a run resumed at
(e, start_batch) sees exactly the batches an uninterrupted run would have seen, and any number of worker
processes give the same batches as none.

Two forms of a batch: ``epoch`` gives the model's float32 input (the preprocessing applied here, on the host);
``pixel_epoch`` gives the uint8 crops as they are with their colour shift, a quarter of the bytes, for the device
to preprocess (``device_feed``: what training, validation and evaluation use).

Workers (``num_workers > 0``): worker w builds batches start + w, start + w + W, ... of the epoch, each
written straight into a slot of a shared-memory buffer (float32 or uint8, as the epoch's form); only the labels,
the colour shift and the slot number travel through a queue. Each worker owns
``max(2, ceil(prefetch_batches / W))`` slots, so at most that many of its batches are ready or in preparation
ahead of the consumer (the bounded prefetch), and the memory is fixed. The
consumer takes batches in order, round-robin over the workers. A batch is handed over without a copy: the
array *is* the slot, and the slot returns to its worker when the array and every view of it have been
dropped (a trainer drops each batch before the next). Should the consumer keep a worker's batches (say,
``list(loader.epoch(0))``), batches from that worker are copied instead, so no worker waits forever.
Closing the epoch's iterator (``break``, an exception, Ctrl-C, the trainer's ``close()``) stops and joins
the workers; workers ignore Ctrl-C themselves so the trainer can finish its step and checkpoint.

Unreadable images (``UNREADABLE``) never end an epoch; the file and the reason are appended to
``loader.skipped`` and a ``BadImageWarning`` gives the count when the epoch's iterator ends. What takes the
image's place depends on ``unreadable``:

- ``"leave_out"`` (the default): nothing. The batch holds one image fewer (a batch whose images all failed is
  not delivered), so a metric over the loader counts every readable image once and the skipped ones not
  at all: what validation and testing need.
- ``"substitute"``: the next readable image in the epoch's order, with a draw of its own, so every batch
  keeps its full size, a fixed shape for the device: for training, where an image seen twice is harmless.
"""
import contextlib
import math
import multiprocessing
import os
import pickle
import queue
import signal
import traceback
import weakref

import numpy as np

from ..preprocessing import Preprocessing
from ..threads import available_cores
from .images import UNREADABLE, BadImageError, skip_record, warn_skipped

__all__ = ["DataLoader", "epoch_order", "sample_generator", "multiprocessing_context", "default_workers",
           "UNREADABLE_POLICIES"]

# The three kinds of random stream, kept apart so no two draws ever share a seed.
ORDER_STREAM, SAMPLE_STREAM, SUBSTITUTE_STREAM = 0, 1, 2

# What becomes of an image that cannot be read (see the module's docstring).
UNREADABLE_POLICIES = ("leave_out", "substitute")

# Seconds a consumer waits on a worker before checking it is still alive.
POLL_SECONDS = 0.5


def multiprocessing_context(start_method=None):
    """The multiprocessing context for worker processes: "fork" where the platform has it (workers start
    in milliseconds and share the dataset without pickling it), else the platform's default."""
    if start_method is None and "fork" in multiprocessing.get_all_start_methods():
        start_method = "fork"
    return multiprocessing.get_context(start_method)


def default_workers(arrays_on_host):
    """Loader worker processes for a training run that does not say: on a GPU backend, up to four per training
    process, as many as the machine's cores leave once each training process has one (a worker builds a few
    hundred ImageNet crops a second, ``benchmarks/RESULTS.md``, fewer than a GPU step consumes); on a CPU backend
    none, since its steps already keep every core busy and a worker would only take one from them.

    Parameters
    ----------
    arrays_on_host : whether the backend computes on the host (NumPy)

    The training processes are those MPI started on this machine (Open MPI's ``OMPI_COMM_WORLD_LOCAL_SIZE``,
    MPICH's ``MPI_LOCALNRANKS``), else one.
    """
    if arrays_on_host:
        return 0
    cores = available_cores()
    processes = next((int(os.environ[name]) for name in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")
                      if os.environ.get(name, "").isdigit() and int(os.environ[name]) > 0), 1)
    return max(0, min(4, cores // processes - 1))


def _check_integer(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"DataLoader: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def epoch_order(length, seed, epoch, shuffle=True):
    """The order in which epoch ``epoch`` visits the ``length`` samples: a permutation drawn from
    (seed, epoch) when shuffling, else 0 .. length - 1. Returns an (length,) int64 array."""
    if not shuffle:
        return np.arange(length, dtype=np.int64)
    return np.random.default_rng([seed, epoch, ORDER_STREAM]).permutation(length).astype(np.int64)


def sample_generator(seed, epoch, index):
    """The generator of every random draw for sample ``index`` in epoch ``epoch``."""
    return np.random.default_rng([seed, epoch, SAMPLE_STREAM, index])


class _EpochPlan:
    """What any process needs to build any batch of one epoch; ``batch(b)`` is a pure function of b.

    With ``pixels`` the batches are the crops as they are (uint8, NHWC) with their colour offsets, for a device to
    preprocess (``DataLoader.pixel_epoch``); else the model's float32 NCHW input (``DataLoader.epoch``)."""

    def __init__(self, dataset, augmentation, preprocessing, batch_size, order, seed, epoch, unreadable, pixels=False):
        self.dataset, self.augmentation, self.preprocessing = dataset, augmentation, preprocessing
        self.batch_size, self.order, self.seed, self.epoch = batch_size, order, seed, epoch
        self.unreadable, self.pixels = unreadable, pixels

    def batch_shape(self, batch_size, height, width):
        """The shape of a batch in this plan's form."""
        return (batch_size, height, width, 3) if self.pixels else (batch_size, 3, height, width)

    @property
    def dtype(self):
        return np.dtype(np.uint8) if self.pixels else np.dtype(np.float32)

    def _load(self, index, rng):
        # S is drawn before decoding so that a large JPEG can be decoded at reduced size (draft mode).
        scale = self.augmentation.draw_scale(rng) if self.augmentation is not None else None
        image, label = self.dataset.load(int(index), draft_smallest_side=scale)
        return image, label, scale

    def sample(self, position):
        """``(crop, colour offset or None, label, skipped)`` for the sample at ``position`` of the epoch;
        crop is None for an unreadable image left out."""
        index = self.order[position]
        rng = sample_generator(self.seed, self.epoch, index)
        skipped = []
        try:
            image, label, scale = self._load(index, rng)
        except UNREADABLE as error:
            skipped.append(skip_record(self.dataset.describe(int(index)), error))
            if self.unreadable == "leave_out":
                return None, None, None, skipped
            image, label, scale, rng = self._substitute(position, index)
        if self.augmentation is None:
            return image, None, label, skipped
        crop, offset = self.augmentation(image, rng, scale)
        return crop, offset, label, skipped

    def _substitute(self, position, index):
        # The next readable sample of the epoch's order stands in, with draws of its own (keyed by the
        # replaced sample and the attempt), so the batch keeps its size and the result stays reproducible.
        count = len(self.order)
        for attempt in range(1, count):
            candidate = self.order[(position + attempt) % count]
            rng = np.random.default_rng([self.seed, self.epoch, SUBSTITUTE_STREAM, index, attempt])
            try:
                image, label, scale = self._load(candidate, rng)
            except UNREADABLE:
                continue
            return image, label, scale, rng
        raise BadImageError(f"not one of the {count} images of the dataset could be read")

    def batch(self, number):
        """``(x, colour offsets, labels (B,) int64, skipped)`` of batch ``number``; B is the batch size less the
        images left out, and x is None when that leaves none. x is the model's input, (B, 3, h, w) float32 (the
        offsets then None: applied), or with ``pixels`` the (B, h, w, 3) uint8 crops with their (B, 3) colour
        offsets (None without a colour shift)."""
        crops, offsets, labels, skipped = [], [], [], []
        for position in range(number * self.batch_size, min((number + 1) * self.batch_size, len(self.order))):
            crop, offset, label, bad = self.sample(position)
            skipped += bad
            if crop is None:  # left out
                continue
            crops.append(crop)
            offsets.append(offset)
            labels.append(label)
        if not crops:
            return None, None, np.zeros(0, np.int64), skipped
        shapes = {crop.shape for crop in crops}
        if len(shapes) > 1:
            raise ValueError(f"DataLoader: images of different sizes {sorted(shapes)[:3]} cannot form a batch; give "
                             f"an augmentation (TrainAugmentation or EvalTransform) that crops them to one size")
        colour_offsets = None if offsets[0] is None else np.stack(offsets)
        labels = np.asarray(labels, dtype=np.int64)
        if self.pixels:
            pixels = np.stack(crops)
            if pixels.dtype != np.uint8:
                raise TypeError(f"DataLoader: images must be uint8 RGB (as datasets give them), got {pixels.dtype}")
            return pixels, colour_offsets, labels, skipped
        return self.preprocessing.apply(np.stack(crops), colour_offsets=colour_offsets), None, labels, skipped


def _picklable(error):
    try:
        pickle.dumps(error)
        return error
    except Exception:  # an exception carrying unpicklable state: keep its text
        return RuntimeError(f"{type(error).__name__}: {error}")


class WorkerTraceback(Exception):
    """The traceback of an exception raised in a loader worker, chained to the re-raised exception."""


def _next_free_slot(free_slots, stop):
    """A free slot of this worker, or None once the consumer has stopped the epoch."""
    while not stop.is_set():
        try:
            return free_slots.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
    return None


@contextlib.contextmanager
def _sigint_blocked():
    """Hold back Ctrl-C while workers start: they inherit the block and ignore SIGINT before lifting it,
    and this process receives a Ctrl-C pressed meanwhile as soon as the block ends."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no process groups sharing Ctrl-C this way
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _worker_main(plan, worker, workers, start_batch, batch_count, buffer, slots_shape, free_slots, results, stop):
    """Build batches ``start_batch + worker``, then every ``workers``-th, into free slots of ``buffer``."""
    # Ctrl-C reaches the whole process group; the consumer decides what it means, and closing the epoch
    # stops the workers. SIGINT was blocked when this process started (``_sigint_blocked``), so one
    # pressed during the start is dropped here rather than killing the worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    slots = np.frombuffer(buffer, dtype=plan.dtype).reshape(slots_shape)
    number = None
    try:
        for number in range(start_batch + worker, batch_count, workers):
            slot = _next_free_slot(free_slots, stop)
            if slot is None:
                break
            x, colour_offsets, labels, skipped = plan.batch(number)
            if len(labels):
                slots[slot, :len(labels)] = x
            results.put(("batch", number, slot, colour_offsets, labels, skipped))
    except BaseException as error:  # reported to the consumer, which re-raises it
        results.put(("error", number, _picklable(error), traceback.format_exc()))
    if stop.is_set():  # the consumer is gone: do not wait at exit for it to read the queue
        results.cancel_join_thread()


def _without_offsets(batches):
    """``(x, labels)`` of the ``(x, colour offsets, labels)`` batches (preprocessed: the offsets are applied)."""
    with contextlib.closing(batches):  # closing this iterator stops the epoch's workers at once
        for x, _, labels in batches:
            yield x, labels


class DataLoader:
    """Mini-batches of a dataset, augmented and preprocessed, reproducible and resumable (Sect. 3.1).

    Parameters
    ----------
    dataset : a dataset (``len``, ``load``, ``describe``; ``minivgg.data.datasets``)
    batch_size : images per batch (the device batch)
    augmentation : ``TrainAugmentation``, ``EvalTransform`` or anything with ``draw_scale(rng)`` and
        ``__call__(image, rng, scale) -> (crop uint8 (h, w, 3), colour offset (3,) or None)``; None: the
        images as stored (they must all have one size)
    preprocessing : ``minivgg.preprocessing.Preprocessing`` whose ``apply`` turns the uint8 crops into the
        model's input; None: ``Preprocessing()`` (RGB, 0-255, nothing subtracted)
    shuffle : a new random order every epoch (else the dataset's order)
    seed : int >= 0; with the epoch and the sample index it fixes every random draw
    num_workers : worker processes (0: build batches in this process)
    prefetch_batches : batches ready or in preparation ahead of the consumer, over all workers (each worker
        holds at least two); they live in a shared buffer of that many batches
    drop_last : leave out the last, smaller batch
    start_method : multiprocessing start method of the workers (default ``multiprocessing_context()``)
    unreadable : "leave_out" (default: an image that cannot be read is left out of its batch, so every
        image counts once or not at all, as evaluation needs) or "substitute" (the next readable image
        takes its place, so batches keep their size: for training)

    Attributes
    ----------
    skipped : list of ``(file, reason)`` of the images that could not be read (left out or replaced), in
        the batches delivered by the latest ``epoch`` iterator (reset when a new one starts)
    """

    def __init__(self, dataset, batch_size, augmentation=None, preprocessing=None, shuffle=True, seed=0,
                 num_workers=0, prefetch_batches=4, drop_last=False, start_method=None, unreadable="leave_out"):
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty")
        self.dataset = dataset
        self.batch_size = _check_integer(batch_size, "batch_size", 1)
        if augmentation is not None and not (callable(augmentation) and hasattr(augmentation, "draw_scale")):
            raise TypeError(f"DataLoader: augmentation must have draw_scale(rng) and __call__(image, rng, scale) "
                            f"(TrainAugmentation, EvalTransform), got {type(augmentation).__name__}")
        self.augmentation = augmentation
        preprocessing = Preprocessing() if preprocessing is None else preprocessing
        if not hasattr(preprocessing, "apply"):
            raise TypeError(f"DataLoader: preprocessing must be a minivgg.preprocessing.Preprocessing, got "
                            f"{type(preprocessing).__name__}")
        self.preprocessing = preprocessing
        self.shuffle = bool(shuffle)
        self.seed = _check_integer(seed, "seed", 0)
        self.num_workers = _check_integer(num_workers, "num_workers", 0)
        self.prefetch_batches = _check_integer(prefetch_batches, "prefetch_batches", 1)
        self.drop_last = bool(drop_last)
        self.start_method = start_method
        if unreadable not in UNREADABLE_POLICIES:
            raise ValueError(f"DataLoader: unreadable must be one of {UNREADABLE_POLICIES}, got {unreadable!r}")
        self.unreadable = unreadable
        if len(self) == 0:
            raise ValueError(f"DataLoader: {len(dataset)} images give no full batch of {self.batch_size} "
                             f"with drop_last=True")
        self.skipped = []

    def __len__(self):
        """Batches per epoch."""
        if self.drop_last:
            return len(self.dataset) // self.batch_size
        return math.ceil(len(self.dataset) / self.batch_size)

    def epoch_order(self, epoch_index):
        """The sample indices in the order epoch ``epoch_index`` visits them."""
        return epoch_order(len(self.dataset), self.seed, epoch_index, self.shuffle)

    def epoch(self, epoch_index, start_batch=0):
        """Iterate over the batches of epoch ``epoch_index`` from batch ``start_batch`` on.

        Yields
        ------
        x : (B, 3, h, w) float32 C-contiguous NumPy array, passed through ``preprocessing.apply`` (with
            the colour offsets of the augmentation); B may be less than the batch size for the last batch
            and, with ``unreadable="leave_out"``, for batches with images left out
        labels : (B,) int64

        Batch b of epoch e is the same whatever ``start_batch`` and ``num_workers`` are. Workers start
        on the first ``next()`` and stop when the iterator ends or is closed.
        """
        return _without_offsets(self._epoch(epoch_index, start_batch, pixels=False))

    def pixel_epoch(self, epoch_index, start_batch=0):
        """The batches of ``epoch`` before preprocessing, for a device to preprocess (``data.device_feed``): a
        quarter of the bytes of float32 to copy, and ``preprocessing.apply_affine`` on the device gives the
        numbers ``epoch`` gives.

        Yields
        ------
        pixels : (B, h, w, 3) uint8 C-contiguous NumPy array, RGB
        colour_offsets : (B, 3) float64 RGB offsets of the augmentation's colour shift, or None without one
        labels : (B,) int64
        """
        return self._epoch(epoch_index, start_batch, pixels=True)

    def _epoch(self, epoch_index, start_batch, pixels):
        epoch_index = _check_integer(epoch_index, "epoch_index", 0)
        start_batch = _check_integer(start_batch, "start_batch", 0)
        if start_batch > len(self):
            raise ValueError(f"DataLoader: start_batch {start_batch} is past the {len(self)} batches of an epoch")
        return self._batches(epoch_index, start_batch, pixels)

    def _batches(self, epoch_index, start_batch, pixels):
        self.skipped = []
        plan = _EpochPlan(self.dataset, self.augmentation, self.preprocessing, self.batch_size,
                          self.epoch_order(epoch_index), self.seed, epoch_index, self.unreadable, pixels)
        try:
            if self.num_workers == 0:
                for number in range(start_batch, len(self)):
                    x, colour_offsets, labels, skipped = plan.batch(number)
                    self.skipped += skipped
                    if len(labels):
                        yield x, colour_offsets, labels
            else:
                yield from self._from_workers(plan, start_batch)
        finally:
            what = "left out" if self.unreadable == "leave_out" else "replaced by other images"
            warn_skipped(self.skipped, f"epoch {epoch_index} of {self.dataset!r}", f"unreadable image ({what})",
                         f"unreadable images ({what})")

    def _batch_shape(self, plan):
        if self.augmentation is not None and hasattr(self.augmentation, "crop_size"):
            height = width = self.augmentation.crop_size
        else:  # images as stored: the first one says the size all must have
            height, width = self.dataset.load(0)[0].shape[:2]
        return plan.batch_shape(self.batch_size, height, width)

    def _from_workers(self, plan, start_batch):
        workers = min(self.num_workers, len(self) - start_batch)
        if workers == 0:
            return
        context = multiprocessing_context(self.start_method)
        # Two slots a worker at least: one it fills while the consumer holds the other.
        slots_per_worker = max(2, math.ceil(self.prefetch_batches / workers))
        slots_shape = (workers * slots_per_worker,) + self._batch_shape(plan)
        slot_bytes = int(np.prod(slots_shape[1:])) * plan.dtype.itemsize
        buffer = context.RawArray("B", int(np.prod(slots_shape)) * plan.dtype.itemsize)
        slots = np.frombuffer(buffer, dtype=plan.dtype).reshape(slots_shape)
        free_slots = [context.Queue() for _ in range(workers)]
        results = [context.Queue() for _ in range(workers)]
        for worker in range(workers):
            for slot in range(worker * slots_per_worker, (worker + 1) * slots_per_worker):
                free_slots[worker].put(slot)
        stop = context.Event()
        processes = [context.Process(target=_worker_main, name=f"minivgg-loader-{worker}", daemon=True,
                                     args=(plan, worker, workers, start_batch, len(self), buffer, slots_shape,
                                           free_slots[worker], results[worker], stop))
                     for worker in range(workers)]
        held = set()  # slots whose batch the consumer still holds (zero-copy)
        running = [True]

        def release(worker, slot):  # the consumer dropped the batch of ``slot``: the worker may refill it
            held.discard(slot)
            if running[0]:
                try:
                    free_slots[worker].put(slot)
                except (OSError, ValueError):  # the epoch ended meanwhile: nobody needs the slot
                    pass

        try:
            with _sigint_blocked():
                for process in processes:
                    process.start()
            for number in range(start_batch, len(self)):
                worker = (number - start_batch) % workers
                message = self._receive(results[worker], processes[worker], worker)
                if message[0] == "error":
                    _, failed, error, trace = message
                    raise error from WorkerTraceback(f"in loader worker {worker}, batch {failed}:\n{trace}")
                _, delivered, slot, colour_offsets, labels, skipped = message
                if delivered != number:
                    raise RuntimeError(f"DataLoader: worker {worker} delivered batch {delivered}, expected {number}")
                self.skipped += skipped
                if not len(labels):  # every image of the batch was left out
                    free_slots[worker].put(slot)
                    continue
                own = range(worker * slots_per_worker, (worker + 1) * slots_per_worker)
                if any(other != slot and other not in held for other in own):
                    # Zero-copy: the batch is the slot itself, handed back when the array and every view of
                    # it are gone (an array built on the raw buffer is the base of all its views).
                    x = np.ndarray((len(labels),) + slots_shape[2:], plan.dtype, buffer=buffer,
                                   offset=slot * slot_bytes)
                    held.add(slot)
                    weakref.finalize(x, release, worker, slot).atexit = False
                else:  # the consumer keeps this worker's other batches: copy, so the worker is never starved
                    x = slots[slot, :len(labels)].copy()
                    free_slots[worker].put(slot)
                yield x, colour_offsets, labels
        finally:
            running[0] = False
            stop.set()
            for channel in free_slots:  # wake workers waiting for a slot: None means stop
                channel.put(None)
            for process in processes:
                if process.pid is not None:
                    process.join(timeout=5)
                if process.is_alive():
                    process.terminate()
                    process.join()
            for channel in free_slots + results:
                channel.cancel_join_thread()
                channel.close()

    @staticmethod
    def _receive(results, process, worker):
        while True:
            try:
                return results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not process.is_alive():
                    try:  # it may have delivered just before exiting
                        return results.get(timeout=POLL_SECONDS)
                    except queue.Empty:
                        raise RuntimeError(f"DataLoader: worker {worker} stopped unexpectedly (exit code "
                                           f"{process.exitcode}); if it was killed, memory may have run out: use "
                                           f"fewer workers or a smaller prefetch_batches") from None

    def __repr__(self):
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, augmentation={self.augmentation!r}, "
                f"shuffle={self.shuffle}, seed={self.seed}, num_workers={self.num_workers})")
