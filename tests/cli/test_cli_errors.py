"""One top-level handler decides what a user sees: a user error is one line and exit code 1 (the traceback only
with --debug or MINIVGG_DEBUG=1), Ctrl-C at any moment is one line and exit code 130, a bug keeps its
traceback."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tiny_imagenet import SMALL_NET, make_tiny_imagenet

from minivgg.cli.program import main


def test_a_user_error_is_one_line_without_a_traceback(capsys, tmp_path):
    assert main(["evaluate", "--weights", str(tmp_path / "missing.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minivgg evaluate: error: no weight file at") and err.count("\n") == 1


@pytest.mark.parametrize("how", ["before the command", "after the command", "environment"])
def test_debug_adds_the_traceback(how, capsys, tmp_path, monkeypatch):
    command = ["evaluate", "--weights", str(tmp_path / "missing.safetensors")]
    if how == "environment":
        monkeypatch.setenv("MINIVGG_DEBUG", "1")
    argv = {"before the command": ["--debug", *command], "after the command": [*command, "--debug"],
            "environment": command}[how]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "FileNotFoundError" in err
    assert err.rstrip().splitlines()[-1].startswith("minivgg evaluate: error: no weight file at")


def test_an_os_error_is_one_line(capsys, tmp_path, monkeypatch):
    entry = {"epoch": 1, "learning_rate": 0.01, "train_loss": 1.0, "train_top1_error": 0.5, "val_loss": 1.0,
             "val_top1_error": 0.5, "val_top5_error": 0.1}
    (tmp_path / "log.jsonl").write_text(json.dumps(entry) + "\n")
    # A missing output folder is refused before anything is drawn...
    assert main(["plot", str(tmp_path), "--output", str(tmp_path / "no" / "such" / "folder.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minivgg plot: error:") and f"the folder {tmp_path / 'no' / 'such'} does not exist" in err
    assert err.count("\n") == 1 and not (tmp_path / "no").exists()
    # ... and an OSError while writing (here: the rename onto the output) is one line too.
    import errno
    import os

    def failing_replace(source, destination):
        raise OSError(errno.EIO, os.strerror(errno.EIO), destination)
    monkeypatch.setattr(os, "replace", failing_replace)
    assert main(["plot", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minivgg plot: error: could not write") and "Input/output error" in err
    assert err.count("\n") == 1 and sorted(os.listdir(tmp_path)) == ["log.jsonl"]


def test_a_damaged_training_log_names_the_file_and_line(capsys, tmp_path):
    (tmp_path / "log.jsonl").write_text('{"epoch": 1}\n{broken\n')
    assert main(["plot", str(tmp_path)]) == 1
    assert f"{tmp_path / 'log.jsonl'} line 1 lacks learning_rate" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(monkeypatch):
    import minivgg.cli.info as info

    def broken(args):
        raise RuntimeError("an internal inconsistency")
    monkeypatch.setattr(info, "run", broken)
    with pytest.raises(RuntimeError, match="an internal inconsistency"):
        main(["info", "A"])


def test_ctrl_c_in_any_command_is_one_line_and_130(capsys, monkeypatch):
    import minivgg.cli.info as info

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(info, "run", interrupted)
    assert main(["info", "A"]) == 130
    assert capsys.readouterr().err.strip() == "minivgg info: interrupted"


# --- real processes: a real SIGINT, the real exit code ----------------------------------------------------------

def _python(code, *arguments, **kwargs):
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    environment.pop("MINIVGG_DEBUG", None)
    if os.name == "posix":
        # A shell starts a background job with SIGINT ignored, and a child inherits that: Python would then
        # install no KeyboardInterrupt handler. The child starts with Ctrl-C's default, as in a terminal.
        kwargs.setdefault("preexec_fn", lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return subprocess.Popen([sys.executable, "-c", code, *map(str, arguments)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment, **kwargs)


def test_ctrl_c_while_minivgg_imports_exits_130_quietly():
    """A SIGINT delivered while the package (NumPy first) is being imported, before any minivgg code runs."""
    code = """
import builtins, os, signal, sys
real_import, sent = builtins.__import__, []
def pressing_ctrl_c(name, *args, **kwargs):
    if name == "numpy" and not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = pressing_ctrl_c
import minivgg_entry
sys.exit(minivgg_entry.main())
"""
    process = _python(code, "info", "A")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip() == "minivgg: interrupted" and "Traceback" not in err and out == ""


def test_ctrl_c_during_training_checkpoints_and_exits_130(tmp_path):
    data = make_tiny_imagenet(tmp_path / "data")
    run_dir = tmp_path / "run"
    arguments = ["train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET[:-2], "--epochs", "100000",
                 "--patience", "100000", "--run-dir", run_dir]
    process = _python("import sys, minivgg_entry; sys.exit(minivgg_entry.main())", *arguments)
    line = process.stdout.readline()
    assert line.startswith("training VGG A"), line + process.stderr.read()
    time.sleep(0.5)  # well inside the training loop (an epoch takes ~0.1 s; the schedule never ends)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted; checkpoint written: continue with `minivgg train --resume" in err
    assert (run_dir / "checkpoint.safetensors").exists() and not (run_dir / "model.safetensors").exists()
    assert not [name for name in os.listdir(run_dir) if "tmp-" in name]
