"""The GPU check scripts (``benchmarks/gpu_cupy_checks.sh``, ``gpu_stack_check.py``, ``gpu_numba_checks.py``) are
meant for a lent GPU; here they are checked dry: the shell script parses, and the stack check passes on the
test suite's stand-ins only when told to accept them, and fails naming the missing piece. Nothing here runs on a
GPU."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


def test_the_cupy_check_script_parses_and_asserts_the_stack_first():
    script = os.path.join(BENCHMARKS, "gpu_cupy_checks.sh")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    with open(script) as handle:
        text = handle.read()
    assert text.index("gpu_stack_check.py") < text.index("pytest")  # the stack is asserted before the tests


def test_every_test_file_the_cupy_check_script_runs_exists():
    import re

    with open(os.path.join(BENCHMARKS, "gpu_cupy_checks.sh")) as handle:
        named = set(re.findall(r"\btests/[\w/]+\.py\b", handle.read()))
    assert "tests/backends/test_feeding_on_gpu.py" in named
    assert [path for path in sorted(named) if not os.path.exists(os.path.join(ROOT, path))] == []


@pytest.fixture
def stack_check(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import gpu_stack_check
    return gpu_stack_check


def test_the_stack_check_passes_on_the_stand_ins_only_when_told(standin_gpu, stack_check):
    standin_gpu()
    results = stack_check.check(allow_standins=True)
    assert all(passed for passed, _ in results.values()), results
    assert "{'fprop': 8, 'dgrad': 8, 'wgrad': 8}" in results["cudnn executions"][1]  # configuration A: 8 convolutions
    assert "STAND-IN" in results["cupy"][1]
    refused = stack_check.check(allow_standins=False)
    assert refused["cupy"] == (False, "this is the test suite's CuPy stand-in, not CuPy")


@pytest.mark.parametrize("switches, failing, named", [
    ({"cudnn": "missing"}, "cudnn library", "nvidia-cudnn-cu13"),
    ({"nccl": "missing"}, "nccl", "nvidia-nccl-cu13"),
    ({"cudnn_no_plan": "wgrad"}, "cudnn executions", "'wgrad': 0")])
def test_the_stack_check_names_what_is_missing(standin_gpu, stack_check, switches, failing, named):
    standin_gpu(**switches)
    with pytest.warns(RuntimeWarning) if "cudnn_no_plan" in switches else _nothing():
        results = stack_check.check(allow_standins=True)
    passed, detail = results[failing]
    assert not passed and named in detail


def test_the_numba_check_refuses_the_simulator():
    run = subprocess.run([sys.executable, "-c", "import gpu_numba_checks as c; print(c.check_stack())"],
                         cwd=BENCHMARKS, capture_output=True, text=True,
                         env=dict(os.environ, NUMBA_ENABLE_CUDASIM="1"))
    assert run.returncode == 0, run.stderr
    assert "'not the simulator': (False" in run.stdout


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
