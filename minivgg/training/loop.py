"""The training loop of Sect. 3.1: SGD with momentum on mini-batches of 256, the learning rate divided by 10
on validation plateaus three times, checkpoints that resume exactly.

A run lives in a folder (``run_folder.py``): ``checkpoint.safetensors`` (weights, momentum, schedule,
position, random state), ``log.jsonl`` (one line per epoch), ``model.safetensors`` (the final weights, written
by the caller). Interrupting with Ctrl-C finishes the current step, writes a checkpoint and returns;
``train(..., resume=True)`` continues from it and ends with the same weights as a run that was never
interrupted (the data order and every random draw depend only on the seed, the epoch and the position in it).

A run whose loss or weights stop being finite (a learning rate too high) stops at that step with
``TrainingDiverged``, naming the step and the learning rate; the last checkpoint written before it stays as
it was. A checkpoint that cannot be written (disk full, read-only folder) stops the run with ``WriteError``,
and the previous checkpoint is intact too.

The host reads the steps' numbers back from the device once per progress update, not per step
(``progress.py``), so on a GPU it queues the next steps while the device computes; the batches reach the device
as uint8 pixels, the next one copied while a step runs (``minivgg.data.device_feed``).
"""
import contextlib
import json
import math
import os
import signal
import time
import warnings
from dataclasses import asdict

from ..data.device_feed import loader_batches
from ..data.fingerprint import check_same_data, fingerprints
from ..errors import TrainingDiverged, WriteError
from ..files import atomic_write
from .checkpoint import load_checkpoint, restore_model, save_checkpoint
from .objective import Classification
from .optimiser import SGD
from .progress import StepsInFlight
from .run_folder import CHECKPOINT, LOG
from .schedule import ReduceOnPlateau
from .settings import TrainSettings, check_resumable
from .steps import choose_step

__all__ = ["TrainSettings", "train"]

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


def train(model, train_loader, val_loader, settings, run_dir, resume=False, progress=True, stop_after_steps=None,
          objective=None, parallel=None):
    """Train ``model`` with the paper's recipe until the schedule finishes or ``settings.max_epochs``.

    Parameters
    ----------
    model : a model with ``forward``, ``backward``, ``named_parameters``, ``train``, ``eval``
    train_loader, val_loader : ``minivgg.data.DataLoader``s (``epoch(e, start_batch)``, ``len``); the
        train loader's batch is the device batch
    settings : TrainSettings
    run_dir : folder for the checkpoint and the log (created)
    resume : continue from ``run_dir``'s checkpoint (FileNotFoundError if there is none)
    stop_after_steps : stop as if interrupted after this many SGD steps in this call (for tests and demos)
    objective : what is optimised and measured (``objective.py``); None: classification (soft-max loss,
        top-1 error); e.g. ``minivgg.localisation.BoxRegression`` (Appendix A)
    parallel : ``minivgg.distributed.DataParallel``, this process's rank in a data-parallel run (Sect. 3.3):
        the ranks share each step's ``batch_size`` images and average their gradients, and end with the
        weights of one process; only rank 0 shows progress and writes files. None: one process

    Returns
    -------
    dict with ``history`` (one entry per epoch), ``finished`` (the schedule ended or max_epochs was
    reached; False when interrupted).
    """
    from .run_folder import claimed, mark_run_folder

    # One process at a time in a run folder (the command line holds the lock already; it is re-entrant), marked
    # as minivgg's. On several ranks, rank 0 alone writes, and holds it.
    root = parallel is None or parallel.is_root
    with claimed(run_dir) if root else contextlib.nullcontext():
        if root:
            mark_run_folder(run_dir)
        run = TrainingRun(model, train_loader, val_loader, settings, run_dir, objective or Classification(),
                          parallel, progress)
        if resume:
            run.restore()
        return run.run(stop_after_steps)


def _no_steps():
    """The sums of no SGD steps, an epoch's before its first."""
    return {"loss_sum": 0.0, "correct": 0, "images": 0, "seconds": 0.0}


class TrainingRun:
    """The state of one run of ``train``: the model, the optimiser and schedule, where the run is, what it has
    written; ``run()`` goes through the epochs."""

    def __init__(self, model, train_loader, val_loader, settings, run_dir, objective, parallel, progress):
        os.makedirs(run_dir, exist_ok=True)
        self.model, self.val_loader, self.settings, self.run_dir = model, val_loader, settings, run_dir
        self.objective, self.parallel = objective, parallel
        self.is_root = parallel is None or parallel.is_root
        self.progress = progress and self.is_root
        # What the run trains on, recorded in each checkpoint: a resume on other data is refused.
        self.data_fingerprint = fingerprints({"train": getattr(train_loader, "dataset", None),
                                              "val": getattr(val_loader, "dataset", None)})
        if parallel is not None:  # each rank takes its share of every step's images
            train_loader = parallel.shard(train_loader, settings.batch_size)
        self.train_loader = train_loader
        device_batch = train_loader.batch_size
        if settings.batch_size % device_batch:
            raise ValueError(f"batch_size {settings.batch_size} is not a multiple of the loader's device batch "
                             f"{device_batch}")
        self.accumulation = settings.batch_size // device_batch // (1 if parallel is None else parallel.ranks)
        self.steps_per_epoch = len(train_loader) // self.accumulation
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set gives {len(train_loader)} device batches, fewer than the "
                             f"{self.accumulation} one SGD step of {settings.batch_size} images needs")
        self.optimizer = SGD(model, settings.momentum, settings.weight_decay, settings.decay_biases)
        self.schedule = ReduceOnPlateau(settings.learning_rate, settings.lr_factor, settings.patience,
                                        settings.max_lr_reductions)
        self.position = {"epoch": 0, "step": 0, "global_step": 0}
        self.history = []
        self.epoch_totals = None  # the sums of the epoch's steps before a resume (``restore``)
        self.last_checkpoint = None  # the position of the last checkpoint on disk, once there is one
        self.checkpoint_path = os.path.join(run_dir, CHECKPOINT)
        self.device_batch = device_batch

    def restore(self):
        """Continue from the run folder's checkpoint."""
        params, velocities, state = load_checkpoint(self.checkpoint_path)
        check_resumable(state, self.settings, self.run_dir)
        check_same_data(state["dataset"], None, self.run_dir, current=self.data_fingerprint)
        restore_model(self.model, params, state)
        self.optimizer.load_state_arrays(velocities)
        self.schedule = ReduceOnPlateau.from_state(dict(state["schedule"], patience=self.settings.patience))
        self.position, self.history = state["position"], state["history"]
        # Rank 0 carries on the whole run's sums of the epoch's steps so far; the epoch's end adds every rank's.
        self.epoch_totals = state.get("epoch_totals") if self.is_root else None
        self.last_checkpoint = dict(self.position)

    def run(self, stop_after_steps=None):
        if self.parallel is not None:
            self.parallel.broadcast_parameters(self.model)
        self.model.train()
        # The step variant (plain, data-parallel, recorded) is chosen here, once.
        step = choose_step(self.model, self.objective, self.optimizer, self.accumulation, self.device_batch,
                           self.parallel, self.settings.batch_size)
        self.steps_this_call, self.stop_after_steps = 0, stop_after_steps
        finished = self.schedule.finished or self.position["epoch"] >= self.settings.max_epochs
        with _StopRequest(announce=self.is_root) as self.stop, warnings.catch_warnings():
            # Non-finite numbers are caught and reported at the step where they appear (``diverged``); NumPy's
            # own warnings (from every thread of the convolution) would only precede that with lines about
            # internal files.
            warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
            while not finished:
                interrupted, totals = self.train_epoch(step)
                if interrupted:
                    return {"history": self.history, "finished": False}
                finished = self.end_epoch(totals)
                if self.any_rank(self.stop.requested):
                    return {"history": self.history, "finished": finished}
        return {"history": self.history, "finished": True}

    def train_epoch(self, step):
        """The SGD steps left in this epoch; ``(interrupted, totals)``, the totals summed over the steps.

        The steps' losses, right answers and weight sums stay on the device (``progress.StepsInFlight``) and are
        read back once per progress update, before every checkpoint and at the epoch's end; a divergence is
        still reported at the step where it happened."""
        from minivgg.progress import progress_bar

        position, settings = self.position, self.settings
        first_batch = position["step"] * self.accumulation
        batches = loader_batches(self.train_loader, position["epoch"], first_batch,
                                 stop_batch=self.steps_per_epoch * self.accumulation)
        totals, self.epoch_totals = dict(self.epoch_totals or _no_steps()), None
        in_flight = StepsInFlight()
        bar = progress_bar(total=self.steps_per_epoch, initial=position["step"], disable=not self.progress,
                           desc=f"epoch {position['epoch'] + 1} lr {self.schedule.learning_rate:g}", unit="step")
        try:
            while position["step"] < self.steps_per_epoch:
                start = time.perf_counter()
                result = step(batches, self.schedule.learning_rate, position["global_step"] + 1)
                in_flight.add(result, position)
                position["step"] += 1
                position["global_step"] += 1
                self.steps_this_call += 1
                interrupted, update_due = self.any_rank(self.stop.requested or (
                    self.stop_after_steps is not None and self.steps_this_call >= self.stop_after_steps),
                    in_flight.due())
                checkpoint_due = interrupted or (settings.checkpoint_every
                                                 and position["global_step"] % settings.checkpoint_every == 0)
                read = update_due or checkpoint_due or position["step"] == self.steps_per_epoch
                if read:
                    self.add_steps(in_flight.read(), step, totals)
                totals["seconds"] += time.perf_counter() - start
                bar.update(1)
                if read and totals["images"]:
                    bar.set_postfix(loss=f"{totals['loss_sum'] / totals['images']:.3f}",
                                    top1=f"{totals['correct'] / totals['images']:.3f}",
                                    img_s=f"{totals['images'] / totals['seconds']:.0f}")
                if checkpoint_due:
                    self.checkpoint(totals)
                if interrupted:
                    return True, totals
        finally:
            bar.close()
            batches.close()
        return False, totals

    def add_steps(self, outcomes, step, totals):
        """Add the steps read back (``progress.StepOutcome``s) to the epoch's totals; ``TrainingDiverged`` at the
        first whose loss, on any rank, or whose weights after the update, were not finite."""
        bad_loss = [not outcome.loss_finite for outcome in outcomes]
        bad_loss_anywhere, bad_weights = step.agree_on_divergence(
            bad_loss, [not outcome.weights_finite for outcome in outcomes])
        for outcome, own, anywhere, weights in zip(outcomes, bad_loss, bad_loss_anywhere, bad_weights):
            if own:
                raise self.diverged(f"the loss is {outcome.loss_sum / outcome.images}", at=outcome.position)
            if anywhere:
                raise self.diverged("the loss of another rank's images is not finite", at=outcome.position)
            if weights:
                raise self.diverged("a gradient or a weight is no longer finite after the update",
                                    at=outcome.position)
            totals["loss_sum"] += outcome.loss_sum
            totals["correct"] += outcome.correct
            totals["images"] += outcome.images

    def end_epoch(self, totals):
        """Validate, log, step the schedule and checkpoint; whether the run has finished."""
        epoch = self.position["epoch"]
        skipped = len(getattr(self.train_loader, "skipped", []) or [])
        if self.parallel is not None:
            totals["loss_sum"], totals["correct"], totals["images"], skipped = self.parallel.sum(
                [totals["loss_sum"], totals["correct"], totals["images"], skipped])
            validation = self.parallel.evaluate(self.model, self.val_loader, progress=self.progress,
                                                objective=self.objective)
        else:
            validation = self.objective.evaluate(self.model, self.val_loader, progress=self.progress)
        if not math.isfinite(validation["loss"]):
            raise self.diverged(f"the validation loss is {validation['loss']}", when=f"in epoch {epoch + 1}")
        images = max(totals["images"], 1)
        entry = {"epoch": epoch + 1, "learning_rate": self.schedule.learning_rate,
                 "train_loss": totals["loss_sum"] / images, "train_top1_error": 1 - totals["correct"] / images,
                 "val_loss": validation["loss"], "val_top1_error": validation["top1_error"],
                 "val_top5_error": validation["top5_error"],
                 "images_per_second": totals["images"] / max(totals["seconds"], 1e-9),
                 "skipped_images": int(skipped), "val_skipped_images": validation.get("skipped_images", 0)}
        self.history.append(entry)
        if self.progress:
            print(f"epoch {epoch + 1}: train loss {entry['train_loss']:.3f}, val top-1 error "
                  f"{entry['val_top1_error']:.2%}, top-5 {entry['val_top5_error']:.2%}, "
                  f"lr {self.schedule.learning_rate:g}")
        stop_now = self.schedule.epoch_end(1 - validation["top1_error"])
        self.position = {"epoch": epoch + 1, "step": 0, "global_step": self.position["global_step"]}
        self.checkpoint()
        self.write_on_root(self.write_log, lambda error: f"{error}; {self.kept()}")
        return stop_now or self.position["epoch"] >= self.settings.max_epochs

    # -- the run folder ------------------------------------------------------------------------------------------
    def checkpoint(self, totals=None):
        """Write the checkpoint; ``totals``: the sums of the epoch's steps so far, mid-epoch (on every rank)."""
        if self.parallel is not None:
            self.parallel.check_same_parameters(self.model)
        totals = dict(totals or _no_steps())
        if self.parallel is not None and self.position["step"]:  # the whole run's sums, as the epoch's end adds
            loss_sum, correct, images = self.parallel.sum([totals["loss_sum"], totals["correct"], totals["images"]])
            totals.update(loss_sum=float(loss_sum), correct=int(round(correct)), images=int(round(images)))
        state = {"settings": asdict(self.settings), "schedule": self.schedule.state(), "position": self.position,
                 "history": self.history, "dataset": self.data_fingerprint, "epoch_totals": totals}
        self.write_on_root(lambda: save_checkpoint(self.checkpoint_path, self.model, self.optimizer, state),
                           lambda error: f"training stopped ({self.saved_at(self.position)}): {error}; {self.kept()}")
        self.last_checkpoint = dict(self.position)

    def write_log(self):
        def write(path):
            with open(path, "w") as handle:
                for entry in self.history:
                    handle.write(json.dumps(entry) + "\n")
        atomic_write(os.path.join(self.run_dir, LOG), write)

    def write_on_root(self, write, message):
        """``write()`` on rank 0 only. Every rank waits for the outcome, so none goes on, or ends the run (and with
        it rank 0, mid-write), before the file is in place, and all stop together, with the WriteError
        ``message(error)`` describes, when it could not be written."""
        error = None
        if self.is_root:
            try:
                write()
            except WriteError as failure:
                error = failure
        if self.parallel is not None and self.parallel.any(error is not None) and error is None:
            error = WriteError(f"rank 0 could not write to {self.run_dir} (its message says why)")
        if error is not None:
            raise WriteError(message(error)) from error

    def any_rank(self, *flags):
        """Each flag on one process; on several, true on every rank when true on any (they act together), agreed
        in one exchange. One flag: a bool; several: a list of bools."""
        if self.parallel is not None:
            flags = [count > 0 for count in self.parallel.sum([float(bool(flag)) for flag in flags])]
        return bool(flags[0]) if len(flags) == 1 else [bool(flag) for flag in flags]

    # -- what an error that stops the run says -----------------------------------------------------------------
    def saved_at(self, at):
        if at["step"] == 0:
            return f"after epoch {at['epoch']}"
        return f"epoch {at['epoch'] + 1} after step {at['step']} of {self.steps_per_epoch}"

    def kept(self):
        """What is left on disk to go back to."""
        if self.last_checkpoint is None:
            return "no checkpoint had been written yet"
        return (f"the last good checkpoint, {self.checkpoint_path} ({self.saved_at(self.last_checkpoint)}), is kept "
                f"as it was")

    def diverged(self, what, when=None, at=None):
        """``TrainingDiverged`` saying ``what`` went wrong, ``when`` (default: in the step that began at ``at``, by
        default the current position), and what is left on disk."""
        position = at or self.position
        when = when or (f"in epoch {position['epoch'] + 1} at step {position['step'] + 1} of {self.steps_per_epoch} "
                        f"(SGD step {position['global_step'] + 1})")
        return TrainingDiverged(f"training diverged {when} with learning rate {self.schedule.learning_rate:g}: "
                                f"{what}; {self.kept()}, and no final weights are written; try a smaller learning "
                                f"rate")
