"""Helpers of the hostile-input tests (issue 28): byte snapshots of folders, a tiny weight file, the command line
run with its exit code and output, a named pipe."""
import os

import numpy as np

import minivgg
from minivgg import weights
from minivgg.cli.program import main
from minivgg.preprocessing import paper_mean_rgb

TINY = dict(num_classes=3, input_size=32, width_multiplier=0.125, fc_width=16)


def snapshot(folder):
    """``{relative path: bytes}`` of every file under ``folder`` (hidden ones too), ``{relative path: None}`` of
    every folder, the target of a link, and the kind of anything else (a named pipe is never opened): two
    snapshots are equal exactly when nothing was added, removed or changed."""
    import stat

    folder = os.fspath(folder)
    found = {}
    for parent, folders, files in os.walk(folder):
        for name in folders:
            found[os.path.relpath(os.path.join(parent, name), folder)] = None
        for name in files:
            path = os.path.join(parent, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                content = b"link to " + os.readlink(path).encode()
            elif not stat.S_ISREG(mode):
                content = f"special file {stat.S_IFMT(mode)}".encode()
            else:
                with open(path, "rb") as handle:
                    content = handle.read()
            found[os.path.relpath(path, folder)] = content
    return found


def tiny_weights(path, class_names=("cat", "dog", "tiger"), seed=0, dtype=np.float32, **changes):
    """A small VGG A (32x32 inputs, 3 classes) with Glorot weights, so that its scores differ from image to image,
    saved at ``path``; returns ``path``."""
    model = minivgg.vgg("A", weight_init="glorot", seed=seed, dtype=dtype, **dict(TINY, **changes))
    model.preprocessing = paper_mean_rgb((120.0, 110.0, 100.0))
    model.class_names = None if class_names is None else list(class_names)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    weights.save(model, path)
    return path


def run(capsys, *arguments):
    """``minivgg ARGUMENTS``: ``(exit code, stdout, stderr)``."""
    code = main([str(argument) for argument in arguments])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err, command):
    """Whether ``err`` holds the command line's one line for a user error, and nothing else but progress bars
    (tqdm's lines, drawn with carriage returns): no traceback, no second message."""
    lines = [line for line in err.split("\n") if line and "\r" not in line]
    return (len(lines) == 1 and lines[0].startswith(f"minivgg {command}: error: ") and "Traceback" not in err
            and err.endswith("\n"))


def fifo(path):
    """A named pipe at ``path`` (nothing ever writes into it: reading it would block for ever)."""
    os.mkfifo(path)
    return path
