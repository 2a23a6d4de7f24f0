"""Training one epoch per call, so that a progress bar moves with each epoch.

``minivgg.training.train`` runs until its schedule ends or ``max_epochs``; called again with one more epoch
and ``resume=True`` it continues from the checkpoint written at the end of the previous epoch, with the same
data order, random draws and schedule as one uninterrupted run (what its resume tests check). Ctrl-C inside a
call finishes the SGD step and writes a checkpoint; the call then returns unfinished.
"""
import os

__all__ = ["train_epoch_by_epoch"]


def train_epoch_by_epoch(train_one, epochs, run_dir, bar=None):
    """Call ``train_one(max_epochs, resume)`` for ``max_epochs`` = 1 .. ``epochs``.

    Parameters
    ----------
    train_one : runs ``minivgg.training.train`` (or a wrapper of it) in ``run_dir`` with ``max_epochs`` and
        ``resume`` and returns its result
    epochs : the run's length
    run_dir : the run folder (a checkpoint in it means the run has started)
    bar : a tqdm bar over the epochs, or None

    Returns the last result (its ``history`` has one entry per epoch done; shorter than ``epochs`` when the
    schedule ended early), or None when a call was interrupted.
    """
    from ..training.checkpoint import read_checkpoint_state
    from ..training.run_folder import CHECKPOINT

    checkpoint = os.path.join(run_dir, CHECKPOINT)
    # A run interrupted before goes on from the epochs its checkpoint has completed (a call asking for fewer
    # would be refused); asking for exactly those returns at once, and the next call finishes a half-done epoch.
    done = read_checkpoint_state(checkpoint)["position"]["epoch"] if os.path.exists(checkpoint) else 0
    result = None
    for target in range(max(1, min(done, epochs)), epochs + 1):
        result = train_one(target, os.path.exists(checkpoint))
        history = result["history"]
        if bar is not None:
            bar.n = len(history)
            if history:
                bar.set_postfix(val_error=f"{100 * history[-1]['val_top1_error']:.1f}%")
            bar.refresh()
        if not result["finished"]:
            return None
        if len(history) < target:  # the schedule has ended (three learning-rate reductions)
            break
    return result
