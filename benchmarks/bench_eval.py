"""Images/s of single-crop, dense and multi-crop evaluation (Sect. 3.2, 4.3) in one run, same model, same images.

The paper's point: dense evaluation runs the net once over the whole image (twice with the flip), where
multi-crop runs it 50 times per scale. Small nets on the CPU by default; ``--vgg16`` adds configuration D at
224 crops on a few 384x512 images (slow on a CPU).

    python benchmarks/bench_eval.py [--images 64] [--vgg16]
"""
import argparse
import platform
import time

import numpy as np

import minivgg
from minivgg.evaluation.posteriors import posteriors


def rate(model, images, method, scales):
    posteriors(model, images[:2], method, scales)  # warm-up
    start = time.perf_counter()
    posteriors(model, images, method, scales)
    return len(images) / (time.perf_counter() - start)


def table(title, model, images, scale_sets):
    print(f"\n{title}")
    print(f"{'method':>17} {'scales':>14} {'images/s':>9} {'vs dense':>9}")
    for scales in scale_sets:
        dense = rate(model, images, "dense", scales)
        for method in ("single-crop", "dense", "multi-crop", "multi-crop+dense"):
            value = dense if method == "dense" else rate(model, images, method, scales)
            print(f"{method:>17} {str(scales):>14} {value:9.1f} {value / dense:8.2f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--vgg16", action="store_true", help="also configuration D at full size (slow on a CPU)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{platform.machine()}, numpy {np.__version__}, backend {minivgg.get_backend().name}")
    small = minivgg.vgg("A", num_classes=10, input_size=32, width_multiplier=0.25, fc_width=256, seed=0)
    images = [rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8) for _ in range(args.images)]
    table("configuration A at 1/4 width, 32x32 crops, 40x48 images", small, images, [(40,), (32, 40, 48)])
    if args.vgg16:
        big = minivgg.vgg("D", seed=0, weight_init=None)
        photos = [rng.integers(0, 256, size=(384, 512, 3), dtype=np.uint8) for _ in range(2)]
        table("configuration D (VGG-16), 224 crops, 384x512 images", big, photos, [(384,)])


if __name__ == "__main__":
    main()
