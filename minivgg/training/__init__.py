"""Training (Sect. 3.1): the loop, the step, its settings and presets, the schedule, the optimiser,
checkpoints, the run folder, and ready-made set-ups.

    loop.py            ``train``: epochs of SGD steps, validation, the schedule, checkpoints
    steps.py           one SGD step (forward, loss, backward, update) and its variants, chosen once
    recorded_step.py   the step recorded once and replayed on backends that capture CUDA graphs
    objective.py       what a run optimises and measures (classification; box regression in Appendix A)
    settings.py        the recipe's numbers and what a resumed run may change
    optimiser.py       SGD with momentum and weight decay
    schedule.py        the learning rate divided by 10 on validation plateaus
    presets.py         the paper's stages (``D/256``, ``D/256-512``, ...)
    recipes.py         a model, its loaders and settings, ready to train (the embedded digits, an ImageNet folder)
    checkpoint.py      everything a run needs to continue exactly
    run_folder.py      the run folder: its files, its saved options, what a new run refuses, what a resumed
                       run keeps
    curves.py          training curves from a run's log
"""
from .loop import train
from .settings import TrainSettings

__all__ = ["train", "TrainSettings"]
