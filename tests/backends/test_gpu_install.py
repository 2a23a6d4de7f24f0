"""What ``pip install "minivgg[cupy]"`` and ``"minivgg[numba]"`` install: a GPU stack that works on a machine with
only an NVIDIA driver (issue 26, item 1), and the install commands the errors print are the ones the extras use.
The packages themselves can only be seen working on a GPU (``benchmarks/gpu_cupy_checks.sh``)."""
import os
import runpy

import pytest
from packaging.requirements import Requirement

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def extras(tmp_path_factory):
    """setup.py's ``extras_require``, read by running setup.py with ``setup`` replaced."""
    import setuptools
    captured = {}
    original, setuptools.setup = setuptools.setup, lambda **arguments: captured.update(arguments)
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
        setuptools.setup = original
    return {name: {Requirement(r).name: Requirement(r) for r in requirements}
            for name, requirements in captured["extras_require"].items()}


def test_the_cupy_extra_brings_cuda_libraries_cudnn_and_nccl(extras):
    cupy = extras["cupy"]
    assert "ctk" in cupy["cupy-cuda13x"].extras  # cudart, NVRTC, cuBLAS: no CUDA Toolkit needed
    assert {"nvidia-cudnn-cu13", "nvidia-cudnn-frontend", "nvidia-nccl-cu13"} <= set(cupy)
    assert cupy["nvidia-cudnn-cu13"].specifier.contains("9.27.0")  # cuDNN 9, for CUDA 13


def test_the_numba_extra_brings_the_kernel_compiler(extras):
    numba = extras["numba"]
    assert "cu13" in numba["numba-cuda"].extras  # NVVM and NVRTC
    assert "ctk" in numba["cupy-cuda13x"].extras


def test_the_install_commands_in_the_errors_name_packages_of_the_cupy_extra(extras):
    from minivgg.backends.cupy import conv_cudnn
    from minivgg.distributed.nccl import NCCL_INSTALL_COMMAND
    for command in (conv_cudnn.CUDNN_INSTALL_COMMAND, NCCL_INSTALL_COMMAND):
        for package in command.split()[2:]:
            assert package in extras["cupy"], f"{command!r} installs {package}, which the cupy extra lacks"


@pytest.mark.parametrize("path", ["README.md", os.path.join("lessons", "08_gpu_backends.py")])
def test_the_docs_say_which_driver_cuda_13_needs(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        text = handle.read()
    assert "R580" in text and 'pip install "minivgg[cupy]"' in text and "nvidia-cudnn-cu13" in text
