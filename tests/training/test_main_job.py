"""The main job, `minivgg train` on the embedded digits, and the commands around it."""
import re

import numpy as np
import pytest
from PIL import Image

from minivgg.cli.program import main


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "--quiet", "--epochs", "1", "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_train_writes_checkpoint_log_and_weights(one_epoch_run):
    assert {"checkpoint.safetensors", "log.jsonl", "model.safetensors", "arguments.json"} <= {
        p.name for p in one_epoch_run.iterdir()}


def test_plot_evaluate_and_predict_on_the_trained_weights(one_epoch_run, tmp_path, capsys):
    assert main(["plot", str(one_epoch_run)]) == 0
    assert (one_epoch_run / "curves.png").stat().st_size > 10_000
    assert main(["evaluate", "--weights", str(one_epoch_run / "model.safetensors"), "--method", "dense",
                 "--scales", "paper", "--json", str(tmp_path / "table.json")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"A\s+32-40\s+32,36,40\s+dense, no flip\s+[\d.]+%", out)
    image = np.zeros((40, 40, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "blank.png")
    assert main(["predict", str(tmp_path / "blank.png"), "--weights", str(one_epoch_run / "model.safetensors")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("blank.png") and len(lines) == 6 and all("%" in line for line in lines[1:])


def test_a_run_folder_is_never_overwritten(one_epoch_run, capsys):
    assert main(["train", "--quiet", "--epochs", "1", "--run-dir", str(one_epoch_run)]) == 1
    assert "already holds a run" in capsys.readouterr().err


def test_resume_of_a_missing_run_is_a_message(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "not a run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_default_main_job_reaches_97_percent(tmp_path, capsys):
    """The issue's acceptance: `minivgg train` with no arguments reaches >= 97% test top-1 on the digits."""
    assert main(["train", "--quiet", "--run-dir", str(tmp_path / "default")]) == 0
    accuracy = float(re.search(r"test top-1 accuracy: ([\d.]+)%", capsys.readouterr().out).group(1))
    assert accuracy >= 97.0


def test_fine_tuning_feeds_images_with_the_starting_weights_preprocessing(one_epoch_run, tmp_path, capsys):
    """`--weights` from a file with another preprocessing: the loaders switch to it (weights carry it)."""
    from minivgg import weights
    from minivgg.preprocessing import TORCHVISION

    model = weights.load(one_epoch_run / "model.safetensors")
    model.preprocessing = TORCHVISION
    weights.save(model, tmp_path / "start.safetensors")
    run_dir = tmp_path / "fine-tuned"
    assert main(["train", "--quiet", "--epochs", "1", "--weights", str(tmp_path / "start.safetensors"),
                 "--run-dir", str(run_dir)]) == 0
    assert weights.load(run_dir / "model.safetensors").preprocessing == TORCHVISION
