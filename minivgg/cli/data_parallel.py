"""The ``--processes`` and ``--gpus`` options of ``minivgg train``, and what they start.

- ``minivgg train --processes N ...`` on one machine: this process starts N ranks through ``mpirun``
  (``distributed/launch.py``) and waits for them;
- ``mpirun -np N [--hostfile hosts] minivgg train ...``: each of the N processes finds itself a rank of the
  MPI world and trains its share; no option needed;
- ``--gpus N``: as ``--processes N``, one rank per GPU, gradients summed by NCCL (unverified on a GPU).
"""
import sys

from ..distributed.communicator import launched_by_mpi, world_size_from_environment
from .options import at_most, positive_float, positive_int
from ..backend import get_backend
from ..errors import UsageError

__all__ = ["add_arguments", "start_ranks_if_asked", "this_rank", "as_rank"]


def add_arguments(parser):
    """The data-parallel options of ``minivgg train`` (Sect. 3.3)."""
    group = parser.add_argument_group("data-parallel training (Sect. 3.3)")
    group.add_argument("--processes", type=at_most(positive_int, 1024, "processes of one machine"), default=None,
                       help="train on N processes of this machine, started through mpirun (pip install "
                            "'minivgg[mpi]'); the result equals one process. Across machines use "
                            "mpirun -np N --hostfile FILE minivgg train ... instead")
    group.add_argument("--gpus", type=at_most(positive_int, 1024, "GPUs of one machine"), default=None,
                       help="train on N GPUs, one process each, gradients summed by NCCL (--backend cupy)")
    group.add_argument("--rank-timeout", type=positive_float, default=None,
                       help="seconds a process waits for the others' gradients before giving up (default 300)")


def start_ranks_if_asked(args, argv=None):
    """If ``--processes``/``--gpus`` asked for ranks and this process is not one yet, start them and return
    the launcher's exit code; else None (this process trains)."""

    wanted = args.gpus if args.gpus is not None else args.processes
    if args.gpus is not None and args.processes is not None and args.gpus != args.processes:
        raise UsageError(f"--gpus {args.gpus} and --processes {args.processes} disagree: give one of them")
    if args.gpus is not None:
        if get_backend().name != "cupy":  # NCCL sums the gradients where they are: on the GPUs
            raise UsageError(f"--gpus {args.gpus} trains on GPUs and needs --backend cupy (before the command: "
                             f"minivgg --backend cupy train ...); the backend is {get_backend().name}")
    if args.rank_timeout is not None and wanted is None and not launched_by_mpi():
        raise UsageError(f"--rank-timeout {args.rank_timeout:g} is how long data-parallel processes wait for each "
                         f"other: give --processes or --gpus too (or start the run with mpirun)")
    if wanted is None or world_size_from_environment() is not None:
        return None
    from ..distributed.launch import launch

    argv = list(sys.argv[1:] if argv is None else argv)
    if "train" not in argv:
        raise ValueError("--processes/--gpus start `minivgg train` again on N processes and need the command "
                         "line: run it from a shell")
    return launch(wanted, argv)


def this_rank(args):
    """This process's ``DataParallel`` when it is one of several ranks (or ``--gpus`` was given), else None."""
    wanted = args.gpus if args.gpus is not None else args.processes
    size = world_size_from_environment()
    if wanted is not None and size is not None and size != wanted:
        raise ValueError(f"asked for {wanted} processes, but mpirun started {size}: give one of them")
    if not launched_by_mpi() and args.gpus is None:
        return None
    from ..distributed.data_parallel import DataParallel

    timeout = 300.0 if args.rank_timeout is None else args.rank_timeout
    return DataParallel.from_environment(gpus=args.gpus is not None, timeout_seconds=timeout)


def as_rank(parallel, function):
    """``function()``; on several ranks, an exception on this one ends all of them at once (MPI_Abort) after
    its message, so no rank waits for one that will never come."""
    if parallel is None or parallel.ranks == 1:
        return function()
    try:
        return function()
    except BaseException as error:
        print(f"rank {parallel.rank} of {parallel.ranks}: {type(error).__name__}: {error}; stopping all ranks",
              file=sys.stderr, flush=True)
        parallel.communicator.abort(1)
        raise
