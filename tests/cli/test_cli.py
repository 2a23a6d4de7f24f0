"""The command line: subcommands are discovered, and user errors end with a message, not a traceback."""
from minivgg.cli.program import build_parser, main


def test_every_command_is_registered():
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"train", "evaluate", "predict", "plot", "info", "convert"} <= set(commands)


def test_info_prints_table_2_count(capsys):
    assert main(["info", "D"]) == 0
    assert "138,357,544 parameters" in capsys.readouterr().out


def test_unknown_backend_is_a_message(capsys):
    assert main(["--backend", "tpu", "info", "A"]) == 1
    assert "unknown backend 'tpu'" in capsys.readouterr().err


def test_unknown_configuration_is_a_message(capsys):
    assert main(["info", "F"]) == 1
    assert "F" in capsys.readouterr().err
