"""One step of mini-batch SGD (Sect. 3.1), in the variant a run chooses once.

The step itself is ``SGDStep``: for each device batch of the step, forward, loss, backward (the gradients
accumulated when a step spans several device batches); then one update of every weight. Three variants
change one part each, and ``choose_step`` picks the one a run needs before its first step:

    SGDStep           one process: forward, loss, backward; then the update
    DataParallelStep  one rank of several (Sect. 3.3): the backward averages the gradients over the ranks
                      while it runs, and the ranks agree on whether the step diverged
    RecordedStep      a backend that captures CUDA graphs replays the whole step, recorded once
                      (``recorded_step.py``)

Dropout masks are keyed by the step number and each sample's index in the global batch
(``layers.set_dropout_position``), so every variant drops the same units for the same images.
"""
import math
from dataclasses import dataclass

from ..backend import asarray
from ..fused_layers import fuse_conv_relu
from ..layers import set_dropout_position
from .objective import Classification
from .recorded_step import captured_training_step

__all__ = ["StepResult", "SGDStep", "DataParallelStep", "RecordedStep", "choose_step"]


@dataclass
class StepResult:
    """What one step saw: the loss summed over its images, how many were right, how many there were, and,
    when the step diverged, why (None otherwise)."""

    loss_sum: float = 0.0
    correct: int = 0
    images: int = 0
    diverged: str = None


class SGDStep:
    """One SGD step over ``accumulation`` device batches of ``device_batch`` images on one process.

    Parameters
    ----------
    model : anything with ``forward``, ``backward`` and ``named_parameters``
    objective : the task (``objective.py``): its loss and what counts as correct
    optimizer : ``optimiser.SGD``
    accumulation : device batches per step
    device_batch : images per device batch
    """

    def __init__(self, model, objective, optimizer, accumulation, device_batch):
        self.model, self.objective, self.optimizer = model, objective, optimizer
        self.net = fuse_conv_relu(model)  # the passes run through the fused view where the backend fuses
        self.loss_layer = objective.loss_layer()
        self.accumulation, self.device_batch = accumulation, device_batch

    def __call__(self, batches, learning_rate, step_number):
        """Take the step's device batches from the iterator ``batches``, step the weights; a ``StepResult``.
        ``step_number`` counts SGD steps from 1 (it keys the dropout masks)."""
        result = StepResult()
        for k in range(self.accumulation):
            x, targets = next(batches)
            set_dropout_position(self.model, step_number, self.first_sample(k))
            outputs, loss = self.forward_backward(x, targets, k, learning_rate)
            if not math.isfinite(loss) and result.diverged is None:
                result.diverged = f"the loss is {loss}"
            result.loss_sum += loss * len(targets)
            result.correct += self.objective.correct(outputs, targets)
            result.images += len(targets)
        self.update(learning_rate)
        result.diverged = self.agree_on_divergence(result.diverged)
        return result

    def forward_backward(self, x, targets, k, learning_rate):
        """The k-th device batch's outputs and loss, its gradients computed (and accumulated)."""
        outputs = self.net.forward(asarray(x))
        loss = self.loss_layer.forward(outputs, targets)
        self.net.backward(self.loss_layer.backward(), input_gradient=False)
        if self.accumulation > 1:
            self.optimizer.accumulate()
        return outputs, loss

    def update(self, learning_rate):
        """``v <- momentum v - lr (g + weight decay w); w <- w + v`` for every weight (``optimiser.SGD``)."""
        self.optimizer.step(learning_rate)

    def first_sample(self, k):
        """Index in the step's global batch of the first image of the k-th device batch."""
        return k * self.device_batch

    def agree_on_divergence(self, reason):
        """Why the step diverged, as every process running it sees it (here, one process)."""
        return reason


class DataParallelStep(SGDStep):
    """One rank's part of a data-parallel step (``minivgg.distributed.DataParallel``): its share of the global
    batch, the gradients averaged over the ranks during the backward pass, and a divergence on any rank
    stopping all of them at the same step."""

    def __init__(self, model, objective, optimizer, accumulation, device_batch, parallel, batch_size):
        super().__init__(model, objective, optimizer, accumulation, device_batch)
        self.parallel, self.batch_size = parallel, batch_size

    def forward_backward(self, x, targets, k, learning_rate):
        outputs = self.net.forward(asarray(x))
        loss = self.loss_layer.forward(outputs, targets)
        self.parallel.backward(self.model, self.loss_layer.backward(), k, self.accumulation, net=self.net)
        return outputs, loss

    def first_sample(self, k):
        return self.parallel.first_sample(k, self.device_batch, self.batch_size)

    def agree_on_divergence(self, reason):
        if not self.parallel.any(reason is not None):
            return None
        return reason or "the loss of another rank's images is not finite"


class RecordedStep(SGDStep):
    """The whole step (forward, loss, backward, update) replayed from a CUDA graph recorded at its first call;
    one device batch per step (``recorded_step.CapturedTrainingStep``)."""

    def __init__(self, model, objective, optimizer, captured):
        super().__init__(model, objective, optimizer, accumulation=1, device_batch=None)
        self.captured = captured

    def forward_backward(self, x, targets, k, learning_rate):
        return self.captured(x, targets, learning_rate)

    def update(self, learning_rate):
        """Recorded with the rest of the step."""


def choose_step(model, objective, optimizer, accumulation, device_batch, parallel=None, batch_size=None):
    """The step variant this run needs, chosen once: data-parallel when ``parallel`` is given; recorded when the
    backend captures graphs and the step can be recorded (one device batch, the classification objective,
    no per-step host state: ``recorded_step.captured_training_step``); else the plain step."""
    if parallel is not None:
        return DataParallelStep(model, objective, optimizer, accumulation, device_batch, parallel, batch_size)
    if accumulation == 1 and isinstance(objective, Classification):
        captured = captured_training_step(model, objective.loss_layer(), optimizer)
        if captured is not None:
            return RecordedStep(model, objective, optimizer, captured)
    return SGDStep(model, objective, optimizer, accumulation, device_batch)
