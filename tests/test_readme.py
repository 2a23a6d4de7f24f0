"""The README's examples, checked against the code so the two cannot drift apart.

- Every ``minivgg`` command line of its bash blocks is parsed by the real parser (placeholders such as ``...``,
  ``[--x A|B]`` and ``IMAGES...`` filled in); a typo in an option fails here.
- Every ``pip install -e ".[extra]"`` names an extra of ``setup.py``; every script it runs exists.
- Every Python block runs statement by statement, in order, in one namespace, except the statements that need
  what a test cannot have (the network, a GPU), which are checked by binding their arguments to the real
  function's signature instead.
"""
import ast
import inspect
import pathlib
import re
import shlex

import numpy as np
import pytest

import minivgg
from minivgg.cli.program import build_parser

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(language):
    return [match.group(1) for match in re.finditer(rf"```{language}\n(.*?)```", README, re.S)]


def shell_commands(blocks=None):
    """Every command of the README's bash blocks: continuation lines joined, comments dropped, ``&&`` split."""
    commands = []
    for block in code_blocks("bash") if blocks is None else blocks:
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = re.split(r"\s#\s|\s{2,}#", line)[0].strip()
            if line and not line.startswith("#"):
                commands += [part.strip() for part in line.split("&&")]
    return commands


def minivgg_arguments(command):
    """The arguments after ``minivgg`` of a README line, placeholders filled in; None if it runs no minivgg."""
    words = shlex.split(command)
    if "minivgg" not in words:
        return None
    words = words[words.index("minivgg") + 1:]
    filled = []
    for word in words:
        if word == "...":
            # a value left to the reader after an option, or "and so on" at the end of the line
            if filled and filled[-1].startswith("--"):
                filled.append("x")
            continue
        if word.startswith("[") and word.endswith("]"):   # [--option A|B]: the option with its first choice
            word = word[1:-1]
        if word.startswith("[") or word.endswith("]"):
            word = word.strip("[]")
        if "|" in word:
            word = word.split("|")[0]
        if word.endswith("...") and word != "...":       # IMAGES...: one of them
            word = word[:-3]
        filled.append(word)
    return filled


MINIVGG_LINES = [line for line in shell_commands() if minivgg_arguments(line) is not None]


def test_the_readme_has_its_two_setup_commands_first():
    first_block = code_blocks("bash")[0].strip().splitlines()
    assert len(first_block) == 2
    assert first_block[0].endswith('pip install -e . && minivgg train')
    assert first_block[1].endswith('pip install -e ".[test]" && pytest')


def test_every_command_of_every_minivgg_subcommand_is_shown():
    shown = {minivgg_arguments(line)[0] for line in MINIVGG_LINES if minivgg_arguments(line)
             and not minivgg_arguments(line)[0].startswith("-")}
    shown |= {minivgg_arguments(line)[2] for line in MINIVGG_LINES if minivgg_arguments(line)[:1] == ["--backend"]}
    from minivgg.cli.program import COMMANDS
    assert set(COMMANDS) - shown == set(), "commands the README never shows"


@pytest.mark.parametrize("line", MINIVGG_LINES)
def test_every_minivgg_line_parses(line, capsys):
    arguments = minivgg_arguments(line)
    try:
        parsed = build_parser().parse_args(arguments)
    except SystemExit as exit:
        pytest.fail(f"the README's line does not parse ({exit.code}): {line}\n{capsys.readouterr().err}")
    assert parsed.command is not None, line


def test_a_line_with_a_wrong_option_would_fail_to_parse(capsys):
    # the check above can fail: the same parser refuses an option the README might misspell
    with pytest.raises(SystemExit):
        build_parser().parse_args(minivgg_arguments("minivgg train --epocs 3"))


def test_extras_and_scripts_named_by_the_readme_exist():
    setup_text = (ROOT / "setup.py").read_text(encoding="utf-8")
    extras_block = setup_text[setup_text.index("extras_require"):]
    named_extras = set(re.findall(r'pip install (?:-e )?"(?:\.|minivgg)\[([\w,]+)\]"', README))
    assert named_extras, "the README names no extra"
    for extras in named_extras:
        for extra in extras.split(","):
            assert re.search(rf'"{extra}":', extras_block), f"the README installs extra [{extra}], setup.py has none"
    scripts = set(re.findall(r"(?:python|bash) ((?:benchmarks|tools)/[\w/]+\.(?:py|sh))", README))
    assert scripts, "the README runs no script"
    for script in scripts:
        assert (ROOT / script).is_file(), f"the README runs {script}, which does not exist"


# Statements a test cannot run: they download hundreds of megabytes or need a GPU. Their calls are bound to
# the real signatures instead.
NEEDS_NETWORK = ("minivgg.pretrained(", "minivgg.predict(")
NEEDS_GPU = ('set_backend("cupy")', 'set_backend("numba")')


def _resolve(node, namespace):
    """The object an attribute chain such as ``minivgg.transfer.extract`` names, or None if not a chain."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return None if owner is None else getattr(owner, node.attr)
    return None


def _bind_calls(statement, namespace):
    """Bind every call to a function the statement names to that function's signature."""
    for node in ast.walk(ast.parse(statement)):
        if isinstance(node, ast.Call):
            function = _resolve(node.func, namespace)
            if function is None or not callable(function):
                continue
            arguments = [None] * len(node.args)
            keywords = {keyword.arg: None for keyword in node.keywords if keyword.arg}
            inspect.signature(function).bind(*arguments, **keywords)


def python_statements():
    statements = []
    for block_number, block in enumerate(code_blocks("python")):
        tree = ast.parse(block)
        for node in tree.body:
            statements.append((block_number, ast.get_source_segment(block, node)))
    return statements


def test_every_python_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"minivgg": minivgg}
    ran = bound = 0
    available = minivgg.available_backends()
    try:
        for block_number, statement in python_statements():
            gpu_backend = next((name for name in ("cupy", "numba") if f'set_backend("{name}")' in statement), None)
            if any(marker in statement for marker in NEEDS_NETWORK) or (gpu_backend and gpu_backend not in available):
                _bind_calls(statement, namespace)
                bound += 1
                if statement.startswith("model = "):
                    namespace["model"] = minivgg.vgg11(num_classes=10, input_size=32, width_multiplier=0.125,
                                                       fc_width=16)
                continue
            try:
                exec(compile(statement, f"README python block {block_number}", "exec"), namespace)
            except Exception as error:
                pytest.fail(f"README python block {block_number}: {statement!r} raised {error!r}")
            ran += 1
    finally:
        minivgg.set_backend("numpy")
    assert ran >= 12 and bound >= 2, (ran, bound)
    # what the blocks' comments say of their results
    assert namespace["scores"].shape == (8, 10)
    assert namespace["net"].layers[0].grads["W"].shape == (64, 3, 3, 3)
    errors = namespace["errors"]
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < 1e-7, errors
    # vgg16_bn, folded: the parameter count the README quotes for torchvision's vgg16_bn is the unfolded one
    quoted = int(re.search(r"vgg16_bn, ([\d,]+) parameters", README).group(1).replace(",", ""))
    assert quoted == 138_365_992
    assert minivgg.models.num_parameters("D", batch_norm=True) == quoted


def test_statements_that_cannot_run_are_still_checked_against_the_api():
    namespace = {"minivgg": minivgg}
    _bind_calls('minivgg.predict(model, ["cat.jpg"], top=5)', namespace)
    with pytest.raises(TypeError):   # a keyword the function does not take is caught without running it
        _bind_calls('minivgg.predict(model, ["cat.jpg"], top_k=5)', namespace)


def _block_with(text):
    return next(block for block in code_blocks("bash") if text in block)


def test_the_small_imagenet_runs_run_as_written(tmp_path, monkeypatch, capsys):
    """The README's block of small ImageNet runs, run line by line on a tiny ILSVRC-2012: only the data's
    place, one epoch and a batch of 8 are added; the run folders it names (A_37, D_37, D_55) must appear."""
    from minivgg.cli.program import main
    from tiny_imagenet import make_tiny_imagenet

    data = make_tiny_imagenet(tmp_path / "ILSVRC2012")  # the README names the folder ILSVRC2012
    monkeypatch.chdir(tmp_path)
    lines = shell_commands([_block_with("--init-from runs/A_37")])
    assert len(lines) == 4, lines
    for line in lines:
        arguments = minivgg_arguments(line)
        if "--resume" in arguments:
            arguments[arguments.index("--epochs") + 1] = "2"   # one epoch more than the run had, not 80
        else:
            arguments += ["--epochs", "1", "--batch-size", "8"]
        arguments += ["--quiet"]
        code = main(arguments)
        assert code == 0, f"{line}\n{capsys.readouterr().err}"
        named = re.findall(r"runs/(\w+)/model.safetensors", line)
        for run in named:
            assert (tmp_path / "runs" / run / "model.safetensors").is_file(), run
    for run in ("A_37", "D_37", "D_55"):
        assert (tmp_path / "runs" / run / "model.safetensors").is_file(), sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert data.is_dir()


def test_info_prints_table_1_as_the_readme_says(capsys):
    from minivgg.cli.program import main

    assert main(minivgg_arguments(next(line for line in MINIVGG_LINES if line.startswith("minivgg info D")))) == 0
    out = capsys.readouterr().out
    assert "138,357,544" in out   # configuration D's parameters (Table 2: 138 million)
