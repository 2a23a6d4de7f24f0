"""Scaling efficiency of data-parallel training on this machine: N MPI ranks against one (Sect. 3.3).

The work is fixed: SGD steps of a global batch B on the digits' small VGG (configuration A at width 1/4, 32x32,
FC 256, dropout on) with the NumPy backend. One rank does a step as N accumulated device batches of B / N; N
ranks do one device batch of B / N each and average their gradients in buckets during the backward pass. Each
rank gets one core: mpirun binds it (``--bind-to core``), the NumPy backend's pool sizes itself to the cores it
is bound to, BLAS and OpenMP get one thread. So N ranks have N cores and one rank has one:

    efficiency = throughput of N ranks / (N x throughput of one rank) = t_1 / (N t_N)

with t the time of one step of B images. The communication share is the time a rank
spends starting, progressing and waiting for the gradient sums (what the backward pass did not hide), over the
step. Evaluation (the digits' validation images) is timed on one rank and sharded over N.

    python benchmarks/bench_data_parallel.py [--ranks 2] [--batch 64] [--device-batch D] [--steps 30] [--rounds 3]
"""
import argparse
import json
import os
import subprocess
import sys
import time


def _worker(args):
    import numpy as np

    from minivgg.distributed import DataParallel, MPICommunicator
    from minivgg.layers import SoftmaxCrossEntropyLoss, set_dropout_position
    from minivgg.models import vgg
    from minivgg.training.optimiser import SGD

    class TimedCommunicator:
        """The MPI communicator, with the seconds spent inside the gradient sums' calls counted."""

        def __init__(self, inner):
            self.inner, self.seconds = inner, 0.0
            self.rank, self.size, self.local_rank = inner.rank, inner.size, inner.local_rank

        def __getattr__(self, name):
            method = getattr(self.inner, name)
            if name not in ("start_sum", "progress", "wait"):
                return method

            def timed(*a, **k):
                start = time.perf_counter()
                try:
                    return method(*a, **k)
                finally:
                    self.seconds += time.perf_counter() - start
            return timed

    communicator = TimedCommunicator(MPICommunicator())
    parallel = DataParallel(communicator, bucket_bytes=args.bucket_kib * 1024)
    ranks, rank = parallel.ranks, parallel.rank
    model = vgg("A", num_classes=10, input_size=32, width_multiplier=0.25, fc_width=256, weight_init="glorot", seed=0)
    optimizer, loss_layer = SGD(model), SoftmaxCrossEntropyLoss()
    device_batch = args.device_batch or args.batch // args.ranks  # the same for 1 rank (accumulating) and N ranks
    accumulation = args.batch // device_batch // ranks
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((device_batch, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, device_batch)

    def step(number):
        for k in range(accumulation):
            set_dropout_position(model, number, parallel.first_sample(k, device_batch, args.batch))
            loss_layer.forward(model.forward(x), labels)
            parallel.backward(model, loss_layer.backward(), k, accumulation)
        optimizer.step(1e-3)

    for number in range(3):  # warm-up: caches, the pool, the first sums
        step(number)
    rounds = []
    for _ in range(args.rounds):
        communicator.inner.comm.Barrier()
        communicator.seconds = 0.0
        start, cpu_start = time.perf_counter(), time.process_time()
        for number in range(args.steps):
            step(number)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        rounds.append({"step_seconds": elapsed / args.steps, "cpu_seconds": cpu / args.steps,
                       "communication_seconds": communicator.seconds / args.steps})
    # Evaluation of the digits' validation set: rank 0 alone, or sharded over the ranks and summed.
    from minivgg.training.recipes import digits_run
    val_loader = digits_run(seed=0).val_loader
    communicator.inner.comm.Barrier()
    start = time.perf_counter()
    parallel.evaluate(model, val_loader)
    evaluation = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"ranks": ranks, "rounds": rounds, "gradient_bytes": parallel.gradient_bytes(model),
                          "buckets": parallel.bucket_count(model), "evaluation_seconds": evaluation,
                          "evaluation_images": len(val_loader.dataset),
                          "affinity": sorted(os.sched_getaffinity(0))}))


def _launch(ranks, args):
    from minivgg.distributed.launch import find_launcher

    environment = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [find_launcher(), "-np", str(ranks), "--bind-to", "core", sys.executable, __file__, "--worker",
               "--ranks", str(args.ranks), "--batch", str(args.batch), "--device-batch", str(args.device_batch or 0), "--steps", str(args.steps), "--rounds",
               str(args.rounds), "--bucket-kib", str(args.bucket_kib)]
    output = subprocess.run(command, env=environment, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="global batch B of one SGD step")
    parser.add_argument("--device-batch", type=int, default=None, help="images per forward pass (default B / N)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of 1 and N ranks")
    parser.add_argument("--bucket-kib", type=int, default=512, help="gradient bucket size")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)
    results = {1: [], args.ranks: []}
    for _ in range(args.rounds):  # alternate, so a busy spell of a shared machine falls on both
        for ranks in (1, args.ranks):
            results[ranks].append(_launch(ranks, argparse.Namespace(**{**vars(args), "rounds": 1})))
    best = {ranks: min(r["rounds"][0]["step_seconds"] for r in runs) for ranks, runs in results.items()}
    one, many = best[1], best[args.ranks]
    fastest = min(results[args.ranks], key=lambda r: r["rounds"][0]["step_seconds"])["rounds"][0]
    print(f"global batch {args.batch}, device batch {args.device_batch or args.batch // args.ranks}, {args.steps} steps per round, {args.rounds} rounds, best round of each")
    print(f"gradient: {results[args.ranks][0]['gradient_bytes'] / 2 ** 20:.2f} MiB in "
          f"{results[args.ranks][0]['buckets']} buckets of <= {args.bucket_kib} KiB")
    print(f"1 rank (1 core): {one * 1e3:.1f} ms/step, {args.batch / one:.0f} images/s")
    print(f"{args.ranks} ranks ({args.ranks} cores): {many * 1e3:.1f} ms/step, {args.batch / many:.0f} images/s")
    print(f"scaling efficiency: {one / (args.ranks * many):.3f}  (throughput of {args.ranks} ranks / "
          f"{args.ranks} x one rank)")
    print(f"communication share of a step (not hidden by the backward pass): "
          f"{fastest['communication_seconds'] / fastest['step_seconds']:.1%} "
          f"({fastest['communication_seconds'] * 1e3:.2f} ms)")
    cpu = {ranks: min(r["rounds"][0]["cpu_seconds"] for r in runs) for ranks, runs in results.items()}
    print(f"CPU time per step and rank: 1 rank {cpu[1] * 1e3:.1f} ms, {args.ranks} ranks {cpu[args.ranks] * 1e3:.1f} ms; "
          f"CPU-time efficiency {cpu[1] / (args.ranks * cpu[args.ranks]):.3f} (the work each core does; on a "
          f"loaded machine the wall-clock figure also counts the time the ranks wait for a core)")
    evaluation = {ranks: min(r["evaluation_seconds"] for r in runs) for ranks, runs in results.items()}
    images = results[1][0]["evaluation_images"]
    print(f"evaluation of {images} validation images: rank 0 alone {evaluation[1]:.2f} s, sharded over {args.ranks} "
          f"ranks {evaluation[args.ranks]:.2f} s")
    print("all rounds (s/step):", {k: [round(r["rounds"][0]["step_seconds"], 4) for r in v] for k, v in results.items()})


if __name__ == "__main__":
    sys.exit(main())
