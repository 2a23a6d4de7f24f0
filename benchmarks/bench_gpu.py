"""GPU training and evaluation throughput: minivgg's GPU backends beside PyTorch eager + cuDNN, one run.

Times a VGG training step (forward, soft-max loss, backward, SGD update) through minivgg's generic API
(``minivgg.models.vgg``, its layers, ``minivgg.training.optimiser.SGD``) on each backend named by ``--backends``, and the
same step in PyTorch (torchvision's VGG, ``torch.optim.SGD``) at the same precision, in NCHW and
channels-last memory. Rows (defaults match the anchor measurements in shared/anchors):

    VGG-16 (D) batch 64, 224x224, in fp32 and TF32 (PyTorch also in bf16, for scale); the CuPy backend runs
    every conv+ReLU pair as its fused op (its ``fused_conv_relu`` capability, taken by the layers themselves),
    and is also timed as one CUDA graph (``capture_step``) and through the reference's im2col instead of
    cuDNN; VGG-11 (A) and VGG-19 (E) in TF32; dense evaluation (Sect. 3.2, FC layers as convolutions) of D
    at Q=384, batch 32, TF32.

Each row: images/s (median step time of ``--steps`` steps after warm-up), peak GPU memory of the step,
and the ratio to PyTorch's best layout at the same precision (target: >= 0.8x, aiming past 1.0x, with no
more peak memory). It also projects the paper's schedule for D: 74 epochs of ILSVRC-2012's 1,281,167
training images (Sect. 3.1) on one GPU at the measured speed.

    python benchmarks/bench_gpu.py [--backends cupy,numba] [--steps 10] [--quick] [--json results.json]

``--quick`` runs small shapes (batch 8, 64x64) to check the script itself in seconds.
"""
import argparse
import json
import platform
import statistics
import time
import traceback

import numpy as np

import minivgg
from minivgg.backend import supports

IMAGENET_TRAIN_IMAGES = 1_281_167
PAPER_EPOCHS = 74
PRECISIONS = ("fp32", "tf32", "bf16")  # PyTorch's rows; minivgg's backends are timed in those they offer


# --- measuring ----------------------------------------------------------------------------------------------

class PeakMemory:
    """Peak bytes in use by CuPy arrays while active (a CuPy memory hook: counts every allocation and free)."""

    def __init__(self):
        import cupy
        hook_base = cupy.cuda.memory_hook.MemoryHook
        tracker = self

        class Hook(hook_base):
            name = "minivgg_peak_memory"

            def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
                tracker.in_use += mem_size
                tracker.peak = max(tracker.peak, tracker.in_use)

            def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id):
                tracker.in_use -= mem_size

        self.hook, self.in_use, self.peak = Hook(), 0, 0

    def __enter__(self):
        import cupy
        self.in_use = self.peak = cupy.get_default_memory_pool().used_bytes()
        self.hook.__enter__()
        return self

    def __exit__(self, *exc):
        self.hook.__exit__(*exc)


def median_ms(step, synchronize, warmup, steps):
    """Median wall time of ``step`` in ms, each step followed by a device synchronisation."""
    for _ in range(warmup):
        step()
    synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


# --- minivgg ------------------------------------------------------------------------------------------------

def minivgg_training_step(backend_name, config, batch, size, precision, variant="eager"):
    """A closure running one training step on ``backend_name``, and a function that synchronises the device."""
    from minivgg.layers import SoftmaxCrossEntropyLoss
    from minivgg.models import vgg
    from minivgg.training.optimiser import SGD

    backend = minivgg.set_backend(backend_name)
    _set_precision(backend, precision)
    if backend_name == "cupy":
        backend.set_convolution_route("im2col" if variant == "im2col" else "auto")
    model = vgg(config, num_classes=1000, input_size=size, seed=0)
    rng = np.random.default_rng(0)
    x = minivgg.asarray(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    labels = rng.integers(0, 1000, batch)
    labels_device = minivgg.asarray(labels)
    optimiser, loss_layer = SGD(model), SoftmaxCrossEntropyLoss()

    def eager_step():
        loss_layer.forward(model.forward(x), labels)
        model.backward(loss_layer.backward(), input_gradient=False)
        optimiser.step(0.01)

    def device_step():  # no host round trip: the loss stays on the device (what a CUDA graph needs)
        loss, cache = backend.softmax_cross_entropy_forward(model.forward(x), labels_device)
        model.backward(backend.softmax_cross_entropy_backward(1.0, cache), input_gradient=False)
        optimiser.step(0.01)
        return loss

    synchronize = _synchronizer(backend_name)
    if variant == "graph":
        return backend.capture_step(device_step, warmup_steps=2).replay, synchronize  # replay() waits for it
    return eager_step, synchronize


def _set_precision(backend, precision):
    """The backend's precision capability, or fp32 for a backend without it."""
    if supports("precision", backend):
        backend.set_precision(precision)
    elif precision != "fp32":
        raise NotImplementedError(f"backend {backend.name!r} has no precision capability: only fp32 is measured")


def minivgg_dense_evaluation(backend_name, config, batch, size, precision, train_size):
    """One dense evaluation (Sect. 3.2) of a batch: fully-convolutional net, class score map averaged."""
    from minivgg.models import vgg

    backend = minivgg.set_backend(backend_name)
    _set_precision(backend, precision)
    if backend_name == "cupy":
        backend.set_convolution_route("auto")
    net = vgg(config, num_classes=1000, input_size=train_size, seed=0).eval().to_fully_convolutional()
    x = minivgg.asarray(np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32))

    def evaluate():
        net.forward(x).mean(axis=(2, 3))
    return evaluate, _synchronizer(backend_name)


def _synchronizer(backend_name):
    """Both GPU backends keep their arrays in CuPy, so a device-wide CuPy synchronisation waits for either.
    (The NumPy backend runs too, with ``--quick``, to check this script on a machine without a GPU.)"""
    if backend_name == "numpy":
        return lambda: None
    import cupy
    return cupy.cuda.Device().synchronize


def measure_minivgg(backend_name, make, warmup, steps, batch):
    if backend_name == "numpy":
        step, synchronize = make()
        ms = median_ms(step, synchronize, warmup, steps)
        return {"ms": ms, "images_per_second": batch / ms * 1e3, "peak_gib": float("nan")}
    import cupy
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    with PeakMemory() as memory:
        step, synchronize = make()
        ms = median_ms(step, synchronize, warmup, steps)
    result = {"ms": ms, "images_per_second": batch / ms * 1e3, "peak_gib": memory.peak / 2 ** 30}
    minivgg.set_backend("numpy")  # drop the references the closures hold, then the memory they used
    del step
    pool.free_all_blocks()
    return result


# --- PyTorch ------------------------------------------------------------------------------------------------

def torch_training_step(torch, config, batch, size, precision, channels_last):
    import torchvision
    torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
    torch.backends.cudnn.allow_tf32 = precision != "fp32"
    torch.backends.cudnn.benchmark = True
    arch = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}[config]
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = getattr(torchvision.models, arch)(weights=None).cuda().to(memory_format=memory_format)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size, device="cuda").to(memory_format=memory_format)
    y = torch.randint(0, 1000, (batch,), device="cuda")
    loss_function = torch.nn.CrossEntropyLoss()

    def step():
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_function(model(x), y)
        loss.backward()
        optimiser.step()
    return step


def torch_dense_evaluation(torch, batch, size, train_size):
    import torchvision
    torch.backends.cudnn.allow_tf32 = True
    features = torchvision.models.vgg16(weights=None).features.cuda().eval()
    nn = torch.nn
    head = nn.Sequential(nn.Conv2d(512, 4096, train_size // 32), nn.ReLU(), nn.Conv2d(4096, 4096, 1), nn.ReLU(),
                         nn.Conv2d(4096, 1000, 1)).cuda().eval()
    x = torch.randn(batch, 3, size, size, device="cuda")

    def evaluate():
        with torch.no_grad():
            head(features(x)).mean((2, 3))
    return evaluate


def measure_torch(torch, make, warmup, steps, batch):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step = make()
    ms = median_ms(step, torch.cuda.synchronize, warmup, steps)
    result = {"ms": ms, "images_per_second": batch / ms * 1e3,
              "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30}
    del step
    torch.cuda.empty_cache()
    return result


# --- the run ------------------------------------------------------------------------------------------------

FP32_ONLY = {"numba"}  # backends without the precision capability: timed in fp32 only
MINIVGG_PRECISIONS = ("fp32", "tf32")  # the CuPy backend's PRECISIONS


def plan(backends, batch, size, dense_batch, dense_size):
    """(row name, who, kind, arguments) for every measurement, PyTorch rows first for each comparison."""
    rows = []
    any_precision = [b for b in backends if b not in FP32_ONLY]
    for precision in PRECISIONS:
        rows.append((f"D train {precision}", "torch", "train", dict(config="D", precision=precision,
                                                                     channels_last=False)))
        rows.append((f"D train {precision} channels-last", "torch", "train",
                     dict(config="D", precision=precision, channels_last=True)))
        for backend in backends if precision == "fp32" else any_precision if precision in MINIVGG_PRECISIONS else []:
            rows.append((f"D train {precision}", backend, "train", dict(config="D", precision=precision)))
    for backend in [b for b in backends if b == "cupy"]:  # the variants use the CuPy backend's extras
        for variant in ("graph", "im2col"):
            rows.append((f"D train tf32 {variant}", backend, "train", dict(config="D", precision="tf32",
                                                                            variant=variant)))
    for config in ("A", "E"):
        rows.append((f"{config} train tf32", "torch", "train", dict(config=config, precision="tf32",
                                                                    channels_last=False)))
        for backend in any_precision:
            rows.append((f"{config} train tf32", backend, "train", dict(config=config, precision="tf32")))
    rows.append((f"D dense eval Q={dense_size} tf32", "torch", "dense", {}))
    for backend in any_precision:
        rows.append((f"D dense eval Q={dense_size} tf32", backend, "dense", dict(config="D", precision="tf32")))
    return rows


def run(args):
    backends = [b for b in args.backends.split(",") if b]
    batch, size = (8, 64) if args.quick else (args.batch, 224)
    dense_batch, dense_size = (4, 96) if args.quick else (32, 384)
    try:
        import torch
    except ImportError:
        torch = None
    results = []
    for name, who, kind, options in plan(backends, batch, size, dense_batch, dense_size):
        row = {"row": name, "who": who, **options}
        row_batch = dense_batch if kind == "dense" else batch
        try:
            if who == "torch":
                if torch is None:
                    raise ImportError("PyTorch is not installed")
                make = ((lambda: torch_dense_evaluation(torch, dense_batch, dense_size, size)) if kind == "dense" else
                        (lambda: torch_training_step(torch, options["config"], batch, size, options["precision"],
                                                     options["channels_last"])))
                row.update(measure_torch(torch, make, args.warmup, args.steps, row_batch))
            else:
                make = ((lambda: minivgg_dense_evaluation(who, options["config"], dense_batch, dense_size,
                                                          options["precision"], size)) if kind == "dense" else
                        (lambda: minivgg_training_step(who, options["config"], batch, size, options["precision"],
                                                       options.get("variant", "eager"))))
                row.update(measure_minivgg(who, make, args.warmup, args.steps, row_batch))
        except Exception as error:  # one failing row (a missing backend, out of memory) must not hide the rest
            row["error"] = f"{type(error).__name__}: {error}"
            if args.verbose:
                traceback.print_exc()
        results.append(row)
        print(format_row(row), flush=True)
    return results


def peer_of(row, results):
    """PyTorch's faster layout at the row's model and precision (the comparison the targets are set against)."""
    base = row["row"].split(" fused")[0].split(" graph")[0].split(" im2col")[0]
    peers = [r for r in results if r["who"] == "torch" and r["row"].startswith(base) and "error" not in r
             and r.get("precision", "tf32") == row.get("precision", "tf32")]
    return max(peers, key=lambda r: r["images_per_second"]) if peers else None


def format_row(row):
    if "error" in row:
        return f"{row['row']:<36} {row['who']:<6} error: {row['error']}"
    return (f"{row['row']:<36} {row['who']:<6} {row['images_per_second']:9.0f} img/s {row['ms']:9.1f} ms/step "
            f"peak {row['peak_gib']:5.1f} GiB")


def summary(results):
    lines = ["", "| row | who | img/s | peak GiB | vs PyTorch (img/s) | vs PyTorch (memory) |",
             "|---|---|---|---|---|---|"]
    for row in results:
        if "error" in row:
            lines.append(f"| {row['row']} | {row['who']} | error: {row['error'][:80]} | | | |")
            continue
        peer = peer_of(row, results) if row["who"] != "torch" else None
        speed = f"{row['images_per_second'] / peer['images_per_second']:.2f}x" if peer else ""
        memory = f"{row['peak_gib'] / peer['peak_gib']:.2f}x" if peer else ""
        lines.append(f"| {row['row']} | {row['who']} | {row['images_per_second']:.0f} | {row['peak_gib']:.1f} | "
                     f"{speed} | {memory} |")
    for row in results:
        if row["row"].startswith("D train") and row["who"] != "torch" and "error" not in row and \
                row["row"].count(" ") == 2:
            days = PAPER_EPOCHS * IMAGENET_TRAIN_IMAGES / row["images_per_second"] / 86400
            lines.append(f"- {row['who']} {row['precision']}: the paper's 74 epochs of D on this GPU would take "
                         f"{days:.1f} days (data loading not included)")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="cupy,numba", help="comma-separated minivgg GPU backends (cupy,numba)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small shapes, to check the script itself")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--verbose", action="store_true", help="print the traceback of a failing row")
    args = parser.parse_args()
    header = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import cupy
        from minivgg.backends.cupy import frontend_status
        header.update(gpu=cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), cupy=cupy.__version__,
                      cudnn=frontend_status())
    except Exception as error:
        header["gpu"] = f"unavailable ({error})"
    print(json.dumps(header))
    results = run(args)
    print(summary(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"header": header, "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
