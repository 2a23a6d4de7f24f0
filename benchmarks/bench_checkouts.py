"""Two checkouts of minivgg side by side: the small VGG's training step and ``import minivgg``, in one window.

A change that should not move the speed (a restructuring, a refactor) is measured against the commit before it:
check the old commit out in a second folder (``git worktree add ../before <commit>``) and run

    python benchmarks/bench_checkouts.py ../before .  [--rounds 7] [--steps 10]

Each checkout runs in its own ``.venv`` if it has one (same NumPy in both, or the comparison means little).
Each round runs one fresh process per checkout, alternately, so a slow spell of a shared machine falls on both.
A process imports minivgg from its checkout (timed), builds the same net from the same seed (bench_train.py's:
configuration D at width 1/4, 32x32, FC 512, batch 64), warms up, and times ``--steps`` SGD steps. Reported:
the median of the rounds for each checkout and the median of the per-round ratios (new / old time per image).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

# Run in a child process with the checkout first on sys.path; prints one JSON line.
_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
import minivgg
import_seconds = time.perf_counter() - start
assert minivgg.__file__.startswith(sys.argv[1]), minivgg.__file__
import numpy as np
from minivgg.layers import SoftmaxCrossEntropyLoss
try:
    from minivgg.training.optimiser import SGD
except ImportError:  # the layout before the training package
    from minivgg.optim import SGD
steps, batch = int(sys.argv[2]), 64
rng = np.random.default_rng(0)
model = minivgg.vgg("D", num_classes=10, input_size=32, width_multiplier=0.25, fc_width=512, weight_init="glorot",
                    seed=0)
x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
labels = rng.integers(0, 10, size=batch)
optimizer, loss = SGD(model), SoftmaxCrossEntropyLoss()
def step():
    loss.forward(model.forward(x), labels)
    model.backward(loss.backward(), input_gradient=False)
    optimizer.step(0.01)
step(); step()
start = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"import_s": import_seconds, "img_per_s": batch * steps / (time.perf_counter() - start),
                  "final_loss": float(loss.forward(model.forward(x), labels)), "numpy": np.__version__}))
"""


def interpreter(checkout):
    """The checkout's own virtual environment's Python if it has one (an editable install of one checkout
    shadows the other's package layout), else this one."""
    own = os.path.join(checkout, ".venv", "bin", "python")
    return own if os.path.isfile(own) else sys.executable


def run_once(checkout, steps):
    result = subprocess.run([interpreter(checkout), "-c", _CHILD, checkout, str(steps)], capture_output=True, text=True,
                            check=False, cwd=checkout)
    if result.returncode != 0:
        raise SystemExit(f"bench_checkouts: the run in {checkout} failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the checkout measured as 'before'")
    parser.add_argument("new", help="the checkout measured as 'after'")
    parser.add_argument("--steps", type=int, default=10, help="SGD steps per round and checkout")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds; medians are reported")
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")
    checkouts = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    for name, folder in checkouts.items():
        if not os.path.isfile(os.path.join(folder, "minivgg", "__init__.py")):
            parser.error(f"{name}: {args.old if name == 'old' else args.new} is not a minivgg checkout")
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; small VGG step (D, width "
          f"1/4, 32x32, FC 512, batch 64), {args.rounds} rounds of {args.steps} steps per checkout")
    runs = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, folder in checkouts.items():
            runs[name].append(run_once(folder, args.steps))
    for name, results in runs.items():
        rates = [r["img_per_s"] for r in results]
        imports = [r["import_s"] * 1000 for r in results]
        print(f"{name}: {statistics.median(rates):7.1f} img/s (rounds {', '.join(f'{r:.0f}' for r in rates)}); "
              f"import minivgg {statistics.median(imports):.0f} ms (rounds {', '.join(f'{t:.0f}' for t in imports)}); "
              f"loss after the steps {results[0]['final_loss']:.6f}, numpy {results[0]['numpy']}")
    time_ratios = [o["img_per_s"] / n["img_per_s"] for o, n in zip(runs["old"], runs["new"])]
    import_ratios = [n["import_s"] / o["import_s"] for o, n in zip(runs["old"], runs["new"])]
    print(f"new / old time per image: median {statistics.median(time_ratios):.3f} "
          f"(rounds {', '.join(f'{r:.2f}' for r in time_ratios)})")
    print(f"new / old import time: median {statistics.median(import_ratios):.3f} "
          f"(rounds {', '.join(f'{r:.2f}' for r in import_ratios)})")


if __name__ == "__main__":
    main()
