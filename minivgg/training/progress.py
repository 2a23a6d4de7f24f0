"""What the training loop knows of its steps: read back from the device once per progress update, not per step.

A number computed on a GPU reaches the host only when the host waits for the device to finish everything queued
before it. A loop that read the loss after every step would wait at every step, and the GPU would then sit idle
while the host prepares the next one. So each step leaves what it measured on the device (``steps.StepResult``:
the loss sum, the right answers, the sum of the weights), and ``StepsInFlight`` collects those results and reads
them back in one transfer, once per progress update: every ``every_steps`` steps, or sooner once ``every_seconds``
have passed since the last read (so a slow step, as on a CPU, still moves the bar's figures each second), and
whenever the loop must know now (before a checkpoint, at the end of an epoch).

Nothing is lost by waiting: the results are kept per step, so a loss or a weight that stops being finite is still
reported at the step where it happened; and since every checkpoint is preceded by a read, no checkpoint is ever
written after a step that diverged.
"""
import math
import time
from dataclasses import dataclass

from ..backend import get_backend, to_host

__all__ = ["StepsInFlight", "StepOutcome", "EVERY_STEPS", "EVERY_SECONDS"]

# The progress update: at most one read-back (one host synchronisation) per this many steps, or per this many
# seconds when steps are slower than that.
EVERY_STEPS = 10
EVERY_SECONDS = 1.0


@dataclass
class StepOutcome:
    """One step as the host sees it after a read-back: where the run was when it began (``position``, the loop's
    ``{"epoch", "step", "global_step"}``), the loss summed over its images, the right answers, the images, and
    whether its loss and the weights after it were finite."""

    position: dict
    loss_sum: float
    correct: int
    images: int
    weight_sum: float

    @property
    def loss_finite(self):
        return math.isfinite(self.loss_sum)

    @property
    def weights_finite(self):
        return math.isfinite(self.weight_sum)


class StepsInFlight:
    """The ``StepResult``s of the steps since the last read-back, still on the device.

    Parameters
    ----------
    every_steps, every_seconds : when ``due()`` says a read-back is wanted (see the module's docstring); None:
        this module's ``EVERY_STEPS`` and ``EVERY_SECONDS``
    """

    def __init__(self, every_steps=None, every_seconds=None):
        self.every_steps = EVERY_STEPS if every_steps is None else every_steps
        self.every_seconds = EVERY_SECONDS if every_seconds is None else every_seconds
        self.results, self.positions = [], []
        self.last_read = time.perf_counter()

    def __len__(self):
        return len(self.results)

    def add(self, result, position):
        """Keep ``result`` (a ``StepResult``) of the step that began at ``position`` (copied)."""
        self.results.append(result)
        self.positions.append(dict(position))

    def due(self):
        """Whether a progress update is due: ``every_steps`` steps in flight, or ``every_seconds`` since the last."""
        return bool(self.results) and (len(self.results) >= self.every_steps
                                       or time.perf_counter() - self.last_read >= self.every_seconds)

    def read(self):
        """The steps in flight as ``StepOutcome``s, in order, read back in one transfer (the one host
        synchronisation of the interval); none are in flight afterwards."""
        if not self.results:
            return []
        xp = get_backend().xp
        values = [value if isinstance(value, xp.ndarray) else xp.asarray(value)  # an objective's host count
                  for result in self.results for value in (result.loss_sum, result.correct, result.weight_sum)]
        # One array of 3 numbers a step, float64 (counts and float32 sums are exact in it), one copy to the host.
        host = to_host(xp.stack(values, dtype=xp.float64)).reshape(-1, 3)
        outcomes = [StepOutcome(position, float(loss_sum), int(correct), result.images, float(weight_sum))
                    for position, result, (loss_sum, correct, weight_sum) in zip(self.positions, self.results, host)]
        self.results, self.positions = [], []
        self.last_read = time.perf_counter()
        return outcomes
