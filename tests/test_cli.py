"""The command line: the demo trains (its loss falls), and user errors end with a message, not a traceback."""
import re

from minivgg.cli import main


def test_demo_loss_falls(capsys):
    assert main(["demo", "--steps", "40"]) == 0
    out = capsys.readouterr().out
    first, last = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", out).groups())
    assert last < 0.8 * first


def test_unknown_backend_is_a_message(capsys):
    assert main(["--backend", "tpu", "demo"]) == 1
    assert "unknown backend 'tpu'" in capsys.readouterr().err
