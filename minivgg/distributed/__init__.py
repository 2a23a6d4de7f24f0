"""Data-parallel training (Sect. 3.3): one process per device, gradients averaged every step, the same result
as one process.

"Multi-GPU training exploits data parallelism, and is carried out by splitting each batch of training images
into several GPU batches, processed in parallel on each GPU. After the GPU batch gradients are computed, they
are averaged to obtain the gradient of the full batch." Here a *rank* is one process (one CPU core set, one GPU
or one machine's share); the ranks exchange gradients through MPI (``mpi4py``) or, between GPUs, NCCL
(``cupy.cuda.nccl``).

- ``communicator.py``  the ranks and their collectives: MPI, NCCL, and the trivial single process
- ``shard.py``         each rank's disjoint share of an epoch's order (training) or of the data (evaluation)
- ``buckets.py``       gradients reduced in buckets while the backward pass is still running (overlap)
- ``data_parallel.py`` the object ``minivgg.training.train(..., parallel=...)`` drives
- ``launch.py``        ``minivgg train --processes N`` / ``--gpus N``: starting the ranks through ``mpirun``
- ``nccl.py``          the NCCL communicator (unverified on a GPU)
"""
from .communicator import (LocalCommunicator, MPICommunicator, RankLostError, launched_by_mpi,
                           world_size_from_environment)
from .data_parallel import DataParallel
from .shard import shard_evaluation, shard_training

__all__ = ["DataParallel", "LocalCommunicator", "MPICommunicator", "RankLostError", "launched_by_mpi",
           "world_size_from_environment", "shard_training", "shard_evaluation"]
