"""Check and time the Numba-CUDA backend on one GPU, in one call.

    python benchmarks/gpu_numba_checks.py [--out DIR]   # an NVIDIA GPU with CuPy and numba-cuda
    python benchmarks/gpu_numba_checks.py --smoke       # anywhere: the same code on tiny sizes, CUDA simulator

0. Asserts the real stack first (``check_stack``): Numba compiling for a GPU (not the simulator), NVVM loaded
   (``numba-cuda[cu13]``), a kernel compiled and run on CuPy arrays; exit 1, naming what is missing, if not.
1. Runs this backend's part of the backend grid (``pytest -k numba tests/test_backends.py``): every op in
   float64 and float32 against the loops, VGG-16's layer shapes against the reference (the tests marked gpu),
   and a small net's training step against the NumPy run.
2. Times each distinct convolution of VGG-16 (Table 1, column D) at batch 64: the forward kernel, and the
   backward (data-gradient and weight-gradient kernels, bias column sums), in ms and TFLOP/s.
3. Times a VGG-16 training step at batch 64 (224x224, 1000 classes, SGD with momentum) through the layer API,
   in images/s; and, when PyTorch with CUDA is installed, PyTorch's fp32 step with TF32 off (torchvision's
   VGG-16, timed by ``bench_gpu.py``'s own functions) in the same run: the anchors measured 604 img/s on an
   H100. Target: at least 0.25x PyTorch.

Prints the figures; ``--out DIR`` also writes them to ``DIR/gpu_numba_checks.json``.
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys

import numpy as np

from bench_gpu import measure_torch, median_ms, torch_training_step  # this folder's GPU benchmark: one way to time

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent

# Configuration D's distinct convolutions (in channels, out channels, input side at 224) and how often each occurs.
VGG16_CONVOLUTIONS = [(3, 64, 224, 1), (64, 64, 224, 1), (64, 128, 112, 1), (128, 128, 112, 1), (128, 256, 56, 1),
                      (256, 256, 56, 2), (256, 512, 28, 1), (512, 512, 28, 2), (512, 512, 14, 3)]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes under the CUDA simulator: checks the script runs, measures nothing")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after 2 warm-up steps)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each convolution (median)")
    parser.add_argument("--skip-tests", action="store_true", help="only the timings")
    parser.add_argument("--out", type=pathlib.Path, help="folder for gpu_numba_checks.json")
    return parser.parse_args()


def check_stack():
    """``{name: (passed, detail)}`` for the stack the Numba backend needs on a GPU (what
    ``pip install "minivgg[numba]"`` installs: numba-cuda[cu13] with NVVM, cupy-cuda13x[ctk])."""
    from numba import config, cuda
    results = {"not the simulator": (not config.ENABLE_CUDASIM, "NUMBA_ENABLE_CUDASIM is "
                                     f"{'set: kernels would run in Python' if config.ENABLE_CUDASIM else 'off'}")}
    if config.ENABLE_CUDASIM:
        return results
    results["gpu"] = (cuda.is_available(), "numba.cuda.is_available()")
    try:
        from numba.cuda.cudadrv import nvvm
        results["nvvm"] = (True, f"NVVM {'.'.join(map(str, nvvm.NVVM().get_version()))}")
    except Exception as error:  # NvvmSupportError: numba-cuda without [cu13]
        results["nvvm"] = (False, f"NVVM cannot be loaded ({error}): pip install 'numba-cuda[cu13]'")
    try:
        import cupy

        @cuda.jit
        def add_one(values):
            i = cuda.grid(1)
            if i < values.size:
                values[i] += 1

        values = cupy.zeros(64, dtype=cupy.float32)
        add_one[1, 64](values)
        cuda.synchronize()
        ran = bool((values.get() == 1).all())
        results["kernel"] = (ran, f"a kernel compiled by Numba ran on a CuPy {cupy.__version__} array")
    except Exception as error:
        results["kernel"] = (False, f"{type(error).__name__}: {error}")
    return results


def run_gpu_tests():
    """This backend's part of the backend grid; returns (exit status, last lines of its output)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "numba", "-rs",
               "tests/test_backends.py"]
    run = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)
    return run.returncode, "\n".join((run.stdout + run.stderr).strip().splitlines()[-25:])


def time_convolutions(backend, shapes, batch, repeats, synchronize):
    """Per layer: forward and backward time and TFLOP/s (2 flops per multiply-add; the backward does two
    products of the forward's size)."""
    xp = backend.xp
    rows = []
    for channels, filters, size, count in shapes:
        # NCHW views of NHWC memory, as one layer hands them to the next: no layout copies are timed.
        x = xp.full((batch, size, size, channels), 0.5, dtype=np.float32).transpose(0, 3, 1, 2)
        W = xp.full((filters, channels, 3, 3), 0.01, dtype=np.float32)
        b = xp.zeros(filters, dtype=np.float32)
        _, cache = backend.conv2d_forward(x, W, b, 1, 1)
        dout = xp.full((batch, size, size, filters), 0.1, dtype=np.float32).transpose(0, 3, 1, 2)
        forward = median_ms(lambda: backend.conv2d_forward(x, W, b, 1, 1), synchronize, 1, repeats)
        backward = median_ms(lambda: backend.conv2d_backward(dout, cache), synchronize, 1, repeats)
        flops = 2.0 * batch * size * size * filters * channels * 9
        rows.append({"layer": f"{channels}->{filters}@{size}", "count": count, "forward_ms": forward,
                     "backward_ms": backward, "forward_tflops": flops / forward / 1e9,
                     "backward_tflops": 2 * flops / backward / 1e9})
        del x, W, b, cache, dout
    return rows


def training_step_ms(net, batch, warmup, steps, synchronize):
    """Median ms of an SGD step of ``net`` (``vgg`` arguments) on the active backend, after ``warmup`` steps."""
    import minivgg
    from minivgg.layers import SoftmaxCrossEntropyLoss
    from minivgg.models import vgg
    from minivgg.training.optimiser import SGD
    model = vgg(**net, weight_init="glorot", seed=0)
    data = np.random.default_rng(0)
    images = minivgg.asarray(data.standard_normal((batch, 3, net["input_size"], net["input_size"])),
                             dtype=np.float32)
    labels = data.integers(0, net["num_classes"], batch)
    optimizer, loss_layer = SGD(model), SoftmaxCrossEntropyLoss()

    def step():
        loss_layer.forward(model.forward(images), labels)
        model.backward(loss_layer.backward(), input_gradient=False)
        optimizer.step(0.01)

    return median_ms(step, synchronize, warmup, steps)


def torch_fp32(batch, steps):
    """PyTorch's VGG-16 fp32 step with TF32 off, as ``bench_gpu.py`` measures it; or why it was not run."""
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA GPU"
    result = measure_torch(torch, lambda: torch_training_step(torch, "D", batch, 224, "fp32", channels_last=False),
                           3, steps, batch)
    return result, f"torch {torch.__version__}, torchvision VGG-16, fp32 without TF32"


def main():
    args = parse_arguments()
    if args.smoke:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before Numba is first imported
        batch, warmup, steps, repeats = 1, 0, 1, 1  # the simulator takes a minute for one step
        shapes = [(max(1, c // 64), max(1, f // 64), max(1, size // 56), count)
                  for c, f, size, count in VGG16_CONVOLUTIONS]
        net = dict(config="D", input_size=32, width_multiplier=1 / 64, fc_width=8, num_classes=10, dropout=0.5)
    else:
        batch, warmup, steps, repeats, shapes = args.batch, 2, args.steps, args.repeats, VGG16_CONVOLUTIONS
        net = dict(config="D", input_size=224, width_multiplier=1.0, fc_width=4096, num_classes=1000, dropout=0.5)

    import numba
    from numba import cuda

    import minivgg

    results = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
               "smoke": args.smoke, "batch": batch}
    stack = check_stack()
    results["stack"] = {name: {"passed": passed, "detail": detail} for name, (passed, detail) in stack.items()}
    for name, (passed, detail) in stack.items():
        print(f"{'ok    ' if passed else 'FAILED'} {name}: {detail}", flush=True)
    stack_failed = not args.smoke and not all(passed for passed, _ in stack.values())
    if not args.skip_tests:
        status, tail = run_gpu_tests()
        print(f"== pytest -k numba tests/test_backends.py: exit {status}\n{tail}\n", flush=True)
        results["gpu_tests_exit_status"] = status
        results["gpu_tests_output_tail"] = tail

    # PyTorch first, in the same run, and its cached memory given back before minivgg allocates.
    torch_result, torch_note = (None, "not run with --smoke") if args.smoke else torch_fp32(batch, steps)
    results["torch"], results["torch_note"] = torch_result, torch_note

    backend = minivgg.set_backend("numba")
    backend.speed_up_simulator()
    device_name = "the CUDA simulator" if backend.SIMULATOR else cuda.get_current_device().name
    results["device"] = device_name.decode() if isinstance(device_name, bytes) else str(device_name)
    print(f"== device: {results['device']}; numba {numba.__version__}, numpy {np.__version__}", flush=True)

    rows = time_convolutions(backend, shapes, batch, repeats, cuda.synchronize)
    results["convolutions"] = rows
    print(f"== VGG-16 convolutions, batch {batch}, 3x3 pad 1, float32 (median of {repeats})")
    print(f"{'layer':>16} {'x':>2} {'fwd ms':>9} {'fwd TFLOP/s':>12} {'bwd ms':>9} {'bwd TFLOP/s':>12}")
    for row in rows:
        print(f"{row['layer']:>16} {row['count']:>2} {row['forward_ms']:9.2f} {row['forward_tflops']:12.2f} "
              f"{row['backward_ms']:9.2f} {row['backward_tflops']:12.2f}")
    conv_ms = sum(row["count"] * (row["forward_ms"] + row["backward_ms"]) for row in rows)
    results["conv_stack_ms"] = conv_ms
    print(f"all 13 convolutions, forward + backward: {conv_ms:.1f} ms per batch", flush=True)

    step_ms = training_step_ms(net, batch, warmup, steps, cuda.synchronize)
    results["numba_step_ms"], results["numba_images_per_second"] = step_ms, batch / step_ms * 1e3
    print(f"== VGG-{net['config']} training step, batch {batch}, {net['input_size']}x{net['input_size']}: "
          f"numba {step_ms:.1f} ms, {results['numba_images_per_second']:.1f} img/s "
          f"(convolutions {100 * conv_ms / step_ms:.0f}% of it)", flush=True)
    if torch_result is None:
        print(f"PyTorch: not run ({torch_note})")
    else:
        ratio = results["numba_images_per_second"] / torch_result["images_per_second"]
        results["ratio_to_torch_fp32"] = ratio
        print(f"{torch_note}: {torch_result['images_per_second']:.1f} img/s, peak {torch_result['peak_gib']:.1f} "
              f"GiB; numba / PyTorch = {ratio:.3f}x (target >= 0.25x)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_numba_checks.json").write_text(json.dumps(results, indent=1))
    if results.get("gpu_tests_exit_status", 0) != 0:
        sys.exit(results["gpu_tests_exit_status"])
    if stack_failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
