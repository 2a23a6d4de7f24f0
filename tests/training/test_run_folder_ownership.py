"""Run folders and temporaries lose nothing (issue 28): one run at a time in a folder (an exclusive lock, refused
naming the holder's PID; two real processes), the folder marked as minivgg's before anything is written, a
user's own arguments.json never overwritten, nothing written until every check of a resume has passed, and
temporaries named so that no user file is ever taken for one."""
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from hostile_files import one_line_error, run, snapshot
from tiny_imagenet import SMALL_NET, make_tiny_imagenet

from minivgg.errors import RunFolderError
from minivgg.files import atomic_write, remove_stale_temporaries
from minivgg.training import run_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_imagenet(tmp_path_factory.mktemp("tiny") / "ILSVRC2012")


def train_arguments(data, run_dir, *extra, epochs="1"):
    return ["train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET[:-2], "--epochs", epochs,
            "--run-dir", run_dir, *extra]


def _process(*arguments):
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    environment.pop("MINIVGG_DEBUG", None)
    return subprocess.Popen([sys.executable, "-c", "import sys, minivgg_entry; sys.exit(minivgg_entry.main())",
                             *map(str, arguments)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment)


def _long_run(data, run_dir, seed):
    """A training run that goes on until interrupted; returns the process once it trains (its lock held)."""
    process = _process(*train_arguments(data, run_dir, "--seed", seed, "--patience", "100000", epochs="100000"))
    line = process.stdout.readline()
    assert line.startswith("training VGG A"), line + process.stderr.read()
    time.sleep(0.5)  # inside the training loop (an epoch takes ~0.1 s), where Ctrl-C checkpoints
    return process


def _stop(process):
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    return out, err


# --- the cases ----------------------------------------------------------------------------------------

def test_two_trainings_into_one_new_folder_never_both_run(data, tmp_path):
    """The second, started while the first trains, is refused: in use (the lock), or already holding a run (once
    the first has written its first checkpoint); the first run's files are its own."""
    run_dir = tmp_path / "run"
    first = _long_run(data, run_dir, seed=1)
    second = _process(*train_arguments(data, run_dir, "--seed", "2"))
    out, err = second.communicate(timeout=120)
    assert second.returncode == 1 and one_line_error(err, "train") and out == ""
    assert (f"{run_dir} is in use by another minivgg run (process {first.pid} holds its lock .minivgg-lock)" in err
            or f"{run_dir} already holds a run: continue it with --resume" in err)
    _stop(first)
    saved = json.loads((run_dir / "arguments.json").read_text())
    assert saved["seed"] == 1 and saved["epochs"] == 100000  # the first run's, untouched by the second
    assert not (run_dir / ".minivgg-lock").exists()  # released when the run ended


def test_two_trainings_started_together_leave_one_run(data, tmp_path):
    """Started at the same moment: whichever takes the lock first trains; the other is refused, in use or
    finding the first one's run; the folder holds one run's arguments, log and weights."""
    run_dir = tmp_path / "run"
    processes = [_process(*train_arguments(data, run_dir, "--seed", seed, epochs=epochs))
                 for seed, epochs in (("1", "1"), ("2", "3"))]
    results = [(process.wait(timeout=300), process.stdout.read(), process.stderr.read()) for process in processes]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    winner = next(number for number, (code, _, _) in enumerate(results) if code == 0)
    loser_err = results[1 - winner][2]
    assert "is in use by another minivgg run" in loser_err or "already holds a run" in loser_err
    saved = json.loads((run_dir / "arguments.json").read_text())
    log = (run_dir / "log.jsonl").read_text().splitlines()
    assert (saved["seed"], len(log)) == ((1, 1), (2, 3))[winner]


def test_two_resumes_of_one_folder_never_both_run(data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    first = _long_run(data, run_dir, seed=1)
    _stop(first)
    checkpoint = (run_dir / "checkpoint.safetensors").read_bytes()
    first = _process("train", "--quiet", "--resume", run_dir)
    line = first.stdout.readline()
    assert line.startswith("training VGG A"), line + first.stderr.read()
    time.sleep(0.5)
    code, out, err = run(capsys, "train", "--quiet", "--resume", run_dir)
    assert code == 1 and one_line_error(err, "train") and re.search(r"in use by another minivgg run \(process "
                                                                    rf"{first.pid} holds its lock", err)
    _stop(first)
    assert (run_dir / "checkpoint.safetensors").read_bytes() != checkpoint  # the first one went on


def test_a_users_own_arguments_json_is_never_overwritten(data, tmp_path, capsys):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "arguments.json").write_text('{"my": "experiment notes"}')
    before = snapshot(run_dir)
    code, out, err = run(capsys, *train_arguments(data, run_dir))
    assert code == 1 and one_line_error(err, "train")
    assert f"{run_dir} holds an arguments.json that minivgg did not write (the folder has no .minivgg-run)" in err
    assert snapshot(run_dir) == before


@pytest.fixture
def finished_run(data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(capsys, *train_arguments(data, run_dir))[0] == 0
    return run_dir


def test_a_resume_onto_another_widths_checkpoint_changes_nothing(data, finished_run, tmp_path, capsys):
    other = tmp_path / "wider"
    assert run(capsys, *train_arguments(data, other), "--width", "0.25")[0] == 0
    (finished_run / "checkpoint.safetensors").write_bytes((other / "checkpoint.safetensors").read_bytes())
    before = snapshot(finished_run)
    code, out, err = run(capsys, "train", "--quiet", "--resume", finished_run, "--epochs", "2")
    assert code == 1 and one_line_error(err, "train") and out == ""
    assert "holds another net than this run builds: 'features.0.weight' has shape (16, 3, 3, 3) there, (8, 3, 3, 3)" \
           " here" in err and "nothing was changed" in err
    assert snapshot(finished_run) == before


def test_a_resume_of_a_hand_edited_schedule_changes_nothing(finished_run, capsys):
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    path = finished_run / "checkpoint.safetensors"
    with safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata()
    state = json.loads(metadata["minivgg"])
    state["schedule"] = 5
    save_file(load_file(str(path)), str(path), metadata={"minivgg": json.dumps(state)})
    before = snapshot(finished_run)
    code, _, err = run(capsys, "train", "--quiet", "--resume", finished_run, "--epochs", "2")
    assert code == 1 and one_line_error(err, "train")
    assert f"{path}: the checkpoint's schedule must be an object with learning_rate" in err and "got 5" in err
    assert snapshot(finished_run) == before


def test_user_files_named_like_temporaries_survive_in_the_data_and_the_run_folder(data, tmp_path, capsys):
    dead = 2 ** 22 - 1  # above the default pid_max: no process has it
    train_folder = sorted(path for path in (data / "train").iterdir() if path.is_dir())[0]
    (train_folder / "thesis.tex.tmp-4000000").write_text("chapter 1")
    (train_folder / f"notes.txt.tmp-{dead}").write_text("notes")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / f"draft.md.tmp-{dead}").write_text("a draft")
    before_data, before_run = snapshot(data / "train"), snapshot(run_dir)
    try:
        assert run(capsys, *train_arguments(data, run_dir))[0] == 0
        assert snapshot(data / "train") == before_data
        assert (run_dir / f"draft.md.tmp-{dead}").read_text() == "a draft"
        assert set(before_run) <= set(snapshot(run_dir))
        assert run(capsys, "train", "--quiet", "--resume", run_dir, "--epochs", "2")[0] == 0
        assert snapshot(data / "train") == before_data and (run_dir / f"draft.md.tmp-{dead}").exists()
    finally:
        (train_folder / "thesis.tex.tmp-4000000").unlink()
        (train_folder / f"notes.txt.tmp-{dead}").unlink()


# --- the lock and the mark, their own cases ------------------------------------------------------------------------

def _hold(folder, ready, release):
    with run_folder.claimed(folder):
        ready.set()
        release.wait(60)


def test_the_lock_names_its_holder_and_is_released_when_it_ends(tmp_path):
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(tmp_path / "run", ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RunFolderError, match=rf"in use by another minivgg run \(process {holder.pid} holds"):
            with run_folder.claimed(tmp_path / "run"):
                pass
    finally:
        release.set()
        holder.join(60)
    with run_folder.claimed(tmp_path / "run"):  # free again
        with run_folder.claimed(tmp_path / "run"):  # and re-entrant in one process
            assert (tmp_path / "run" / ".minivgg-lock").read_text().strip() == str(os.getpid())
    assert not (tmp_path / "run" / ".minivgg-lock").exists()


def test_a_training_into_a_folder_another_process_holds_is_refused_naming_it(data, tmp_path, capsys):
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    (tmp_path / "run").mkdir()
    holder = context.Process(target=_hold, args=(tmp_path / "run", ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        before = snapshot(tmp_path / "run")
        code, out, err = run(capsys, *train_arguments(data, tmp_path / "run"))
        assert code == 1 and one_line_error(err, "train") and out == ""
        assert f"in use by another minivgg run (process {holder.pid} holds its lock .minivgg-lock)" in err
        assert snapshot(tmp_path / "run") == before
    finally:
        release.set()
        holder.join(60)


def test_a_killed_holders_lock_is_no_obstacle(tmp_path):
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(tmp_path / "run", ready, release))
    holder.start()
    assert ready.wait(60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(60)
    assert (tmp_path / "run" / ".minivgg-lock").read_text().strip() == str(holder.pid)  # left behind
    with run_folder.claimed(tmp_path / "run"):
        assert (tmp_path / "run" / ".minivgg-lock").read_text().strip() == str(os.getpid())


def test_a_run_that_fails_its_checks_leaves_no_folder_behind(tmp_path, capsys):
    run_dir = tmp_path / "new" / "run"
    code, _, err = run(capsys, "train", "--quiet", "--data", tmp_path / "no-such-data", "--preset", "A/256",
                       *SMALL_NET[:-2], "--run-dir", run_dir)
    assert code == 1 and one_line_error(err, "train") and not (tmp_path / "new").exists()


def test_the_run_folder_is_marked_first_and_only_a_marked_folder_is_cleaned(tmp_path):
    dead = 2 ** 22 - 1
    folder = tmp_path / "run"
    folder.mkdir()
    stale = folder / f".minivgg-tmp-{dead}-0123abcd-checkpoint.safetensors"
    stale.write_bytes(b"x")
    run_folder.remove_stale_temporaries_in([folder])
    assert stale.exists()  # not minivgg's folder yet: nothing is removed
    run_folder.mark_run_folder(folder)
    assert run_folder.is_marked(folder)
    run_folder.remove_stale_temporaries_in([folder])
    assert not stale.exists()
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / ".minivgg-run").write_text("{}")  # a mark minivgg did not write is no mark
    assert not run_folder.is_marked(tmp_path / "fake")


def test_temporaries_are_hidden_unique_and_keep_the_umask_mode(tmp_path):
    from minivgg.files import temporary_name

    names = {os.path.basename(temporary_name(tmp_path / "checkpoint.safetensors")) for _ in range(100)}
    assert len(names) == 100
    assert all(re.fullmatch(rf"\.minivgg-tmp-{os.getpid()}-[0-9a-f]{{8}}-checkpoint\.safetensors", n) for n in names)
    long_name = "x" * 250
    assert len(os.path.basename(temporary_name(tmp_path / long_name)).encode()) <= 255
    previous = os.umask(0o027)
    try:
        from safetensors.numpy import save_file
        import numpy as np

        atomic_write(tmp_path / "w.safetensors", lambda t: save_file({"a": np.zeros(2)}, t))  # safetensors: 0600
        assert oct(os.stat(tmp_path / "w.safetensors").st_mode & 0o777) == oct(0o640)
        os.chmod(tmp_path / "w.safetensors", 0o604)
        atomic_write(tmp_path / "w.safetensors", lambda t: save_file({"a": np.ones(2)}, t))
        assert oct(os.stat(tmp_path / "w.safetensors").st_mode & 0o777) == oct(0o604)  # a replaced file's mode
    finally:
        os.umask(previous)
    assert remove_stale_temporaries(tmp_path) == []


def test_a_run_dir_that_is_a_broken_link_is_named_as_one(data, tmp_path, capsys):
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, *train_arguments(data, tmp_path / "dangling"))
    assert code == 1 and one_line_error(err, "train") and out == ""
    assert (f"--run-dir {tmp_path / 'dangling'} is a broken symbolic link (to {tmp_path / 'nowhere'}), not a "
            f"folder") in err
    assert snapshot(tmp_path) == before
