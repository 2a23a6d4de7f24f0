"""``minivgg localize``: bad options refused at parse time, and train -> evaluate -> predict end to end on
the embedded scenes with one epoch of each stage (the figures themselves are test_localisation_training's)."""
import json
import os

import pytest

from minivgg.cli.program import main


@pytest.mark.parametrize("argv", [
    ["localize", "train", "--epochs", "0"],
    ["localize", "train", "--epochs", "two"],
    ["localize", "train", "--regression", "XYZ"],
    ["localize", "train", "--fine-tune", "conv"],
    ["localize", "train", "--learning-rate", "nan"],
    ["localize", "train", "--learning-rate", "-1e-3"],
    ["localize", "train", "--seed", "-1"],
    ["localize", "evaluate", "--weights", "a", "--classifier", "b", "--scales", "0,64"],
    ["localize", "evaluate", "--weights", "a", "--classifier", "b", "--top", "0"],
    ["localize", "evaluate", "--weights", "a", "--classifier", "b", "--merge-threshold", "inf"],
    ["localize", "predict", "image.png", "--weights", "a"],  # no --classifier
    ["localize"],  # no action
])
def test_bad_options_are_refused_at_parse_time(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_missing_weight_file_is_a_clear_error(tmp_path, capsys):
    code = main(["localize", "evaluate", "--weights", str(tmp_path / "none.safetensors"), "--classifier",
                 str(tmp_path / "none.safetensors")])
    assert code == 1
    assert "no weight file" in capsys.readouterr().err


def test_train_evaluate_predict(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["localize", "train", "--run-dir", str(run_dir), "--epochs", "1", "--classifier-epochs", "1",
                 "--regression", "SCR", "--quiet"]) == 0
    for name in ("classifier.safetensors", "localisation.safetensors", "example.png", "example.xml"):
        assert (run_dir / name).exists(), name
    weights, classifier = str(run_dir / "localisation.safetensors"), str(run_dir / "classifier.safetensors")
    capsys.readouterr()
    # A second run never writes over the first one's weights, nor into a file.
    before = (run_dir / "localisation.safetensors").read_bytes()
    assert main(["localize", "train", "--run-dir", str(run_dir), "--epochs", "1", "--quiet"]) == 1
    assert "already holds a localisation run" in capsys.readouterr().err
    assert (run_dir / "localisation.safetensors").read_bytes() == before
    assert main(["localize", "train", "--run-dir", classifier, "--epochs", "1", "--quiet"]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err

    assert main(["localize", "evaluate", "--weights", weights, "--classifier", classifier, "--scales", "64",
                 "--json", str(tmp_path / "table.json")]) == 0
    table = capsys.readouterr().out
    for method in ("whole-image box", "centre box", "centre crop, GT class", "dense + merging, top-5"):
        assert method in table
    assert len(json.loads((tmp_path / "table.json").read_text())["rows"]) > 0
    assert not list(tmp_path.glob(".minivgg-tmp-*"))  # written to a temporary, renamed into place

    output = tmp_path / "boxes.png"
    assert main(["localize", "predict", str(run_dir / "example.png"), "--weights", weights, "--classifier",
                 classifier, "--annotation", str(run_dir / "example.xml"), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("box (") == 5 and f"wrote {output}" in printed
    assert output.stat().st_size > 1000 and output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A localisation net given where the classifier is expected is named in the error.
    assert main(["localize", "predict", str(run_dir / "example.png"), "--weights", classifier, "--classifier",
                 classifier]) == 1
    assert "classification net, not a localisation net" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "example_boxes.png")


def test_annotations_need_images(capsys):
    assert main(["localize", "evaluate", "--weights", "a", "--classifier", "b", "--annotations", "x"]) == 1
    assert "--annotations and --images go together" in capsys.readouterr().err
