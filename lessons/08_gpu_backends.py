# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 8: the same net on the GPU: the numbers agree, the time differs
#
# The paper's nets took "2–3 weeks" each on four NVIDIA Titan Black GPUs (Sect. 3.3). minivgg writes every
# layer once (`minivgg/layers.py`) and leaves the maths to a **backend**: a module exporting the same ops
# with the same signatures, `conv2d_forward(x, W, b, stride, padding) -> (out, cache)` and so on. The
# reference ops (`backends/reference/`) are written against the array module of their input, so given CuPy arrays
# they run on an NVIDIA GPU unchanged: the CuPy backend *is* the reference, with only the convolution replaced
# (by cuDNN's). Switching is one call, `minivgg.set_backend("cupy")`.
#
# This lesson runs one small VGG and one batch on both, checks that the numbers agree, and times them. Cells
# that need a GPU say so and skip when there is none (CI has none).
#
# **What to install.** The GPU backends use CUDA 13, which needs an NVIDIA driver of the R580 series or newer
# (`nvidia-smi` shows it; an older driver must be updated first). With it, `pip install "minivgg[cupy]"`
# brings everything else from the package index, no CUDA Toolkit needed: CuPy with its CUDA libraries
# (`cupy-cuda13x[ctk]`), the cuDNN library (`nvidia-cudnn-cu13`) and its Python frontend
# (`nvidia-cudnn-frontend`), and NCCL (`nvidia-nccl-cu13`) for several GPUs; `pip install "minivgg[numba]"`
# adds Numba's CUDA compiler (`numba-cuda[cu13]`) for lesson 8b. A missing piece is named, with the command
# that installs it, when the backend is chosen: the cell below prints it.

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np

import minivgg
from minivgg.backends import contract
from minivgg.backends import cupy as cupy_backend
from minivgg.backends import numpy as numpy_backend
from minivgg.backends import reference
from minivgg.backends.cupy.precision import round_like_tensor_cores
from minivgg.exercises import gpu_precision as exercises
from minivgg.layers import SoftmaxCrossEntropyLoss
from minivgg.models import vgg

print("registered backends:", minivgg.registered_backends())
print("usable here:        ", minivgg.available_backends())
# Which ops each backend computes its own way; every other op is the reference's own function (the NumPy
# backend's two are its CPU engine; the Numba backend of lesson 8b overrides most, as CUDA kernels to read).
for backend in (numpy_backend, cupy_backend):
    print(f"{backend.name:>6} overrides {len(backend.OVERRIDES):2} of {len(reference.OPS)} ops: "
          f"{', '.join(backend.OVERRIDES) or '-'}; capabilities: {', '.join(sorted(backend.capabilities)) or '-'}")
try:
    cupy_backend.check_available()
    GPU = True
    print(cupy_backend.frontend_status())
except minivgg.BackendUnavailableError as error:  # no CuPy, no GPU, or no cuDNN: the message says which
    GPU = False
    print("the CuPy backend cannot run here, the GPU cells will skip:", error)
assert set(cupy_backend.OVERRIDES) == {"conv2d_forward", "conv2d_backward"}
assert all(getattr(cupy_backend, op) is reference.REFERENCE[op] for op in reference.OPS
           if op not in cupy_backend.OVERRIDES)

# %% [markdown]
# The CuPy backend computes two ops its own way, the convolution's pair (cuDNN); every other op is the
# reference's own function object, run on CuPy arrays.

# %% [markdown]
# ## One net, one batch, on NumPy
#
# Configuration A of Table 1, shrunk so that a laptop runs it in a moment: 32×32 inputs, an eighth of the
# channels, FC layers of 64, dropout off (so that both backends compute the very same function).

# %% tags=["numbers-vary"]
rng = np.random.default_rng(8)
images = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
labels = rng.integers(0, 10, 16)


def one_step(backend_name):
    """Forward, loss and backward of the same seeded net on ``backend_name``; returns (loss, scores, grads, s)."""
    backend = minivgg.set_backend(backend_name)
    model = vgg("A", num_classes=10, input_size=32, width_multiplier=0.125, fc_width=64, dropout=0.0, seed=1)
    loss_layer = SoftmaxCrossEntropyLoss()
    x = minivgg.asarray(images)
    loss_layer.forward(model.forward(x), labels)  # a first step compiles kernels and builds cuDNN plans
    model.backward(loss_layer.backward())
    start = time.perf_counter()
    scores = model.forward(x)
    loss = loss_layer.forward(scores, labels)
    model.backward(loss_layer.backward())
    minivgg.to_host(scores)  # waits for the device: the time covers the work, not just its launch
    seconds = time.perf_counter() - start
    grads = {name: np.asarray(backend.to_host(layer.grads[key])) for name, layer, key in model.named_parameters()}
    return loss, np.asarray(backend.to_host(scores)), grads, seconds


loss_numpy, scores_numpy, grads_numpy, seconds_numpy = one_step("numpy")
print(f"NumPy: loss {loss_numpy:.6f}, one step {seconds_numpy * 1e3:.1f} ms")
assert abs(loss_numpy - np.log(10)) < 0.1

# %% [markdown]
# A freshly initialised net guesses: its loss is close to log 10 ≈ 2.30.

# %% [markdown]
# ## The same step on the GPU
#
# Nothing in the model changes: the layers call whatever backend is active. The comparison is the relative
# error $\|a - b\| / \|b\|$ of the scores and of every gradient.

# %% tags=["numbers-vary"]
if GPU:
    cupy_backend.set_precision("fp32")  # exact float32 products, to compare with NumPy's
    loss_gpu, scores_gpu, grads_gpu, seconds_gpu = one_step("cupy")
    errors = {name: np.linalg.norm(grads_gpu[name] - g) / np.linalg.norm(g) for name, g in grads_numpy.items()}
    print(f"CuPy:  loss {loss_gpu:.6f}, one step {seconds_gpu * 1e3:.1f} ms")
    print(f"scores relative error {np.linalg.norm(scores_gpu - scores_numpy) / np.linalg.norm(scores_numpy):.1e}; "
          f"worst gradient relative error {max(errors.values()):.1e} ({max(errors, key=errors.get)})")
    assert max(errors.values()) < 1e-4
else:
    seconds_gpu = None
    print("skipped: this cell needs an NVIDIA GPU with CuPy (see the reason above)")

# %% [markdown]
# Where a GPU ran the lesson, the cell prints both losses and the largest relative error; without one, that it
# skipped. The two steps' times, side by side:

# %%
names = ["NumPy (CPU)"] + (["CuPy (GPU)"] if seconds_gpu else [])
times = [seconds_numpy * 1e3] + ([seconds_gpu * 1e3] if seconds_gpu else [])
plt.figure(figsize=(5, 2.5))
plt.barh(names, times)
plt.xlabel("one training step, ms (lower is better)")
plt.title("same net, same batch" + ("" if seconds_gpu else " (no GPU here: NumPy only)"))
plt.tight_layout()
plt.show()

# %% [markdown]
# The chart shows the time of one NumPy step (and of the GPU's beside it, where a GPU ran the lesson). With a
# GPU, the cell before it prints how far the two backends agree (in fp32, to float32 rounding: the worst
# gradient within 1e-4). At this toy size a GPU mostly waits for Python to launch its kernels; at VGG-16's real
# size (batch 64, 224×224, about 93 GFLOP per image and step) it is the other way round, and
# `benchmarks/bench_gpu.py` measures that against PyTorch.
#
# ## Why "agree" has a tolerance: TF32 (and bf16)
#
# GPUs are fastest on **tensor cores**, which multiply inputs with fewer mantissa bits than float32's 23:
# TF32 keeps 10, bfloat16 keeps 7 (both keep float32's exponent range), and accumulate in float32. The
# backend's `set_precision("fp32" | "tf32")` chooses for its cuDNN convolutions; TF32 is the default, as for
# PyTorch's convolutions. Most of the error is the rounding of the inputs, which `round_like_tensor_cores`
# emulates on the host (bf16 too, for comparison, though the backend has no bf16 mode). Here is what it
# does to one of VGG's convolutions (64 → 64 channels, 3×3), computed by the
# NumPy reference in float64 from rounded inputs:

# %%
x = rng.standard_normal((2, 64, 16, 16)).astype(np.float32)
W = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
b = np.zeros(64, dtype=np.float32)
exact, _ = numpy_backend.conv2d_forward(x.astype(np.float64), W.astype(np.float64), b.astype(np.float64), 1, 1)
emulated = {}
for precision in ("fp32", "tf32", "bf16"):
    if precision == "fp32":  # no input rounding: the only error is float32 accumulation
        rounded, _ = numpy_backend.conv2d_forward(x, W, b, 1, 1)
    else:
        rounded, _ = numpy_backend.conv2d_forward(round_like_tensor_cores(x, precision).astype(np.float64),
                                                  round_like_tensor_cores(W, precision).astype(np.float64), b, 1, 1)
    emulated[precision] = np.linalg.norm(rounded - exact) / np.linalg.norm(exact)
    print(f"{precision}: relative error {emulated[precision]:.1e}")
assert emulated["fp32"] < 1e-6 < 1e-4 < emulated["tf32"] < 1e-2 and emulated["bf16"] > 4 * emulated["tf32"]

# %% [markdown]
# float32 products err by about 1e-7; rounding the inputs to TF32's 10 bits costs about 1e-4 to 1e-3 of the
# output, bf16's 7 bits several times more.

# %%
if GPU:
    measured = {}
    for precision in cupy_backend.PRECISIONS:
        minivgg.set_backend("cupy")
        cupy_backend.set_precision(precision)
        out, _ = cupy_backend.conv2d_forward(*(minivgg.asarray(a) for a in (x, W, b)), 1, 1)
        measured[precision] = np.linalg.norm(minivgg.to_host(out).astype(np.float64) - exact) / np.linalg.norm(exact)
        print(f"{precision}: measured on the GPU {measured[precision]:.1e} (emulated {emulated[precision]:.1e})")
    cupy_backend.set_precision("tf32")
else:
    measured = None
    print("skipped: measuring the GPU's errors needs an NVIDIA GPU with CuPy")

# %% [markdown]
# With a GPU, the measured errors of fp32 and TF32 are printed beside the emulated ones; drawn together:

# %%
plt.figure(figsize=(5, 2.8))
positions = np.arange(3)
plt.bar(positions - 0.2, list(emulated.values()), width=0.4, label="emulated on the host")
if measured:
    plt.bar(positions[:len(measured)] + 0.2, list(measured.values()), width=0.4, label="measured on the GPU")
plt.xticks(positions, list(emulated))
plt.yscale("log")
plt.ylabel("relative error of the output")
plt.title("one 3x3 convolution, 64 -> 64 channels")
plt.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The bars climb by orders of magnitude from fp32 to bf16 (the GPU's measured bars appear beside them only where
# a GPU ran this lesson).

# %% [markdown]
# ## One launch per step: CUDA graphs
#
# A training step at a fixed shape launches the same kernels on the same buffers every time. The backend can
# record it once and replay it (its `graph_capture` capability: `capture_step(step)`), which removes the
# Python and launch overhead that dominated the toy step above. `minivgg.training` uses it when the backend
# offers it and the step allows it (no dropout: a replay repeats the captured mask).

# %% tags=["numbers-vary"]
if GPU:
    from minivgg.training.optimiser import SGD

    minivgg.set_backend("cupy")
    cupy_backend.set_precision("tf32")
    model = vgg("A", num_classes=10, input_size=32, width_multiplier=0.125, fc_width=64, dropout=0.0, seed=1)
    optimiser = SGD(model)
    x_device, labels_device = minivgg.asarray(images), minivgg.asarray(labels)

    def step():
        loss, cache = cupy_backend.softmax_cross_entropy_forward(model.forward(x_device), labels_device)
        model.backward(cupy_backend.softmax_cross_entropy_backward(1.0, cache))
        optimiser.step(0.01)
        return loss

    def milliseconds(run, repeats=20):
        run()
        cupy_backend.xp.cuda.Device().synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            run()
        cupy_backend.xp.cuda.Device().synchronize()
        return (time.perf_counter() - start) / repeats * 1e3

    eager = milliseconds(step)
    captured = cupy_backend.capture_step(step)
    replay = milliseconds(captured.replay)
    print(f"eager step {eager:.2f} ms, replayed graph {replay:.2f} ms")
else:
    print("skipped: CUDA graphs need an NVIDIA GPU with CuPy")

# %% [markdown]
# With a GPU, the replayed step's time is printed beside the eager step's; without one, the cell says it
# skipped. Back to the CPU for the rest:

# %%
minivgg.set_backend("numpy")
print("back on", minivgg.get_backend().name)

# %% [markdown]
# ## Paper to code
#
# How a backend is made from the reference (`backends/contract.py`): every op it does not define is the
# reference's own function. And the host emulation of the tensor cores' input rounding used above:

# %%
print(inspect.getsource(contract.install_reference))
print(inspect.getsource(round_like_tensor_cores))

# %% [markdown]
# > **A choice the paper leaves open: the arithmetic.** The paper trained with Caffe on four Titan Black GPUs,
# > whose float32 products are exact float32 (those GPUs have no tensor cores). Today's GPUs multiply float32
# > convolutions fastest on TF32 tensor cores. minivgg's CuPy backend defaults to TF32 for its convolutions, as
# > PyTorch does; `set_precision("fp32")` reproduces float32 products, which is what the comparison above uses.
#
# ## Exercises
#
# **1. TF32 rounding.** `round_to_tf32(x)` rounds each float32 of `x` to 10 mantissa bits, to the nearest value,
# ties to even, keeping float32's exponent, and returns float32. (Work on the bits: `x.view(np.uint32)`.)

# %%
def round_to_tf32(x):
    """float32 array -> float32 array of the nearest TF32 values (ties to even)."""
    raise NotImplementedError  # your code here


exercises.check_round_to_tf32(round_to_tf32)

# %% [markdown]
# **2. On paper.**

# %%
exercises.check_answers(
    tf32_rounding_error=None,   # the largest relative error of rounding float32 to TF32 (e.g. 2 ** -12)?
    bf16_over_tf32=None,        # bfloat16's largest relative rounding error over TF32's?
    cupy_overrides=None,        # how many ops does the CuPy backend compute its own way?
)
