"""Nothing is lost: a run folder holding another run's files is never written into, killed runs' temporaries
are cleaned, a diverging run stops with the last good checkpoint intact and writes no final weights, and a
disk that is full or read-only stops the run saying what failed, where, and that the checkpoint is intact."""
import builtins
import errno
import os

import numpy as np
import pytest
from tiny_imagenet import SMALL_NET, make_tiny_imagenet

from minivgg.cli.program import main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_imagenet(tmp_path_factory.mktemp("tiny") / "ILSVRC2012")


def train(capsys, data, run_dir, *extra, epochs="1"):
    arguments = ["train", "--quiet", "--data", str(data), "--preset", "A/256", *SMALL_NET[:-2], "--epochs", epochs,
                 "--run-dir", str(run_dir), *map(str, extra)]
    code = main(arguments)
    out, err = capsys.readouterr()
    return code, out, err


def resume(capsys, run_dir, *extra):
    code = main(["train", "--quiet", "--resume", str(run_dir), *map(str, extra)])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


# --- another run's files --------------------------------------------------------------------------------------

def test_weights_and_log_without_a_checkpoint_are_never_overwritten(data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.safetensors").write_bytes(b"weights of a week of training")
    (run_dir / "log.jsonl").write_text('{"epoch": 1}\n')
    before = snapshot(run_dir)
    code, _, err = train(capsys, data, run_dir)
    assert code == 1 and "already holds a run's model.safetensors and log.jsonl" in err
    assert "no checkpoint to continue it from" in err and err.count("\n") == 1
    assert snapshot(run_dir) == before


def test_a_run_with_a_checkpoint_is_continued_not_restarted(data, tmp_path, capsys):
    assert train(capsys, data, tmp_path / "run")[0] == 0
    before = snapshot(tmp_path / "run")
    code, _, err = train(capsys, data, tmp_path / "run")
    assert code == 1 and f"continue it with --resume {tmp_path / 'run'}" in err
    assert snapshot(tmp_path / "run") == before


def test_run_dir_naming_a_file_is_refused(data, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("my notes")
    code, _, err = train(capsys, data, tmp_path / "notes.txt")
    assert code == 1 and "is a file, not a folder" in err and (tmp_path / "notes.txt").read_text() == "my notes"


def test_a_folder_holding_only_the_arguments_of_a_failed_start_may_be_reused(data, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    # A start that failed before its first checkpoint: minivgg's mark, then its arguments.
    (tmp_path / "run" / ".minivgg-run").write_text('{"written_by": "minivgg", "kind": "minivgg run folder"}')
    (tmp_path / "run" / "arguments.json").write_text("{}")
    assert train(capsys, data, tmp_path / "run")[0] == 0


@pytest.mark.parametrize("content, message", [
    ('{"data": "x", "epochs": ', "is damaged"),
    ("[1, 2]", "holds list, not the run's arguments"),
    ('{"epochs": -3}', "saved --epochs -3 must be a positive integer"),
])
def test_damaged_saved_arguments_name_the_file(content, message, data, tmp_path, capsys):
    assert train(capsys, data, tmp_path / "run")[0] == 0
    (tmp_path / "run" / "arguments.json").write_text(content)
    before = snapshot(tmp_path / "run")
    code, _, err = resume(capsys, tmp_path / "run")
    assert code == 1 and str(tmp_path / "run" / "arguments.json") in err and message in err
    assert snapshot(tmp_path / "run") == before


@pytest.mark.parametrize("make, message", [
    (lambda run_dir: None, "no such folder"),
    (lambda run_dir: run_dir.mkdir(), "has no arguments.json: not a run folder"),
    (lambda run_dir: (run_dir.mkdir(), (run_dir / "arguments.json").write_text("{}")), "has no checkpoint"),
])
def test_resuming_what_is_not_a_resumable_run_is_a_message(make, message, tmp_path, capsys):
    make(tmp_path / "run")
    code, _, err = resume(capsys, tmp_path / "run")
    assert code == 1 and message in err and err.count("\n") == 1


# --- temporaries of killed runs ---------------------------------------------------------------------------------

def _dead_pid():
    pid = 2 ** 22 - 1  # above the default pid_max: no process has it
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


def test_killed_runs_temporaries_are_removed_on_start_and_on_resume(data, tmp_path, capsys):
    run_dir, dead, alive = tmp_path / "run", _dead_pid(), os.getppid()
    run_dir.mkdir()
    (run_dir / f".minivgg-tmp-{dead}-0123abcd-checkpoint.safetensors").write_bytes(b"x" * 1000)
    (run_dir / f".minivgg-tmp-{dead}-89abcdef-.hidden-buffer").write_bytes(b"x" * 1000)
    (run_dir / f".minivgg-tmp-{alive}-00000000-model.safetensors").write_bytes(b"being written by a live process")
    (run_dir / f"thesis.tex.tmp-{dead}").write_bytes(b"a user's file, named like the old temporaries")
    code, out, _ = train(capsys, data, run_dir)
    assert code == 0 and "removed 2 temporary file(s) that killed runs left" in out
    assert sorted(name for name in os.listdir(run_dir) if "tmp-" in name) == [
        f".minivgg-tmp-{alive}-00000000-model.safetensors", f"thesis.tex.tmp-{dead}"]
    (run_dir / f".minivgg-tmp-{dead}-fedcba98-log.jsonl").write_text("{}")
    code, out, _ = resume(capsys, run_dir, "--epochs", "2")
    assert code == 0 and f".minivgg-tmp-{dead}-fedcba98-log.jsonl" in out
    assert not (run_dir / f".minivgg-tmp-{dead}-fedcba98-log.jsonl").exists()
    assert (run_dir / f"thesis.tex.tmp-{dead}").read_bytes() == b"a user's file, named like the old temporaries"


# --- divergence ---------------------------------------------------------------------------------------------------

def test_a_diverging_learning_rate_stops_at_once_without_final_weights(data, tmp_path, capsys):
    code, _, err = train(capsys, data, tmp_path / "run", "--learning-rate", "1e30")
    assert code == 1
    assert "training diverged in epoch 1 at step" in err and "with learning rate 1e+30" in err
    assert "no checkpoint had been written yet" in err and "accuracy" not in err
    assert sorted(os.listdir(tmp_path / "run")) == [".minivgg-run", "arguments.json"]


@pytest.mark.parametrize("where", ["loss", "weights", "validation"])
def test_divergence_after_a_checkpoint_keeps_it_as_it_was(where, data, tmp_path, capsys, monkeypatch):
    """Epoch 1 trains normally and is checkpointed; in epoch 2 the loss, a weight or the validation loss turns
    non-finite: the run stops there, the epoch-1 checkpoint and log stay, no model.safetensors is written."""
    import minivgg.training.objective
    from minivgg.layers import SoftmaxCrossEntropyLoss
    from minivgg.training.optimiser import SGD

    run_dir = tmp_path / "run"
    assert train(capsys, data, run_dir, epochs="1")[0] == 0
    (run_dir / "model.safetensors").unlink()
    good = snapshot(run_dir)
    calls = []  # in the resumed run's epoch 2: the second step's loss or update, or the validation
    if where == "loss":
        forward = SoftmaxCrossEntropyLoss.forward

        def poisoned(self, scores, labels):
            calls.append(1)
            return float("nan") if len(calls) == 2 else forward(self, scores, labels)
        monkeypatch.setattr(SoftmaxCrossEntropyLoss, "forward", poisoned)
    elif where == "weights":
        step = SGD.step

        def poisoned(self, learning_rate):
            step(self, learning_rate)
            calls.append(1)
            if len(calls) == 2:
                _, layer, key = next(iter(self.model.named_parameters()))
                layer.params[key][0] = np.inf  # what an infinite gradient does to a weight
        monkeypatch.setattr(SGD, "step", poisoned)
    else:
        evaluate = minivgg.training.objective.evaluate_loader
        monkeypatch.setattr(minivgg.training.objective, "evaluate_loader",
                            lambda *args, **kwargs: dict(evaluate(*args, **kwargs), loss=float("inf")))
    code, _, err = resume(capsys, run_dir, "--epochs", "3")
    assert code == 1 and "training diverged in epoch 2" in err and "with learning rate 0.01" in err
    assert {"loss": "the loss is nan", "weights": "a gradient or a weight is no longer finite",
            "validation": "the validation loss is inf"}[where] in err
    assert f"the last good checkpoint, {run_dir / 'checkpoint.safetensors'} (after epoch 1), is kept" in err
    after = snapshot(run_dir)
    assert "model.safetensors" not in after
    assert {name: after[name] for name in ("checkpoint.safetensors", "log.jsonl")} == {
        name: good[name] for name in ("checkpoint.safetensors", "log.jsonl")}


# --- a full disk, a read-only folder ----------------------------------------------------------------------------

def full_disk_on(monkeypatch, target, failing_call=1, error=None):
    """Make the `failing_call`-th safetensors write of a file named `target` fail like a full disk, after it
    wrote part of its temporary."""
    import safetensors.numpy

    real, calls = safetensors.numpy.save_file, []

    def save_file(tensors, filename, metadata=None):
        if os.path.basename(filename).startswith(".minivgg-tmp-") and os.path.basename(filename).endswith(
                "-" + target):
            calls.append(1)
            if len(calls) == failing_call:
                with open(filename, "wb") as handle:
                    handle.write(b"\0" * 100)
                raise error or OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return real(tensors, filename, metadata=metadata)
    monkeypatch.setattr(safetensors.numpy, "save_file", save_file)


@pytest.mark.parametrize("error", [None, "safetensors"])
def test_a_full_disk_at_a_checkpoint_says_where_and_keeps_the_previous_one(error, data, tmp_path, capsys,
                                                                          monkeypatch):
    from safetensors import SafetensorError

    run_dir = tmp_path / "run"
    assert train(capsys, data, run_dir)[0] == 0
    (run_dir / "model.safetensors").unlink()
    good = snapshot(run_dir)
    full_disk_on(monkeypatch, "checkpoint.safetensors",
                 error=SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")
                 if error else None)
    code, _, err = resume(capsys, run_dir, "--epochs", "2")
    assert code == 1 and err.count("\n") == 1
    assert f"could not write {run_dir / 'checkpoint.safetensors'}" in err
    assert ("No space left on device" if error is None else "StorageFull") in err
    assert f"the last good checkpoint, {run_dir / 'checkpoint.safetensors'} (after epoch 1), is kept" in err
    after = snapshot(run_dir)
    assert after["checkpoint.safetensors"] == good["checkpoint.safetensors"]
    assert not [name for name in after if "tmp-" in name] and "model.safetensors" not in after


def test_a_full_disk_at_the_final_weights_keeps_the_checkpoint_and_resume_writes_them(data, tmp_path, capsys,
                                                                                     monkeypatch):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        full_disk_on(patch, "model.safetensors")
        code, _, err = train(capsys, data, run_dir)
    assert code == 1 and f"could not write {run_dir / 'model.safetensors'}" in err
    assert "`minivgg train --resume" in err and "writes the weights again" in err
    assert sorted(os.listdir(run_dir)) == [".minivgg-run", "arguments.json", "checkpoint.safetensors", "log.jsonl"]
    assert resume(capsys, run_dir)[0] == 0 and (run_dir / "model.safetensors").exists()


def read_only(monkeypatch, folder):
    """Every file opened for writing inside `folder` fails as on a read-only file system."""
    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+") and os.path.dirname(os.path.abspath(file)) == str(folder):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), file)
        return real_open(file, mode, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", guarded_open)


def test_a_read_only_run_folder_is_reported_before_training(data, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    assert train(capsys, data, run_dir)[0] == 0
    before = snapshot(run_dir)
    with monkeypatch.context() as patch:
        read_only(patch, run_dir)
        code, out, err = resume(capsys, run_dir, "--epochs", "2")
    assert code == 1 and f"could not write {run_dir / 'arguments.json'}" in err and "Read-only file system" in err
    assert "its previous version is unchanged" in err and "training VGG" not in out
    assert snapshot(run_dir) == before
    (tmp_path / "new").mkdir()
    with monkeypatch.context() as patch:
        read_only(patch, tmp_path / "new")
        code, _, err = train(capsys, data, tmp_path / "new")
    assert code == 1 and "Read-only file system" in err and os.listdir(tmp_path / "new") == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_run_folder(data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(capsys, data, run_dir)[0] == 0
    before = snapshot(run_dir)
    os.chmod(run_dir, 0o555)
    try:
        code, _, err = resume(capsys, run_dir, "--epochs", "2")
    finally:
        os.chmod(run_dir, 0o755)
    assert code == 1 and "could not write" in err and "Permission denied" in err
    assert snapshot(run_dir) == before
