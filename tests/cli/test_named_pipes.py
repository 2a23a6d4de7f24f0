"""No input hangs (issue 28): a named pipe given where a file is read (nothing ever writes into it) is refused
before it is opened, with one line naming it, for every input path; before, reading it blocked until killed."""
import os
import signal

import numpy as np
import pytest
from PIL import Image
from hostile_files import fifo, one_line_error, run, snapshot, tiny_weights
from tiny_imagenet import SMALL_NET, make_tiny_imagenet


pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


class Hung(BaseException):
    """Raised by the alarm: a BaseException, so that no error handler of minivgg's can turn it into a pass."""


@pytest.fixture(autouse=True)
def no_hang():
    def hung(signum, frame):
        raise Hung("the command blocked on a named pipe")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def files(tmp_path):
    weights = tiny_weights(tmp_path / "w.safetensors")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    return tmp_path, weights, fifo(tmp_path / "pipe")


@pytest.mark.parametrize("arguments, command, what", [
    (lambda p, w, f: ["predict", f, "--weights", w], "predict", "image file"),
    (lambda p, w, f: ["predict", p / "a.png", "--weights", f], "predict", "weight file"),
    (lambda p, w, f: ["export", f, p / "out.onnx"], "export", "weight file"),
    (lambda p, w, f: ["convert", f, p / "out.safetensors"], "convert", "weight file"),
    (lambda p, w, f: ["info", f"{f}"], "info", "weight file"),
    (lambda p, w, f: ["evaluate", "--weights", f], "evaluate", "weight file"),
    (lambda p, w, f: ["features", f, "--weights", w, "--out", p / "f.npz", "--no-cache"], "features", "image"),
    (lambda p, w, f: ["localize", "predict", f, "--weights", w, "--classifier", w, "--output", p / "b.png"],
     "localize", "image file"),
    (lambda p, w, f: ["localize", "evaluate", "--weights", f, "--classifier", w], "localize", "weight file"),
])
def test_a_named_pipe_as_an_input_is_refused_before_it_is_opened(arguments, command, what, files, capsys):
    folder, weights, pipe = files
    if command == "info":
        os.rename(pipe, folder / "pipe.safetensors")
        pipe = folder / "pipe.safetensors"
    before = snapshot(folder)
    code, out, err = run(capsys, *arguments(folder, weights, pipe))
    assert code == 1 and one_line_error(err, command) and out == "", err
    assert f"{what} {pipe} is a named pipe, not a regular file" in err
    assert snapshot(folder) == before


def test_a_named_pipe_in_a_run_folder_is_refused(tmp_path, capsys):
    data = make_tiny_imagenet(tmp_path / "data")
    run_dir = tmp_path / "run"
    assert run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET[:-2], "--epochs", "1",
               "--run-dir", run_dir)[0] == 0
    for name, what in (("arguments.json", "run arguments file"), ("checkpoint.safetensors", "checkpoint"),
                       ("log.jsonl", "training log")):
        saved = (run_dir / name).read_bytes()
        (run_dir / name).unlink()
        fifo(run_dir / name)
        before = snapshot(run_dir)
        command = ["plot", run_dir] if name == "log.jsonl" else ["train", "--quiet", "--resume", run_dir,
                                                                 "--epochs", "2"]
        code, _, err = run(capsys, *command)
        assert code == 1 and f"{what} {run_dir / name} is a named pipe" in err, err
        assert snapshot(run_dir) == before
        (run_dir / name).unlink()
        (run_dir / name).write_bytes(saved)
    # --weights and --init-from of a new run
    fifo(tmp_path / "pipe.safetensors")
    for option in ("--weights", "--init-from"):
        code, _, err = run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET[:-2],
                           option, tmp_path / "pipe.safetensors", "--run-dir", tmp_path / "new")
        assert code == 1 and "is a named pipe" in err and not (tmp_path / "new").exists()


def test_the_library_refuses_pipes_too(tmp_path):
    from minivgg import weights
    from minivgg.data import decode_image
    from minivgg.errors import NotAFileError

    pipe = fifo(tmp_path / "pipe.png")
    with pytest.raises(NotAFileError, match="image file .* is a named pipe"):
        decode_image(pipe)
    with pytest.raises(NotAFileError, match="weight file .* is a named pipe"):
        weights.load(pipe)
    with pytest.raises(NotAFileError, match="is a folder"):
        weights.load(tmp_path)


@pytest.mark.parametrize("name, what", [
    ("ILSVRC2012_validation_ground_truth.txt", "validation ground-truth file"),
    ("meta.mat", "devkit file"),
])
def test_a_named_pipe_in_the_devkit_is_named_not_taken_for_a_missing_file(name, what, tmp_path, capsys):
    """Before, a pipe for the ground truth was "no ground-truth file" (look elsewhere), and a pipe for meta.mat
    was skipped: the labels were then read in another numbering."""
    data = make_tiny_imagenet(tmp_path / "data")
    weights = tiny_weights(tmp_path / "w.safetensors")
    devkit = data / "ILSVRC2012_devkit_t12" / "data"
    (devkit / name).unlink()
    fifo(devkit / name)
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "evaluate", "--data", data, "--weights", weights, "--ignore-class-names")
    assert code == 1 and one_line_error(err, "evaluate") and out == "", err
    assert f"{what} {devkit / name} is a named pipe, not a regular file" in err
    assert snapshot(tmp_path) == before


def test_a_named_pipe_among_the_images_is_left_out_and_counted(tmp_path, capsys):
    """A pipe named like an image in a class folder or a flat val/: listed as skipped, never opened."""
    from minivgg.data import ImageNet

    data = make_tiny_imagenet(tmp_path / "data")
    first_class = sorted((data / "train").iterdir())[0]
    fifo(first_class / "pipe.JPEG")
    fifo(data / "val" / "ILSVRC2012_val_99999999.JPEG")
    before = snapshot(data)
    with pytest.warns(UserWarning, match=r"pipe\.JPEG: a named pipe: never opened"):
        code, _, err = run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET[:-2],
                           "--epochs", "1", "--run-dir", tmp_path / "run")
    assert code == 0, err
    assert {name for name in snapshot(data) if name not in before} == {"train/.minivgg-statistics.json"}
    with pytest.warns(UserWarning, match=r"pipe\.JPEG: a named pipe: never opened"):
        train = ImageNet(data, "train")
    assert len(train) == 24 and not any(name.endswith("pipe.JPEG") for name in train.files)
    with pytest.warns(UserWarning, match=r"ILSVRC2012_val_99999999\.JPEG: a named pipe: never opened"):
        assert len(ImageNet(data, "val")) == 9
