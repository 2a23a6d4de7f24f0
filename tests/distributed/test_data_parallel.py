"""Data-parallel training (Sect. 3.3): N processes give the result of one.

"Gradient computation is synchronous across the GPUs, so the result is exactly the same as when training on a
single GPU." Here: 2 MPI processes on the NumPy backend, dropout on, against one process on the whole batch
and one with accumulated device batches; checkpoints that move between 2 processes and 1; a rank that dies.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minivgg.distributed import DataParallel, shard_evaluation, shard_training
from minivgg.distributed.buckets import GradientBuckets
from minivgg.distributed.communicator import LocalCommunicator

JOB = os.path.join(os.path.dirname(__file__), "data_parallel_job.py")
BIN = os.path.dirname(sys.executable)


def _mpirun():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return shutil.which("mpirun", path=BIN) or shutil.which("mpirun")


MPIRUN = _mpirun()
needs_mpi = pytest.mark.skipif(MPIRUN is None, reason="needs mpi4py and mpirun (pip install -e '.[mpi]')")


def _environment():
    # Open MPI refuses to start as root unless told; CI and containers run as root. Tests, not the library.
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
                PATH=BIN + os.pathsep + os.environ.get("PATH", ""))


def _run(command, timeout=120):
    started = time.monotonic()
    result = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=timeout)
    result.seconds = time.monotonic() - started
    return result


def _mpi(ranks, *arguments):
    extra = ["--oversubscribe"] if (os.cpu_count() or 1) < ranks else []
    return [MPIRUN, "-np", str(ranks), *extra, *arguments]


def _job(run_dir, steps, *options, ranks=1):
    command = [sys.executable, JOB, str(run_dir), str(steps), *options]
    result = _run(_mpi(ranks, *command) if ranks > 1 else command)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _parameters(run_dir, name="checkpoint.safetensors"):
    from safetensors.numpy import load_file
    tensors = load_file(os.path.join(run_dir, name))
    return {key: value for key, value in tensors.items() if not key.startswith("velocity/")}


def _assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[key].astype(np.float64) - b[key]).max()) for key in a)
    assert worst <= atol, f"largest difference {worst:.3g} > {atol:.3g}"


@pytest.fixture(scope="module")
def one_process_runs(tmp_path_factory):
    """4 steps of 32 images on one process as 2 accumulated device batches of 16 (float32)."""
    root = tmp_path_factory.mktemp("one_process")
    _job(root / "accumulated", 4, "--device-batch", "16")
    return root


@needs_mpi
def test_two_processes_end_with_the_weights_of_one_process(tmp_path):
    _job(tmp_path / "two", 4, "--float64", ranks=2)
    _job(tmp_path / "accumulated", 4, "--float64", "--device-batch", "16")
    _job(tmp_path / "whole", 4, "--float64")
    two = _parameters(tmp_path / "two")
    # The same additions in the same order as accumulating on one process: bit for bit.
    _assert_same(two, _parameters(tmp_path / "accumulated"))
    # Against the whole batch only the order of the sums differs, dropout masks included. (In float32 such a
    # rounding difference can flip a ReLU or a max-pool choice, and a flipped unit's gradient then moves the
    # weights by up to 1e-3 in a few steps; in float64 it does not happen.)
    _assert_same(two, _parameters(tmp_path / "whole"), atol=1e-12)


def test_two_processes_in_float32_are_one_process_accumulating_bit_for_bit(one_process_runs, tmp_path):
    if MPIRUN is None:
        pytest.skip("needs mpi4py and mpirun (pip install -e '.[mpi]')")
    _job(tmp_path / "two", 4, ranks=2)
    _assert_same(_parameters(tmp_path / "two"), _parameters(one_process_runs / "accumulated"))


@needs_mpi
def test_checkpoint_of_two_processes_resumes_on_one_and_back(one_process_runs, tmp_path):
    uninterrupted = _parameters(one_process_runs / "accumulated")
    _job(tmp_path / "two_then_one", 2, ranks=2)
    _job(tmp_path / "two_then_one", 2, "--device-batch", "16", "--resume")
    _assert_same(_parameters(tmp_path / "two_then_one"), uninterrupted)
    _job(tmp_path / "one_then_two", 2, "--device-batch", "16")
    _job(tmp_path / "one_then_two", 2, "--resume", ranks=2)
    _assert_same(_parameters(tmp_path / "one_then_two"), uninterrupted)


@needs_mpi
def test_a_rank_that_dies_ends_the_run_and_leaves_the_last_checkpoint(one_process_runs, tmp_path):
    # Rank 1 loads 16 images a step; it dies during step 4, after the checkpoint of step 2.
    command = _mpi(2, sys.executable, JOB, str(tmp_path / "crash"), "4", "--checkpoint-every", "2",
                   "--die-after-loads", "56")
    result = _run(command, timeout=90)
    assert result.returncode != 0
    assert result.seconds < 60, f"the surviving rank took {result.seconds:.0f} s to stop"
    assert "exit" in (result.stdout + result.stderr).lower()  # the launcher names the rank that exited
    _job(tmp_path / "crash", 2, "--device-batch", "16", "--checkpoint-every", "2", "--resume")  # step 2 intact
    _assert_same(_parameters(tmp_path / "crash"), _parameters(one_process_runs / "accumulated"))


@needs_mpi
def test_a_checkpoint_rank_0_cannot_write_stops_every_rank_with_its_error(tmp_path):
    # Rank 0 alone writes; the others wait for the outcome instead of going on (or ending the run, and rank 0
    # with it, before the file is in place).
    result = _run(_mpi(2, sys.executable, JOB, str(tmp_path / "full"), "2", "--failing-checkpoint"), timeout=90)
    assert result.returncode != 0
    assert "rank 0: WriteError: training stopped" in result.stdout and "No space left" in result.stdout
    assert "rank 1: WriteError: training stopped" in result.stdout, result.stdout + result.stderr
    assert not os.path.exists(tmp_path / "full" / "checkpoint.safetensors")


@needs_mpi
def test_a_loss_that_stops_being_finite_on_one_rank_stops_every_rank_at_that_step(tmp_path):
    command = _mpi(2, sys.executable, JOB, str(tmp_path / "nan"), "2", "--nan-images-on-rank-1", "--rank-timeout", "30")
    result = _run(command, timeout=90)
    assert result.returncode != 0 and result.seconds < 25, result.stdout + result.stderr
    assert "rank 1: TrainingDiverged: training diverged in epoch 1 at step 1" in result.stdout
    assert "the loss is nan" in result.stdout, result.stdout + result.stderr
    assert "rank 0: TrainingDiverged: training diverged in epoch 1 at step 1" in result.stdout
    assert "another rank's images" in result.stdout


@needs_mpi
def test_ctrl_c_stops_the_processes_after_a_step_with_a_checkpoint_to_resume(tmp_path):
    # A terminal's Ctrl-C goes to the foreground process group: here, `minivgg train --processes 2` alone.
    minivgg, run_dir = shutil.which("minivgg", path=BIN), tmp_path / "run"
    launched = subprocess.Popen([minivgg, "train", "--epochs", "50", "--quiet", "--run-dir", str(run_dir),
                                 "--processes", "2"], env=_environment(), start_new_session=True, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / "log.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(launched.pid, signal.SIGINT)
        stdout, stderr = launched.communicate(timeout=60)
    finally:
        if launched.poll() is None:
            os.killpg(launched.pid, signal.SIGKILL)
    assert launched.returncode == 130, stdout + stderr
    assert stderr.count("interrupted; checkpoint written") == 1 and "MPI_ABORT" not in stderr, stderr
    assert stdout.count("stopping after this step") == 1, stdout  # rank 0 alone speaks
    from minivgg.training.checkpoint import read_checkpoint_state
    position = read_checkpoint_state(str(run_dir / "checkpoint.safetensors"))["position"]
    assert position["epoch"] >= 1 and position["step"] > 0  # written at the interruption, mid-epoch


HANGING_RANK = """
import time, numpy as np
from minivgg.distributed import MPICommunicator, RankLostError
communicator = MPICommunicator(timeout_seconds=1.0)
if communicator.rank == 1:
    time.sleep(4)  # alive but silent: no launcher would end this run
    communicator.sum([0.0])
else:
    try:
        communicator.sum([1.0], "gradients")
    except RankLostError as error:
        print("rank 0:", error, flush=True)
"""


@needs_mpi
def test_a_silent_rank_makes_the_others_give_up_after_the_timeout():
    result = _run(_mpi(2, sys.executable, "-c", HANGING_RANK), timeout=60)
    assert "rank 0: rank 0: the other 1 rank(s) sent no gradients for 1 s" in result.stdout, result.stderr


def _same_final_weights(a, b):
    _assert_same(_parameters(a, "model.safetensors"), _parameters(b, "model.safetensors"))


@needs_mpi
def test_mpirun_minivgg_train_and_the_processes_option(tmp_path):
    minivgg = shutil.which("minivgg", path=BIN)
    arguments = ["train", "--epochs", "1", "--quiet", "--run-dir"]
    under_mpirun = _run(_mpi(2, minivgg, *arguments, str(tmp_path / "mpirun")))
    assert under_mpirun.returncode == 0, under_mpirun.stderr
    launched = _run([minivgg, *arguments, str(tmp_path / "processes"), "--processes", "2"])
    assert launched.returncode == 0, launched.stderr
    for result in (under_mpirun, launched):  # rank 0 alone speaks
        assert result.stdout.count("on 2 processes") == 1 and result.stdout.count("test top-1 accuracy") == 1
    _same_final_weights(tmp_path / "mpirun", tmp_path / "processes")
    weights = str(tmp_path / "processes" / "model.safetensors")
    second_stage = _run([minivgg, *arguments, str(tmp_path / "second"), "--processes", "2", "--weights", weights])
    assert second_stage.returncode == 0, second_stage.stderr
    assert second_stage.stdout.count("starting from the weights of") == 1, second_stage.stdout


@needs_mpi
def test_a_batch_that_does_not_split_over_the_processes_is_refused_before_anything_is_written(tmp_path):
    minivgg = shutil.which("minivgg", path=BIN)
    result = _run([minivgg, "train", "--batch-size", "8", "--epochs", "1", "--quiet", "--run-dir",
                   str(tmp_path / "run"), "--processes", "3"])
    assert result.returncode != 0
    assert "the batch of 8 images does not split into 3 processes" in result.stderr, result.stderr
    assert not os.path.exists(tmp_path / "run" / "arguments.json")


@pytest.fixture(scope="module")
def digits():
    from minivgg.training.recipes import digits_run
    return digits_run(seed=0, max_epochs=1)


def test_two_ranks_shards_are_the_halves_of_each_global_batch_augmented_alike(digits):
    loader = digits.train_loader  # crops, scale jitter and colour shift on: all keyed by (seed, epoch, sample)
    whole = loader.epoch(1)
    shards = [shard_training(loader, rank, 2, 32).epoch(1) for rank in (0, 1)]
    for _ in range(3):
        x, labels = next(whole)
        halves = [next(shard) for shard in shards]
        np.testing.assert_array_equal(np.concatenate([h[0] for h in halves]), x)
        np.testing.assert_array_equal(np.concatenate([h[1] for h in halves]), labels)
    for iterator in shards + [whole]:
        iterator.close()


def test_evaluation_shards_cover_the_data_once(digits):
    loader = digits.val_loader
    parts = [shard_evaluation(loader, rank, 3) for rank in range(3)]
    orders = np.concatenate([part.epoch_order(0) for part in parts])
    np.testing.assert_array_equal(orders, np.arange(len(loader.dataset)))
    assert sum(sum(len(labels) for _, labels in part.epoch(0)) for part in parts) == len(loader.dataset)


def test_one_rank_data_parallel_is_the_plain_trainer_bit_for_bit(tmp_path):
    from minivgg.training.recipes import digits_run
    from minivgg.training import train

    runs = {}
    for name, parallel in (("plain", None), ("one rank", DataParallel(LocalCommunicator(), bucket_bytes=4096))):
        job = digits_run(seed=0, max_epochs=1)
        train(job.model, job.train_loader, job.val_loader, job.settings, tmp_path / name, progress=False,
              stop_after_steps=2, parallel=parallel)
        runs[name] = {n: layer.params[k].copy() for n, layer, k in job.model.named_parameters()}
    _assert_same(runs["plain"], runs["one rank"])


def test_buckets_follow_the_backward_order(digits):
    buckets = GradientBuckets(digits.model, LocalCommunicator(), bucket_bytes=64 * 1024)
    parameters = list(digits.model.named_parameters())
    first_entries = buckets.buckets[0].entries
    assert first_entries[0][0] is parameters[-1][1]  # the last FC layer's gradient is ready first
    sizes = [b.buffer.nbytes for b in buckets.buckets]
    assert len(sizes) > 1 and sum(sizes) == 4 * digits.model.num_parameters()
    assert buckets.gradient_bytes() == sum(sizes)


def _cupy_backend_available():
    import minivgg
    return "cupy" in minivgg.available_backends()


@needs_mpi
@pytest.mark.skipif(not _cupy_backend_available(), reason="needs a CUDA GPU and CuPy with NCCL")
def test_nccl_on_one_gpu_is_single_process_training(tmp_path):
    minivgg = shutil.which("minivgg", path=BIN)
    arguments = ["--backend", "cupy", "train", "--epochs", "1", "--quiet", "--run-dir"]
    single = _run([minivgg, *arguments, str(tmp_path / "single")])
    assert single.returncode == 0, single.stderr
    nccl = _run([minivgg, *arguments, str(tmp_path / "nccl"), "--gpus", "1"])
    assert nccl.returncode == 0, nccl.stderr
    # One rank: NCCL's sum is the identity, so only cuDNN's own non-deterministic sums may differ over the epoch.
    _assert_same(_parameters(tmp_path / "single", "model.safetensors"),
                 _parameters(tmp_path / "nccl", "model.safetensors"), atol=1e-3)


def test_gpus_and_processes_must_agree(tmp_path):
    from minivgg.cli.program import main
    assert main(["train", "--processes", "2", "--gpus", "3", "--run-dir", str(tmp_path)]) == 1


def test_gpus_on_a_cpu_backend_are_refused_before_anything_starts(tmp_path, capsys):
    from minivgg.cli.program import main
    assert main(["train", "--gpus", "1", "--run-dir", str(tmp_path / "run")]) == 1
    assert "error: --gpus 1 trains on GPUs and needs --backend cupy" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_rank_timeout_without_processes_is_refused_not_ignored(tmp_path, capsys, monkeypatch):
    from minivgg.cli.program import main
    for variable in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["train", "--rank-timeout", "5", "--run-dir", str(tmp_path / "run")]) == 1
    assert "error: --rank-timeout 5 is how long data-parallel processes wait" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_processes_option_refuses_what_is_not_a_count(value, capsys):
    from minivgg.cli.program import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--processes", value])
    assert "--processes" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--gpus", "0"), ("--gpus", "-1"), ("--gpus", "one"), ("--gpus", "nan"),
                                           ("--rank-timeout", "0"), ("--rank-timeout", "-5"),
                                           ("--rank-timeout", "nan"), ("--rank-timeout", "inf"),
                                           ("--rank-timeout", "soon")])
def test_gpus_and_rank_timeout_refuse_what_is_not_a_count_or_a_wait(option, value, capsys):
    from minivgg.cli.program import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", option, value])
    assert f"argument {option}" in capsys.readouterr().err


def test_sharded_evaluation_leaves_unreadable_images_out_as_one_process_does(tmp_path):
    from image_folders import bad_image_folder

    from minivgg.data import BadImageWarning, DataLoader, EvalTransform
    from minivgg.models import vgg
    from minivgg.evaluation.validation import evaluate_loader

    data = bad_image_folder(tmp_path, np.random.default_rng(0))
    model = vgg("A", num_classes=2, input_size=32, width_multiplier=1 / 16, fc_width=8, seed=0)
    loader = DataLoader(data, 4, EvalTransform(32, 32), shuffle=False)
    with pytest.warns(BadImageWarning):
        alone = evaluate_loader(model, loader)
    with pytest.warns(BadImageWarning):
        sharded = DataParallel(LocalCommunicator()).evaluate(model, loader)
    assert alone["skipped_images"] == sharded["skipped_images"] == 2
    assert sharded["top1_error"] == pytest.approx(alone["top1_error"])
    assert sharded["loss"] == pytest.approx(alone["loss"])
