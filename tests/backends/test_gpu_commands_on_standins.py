"""The command line on the CuPy backend, end to end on the embedded digits, through the GPU stand-ins: training,
dense evaluation, and ``--gpus 2`` over the NCCL stand-in (MPI underneath); and what ``--gpus`` needs (issue 26,
item 5): NCCL present, and each rank on a GPU of its own, also under a scheduler that shows each rank one GPU.
All of it runs on the CPU: this checks the glue, not a GPU."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import standins
from minivgg.cli.program import main
from minivgg.distributed.nccl import NCCLCommunicator, check_distinct_gpus, choose_device

# A few SGD steps: 1079 training digits in 4 steps of 256, a sixteenth of the channels.
SMALL_RUN = ["--epochs", "1", "--batch-size", "256", "--width", "0.0625", "--fc-width", "16", "--quiet"]
BIN = os.path.dirname(sys.executable)


def _weights(path):
    from safetensors.numpy import load_file
    return load_file(str(path))


def test_training_and_dense_evaluation_on_the_cupy_backend(standin_gpu, tmp_path):
    standin_gpu()
    from standins.counting import COUNTS
    before = COUNTS.snapshot()
    assert main(["--backend", "cupy", "train", *SMALL_RUN, "--run-dir", str(tmp_path / "run")]) == 0
    assert COUNTS.since(before)["cudnn_executions"] > 0  # the convolutions ran through cuDNN's stand-in
    posteriors = {}
    for backend in ("cupy", "numpy"):
        folder = tmp_path / backend
        assert main(["--backend", backend, "evaluate", "--weights", str(tmp_path / "run" / "model.safetensors"),
                     "--method", "dense", "--scales", "32,40", "--save-posteriors", str(folder)]) == 0
        with np.load(folder / "model.npz", allow_pickle=False) as saved:
            posteriors[backend] = saved["posteriors"]
    np.testing.assert_allclose(posteriors["cupy"], posteriors["numpy"], rtol=1e-4, atol=1e-6)


# --- item 5: --gpus ---------------------------------------------------------------------------------------

class OneRank:
    """The MPI side NCCLCommunicator talks to, for one rank: its rank, size and local rank."""

    def __init__(self, local_rank=0):
        self.rank, self.size, self.local_rank, self.timeout_seconds = 0, 1, local_rank, 5.0
        self.comm = self

    def bcast(self, value, root=0):
        return value

    def gather_object(self, value):
        return [value]


def test_gpus_without_nccl_says_what_to_install(standin_gpu):
    standin_gpu(nccl="missing")
    with pytest.raises(ImportError, match=r"needs NCCL.*pip install nvidia-nccl-cu13"):
        NCCLCommunicator(OneRank())


@pytest.mark.parametrize("visible, local_rank, expected", [(None, 1, 1), ("1", 1, 0), ("0", 0, 0)])
def test_each_rank_takes_its_own_gpu_also_when_it_sees_only_that_one(standin_gpu, monkeypatch, visible,
                                                                       local_rank, expected):
    """2 GPUs on the machine; CUDA_VISIBLE_DEVICES="1" is a scheduler giving the second rank the second GPU."""
    cupy, _, _ = standin_gpu(gpus=2)
    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    NCCLCommunicator(OneRank(local_rank))
    assert cupy.cuda.Device().id == expected


def test_device_choice_and_the_refusal_of_two_ranks_on_one_gpu():
    assert [choose_device(r, 4) for r in range(4)] == [0, 1, 2, 3]
    assert choose_device(3, 1) == 0  # each rank sees its own one GPU
    with pytest.raises(ValueError, match="at most one rank per GPU"):
        choose_device(2, 2)
    with pytest.raises(ValueError, match="sees no GPU"):
        choose_device(0, 0)
    check_distinct_gpus([("a", "0000:17:00.0"), ("a", "0000:18:00.0"), ("b", "0000:17:00.0")], 0)
    with pytest.raises(ValueError, match="ranks 0 and 2 would share the GPU 0000:17:00.0 of a"):
        check_distinct_gpus([("a", "0000:17:00.0"), ("a", "0000:18:00.0"), ("a", "0000:17:00.0")], 2)


def _mpirun():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return shutil.which("mpirun", path=BIN) or shutil.which("mpirun")


@pytest.mark.skipif(_mpirun() is None, reason="needs mpi4py and mpirun (pip install -e '.[mpi]')")
def test_two_gpus_over_nccl_give_the_single_process_weights(tmp_path):
    """``--gpus 2`` with each rank shown only its own GPU, gradients summed by the NCCL stand-in, against one
    process on the NumPy backend."""
    minivgg = shutil.which("minivgg", path=BIN)
    counts = str(tmp_path / "counts_{rank}.json")
    environment = standins.environment(dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                                            PATH=BIN + os.pathsep + os.environ.get("PATH", "")),
                                       gpus=2, visible_device_per_rank=1, counts_file=counts)
    run = subprocess.run([minivgg, "--backend", "cupy", "train", "--gpus", "2", *SMALL_RUN, "--run-dir",
                          str(tmp_path / "gpus")], env=environment, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for rank in (0, 1):
        with open(counts.replace("{rank}", str(rank))) as handle:
            assert json.load(handle)["nccl_all_reduces"] == 4  # one bucket per step
    assert main(["train", *SMALL_RUN, "--run-dir", str(tmp_path / "one")]) == 0
    two, one = _weights(tmp_path / "gpus" / "model.safetensors"), _weights(tmp_path / "one" / "model.safetensors")
    assert two.keys() == one.keys()
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-3, atol=1e-4 * np.abs(one[key]).max(), err_msg=key)
