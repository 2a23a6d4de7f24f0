"""Data-loader throughput: minivgg's loader vs a plain Pillow decode-and-resize, images/s per core.

Writes a few hundred synthetic photo-like JPEGs to a temporary folder, then in one run times:

- the baseline: ``Image.open(path).convert("RGB").resize(...)`` to smallest side S, one process;
- minivgg's ``DataLoader``: decode (draft mode for large files) + rescale to S + random crop + flip + PCA
  colour shift + mean subtraction into NCHW float32 batches, with 0 (in-process), 1 and 2 workers.

"Per core" divides by the CPU time the run used (this process and its workers, from ``getrusage``), not by
the wall time, so it stays meaningful when other work shares the machine; the ratio is ours per CPU
second over the baseline's. Files stay in the page cache (written just before), so disk speed is not
measured.

    python benchmarks/bench_loader.py [--images 300] [--sizes 500x375,1600x1200] [--batch 32]
"""
import argparse
import os
import platform
import resource
import tempfile
import time

import numpy as np
from PIL import Image

from minivgg.data import DataLoader, ImageFolder, TrainAugmentation, compute_statistics
from minivgg.data.transforms import RESAMPLE, rescaled_size
from minivgg.preprocessing import paper_mean_rgb


def write_photos(root, count, width, height, seed=0):
    """``count`` JPEGs (quality 90) in 4 class folders: smooth colour fields, blobs and sensor-like noise,
    which compress to about the bytes per pixel of real photographs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    for k in range(count):
        folder = os.path.join(root, f"class{k % 4}")
        os.makedirs(folder, exist_ok=True)
        colours = rng.uniform(0, 255, (3, 3))
        image = colours[0] + np.stack([x, y, x * y], -1) @ (colours[1] - colours[0]).reshape(1, 3).repeat(3, 0) / 2
        for _ in range(6):
            cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            inside = ((x - cx) ** 2 + (y - cy) ** 2) < radius ** 2
            image[inside] = image[inside] * 0.4 + rng.uniform(0, 255, 3) * 0.6
        image += rng.normal(0, 8, image.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{k:05d}.JPEG"),
                                                                      quality=90)


def cpu_seconds():
    """CPU time (user + system) of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(run, images):
    """(images/s wall, images per CPU second) of ``run()``, which processes ``images`` images."""
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    run()
    wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    return images / wall, images / cpu


def baseline(paths, scale):
    def run():
        for path in paths:
            with Image.open(path) as image:
                width, height = image.size
                new_height, new_width = rescaled_size(height, width, scale)
                image.convert("RGB").resize((new_width, new_height), RESAMPLE)
    return run


def loader_epoch(loader):
    def run():
        for _ in loader.epoch(0):
            pass
    return run


def bench_size(width, height, count, args):
    with tempfile.TemporaryDirectory() as root:
        write_photos(root, count, width, height)
        data = ImageFolder(root)
        mean_rgb, eigenvalues, eigenvectors = compute_statistics(data, cache_path=False, progress=False,
                                                                 draft_smallest_side=args.scale)
        augmentation = TrainAugmentation(args.scale, args.crop, flip=True, colour_shift_std=0.1,
                                         pca=(eigenvalues, eigenvectors))
        paths = [data.path(i) for i in range(len(data))]
        baseline(paths[:16], args.scale)()  # warm-up: imports, first-touch
        rows = [("Image.open().convert().resize()", 1) + measure(baseline(paths, args.scale), count)]
        for workers in (0, 1, 2):
            loader = DataLoader(data, args.batch, augmentation, paper_mean_rgb(mean_rgb), num_workers=workers)
            rows.append((f"minivgg DataLoader, {workers} workers", max(workers, 1))
                        + measure(loader_epoch(loader), count))
    base_per_core = rows[0][3]
    print(f"\n{count} JPEGs of {width}x{height}, S={args.scale}, crop {args.crop}, batch {args.batch}")
    print(f"| {'what':<36} | {'img/s':>7} | {'img/s per core':>14} | {'ratio per core':>14} |")
    print(f"| {'-' * 36} | {'-' * 7} | {'-' * 14} | {'-' * 14} |")
    for name, _, per_second, per_core in rows:
        print(f"| {name:<36} | {per_second:7.0f} | {per_core:14.0f} | {per_core / base_per_core:13.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="JPEGs per size (default 300)")
    parser.add_argument("--sizes", default="500x375,1600x1200", help="WIDTHxHEIGHT list (default 500x375,1600x1200)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--scale", type=int, default=256, help="training scale S (default 256)")
    parser.add_argument("--crop", type=int, default=224)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"Pillow {Image.__version__}, NumPy {np.__version__}")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        bench_size(width, height, args.images, args)


if __name__ == "__main__":
    main()
