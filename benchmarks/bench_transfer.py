"""Appendix B's cost: seconds to compute one image's very deep descriptor, per scale, on this machine.

VGG-16 (configuration D, full width, 4096-D fc7) runs densely on one 4:3 image rescaled to each Q, with its
flip; then the SVM side, which is cheap by comparison, on the digits. Random weights: the speed does not
depend on their values.

    python benchmarks/bench_transfer.py [--config D] [--scales 256,384,512] [--images 1]
"""
import argparse
import platform
import time

import numpy as np

from minivgg import vgg
from minivgg.transfer import FeatureSettings, extract


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="D")
    parser.add_argument("--scales", default="256,384,512")
    parser.add_argument("--images", type=int, default=1)
    args = parser.parse_args()
    model = vgg(args.config, weight_init=None, seed=0).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(375, 500, 3), dtype=np.uint8) for _ in range(args.images)]
    print(f"{platform.processor() or platform.machine()}; VGG {args.config}, {len(images)} image(s) of 500x375, "
          f"flip averaged")
    for q in (int(s) for s in args.scales.split(",")):
        start = time.perf_counter()
        features = extract(model, images, FeatureSettings(scales=(q,), flip=True), batch_size=1)
        seconds = (time.perf_counter() - start) / len(images)
        print(f"Q = {q}: {seconds:6.1f} s per image ({features.shape[1]}-D descriptor)")


if __name__ == "__main__":
    main()
