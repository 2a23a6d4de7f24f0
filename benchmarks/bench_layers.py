"""Forward + backward time of every VGG-16 convolution shape: minivgg's NumPy backend vs PyTorch CPU.

Both run in this process on the same inputs, so the ratio is meaningful on any machine; absolute times
are not. Target (issue: foundation): the whole conv stack within 1.5x of PyTorch CPU on 2 cores.

    python benchmarks/bench_layers.py [--batch 2] [--reps 3]
"""
import argparse
import platform
import time

import numpy as np

from minivgg.backends.numpy import conv2d_backward, conv2d_forward

# (in channels, out channels, spatial size) of the 13 conv layers of configuration D (Table 1) at 224x224.
VGG16_CONVS = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
               (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28), (512, 512, 14), (512, 512, 14),
               (512, 512, 14)]


def median_seconds(fn, reps):
    fn()  # warm-up: first-touch page faults, BLAS thread start
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def channels_last(a):
    """The same NCHW-shaped values, stored NHWC in memory."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def numpy_step(x, W, b, dout):
    def step():
        _, cache = conv2d_forward(x, W, b, 1, 1)
        conv2d_backward(dout, cache)
    return step


def torch_step(torch, x, W, b, dout):
    tx = torch.from_numpy(x).requires_grad_()
    tW, tb = torch.from_numpy(W).requires_grad_(), torch.from_numpy(b).requires_grad_()
    tdout = torch.from_numpy(dout)

    def step():
        torch.nn.functional.conv2d(tx, tW, tb, padding=1).backward(tdout)
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: timing minivgg alone (pip install torch for the ratio)")
    rng = np.random.default_rng(0)
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "")
          + f", batch {args.batch}, float32, forward+backward (dx, dW, db)")
    print(f"{'layer':>16} {'GFLOP':>7} {'minivgg ms':>11} {'GFLOP/s':>8} {'torch ms':>9} {'GFLOP/s':>8} {'ratio':>6}")
    total_ours = total_theirs = 0.0
    for c_in, c_out, size in VGG16_CONVS:
        x = rng.standard_normal((args.batch, c_in, size, size), dtype=np.float32)
        W = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32) * 0.01
        b = np.zeros(c_out, np.float32)
        dout = rng.standard_normal((args.batch, c_out, size, size), dtype=np.float32)
        # Each library gets its inputs in the memory layout its own previous layer produces: PyTorch's
        # NCHW, minivgg's NHWC behind an NCHW shape (the first layer's input images are NCHW for both).
        x_ours = x if c_in == 3 else channels_last(x)
        gflop = 3 * 2 * args.batch * c_out * c_in * 9 * size * size / 1e9  # forward, dx, dW
        ours = median_seconds(numpy_step(x_ours, W, b, channels_last(dout)), args.reps)
        total_ours += ours
        line = f"{c_in:>4}->{c_out:<4}@{size:<5} {gflop:7.1f} {ours * 1e3:11.1f} {gflop / ours:8.1f}"
        if torch:
            theirs = median_seconds(torch_step(torch, x, W, b, dout), args.reps)
            total_theirs += theirs
            line += f" {theirs * 1e3:9.1f} {gflop / theirs:8.1f} {ours / theirs:6.2f}"
        print(line, flush=True)
    summary = f"whole conv stack: minivgg {total_ours * 1e3:.0f} ms"
    if torch:
        summary += f", torch {total_theirs * 1e3:.0f} ms, ratio {total_ours / total_theirs:.2f}x (target <= 1.5x)"
    print(summary)


if __name__ == "__main__":
    main()
