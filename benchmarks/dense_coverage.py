"""Dense evaluation at small test scales, before and after the dense net's pooling rounds up (issue 25).

Trains a quarter-width net A on a seeded subset of Fashion-MNIST (32x32 crops, fixed S = 37, the paper's
S = 256 scaled to the crop), for a few seeds, then evaluates a seeded subset of the test set at
Q = {32, 37, 42} (Sect. 4.2's set for S = 37) with single-crop evaluation and with dense evaluation whose
max-poolings round down (the training net's floor mode: before) and up (Caffe's ceil mode: after), each Q
alone and the three averaged. Prints one Markdown table: top-1 error in %, mean +- std over the seeds, and
the per-seed values.

    python benchmarks/dense_coverage.py [--seeds 3] [--per-class 1000] [--epochs 6] [--test-per-class 300]

Needs Fashion-MNIST (``--data fashion-mnist``'s lookup: $MINIVGG_DATA, the Debian package, the cache, or a
download). Takes about 15 minutes a seed on two shared CPU cores with the defaults; the results and what they
show are in ``RESULTS.md`` ("Dense evaluation at small scales").
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minivgg.data import subset  # noqa: E402
from minivgg.evaluation import posteriors  # noqa: E402
from minivgg.evaluation.metrics import top_k_error  # noqa: E402
from minivgg.training.recipes import dataset_run  # noqa: E402
from minivgg.training import train  # noqa: E402

SCALES = (32, 37, 42)


def dense_floor(model, images, scales):
    """Dense posteriors with the training net's floor-mode pooling (what dense evaluation did before)."""
    original = model.to_fully_convolutional
    model.to_fully_convolutional = lambda: original(ceil_mode=False)
    try:
        return posteriors(model, images, "dense", scales)
    finally:
        del model.to_fully_convolutional


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--test-per-class", type=int, default=300)
    args = parser.parse_args()
    rows = {}
    for seed in range(args.seeds):
        start = time.time()
        run = dataset_run("fashion-mnist", seed=seed, per_class=args.per_class, scale=37, max_epochs=args.epochs)
        with tempfile.TemporaryDirectory() as run_dir:
            result = train(run.model, run.train_loader, run.val_loader, run.settings, run_dir, progress=False)
        test = subset(run.test_loader.dataset, per_class=args.test_per_class, seed=0)
        images = [test.load(i)[0] for i in range(len(test))]
        labels = np.asarray(test.labels)
        model = run.model.eval()
        for name, method in (("single-crop", lambda s: posteriors(model, images, "single-crop", s)),
                             ("dense, pooling rounds down (before)", lambda s: dense_floor(model, images, s)),
                             ("dense, pooling rounds up (after)", lambda s: posteriors(model, images, "dense", s))):
            for scales in [(q,) for q in SCALES] + [SCALES]:
                error = 100 * top_k_error(method(scales), labels, 1)
                rows.setdefault((name, scales), []).append(error)
        print(f"seed {seed}: {len(run.train_loader.dataset)} training images, {len(result['history'])} epochs, "
              f"validation error {100 * result['history'][-1]['val_top1_error']:.1f}%, {time.time() - start:.0f} s",
              file=sys.stderr, flush=True)
    print(f"| method | test Q | top-1 error (%), mean ± std over {args.seeds} seeds | per seed |")
    print("| --- | --- | --- | --- |")
    for (name, scales), errors in rows.items():
        errors = np.asarray(errors)
        spread = f" ± {errors.std(ddof=1):.1f}" if len(errors) > 1 else ""
        print(f"| {name} | {','.join(map(str, scales))} | {errors.mean():.1f}{spread} | "
              f"{', '.join(f'{e:.1f}' for e in errors)} |")


if __name__ == "__main__":
    main()
