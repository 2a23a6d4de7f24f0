"""Training (Sect. 3.1): the loop, its settings and presets, the schedule, the optimiser, checkpoints, the run
folder, and ready-made set-ups.

    loop.py            ``train``: epochs of SGD steps, validation, the schedule, checkpoints
    recorded_step.py   the step recorded once and replayed on backends that capture CUDA graphs
    optimiser.py       SGD with momentum and weight decay
    schedule.py        the learning rate divided by 10 on validation plateaus
    presets.py         the paper's stages (``D/256``, ``D/256-512``, ...)
    recipes.py         a model, its loaders and settings, ready to train (the digits, an ImageNet folder)
    checkpoint.py      everything a run needs to continue exactly
    run_folder.py      the run folder: its files, its saved options, what a resumed run may change
    curves.py          training curves from a run's log
"""
from .loop import CHECKPOINT, FINAL_WEIGHTS, LOG, TrainSettings, evaluate_loader, train

__all__ = ["train", "TrainSettings", "evaluate_loader", "CHECKPOINT", "LOG", "FINAL_WEIGHTS"]
