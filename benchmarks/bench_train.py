"""Training throughput of a small VGG: minivgg (NumPy backend) vs PyTorch CPU, same net, same batch, one run.

The PyTorch net is built by walking minivgg's layers and copying their weights, so both train the very same
architecture. Target (issue: training): minivgg within 2x of PyTorch's images/s.

    python benchmarks/bench_train.py [--config D] [--width 0.25] [--size 32] [--batch 64] [--steps 20]
"""
import argparse
import platform
import time

import numpy as np

import minivgg
from minivgg.layers import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU
from minivgg.training.optimiser import SGD
from minivgg.layers import SoftmaxCrossEntropyLoss


def torch_twin(torch, model):
    """The same layers in PyTorch, with minivgg's weights copied in."""
    nn = torch.nn
    modules = []
    for layer in model.layers if hasattr(model, "layers") else model:
        if isinstance(layer, Conv2d):
            module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, Linear):
            module = nn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, MaxPool2d):
            module = nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, ReLU):
            module = nn.ReLU()
        elif isinstance(layer, Dropout):
            module = nn.Dropout(layer.p)
        elif isinstance(layer, Flatten):
            module = nn.Flatten()
        elif isinstance(layer, LocalResponseNorm):
            module = nn.LocalResponseNorm(layer.size, layer.alpha * (1 if layer.alpha_divided_by_size else layer.size),
                                          layer.beta, layer.k)
        else:
            raise TypeError(f"no PyTorch twin for {layer!r}")
        if layer.params:
            with torch.no_grad():
                module.weight.copy_(torch.from_numpy(np.asarray(layer.params["W"])))
                module.bias.copy_(torch.from_numpy(np.asarray(layer.params["b"])))
        modules.append(module)
    return nn.Sequential(*modules)


def images_per_second(step, batch, steps):
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def alternating_rates(steps_by_name, batch, steps, rounds):
    """Images/s of each step function, measured in ``rounds`` alternating rounds of ``steps`` steps each, so
    that a slow spell of a shared machine falls on both libraries; returns {name: [rate per round]}."""
    for step in steps_by_name.values():
        step()  # warm-up
    rates = {name: [] for name in steps_by_name}
    for _ in range(rounds):
        for name, step in steps_by_name.items():
            rates[name].append(images_per_second(step, batch, steps))
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="D")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--fc", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="SGD steps per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    model = minivgg.vgg(args.config, num_classes=10, input_size=args.size, width_multiplier=args.width,
                        fc_width=args.fc, weight_init="glorot", seed=0)
    x = rng.standard_normal((args.batch, 3, args.size, args.size), dtype=np.float32)
    labels = rng.integers(0, 10, size=args.batch)
    optimizer, loss = SGD(model), SoftmaxCrossEntropyLoss()

    def ours():
        loss.forward(model.forward(x), labels)
        model.backward(loss.backward(), input_gradient=False)
        optimizer.step(0.01)

    print(f"{platform.machine()}, numpy {np.__version__}; VGG-{args.config} width {args.width}, {args.size}x{args.size}, "
          f"FC {args.fc}, batch {args.batch}, {model.num_parameters():,} parameters, "
          f"{args.rounds} rounds of {args.steps} SGD steps")
    try:
        import torch
    except ImportError:
        rate = float(np.median(alternating_rates({"minivgg": ours}, args.batch, args.steps, args.rounds)["minivgg"]))
        print(f"minivgg numpy: {rate:8.1f} img/s\nPyTorch is not installed: no ratio (pip install torch)")
        return
    twin = torch_twin(torch, model)
    torch_optimizer = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    tx, tlabels = torch.from_numpy(x), torch.from_numpy(labels)

    def theirs():
        torch_optimizer.zero_grad()
        torch.nn.functional.cross_entropy(twin(tx), tlabels).backward()
        torch_optimizer.step()

    rates = alternating_rates({"minivgg": ours, "torch": theirs}, args.batch, args.steps, args.rounds)
    ratios = [t / m for m, t in zip(rates["minivgg"], rates["torch"])]
    print(f"minivgg numpy: {np.median(rates['minivgg']):8.1f} img/s (rounds: "
          f"{', '.join(f'{r:.0f}' for r in rates['minivgg'])})")
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads): {np.median(rates['torch']):8.1f} img/s "
          f"(rounds: {', '.join(f'{r:.0f}' for r in rates['torch'])})")
    print(f"ratio (torch / minivgg time per image), median of the rounds: {np.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; target <= 2x)")


if __name__ == "__main__":
    main()
