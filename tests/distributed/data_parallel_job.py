"""A few SGD steps of the digits' small VGG, on one process or as one rank of ``mpirun`` (tests/test_data_parallel.py).

python tests/data_parallel_job.py RUN_DIR STEPS [--device-batch D] [--resume] [--checkpoint-every N]
                                  [--die-after-loads K] [--failing-checkpoint]
                                  [--nan-images-on-rank-1]

Trains ``STEPS`` steps of 32 images with dropout on (configuration A at width 1/4) and leaves the checkpoint in
RUN_DIR, on one core. ``--die-after-loads K`` makes rank 1 exit abruptly after loading K images, as a crashed process does.
``--failing-checkpoint`` makes rank 0's checkpoint writes fail, as on a full disk; each rank then prints the
error it stopped with; so does ``--nan-images-on-rank-1``, which feeds rank 1 images of NaN (a diverged run).
"""
import argparse
import os
import sys

import numpy as np

# One core, as mpirun binds each rank to one: the NumPy backend sums its threads' partial gradients in a fixed
# order, so the number of threads is part of the rounding, and a one-process run is compared at the same count.
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

from minivgg.distributed import DataParallel, launched_by_mpi  # noqa: E402
from minivgg.errors import TrainingDiverged, WriteError  # noqa: E402
from minivgg.training.recipes import digits_run  # noqa: E402
from minivgg.training import train  # noqa: E402


class _Float64:
    """The loader's preprocessing, then a cast to float64 (in-process loading only)."""

    def __init__(self, preprocessing):
        self.preprocessing = preprocessing

    def apply(self, *args, **kwargs):
        return self.preprocessing.apply(*args, **kwargs).astype(np.float64)


class _NaN(_Float64):
    """The loader's preprocessing, then every value NaN."""

    def apply(self, *args, **kwargs):
        return self.preprocessing.apply(*args, **kwargs) * np.float32("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("steps", type=int)
    parser.add_argument("--device-batch", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-after-loads", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--rank-timeout", type=float, default=60.0)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--failing-checkpoint", action="store_true")
    parser.add_argument("--nan-images-on-rank-1", action="store_true")
    args = parser.parse_args()
    job = digits_run(seed=0, max_epochs=1)
    job.settings.checkpoint_every = args.checkpoint_every
    if args.float64:  # rounding 1e-16: no ReLU or max-pool decision flips between two orders of summation
        job.model.astype(np.float64)
        job.train_loader.preprocessing = _Float64(job.train_loader.preprocessing)
        job.val_loader.preprocessing = _Float64(job.val_loader.preprocessing)
    loader = job.train_loader
    if args.device_batch is not None:
        loader.batch_size = args.device_batch
    parallel = DataParallel.from_environment(timeout_seconds=args.rank_timeout) if launched_by_mpi() else None
    if args.die_after_loads is not None and parallel is not None and parallel.rank == 1:
        load, loads = loader.dataset.load, [0]

        def load_then_die(*a, **k):
            loads[0] += 1
            if loads[0] > args.die_after_loads:
                os._exit(3)
            return load(*a, **k)
        loader.dataset.load = load_then_die
    if args.nan_images_on_rank_1 and parallel is not None and parallel.rank == 1:
        loader.preprocessing = _NaN(loader.preprocessing)
    if args.failing_checkpoint and (parallel is None or parallel.is_root):
        import minivgg.training.loop

        def failing_save(path, *a, **k):
            raise WriteError(f"could not write {path} (No space left on device)")
        minivgg.training.loop.save_checkpoint = failing_save
    try:
        train(job.model, loader, job.val_loader, job.settings, args.run_dir, resume=args.resume, progress=False,
              stop_after_steps=args.steps, parallel=parallel)
    except (WriteError, TrainingDiverged) as error:
        print(f"rank {0 if parallel is None else parallel.rank}: {type(error).__name__}: {error}", flush=True)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
