"""One step of mini-batch SGD (Sect. 3.1), in the variant a run chooses once.

The step itself is ``SGDStep``: for each device batch of the step, forward, loss, backward (the gradients
accumulated when a step spans several device batches); then one update of every weight. Three variants
change one part each, and ``choose_step`` picks the one a run needs before its first step:

    SGDStep           one process: forward, loss, backward; then the update
    DataParallelStep  one rank of several (Sect. 3.3): the backward averages the gradients over the ranks
                      while it runs, and the ranks agree on whether and where the run diverged
    RecordedStep      a backend that captures CUDA graphs replays the whole step, recorded once
                      (``recorded_step.py``)

A step leaves what it measured (the loss, the right answers, whether the weights stayed finite) on the
device, so the host can queue the next step while the device computes this one; the loop reads them back once
per progress update (``loop.py``).

Dropout masks are keyed by the step number and each sample's index in the global batch
(``layers.set_dropout_position``), so every variant drops the same units for the same images.
"""
from dataclasses import dataclass

from ..backend import asarray, get_backend
from ..fused_layers import fuse_conv_relu
from ..layers import set_dropout_position
from .objective import Classification
from .recorded_step import captured_training_step

__all__ = ["StepResult", "SGDStep", "DataParallelStep", "RecordedStep", "choose_step"]


@dataclass
class StepResult:
    """What one step saw, left where it was computed: reading a number on a GPU makes the host wait for the
    device, so the loop reads the steps of a progress update back together (``loop.py``).

    Attributes
    ----------
    loss_sum : 0-d float64 array, the loss summed over the step's images
    correct : 0-d integer array (or an int), how many of them were right
    weight_sum : 0-d array, the sum of every weight after the update: finite exactly when every weight is (short
        of weights near 1e38, a run diverged anyway), and a non-finite gradient or update always leaves a
        non-finite weight behind
    images : int, how many images the step took
    """

    loss_sum: object
    correct: object
    weight_sum: object
    images: int


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
        loss_sums, corrects, images = [], [], 0
        for k in range(self.accumulation):
            x, targets = next(batches)
            set_dropout_position(self.model, step_number, self.first_sample(k))
            outputs, loss = self.forward_backward(x, targets, k, learning_rate)
            # In float64, as a host float would hold it, so the epoch's mean loss is the one a host sum gives.
            loss_sums.append(asarray(loss, dtype="float64") * len(targets))
            corrects.append(self.objective.correct(outputs, targets))
            images += len(targets)
        self.update(learning_rate)
        return StepResult(_total(loss_sums), _total(corrects), self.weight_sum(), images)

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

    def weight_sum(self):
        """The sum of every weight of the model, on its device (``StepResult.weight_sum``)."""
        xp = get_backend().xp
        return xp.stack([layer.params[key].sum() for _, layer, key in self.model.named_parameters()]).sum()

    def first_sample(self, k):
        """Index in the step's global batch of the first image of the k-th device batch."""
        return k * self.device_batch

    def agree_on_divergence(self, bad_loss, bad_weights):
        """Per step of a progress interval, whether any process running it saw a non-finite loss, and a
        non-finite weight; given this process's (lists of bools). Here, one process: as they are."""
        return bad_loss, bad_weights


def _total(values):
    """``values[0] + values[1] + ...`` in that order (one value: itself, no device work)."""
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


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

    def agree_on_divergence(self, bad_loss, bad_weights):
        """One collective for the interval: per step, how many ranks saw each (a loss is not finite on the rank
        whose images gave it; the averaged gradient then spoils every rank's weights)."""
        counts = self.parallel.sum([float(flag) for flag in list(bad_loss) + list(bad_weights)])
        return [count > 0 for count in counts[:len(bad_loss)]], [count > 0 for count in counts[len(bad_loss):]]


class RecordedStep(SGDStep):
    """The whole step (forward, loss, backward, update) replayed from a CUDA graph recorded at its first call;
    one device batch per step (``recorded_step.CapturedTrainingStep``)."""

    def __init__(self, model, objective, optimizer, captured, device_batch):
        super().__init__(model, objective, optimizer, accumulation=1, device_batch=device_batch)
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
            return RecordedStep(model, objective, optimizer, captured, device_batch)
    return SGDStep(model, objective, optimizer, accumulation, device_batch)
