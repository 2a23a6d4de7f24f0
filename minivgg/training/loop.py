"""The training loop of Sect. 3.1: SGD with momentum on mini-batches of 256, the learning rate divided by 10
on validation plateaus three times, checkpoints that resume exactly.

A run lives in a folder: ``checkpoint.safetensors`` (weights, momentum, schedule, position, random state),
``log.jsonl`` (one line per epoch), ``model.safetensors`` (the final weights). Interrupting with Ctrl-C
finishes the current step, writes a checkpoint and returns; ``train(..., resume=True)`` continues from it
and ends with the same weights as a run that was never interrupted (the data order and every random draw
depend only on the seed, the epoch and the position in it).

A run whose loss or weights stop being finite (a learning rate too high) stops at that step with
``TrainingDiverged``, naming the step and the learning rate; the last checkpoint written before it stays as
it was. A checkpoint that cannot be written (disk full, read-only folder) stops the run with ``WriteError``,
and the previous checkpoint is intact too.
"""
import json
import math
import os
import signal
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from ..backend import asarray, to_host
from ..files import atomic_write
from .checkpoint import load_checkpoint, restore_model, save_checkpoint
from ..errors import TrainingDiverged, WriteError
from .recorded_step import captured_training_step
from ..layers import SoftmaxCrossEntropyLoss, set_dropout_position
from ..evaluation.metrics import top_k_correct
from .optimiser import SGD
from .schedule import ReduceOnPlateau

__all__ = ["TrainSettings", "train", "evaluate_loader", "CHECKPOINT", "LOG", "FINAL_WEIGHTS",
           "CHANGEABLE_ON_RESUME", "check_resumable"]

CHECKPOINT, LOG, FINAL_WEIGHTS = "checkpoint.safetensors", "log.jsonl", "model.safetensors"

# Settings a resumed run may change: how long to go on, how patient the schedule is from now, how often to
# checkpoint. Everything else would make the resumed run a different run than the one checkpointed.
CHANGEABLE_ON_RESUME = ("max_epochs", "patience", "checkpoint_every")


@dataclass
class TrainSettings:
    """The optimisation recipe; the defaults are the paper's (Sect. 3.1).

    ``batch_size`` is the batch of one SGD step; the loaders' batch is the device batch, and
    ``batch_size / device batch`` batches are accumulated per step (it must divide exactly).
    ``checkpoint_every`` is in SGD steps (0: at the end of each epoch only).
    """

    batch_size: int = 256
    learning_rate: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay_biases: bool = False
    lr_factor: float = 0.1
    patience: int = 2
    max_lr_reductions: int = 3
    max_epochs: int = 74
    checkpoint_every: int = 0


# Ctrl-C, and SIGUSR1: ``mpirun`` ends its ranks when it gets Ctrl-C (they are not in the terminal's process
# group), but forwards SIGUSR1 to them, which ``minivgg train --processes`` sends it on Ctrl-C (``launch.py``).
_STOP_SIGNALS = (signal.SIGINT,) + ((signal.SIGUSR1,) if hasattr(signal, "SIGUSR1") else ())


class _StopRequest:
    """Turns Ctrl-C (or SIGUSR1) into a request honoured at the next step boundary, so a checkpoint never holds
    a half-applied update."""

    def __init__(self, announce=True):
        self.requested, self.announce = False, announce  # on several ranks, rank 0 alone says it

    def __enter__(self):
        try:
            self._previous = {number: signal.signal(number, self._handle) for number in _STOP_SIGNALS}
        except ValueError:  # not the main thread: Ctrl-C is not ours to catch
            self._previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            print("\nstopping after this step and writing a checkpoint (Ctrl-C again to abort at once)")

    def __exit__(self, *exc):
        for number, previous in (self._previous or {}).items():
            signal.signal(number, previous)


def evaluate_loader(model, loader, progress=False):
    """Top-1 and top-5 error and mean loss of ``model`` over one pass of ``loader`` (in eval mode)."""
    from tqdm.auto import tqdm

    model.eval()
    loss_layer = SoftmaxCrossEntropyLoss()
    correct1 = correct5 = images = 0
    total_loss = 0.0
    for x, labels in tqdm(loader.epoch(0), total=len(loader), disable=not progress, desc="validation",
                          leave=False):
        scores = model.forward(asarray(x))
        total_loss += loss_layer.forward(scores, labels) * len(labels)
        scores = np.asarray(to_host(scores))
        correct1 += int(top_k_correct(scores, labels, 1).sum())
        correct5 += int(top_k_correct(scores, labels, min(5, scores.shape[1])).sum())
        images += len(labels)
    model.train()
    if images == 0:
        raise ValueError("the validation loader produced no images")
    # Images the loader could not read are left out of the metric (``DataLoader(unreadable="leave_out")``).
    return {"top1_error": 1 - correct1 / images, "top5_error": 1 - correct5 / images, "loss": total_loss / images,
            "skipped_images": len(getattr(loader, "skipped", []) or [])}


def check_resumable(state, settings, run_dir):
    """ValueError unless the run checkpointed with ``state`` (``checkpoint.read_checkpoint_state``) can go on
    with ``settings``: only ``CHANGEABLE_ON_RESUME`` may differ, and not to fewer epochs than it has done."""
    changed = {k: (state["settings"].get(k), v) for k, v in asdict(settings).items()
               if state["settings"].get(k) != v and k not in CHANGEABLE_ON_RESUME}
    if changed:
        raise ValueError(f"cannot resume {run_dir} with different settings (checkpoint, now): {changed}; "
                         f"only {', '.join(CHANGEABLE_ON_RESUME)} may change")
    if settings.max_epochs < state["position"]["epoch"]:
        raise ValueError(f"cannot resume {run_dir} with max_epochs {settings.max_epochs}: it has completed "
                         f"{state['position']['epoch']} epochs already")


def _weights_are_finite(model):
    """Whether every parameter is finite, with one host transfer: a sum is finite exactly when all its
    terms are (short of weights near 1e38, a run diverged anyway), and a non-finite gradient or update
    always leaves a non-finite weight behind. About 0.06 s for VGG-16's 138M weights on a CPU core, next to
    a step of ten seconds or more."""
    total = sum(layer.params[key].sum() for _, layer, key in model.named_parameters())
    return math.isfinite(float(to_host(total)))


def _write_log(run_dir, history):
    def write(path):
        with open(path, "w") as handle:
            for entry in history:
                handle.write(json.dumps(entry) + "\n")
    atomic_write(os.path.join(run_dir, LOG), write)


def train(model, train_loader, val_loader, settings, run_dir, resume=False, progress=True, stop_after_steps=None,
          objective=None, parallel=None):
    """Train ``model`` with the paper's recipe until the schedule finishes or ``settings.max_epochs``.

    Parameters
    ----------
    model : a model with ``forward``, ``backward``, ``named_parameters``, ``train``, ``eval``
    train_loader, val_loader : ``minivgg.data.DataLoader``s (``epoch(e, start_batch)``, ``len``); the
        train loader's batch is the device batch
    settings : TrainSettings
    run_dir : folder for the checkpoint, the log and the final weights (created)
    resume : continue from ``run_dir``'s checkpoint (FileNotFoundError if there is none)
    stop_after_steps : stop as if interrupted after this many SGD steps in this call (for tests and demos)
    objective : None for classification (soft-max loss, top-1 error). Another task passes an object with
        ``loss_layer()`` (a loss whose ``forward(outputs, targets)`` takes the loaders' second item),
        ``correct(outputs, targets)`` (how many of the batch count as right) and ``evaluate(model, loader,
        progress)`` (a dict as ``evaluate_loader``'s, whose ``top1_error`` drives the schedule); e.g.
        ``minivgg.localisation.BoxRegression`` (Appendix A)
    parallel : ``minivgg.distributed.DataParallel``, this process's rank in a data-parallel run (Sect. 3.3):
        the ranks share each step's ``batch_size`` images and average their gradients, and end with the
        weights of one process; only rank 0 shows progress and writes files. None: one process

    Returns
    -------
    dict with ``history`` (one entry per epoch), ``finished`` (the schedule ended or max_epochs was
    reached; False when interrupted).
    """
    from tqdm.auto import tqdm

    os.makedirs(run_dir, exist_ok=True)
    is_root = parallel is None or parallel.is_root
    if parallel is not None:  # each rank takes its share of every step's images
        train_loader = parallel.shard(train_loader, settings.batch_size)
        progress = progress and is_root
    device_batch = train_loader.batch_size
    if settings.batch_size % device_batch:
        raise ValueError(f"batch_size {settings.batch_size} is not a multiple of the loader's device batch "
                         f"{device_batch}")
    accumulation = settings.batch_size // device_batch // (1 if parallel is None else parallel.ranks)
    steps_per_epoch = len(train_loader) // accumulation
    if steps_per_epoch == 0:
        raise ValueError(f"the training set gives {len(train_loader)} device batches, fewer than the "
                         f"{accumulation} one SGD step of {settings.batch_size} images needs")
    optimizer = SGD(model, settings.momentum, settings.weight_decay, settings.decay_biases)
    schedule = ReduceOnPlateau(settings.learning_rate, settings.lr_factor, settings.patience,
                               settings.max_lr_reductions)
    position = {"epoch": 0, "step": 0, "global_step": 0}
    history = []
    checkpoint_path = os.path.join(run_dir, CHECKPOINT)
    if resume:
        params, velocities, state = load_checkpoint(checkpoint_path)
        check_resumable(state, settings, run_dir)
        restore_model(model, params, state)
        optimizer.load_state_arrays(velocities)
        schedule = ReduceOnPlateau.from_state(dict(state["schedule"], patience=settings.patience))
        position, history = state["position"], state["history"]
    last_checkpoint = dict(position) if resume else None

    def saved_at(at):
        if at["step"] == 0:
            return f"after epoch {at['epoch']}"
        return f"epoch {at['epoch'] + 1} after step {at['step']} of {steps_per_epoch}"

    def kept():
        """What is left on disk to go back to, for the message of an error that stops the run."""
        if last_checkpoint is None:
            return "no checkpoint had been written yet"
        return f"the last good checkpoint, {checkpoint_path} ({saved_at(last_checkpoint)}), is kept as it was"

    def on_root(write):
        """``write()`` on rank 0 only; the WriteError it raises, or None. Every rank waits for the outcome, so
        none goes on, or ends the run (and with it rank 0, mid-write), before the file is in place, and all
        stop together when it could not be written."""
        error = None
        if is_root:
            try:
                write()
            except WriteError as failure:
                error = failure
        if parallel is not None and parallel.any(error is not None) and error is None:
            error = WriteError(f"rank 0 could not write to {run_dir} (its message says why)")
        return error

    def checkpoint():
        nonlocal last_checkpoint
        if parallel is not None:
            parallel.check_same_parameters(model)
        error = on_root(lambda: save_checkpoint(checkpoint_path, model, optimizer,
                                                {"settings": asdict(settings), "schedule": schedule.state(),
                                                 "position": position, "history": history}))
        if error is not None:
            raise WriteError(f"training stopped ({saved_at(position)}): {error}; {kept()}") from error
        last_checkpoint = dict(position)

    if parallel is not None:
        parallel.broadcast_parameters(model)

    def diverged(what, when=None):
        when = when or (f"in epoch {position['epoch'] + 1} at step {position['step'] + 1} of {steps_per_epoch} "
                        f"(SGD step {position['global_step'] + 1})")
        return TrainingDiverged(f"training diverged {when} with learning rate {schedule.learning_rate:g}: {what}; "
                                f"{kept()}, and no final weights are written; try a smaller learning rate")

    loss_layer = SoftmaxCrossEntropyLoss() if objective is None else objective.loss_layer()
    model.train()
    # On a backend that captures CUDA graphs, the whole step is recorded once and replayed (None elsewhere).
    # The recording is of the soft-max loss's step: another objective's loss runs the eager loop.
    captured = (captured_training_step(model, loss_layer, optimizer)
                if accumulation == 1 and parallel is None and objective is None else None)
    steps_this_call = 0
    finished = schedule.finished or position["epoch"] >= settings.max_epochs
    with _StopRequest(announce=is_root) as stop, warnings.catch_warnings():
        # Non-finite numbers are caught and reported at the step where they appear (``diverged``); NumPy's own
        # warnings (from every thread of the convolution) would only precede that with lines about internal files.
        warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
        while not finished:
            epoch = position["epoch"]
            batches = train_loader.epoch(epoch, start_batch=position["step"] * accumulation)
            running = {"loss": 0.0, "correct": 0, "images": 0, "seconds": 0.0}
            bar = tqdm(total=steps_per_epoch, initial=position["step"], disable=not progress,
                       desc=f"epoch {epoch + 1} lr {schedule.learning_rate:g}", unit="step")
            try:
                while position["step"] < steps_per_epoch:
                    start = time.perf_counter()
                    nonfinite_loss = None
                    for k in range(accumulation):
                        x, labels = next(batches)
                        # Dropout masks keyed by (step t = 1, 2, ..., index in the global batch): the same
                        # however the batch is split.
                        set_dropout_position(model, position["global_step"] + 1, k * device_batch if parallel is None
                                             else parallel.first_sample(k, device_batch, settings.batch_size))
                        if captured is not None:  # forward, backward and the SGD step, replayed
                            scores, loss = captured(x, labels, schedule.learning_rate)
                        else:
                            scores = model.forward(asarray(x))
                            loss = loss_layer.forward(scores, labels)
                        if not math.isfinite(loss):
                            if parallel is None:
                                raise diverged(f"the loss is {loss}")
                            nonfinite_loss = loss  # the others are in this step's sums: all stop after it
                        running["loss"] += loss * len(labels)
                        if parallel is not None:
                            parallel.backward(model, loss_layer.backward(), k, accumulation)
                        elif captured is None:
                            model.backward(loss_layer.backward(), input_gradient=False)
                            if accumulation > 1:
                                optimizer.accumulate()
                        running["correct"] += (int(top_k_correct(np.asarray(to_host(scores)), labels, 1).sum())
                                               if objective is None else objective.correct(scores, labels))
                        running["images"] += len(labels)
                    if captured is None:
                        optimizer.step(schedule.learning_rate)
                    if parallel is not None and parallel.any(nonfinite_loss is not None):
                        raise diverged(f"the loss is {nonfinite_loss}" if nonfinite_loss is not None else
                                       "the loss of another rank's images is not finite")
                    if not _weights_are_finite(model):
                        raise diverged("a gradient or a weight is no longer finite after the update")
                    running["seconds"] += time.perf_counter() - start
                    position["step"] += 1
                    position["global_step"] += 1
                    steps_this_call += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{running['loss'] / running['images']:.3f}",
                                    top1=f"{running['correct'] / running['images']:.3f}",
                                    img_s=f"{running['images'] / running['seconds']:.0f}")
                    interrupted = stop.requested or (stop_after_steps is not None
                                                     and steps_this_call >= stop_after_steps)
                    if parallel is not None:
                        interrupted = parallel.any(interrupted)
                    if interrupted or (settings.checkpoint_every
                                       and position["global_step"] % settings.checkpoint_every == 0):
                        checkpoint()
                    if interrupted:
                        return {"history": history, "finished": False}
            finally:
                bar.close()
                batches.close()
            skipped = len(getattr(train_loader, "skipped", []) or [])
            if parallel is not None:
                running["loss"], running["correct"], running["images"], skipped = parallel.sum(
                    [running["loss"], running["correct"], running["images"], skipped])
                validation = parallel.evaluate(model, val_loader, progress=progress, objective=objective)
            else:
                validation = (evaluate_loader if objective is None else objective.evaluate)(model, val_loader,
                                                                                            progress=progress)
            if not math.isfinite(validation["loss"]):
                raise diverged(f"the validation loss is {validation['loss']}", when=f"in epoch {epoch + 1}")
            entry = {"epoch": epoch + 1, "learning_rate": schedule.learning_rate,
                     "train_loss": running["loss"] / max(running["images"], 1),
                     "train_top1_error": 1 - running["correct"] / max(running["images"], 1),
                     "val_loss": validation["loss"], "val_top1_error": validation["top1_error"],
                     "val_top5_error": validation["top5_error"],
                     "images_per_second": running["images"] / max(running["seconds"], 1e-9),
                     "skipped_images": int(skipped),
                     "val_skipped_images": validation.get("skipped_images", 0)}
            history.append(entry)
            if progress:
                print(f"epoch {epoch + 1}: train loss {entry['train_loss']:.3f}, val top-1 error "
                      f"{entry['val_top1_error']:.2%}, top-5 {entry['val_top5_error']:.2%}, lr {schedule.learning_rate:g}")
            stop_now = schedule.epoch_end(1 - validation["top1_error"])
            position = {"epoch": epoch + 1, "step": 0, "global_step": position["global_step"]}
            finished = stop_now or position["epoch"] >= settings.max_epochs
            checkpoint()
            error = on_root(lambda: _write_log(run_dir, history))
            if error is not None:
                raise WriteError(f"{error}; {kept()}") from error
            if stop.requested if parallel is None else parallel.any(stop.requested):
                return {"history": history, "finished": finished}
    return {"history": history, "finished": True}
