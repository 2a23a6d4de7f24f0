# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 5: training a small VGG, and why initialisation matters
#
# Sect. 3.1 of the paper trains with mini-batch SGD (momentum 0.9, weight decay 5·10⁻⁴, dropout 0.5 on the
# first two FC layers), divides the learning rate by 10 when the validation accuracy stops improving, and
# initialises the deep nets carefully: "bad initialisation can stall learning due to the instability of
# gradient in deep nets". This lesson runs that recipe on real data that fits a laptop — scikit-learn's
# handwritten digits, rendered as colour images — and shows the initialisation story for real.
#
# Everything below calls the library (`minivgg.training.recipes`, `minivgg.training`); `minivgg train` on the command line
# runs the same code.

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from minivgg.training.recipes import digits_run
from minivgg.evaluation.validation import evaluate_loader
from minivgg.training import train

# %% [markdown]
# ## The data
#
# 1797 digits, split 60/20/20 into train/validation/test with a fixed seed. Training crops are 32×32, cut
# from images whose smallest side S is drawn from [32, 40] (scale jittering, Sect. 3.1), with a random
# RGB colour shift along the training set's principal colour components.

# %%
run = digits_run()  # the embedded default of `minivgg train`: up to 40 epochs, about a minute
x, labels = next(run.train_loader.epoch(0))
print("a training batch:", x.shape, x.dtype, "labels", labels[:12])
print("mean RGB subtracted (Sect. 2.1):", np.round(run.model.preprocessing.mean, 1))
shown = x[:12].transpose(0, 2, 3, 1) + np.array(run.model.preprocessing.mean, np.float32)
fig, axes = plt.subplots(1, 12, figsize=(14, 1.6))
for axis, image, label in zip(axes, shown, labels):
    axis.imshow(np.clip(image, 0, 255).astype(np.uint8))
    axis.set_title(str(label))
    axis.axis("off")
plt.show()

# %% [markdown]
# ## Training configuration A, at a quarter of the width
#
# Same layer pattern as Table 1's column A (8 conv layers, 3 FC layers), channels divided by 4 and FC layers of
# 256 units because the images are 32×32. The run below is exactly `minivgg train`'s: the learning rate starts
# at 0.01 and is divided by 10 on validation plateaus until the third division's plateau ends training.

# %%
print(run.model.summary())
with tempfile.TemporaryDirectory() as run_dir:
    result = train(run.model, run.train_loader, run.val_loader, run.settings, run_dir, progress=False)
history = result["history"]
epochs = [h["epoch"] for h in history]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
left.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
left.plot(epochs, [h["val_loss"] for h in history], "s-", label="validation")
left.set_title("soft-max loss")
left.legend()
right.plot(epochs, [100 * h["val_top1_error"] for h in history], "s-")
right.set_title("validation top-1 error (%)")
for axis in (left, right):
    axis.set_xlabel("epoch")
    axis.grid(alpha=0.3)
plt.show()
test_error = evaluate_loader(run.model, run.test_loader)["top1_error"]
print(f"after {len(history)} epochs: validation top-1 error {history[-1]['val_top1_error']:.1%}, "
      f"test top-1 accuracy {1 - test_error:.1%}")

# %% [markdown]
# ## The initialisation story
#
# Configuration E has 16 conv layers. With every weight drawn from N(0, 0.01²), as the paper did for net A,
# each layer shrinks the signal: after 16 layers the activations — and the gradients flowing back — are
# vanishingly small, and the loss sits at log(10) ≈ 2.30, the loss of guessing. The paper's remedies:
#
# 1. **pre-initialise** the deep net from a trained net A (its first four conv layers and three FC layers);
# 2. or use **Glorot** initialisation, which scales each layer's weights to keep the signal's variance,
#    "possible without pre-training" as the paper notes after submission.
#
# Watch the activations first: the standard deviation of each conv layer's output at initialisation.

# %%
def activation_scales(model, x):
    scales = []
    for layer in model.layers:
        x = layer.forward(x)
        if type(layer).__name__ == "Conv2d":
            scales.append(float(np.std(x)))
    return scales

batch = next(run.train_loader.epoch(0))[0]
for init in ("paper", "glorot"):
    deep = digits_run(config="E", weight_init=init).model
    plt.semilogy(activation_scales(deep, batch), "o-", label=f"E, {init} initialisation")
plt.xlabel("conv layer")
plt.ylabel("std of the layer's output")
plt.legend()
plt.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Now train E three ways for three epochs each: N(0, 0.01²), pre-initialised from the net A trained above,
# and Glorot. Read the result for what it is: on these small images with batches of 32, a 16-layer net sits
# on the plateau for the first epochs whichever way it starts (the paper's runs lasted 74 epochs of ImageNet);
# only the N(0, 0.01²) start is also stuck *by construction*, as the activation plot above shows, where the
# other two start with signal reaching the loss.

# %%
net_a = run.model
curves = {}
for name in ("N(0, 0.01²)", "pre-initialised from A", "Glorot"):
    deep_run = digits_run(config="E", weight_init="glorot" if name == "Glorot" else "paper", max_epochs=3)
    if name == "pre-initialised from A":
        deep_run.model.init_from(net_a)
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(deep_run.model, deep_run.train_loader, deep_run.val_loader, deep_run.settings, run_dir,
                       progress=False)
    curves[name] = [h["train_loss"] for h in result["history"]]
    print(f"{name:>24}: train loss per epoch {np.round(curves[name], 3)}")


def plot_losses(curves):
    for name, losses in curves.items():
        plt.plot(range(1, len(losses) + 1), losses, "o-", label=name)
    plt.axhline(np.log(10), color="grey", linestyle=":", label="log 10: guessing")
    plt.xlabel("epoch")
    plt.ylabel("train loss")
    plt.title("configuration E (16 conv layers) on the digits")
    plt.legend()
    plt.show()


plot_losses(curves)

# %% [markdown]
# ## Batch normalisation: the remedy that came next
#
# A few months after the paper appeared, Ioffe & Szegedy (2015) normalised every channel of every conv layer's
# output by its mean and variance over the mini-batch, then scaled and shifted it by two learned numbers
# (`minivgg.layers.BatchNorm2d`; at test time the running averages of the training batches stand in for the
# batch's). torchvision ships batch-normalised VGGs beside the plain ones: its `vgg16_bn` reaches 73.4% top-1
# on ImageNet where its `vgg16` reaches 71.6%. In minivgg it is the same column of Table 1 with
# `batch_norm=True`: a BN layer between each convolution and its ReLU, exactly where torchvision puts it.
#
# With BN, the N(0, 0.01²) start is no longer stuck by construction. However small the weights, each layer's
# output is renormalised, so the signal keeps its size through all 16 conv layers, and so does the gradient on
# the way back (left: what each conv layer passes on, after its BN and ReLU; right: the size of each conv
# layer's weight gradient at the start, on one batch). The plain net's gradients, around 10⁻¹³, are the stall
# the paper speaks of: SGD cannot move the weights with them.

# %%
from dataclasses import replace

from minivgg.layers import Conv2d, ReLU, SoftmaxCrossEntropyLoss
from minivgg.models import vgg


def batch_normalised(model):
    """``model``'s column built again with a BatchNorm2d after every conv, with N(0, 0.01²) weights."""
    net = vgg(**dict(model.architecture(), batch_norm=True), weight_init="paper", seed=0)
    net.preprocessing, net.class_names = model.preprocessing, model.class_names
    return net


def signal_and_gradient(model, x, labels):
    """Per conv layer: the std of what it passes on (after its ReLU), and the norm of its weight gradient."""
    signal, out = [], x
    for spec, layer in zip(model.specs, model.layers):
        out = layer.forward(out)
        if spec.name.startswith("features") and spec.layer_class is ReLU:
            signal.append(float(np.std(out)))
    loss = SoftmaxCrossEntropyLoss()
    loss.forward(out, labels)
    model.backward(loss.backward())
    return signal, [float(np.linalg.norm(layer.grads["W"])) for layer in model.layers if isinstance(layer, Conv2d)]


batch, batch_labels = next(run.train_loader.epoch(0))
plain = digits_run(config="E", weight_init="paper").model
nets = {"E, N(0, 0.01²)": plain, "E, N(0, 0.01²) + batch norm": batch_normalised(plain),
        "E, Glorot": digits_run(config="E", weight_init="glorot").model}
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
for name, net in nets.items():
    signal, gradients = signal_and_gradient(net, batch, batch_labels)
    left.semilogy(range(1, len(signal) + 1), signal, "o-", label=name)
    right.semilogy(range(1, len(gradients) + 1), gradients, "o-", label=name)
left.set_title("std of each conv layer's output after its ReLU")
right.set_title("norm of each conv layer's weight gradient")
for axis in (left, right):
    axis.set_xlabel("conv layer")
    axis.grid(alpha=0.3)
left.legend()
plt.show()

# %% [markdown]
# BN also tolerates higher learning rates (Ioffe & Szegedy, Sect. 3.3). Train the batch-normalised E from the
# same N(0, 0.01²) start for the same three epochs at 0.05, five times the paper's rate, and add it to the
# curves above: of the four, it is the one that leaves log 10 within the three epochs, with no trained net A
# to start from. The rate alone does not do it: the plain E at 0.05 stayed at 2.31 for three epochs in our
# run (set `learning_rate=0.05` in the loop above to see it). Three epochs are still far from enough, BN or
# not: the validation error printed below is nowhere near net A's (the paper's runs lasted 74 epochs).

# %%
bn_run = digits_run(config="E", max_epochs=3)
bn_net = batch_normalised(bn_run.model)
with tempfile.TemporaryDirectory() as run_dir:
    result = train(bn_net, bn_run.train_loader, bn_run.val_loader, replace(bn_run.settings, learning_rate=0.05),
                   run_dir, progress=False)
curves["N(0, 0.01²) + batch norm, lr 0.05"] = [h["train_loss"] for h in result["history"]]
print(f"batch norm: train loss per epoch {np.round(curves['N(0, 0.01²) + batch norm, lr 0.05'], 3)}, "
      f"validation top-1 error {result['history'][-1]['val_top1_error']:.1%}")
plot_losses(curves)
