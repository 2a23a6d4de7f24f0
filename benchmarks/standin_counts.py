"""Counts, not timings: what the CuPy backend asks of a GPU, counted on the CPU through the test suite's stand-ins.

    python benchmarks/standin_counts.py [--images 60] [--json FILE]

No GPU is used and no GPU time is measured. The CuPy backend's glue runs on ``tests/standins`` (stand-ins of
CuPy, the cuDNN frontend and NCCL, NumPy doing the arithmetic), which count what the glue asks for: host
synchronisations (and the line that asked), uploads and downloads with their bytes, allocations, kernel
launches, cuDNN graph builds and executions. Those counts are what decides a GPU's idle time and memory,
but they are not its speed.

1. Training (``minivgg --backend cupy train`` on the embedded digits, the default recipe, one epoch): per SGD
   step, the median over the epoch's steps after the first, of each count, and the host synchronisations by
   line of code; and the totals over the epoch's steps (validation and checkpoints left out). The progress
   update's once-a-second rule is switched off (``progress.EVERY_SECONDS``): a stand-in step takes a
   fraction of a second of NumPy, a GPU's a few milliseconds, so only the every-10-steps rule is what a GPU
   sees.
2. Dense evaluation of ``--images`` random images with the aspect ratios of ILSVRC-2012 validation images,
   at Q = 384 with flips, by configuration D at a sixteenth of its channels (the layer geometries, and so the
   number of cuDNN graphs, are D's): graph builds, distinct batch shapes, graphs kept, FC1 weight relayouts.
3. Memory of the recorded step (device bytes held by every pool after recording, against one eager step)
   and of the fused ReLU's backward (bytes allocated, against the plain convolution's backward).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

import numpy as np

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The stand-ins live in the test suite: importable as cupy and cudnn from there.
sys.path[:0] = [os.path.join(REPOSITORY, "tests", "standins"), os.path.join(REPOSITORY, "tests"), REPOSITORY]

import cupy  # noqa: E402  (the stand-in)
import minivgg  # noqa: E402
from standins.counting import COUNTS, FIELDS  # noqa: E402

assert getattr(cupy, "IS_STANDIN", False), "expected the CuPy stand-in of tests/standins"

# ILSVRC-2012 validation images are mostly 500 pixels on their long side; these (width, height) and their
# shares stand for its common aspect ratios (4:3 landscape first), each size jittered by a few pixels.
IMAGENET_SIZES = [((500, 375), 0.40), ((375, 500), 0.13), ((500, 333), 0.14), ((333, 500), 0.05),
                  ((500, 500), 0.08), ((500, 400), 0.06), ((500, 281), 0.05), ((640, 480), 0.05),
                  ((500, 250), 0.04)]


def imagenet_like_images(count, rng):
    sizes, shares = zip(*IMAGENET_SIZES)
    chosen = rng.choice(len(sizes), size=count, p=np.array(shares) / sum(shares))
    images = []
    for index in chosen:
        width, height = sizes[index]
        width, height = width + int(rng.integers(-12, 13)), height + int(rng.integers(-12, 13))
        images.append(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return images


def training_counts(run_dir):
    """Per-step counts of ``minivgg --backend cupy train`` (digits, one epoch): medians over the steps, and the
    totals over the epoch's steps."""
    from minivgg.cli.program import main
    from minivgg.training.optimiser import SGD

    marks, step = [], SGD.step
    epoch = {}

    def counted_step(self, learning_rate):
        step(self, learning_rate)
        marks.append(COUNTS.snapshot())

    from minivgg.training import loop
    train_epoch, end_epoch = loop.TrainingRun.train_epoch, loop.TrainingRun.end_epoch

    def counted_epoch(self, step_variant):
        epoch["start"] = COUNTS.snapshot()
        return train_epoch(self, step_variant)

    def counted_end(self, totals):
        epoch["end"] = COUNTS.snapshot()
        return end_epoch(self, totals)

    patched = [(SGD, "step", counted_step), (loop.TrainingRun, "train_epoch", counted_epoch),
               (loop.TrainingRun, "end_epoch", counted_end)]
    try:  # the progress update's reads (issue 26, item 6); a checkout from before it has none
        from minivgg.training import progress
        patched.append((progress, "EVERY_SECONDS", float("inf")))
    except ImportError:
        pass
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patched]
    for owner, name, value in patched:
        setattr(owner, name, value)
    try:
        assert main(["--backend", "cupy", "train", "--epochs", "1", "--quiet", "--run-dir", run_dir]) == 0
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
    deltas = []
    for before, after in zip(marks[:-1], marks[1:]):
        delta = {name: after[name] - before[name] for name in FIELDS}
        delta["sync_sites"] = after["sync_sites"] - before["sync_sites"]
        deltas.append(delta)
    result = {name: statistics.median(d[name] for d in deltas) for name in FIELDS}
    sites = {}
    for delta in deltas:
        for site, count in delta["sync_sites"].items():
            sites[site] = sites.get(site, 0) + count
    result["sync_sites_per_step"] = {site: round(count / len(deltas), 2) for site, count in
                                     sorted(sites.items(), key=lambda item: -item[1])}
    result["steps"] = len(marks)
    if "start" in epoch and "end" in epoch:
        totals = {name: epoch["end"][name] - epoch["start"][name] for name in FIELDS}
        totals["sync_sites"] = dict(epoch["end"]["sync_sites"] - epoch["start"]["sync_sites"])
        result["epoch_steps_total"] = totals
    return result


def dense_counts(count):
    """Graph builds and more for one dense evaluation of ``count`` ImageNet-like images at Q = 384."""
    from minivgg.backends.cupy import conv_cudnn
    from minivgg.evaluation import posteriors
    from minivgg.models import vgg

    minivgg.set_backend("cupy")
    model = vgg("D", num_classes=1000, input_size=224, width_multiplier=1 / 16, fc_width=16, seed=0).eval()
    images = imagenet_like_images(count, np.random.default_rng(26))
    shapes, graph_key = set(), conv_cudnn.graph_key
    fc1_layout = (16, 7, 7, 32)
    relayouts, ascontiguousarray = [0], cupy.ascontiguousarray

    def key_spy(kind, x_shape, w_shape, *rest, **keywords):
        if kind == "fprop" and w_shape[1] == 3:
            shapes.add(tuple(x_shape))
        return graph_key(kind, x_shape, w_shape, *rest, **keywords)

    def layout_spy(array, dtype=None):
        result = ascontiguousarray(array, dtype)
        if result.shape == fc1_layout and array.data.ptr != result.data.ptr:
            relayouts[0] += 1
        return result

    conv_cudnn.graph_key, cupy.ascontiguousarray = key_spy, layout_spy
    before = COUNTS.snapshot()
    try:
        posteriors(model, images, "dense", scales=(384,), flip=True, batch_size=32, shape_buckets=True)
    finally:
        conv_cudnn.graph_key, cupy.ascontiguousarray = graph_key, ascontiguousarray
    counted = COUNTS.since(before)
    from minivgg.data.transforms import rescaled_size
    sizes = {rescaled_size(image.shape[0], image.shape[1], 384) for image in images}
    kept = conv_cudnn.cached_graphs() if hasattr(conv_cudnn, "cached_graphs") else len(conv_cudnn._graphs)
    return {"images": count, "distinct_sizes_at_Q": len(sizes), "batch_shapes": len(shapes),
            "graph_builds": counted["graph_builds"], "cudnn_executions": counted["cudnn_executions"],
            "graphs_kept": kept, "fc1_relayouts": relayouts[0],
            "host_syncs": counted["host_syncs"], "kernel_launches": counted["kernel_launches"],
            "uploads": counted["uploads"], "bytes_to_device": counted["bytes_to_device"]}


def memory_counts():
    """Device bytes held after recording a step, against one eager step; the fused ReLU backward's bytes."""
    from minivgg.training.recorded_step import CapturedTrainingStep
    from minivgg.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, SoftmaxCrossEntropyLoss
    from minivgg.training.optimiser import SGD

    backend = minivgg.set_backend("cupy")
    pool = cupy.get_default_memory_pool()
    rng = np.random.default_rng(3)
    x, labels = rng.standard_normal((4, 3, 32, 32)).astype(np.float32), rng.integers(0, 5, 4)

    def make():
        init = dict(rng=np.random.default_rng(3), weight_init="glorot")
        return Sequential(Conv2d(3, 16, 3, padding=1, **init), ReLU(), Conv2d(16, 16, 3, padding=1, **init), ReLU(),
                          MaxPool2d(2, 2), Flatten(), Linear(16 * 16 * 16, 5, **init))

    pool.free_all_blocks()
    net, loss_layer = make(), SoftmaxCrossEntropyLoss()
    optimizer = SGD(net)
    loss_layer.forward(net.forward(minivgg.asarray(x)), labels)
    net.backward(loss_layer.backward(), input_gradient=False)
    optimizer.step(0.05)
    eager = pool.total_bytes()
    del net, loss_layer, optimizer
    pool.free_all_blocks()
    net = make()
    step = CapturedTrainingStep(net, SoftmaxCrossEntropyLoss(), SGD(net))
    step(x, labels, 0.05)
    recorded = pool.total_bytes() + step.recorded.pool.total_bytes()
    before = COUNTS.snapshot()
    step(x, labels, 0.05)
    replay = COUNTS.since(before)

    w, b = (minivgg.asarray(rng.standard_normal(s).astype(np.float32)) for s in [(16, 8, 3, 3), (16,)])
    inputs = minivgg.asarray(rng.standard_normal((4, 8, 16, 16)).astype(np.float32))
    dout = minivgg.asarray(rng.standard_normal((4, 16, 16, 16)).astype(np.float32))
    backward_bytes = {}
    for name, forward, backward in [("conv", backend.conv2d_forward, backend.conv2d_backward),
                                    ("conv+relu", backend.conv2d_relu_forward, backend.conv2d_relu_backward)]:
        _, cache = forward(inputs, w, b, 1, 1)
        before = COUNTS.snapshot()
        backward(dout, cache)
        backward_bytes[name] = COUNTS.since(before)["bytes_allocated"]
    return {"eager_step_bytes_held": eager, "recorded_step_bytes_held": recorded,
            "replay_host_syncs": replay["host_syncs"], "replay_graph_launches": replay["graph_launches"],
            "replay_kernel_launches_outside_the_graph": replay["kernel_launches"],
            "backward_bytes_allocated": backward_bytes}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60, help="images in the dense evaluation")
    parser.add_argument("--json", help="also write the counts to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {"training_per_step": training_counts(os.path.join(folder, "run"))}
    results["dense_evaluation"] = dense_counts(args.images)
    results["memory"] = memory_counts()
    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
