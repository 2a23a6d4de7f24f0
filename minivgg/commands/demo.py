"""``minivgg demo``: train a tiny VGG-style net on real handwritten digits for a few steps and watch the loss fall.

A first run of the whole machinery (layers, backward passes, SGD update) in a few seconds on a CPU; the
digits ship inside scikit-learn, so nothing is downloaded.
"""
import time

import numpy as np


def register(subparsers):
    parser = subparsers.add_parser("demo", help="train a tiny VGG-style net on the digits for a few steps")
    parser.add_argument("--steps", type=int, default=60, help="SGD steps (default 60)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def tiny_vgg(rng):
    """conv3-16, conv3-16, maxpool, conv3-32, maxpool, FC-64, FC-10: Table 1's pattern at digit scale."""
    from minivgg.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
    init = dict(rng=rng, weight_init="glorot")
    return Sequential(Conv2d(3, 16, 3, padding=1, **init), ReLU(), Conv2d(16, 16, 3, padding=1, **init), ReLU(),
                      MaxPool2d(), Conv2d(16, 32, 3, padding=1, **init), ReLU(), MaxPool2d(),
                      Flatten(), Linear(32 * 2 * 2, 64, **init), ReLU(), Dropout(0.5, seed=0), Linear(64, 10, **init))


def run(args):
    from sklearn.datasets import load_digits

    from minivgg.backend import asarray, get_backend
    from minivgg.layers import SoftmaxCrossEntropyLoss

    backend = get_backend()
    digits = load_digits()
    images = np.repeat(digits.images[:, None, :, :] / 16.0 - 0.5, 3, axis=1).astype(np.float32)  # grey as RGB
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(args.seed)
    net, loss_layer = tiny_vgg(rng), SoftmaxCrossEntropyLoss()
    velocities = {name: backend.xp.zeros_like(layer.params[key]) for name, layer, key in net.named_parameters()}
    print(f"training a {net.num_parameters():,}-parameter net on {len(labels)} 8x8 digits, backend {backend.name}")
    start, losses = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        batch = rng.choice(len(labels), size=args.batch_size, replace=False)
        loss = loss_layer.forward(net.forward(asarray(images[batch])), labels[batch])
        net.backward(loss_layer.backward())
        for name, layer, key in net.named_parameters():
            backend.sgd_momentum_update(layer.params[key], layer.grads[key], velocities[name],
                                        learning_rate=0.05, momentum=0.9, weight_decay=5e-4)
        losses.append(loss)
        if step % 10 == 0 or step == 1:
            print(f"step {step:4d}  loss {np.mean(losses[-10:]):.3f}")
    net.eval()
    accuracy = float((backend.to_host(net.forward(asarray(images))).argmax(1) == labels).mean())
    print(f"loss {losses[0]:.3f} -> {np.mean(losses[-10:]):.3f} in {time.perf_counter() - start:.1f} s; "
          f"accuracy on all digits {accuracy:.1%}")
    return 0
