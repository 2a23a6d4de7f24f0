"""The optimisation recipe of Sect. 3.1, and which of its settings a resumed run may change.

``TrainSettings``' defaults are the paper's: batch 256, momentum 0.9, weight decay 5e-4, learning rate 1e-2
divided by 10 when the validation accuracy stops improving, three times, then stop (74 epochs in the paper).
"""
from dataclasses import asdict, dataclass

__all__ = ["TrainSettings", "CHANGEABLE_ON_RESUME", "check_resumable"]

# Settings a resumed run may change: how long to go on, how patient the schedule is from now, how often to
# checkpoint. Everything else would make the resumed run a different run than the one checkpointed. (The
# command line adds how the run is shown and fed: ``minivgg.training.run_folder``.)
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


def check_resumable(state, settings, run_dir):
    """ValueError unless the run checkpointed with ``state`` (``checkpoint.read_checkpoint_state``) can go on
    with ``settings``: only ``CHANGEABLE_ON_RESUME`` may differ, and not to fewer epochs than it has done."""
    missing = [key for key in ("settings", "schedule", "position", "history") if state.get(key) is None]
    if missing:
        raise ValueError(f"cannot resume {run_dir}: its checkpoint holds no {', '.join(missing)}: not the checkpoint "
                         f"of a training run")
    changed = {k: (state["settings"].get(k), v) for k, v in asdict(settings).items()
               if state["settings"].get(k) != v and k not in CHANGEABLE_ON_RESUME}
    if changed:
        raise ValueError(f"cannot resume {run_dir} with different settings (checkpoint, now): {changed}; "
                         f"only {', '.join(CHANGEABLE_ON_RESUME)} may change")
    if settings.max_epochs < state["position"]["epoch"]:
        raise ValueError(f"cannot resume {run_dir} with max_epochs {settings.max_epochs}: it has completed "
                         f"{state['position']['epoch']} epochs already")
