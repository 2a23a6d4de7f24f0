"""Every numeric option of every command is checked when it is parsed: 0, negative, NaN and garbage are
refused naming the option (exit code 2) and never replaced by a default or clipped."""
import pytest

from minivgg.cli.program import main

TRAIN, EVALUATE = ["train"], ["evaluate", "--weights", "w.safetensors"]
PREDICT, INFO = ["predict", "image.png", "--weights", "w.safetensors"], ["info", "A"]

BAD_VALUES = [
    (TRAIN, "--epochs", "0", "must be a positive integer"),
    (TRAIN, "--epochs", "-1", "must be a positive integer"),
    (TRAIN, "--epochs", "2.5", "must be an integer"),
    (TRAIN, "--batch-size", "0", "must be a positive integer"),
    (TRAIN, "--device-batch", "0", "must be a positive integer"),
    (TRAIN, "--learning-rate", "0", "must be a positive number"),
    (TRAIN, "--learning-rate", "-1", "must be a positive number"),
    (TRAIN, "--learning-rate", "nan", "must be a finite number"),
    (TRAIN, "--learning-rate", "inf", "must be a finite number"),
    (TRAIN, "--learning-rate", "fast", "must be a number"),
    (TRAIN, "--patience", "0", "must be a positive integer"),
    (TRAIN, "--workers", "-1", "must be a non-negative integer"),
    (TRAIN, "--checkpoint-every", "-5", "must be a non-negative integer"),
    (TRAIN, "--seed", "-1", "must be a non-negative integer"),
    (TRAIN, "--width", "0", "must be a positive number"),
    (TRAIN, "--width", "nan", "must be a finite number"),
    (TRAIN, "--fc-width", "0", "must be a positive integer"),
    (TRAIN, "--crop", "-32", "must be a positive integer"),
    (TRAIN, "--scale", "512-256", "must be S or S_MIN-S_MAX with 1 <= S_MIN <= S_MAX"),
    (TRAIN, "--scale", "big", "must be S or S_MIN-S_MAX"),
    (TRAIN, "--init", "kaiming", "invalid choice"),
    (EVALUATE, "--batch-size", "0", "must be a positive integer"),
    (EVALUATE, "--chunk", "0", "must be a positive integer"),
    (EVALUATE, "--scales", "x", "must be 'paper' or comma-separated positive integers"),
    (EVALUATE, "--scales", "256,,384", "must be 'paper' or comma-separated positive integers"),
    (EVALUATE, "--scales", "0,256", "must be 'paper' or comma-separated positive integers"),
    (EVALUATE, "--seed", "-1", "must be a non-negative integer"),
    (EVALUATE, "--method", "ten-crop", "invalid choice"),
    (PREDICT, "--top", "-1", "must be a positive integer"),
    (PREDICT, "--top", "0", "must be a positive integer"),
    (PREDICT, "--scales", "x", "must be comma-separated integers"),
    (PREDICT, "--scales", "-256", "must be comma-separated positive integers"),
    (PREDICT, "--method", "ten-crop", "invalid choice"),
    (INFO, "--input-size", "0", "must be a positive integer"),
    (INFO, "--width-multiplier", "-0.5", "must be a positive number"),
    (INFO, "--fc-width", "0", "must be a positive integer"),
    (INFO, "--num-classes", "0", "must be a positive integer"),
]


@pytest.mark.parametrize("command, option, value, message", BAD_VALUES,
                         ids=[f"{c[0]} {o} {v}" for c, o, v, _ in BAD_VALUES])
def test_a_bad_value_is_refused_at_parse_time_naming_the_option(command, option, value, message, capsys, tmp_path,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*command, f"{option}={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {message}" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing was started, nothing written


def test_zero_where_zero_means_something_is_taken_not_replaced(capsys):
    """`--checkpoint-every 0` and `--workers 0` are valid (never; in-process), and reach the run as 0."""
    from minivgg.cli.program import build_parser

    args = build_parser().parse_args(["train", "--checkpoint-every", "0", "--workers", "0", "--seed", "0"])
    assert (args.checkpoint_every, args.workers, args.seed) == (0, 0, 0)
    args = build_parser().parse_args(["train"])
    assert args.epochs is None and args.checkpoint_every is None and args.quiet is None  # absent: None, not 0


def test_info_refuses_architecture_options_for_a_weight_file(tmp_path, capsys):
    import minivgg
    from minivgg import weights

    model = minivgg.vgg("A", num_classes=3, input_size=32, width_multiplier=0.125, fc_width=16, weight_init="glorot")
    weights.save(model, tmp_path / "a.safetensors")
    assert main(["info", str(tmp_path / "a.safetensors"), "--fc-width", "64"]) == 1
    assert "--fc-width: for a configuration given by name" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "a.safetensors"), "--input-size", "64"]) == 0
    assert main(["info", "A", "--fc-width", "64", "--num-classes", "10"]) == 0
    assert "FC-64" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "missing.safetensors")]) == 1
    assert "no weight file at" in capsys.readouterr().err
