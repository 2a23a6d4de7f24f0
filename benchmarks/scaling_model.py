"""Projected data-parallel efficiency of VGG-16 (configuration D, 224x224) at 8, 64 and 512 GPUs.

From the compute time of one GPU's share of a step and the ring all-reduce cost of its 553 MB of float32
gradients, 2(N-1)/N x bytes / bus bandwidth + 2(N-1) x latency, summed in 25 MiB buckets in backward order that
overlap the backward pass (``minivgg.distributed.cost_model``). Assumptions, all printed with the table:

- compute per GPU: (a) the paper's own Titan Black: 74 epochs of 1.28 M images in about 2.5 weeks on 4 GPUs
  (Sect. 3.3: "2-3 weeks") is ~16 images/s per GPU; (b) a current GPU at 1,000 images/s (an assumption: VGG-16
  in mixed precision on an A100/H100 class GPU, order of magnitude only). 32 images per GPU a step (the paper's
  256 over 8 GPUs; at 64 and 512 GPUs the global batch grows to 2,048 and 16,384);
- the backward pass is 2/3 of the compute, spread over the layers in proportion to their multiply-adds;
- bus bandwidth per GPU: NVLink 400 GB/s (NVLink 4 class), 100 Gb/s = 12.5 GB/s and 400 Gb/s = 50 GB/s
  networks (one NIC per GPU, the raw line rate); per-hop latency 5 us (NVLink) and 10 us (network);
- a plain ring at every size: NCCL switches to trees and hierarchical rings at large N, which cuts the
  2(N-1) latency term, so the 512-GPU figures are pessimistic there;
- communication runs beside the computation at full speed (no contention for memory or SMs), one bucket at a
  time; the optimizer step and data loading are left out.

    python benchmarks/scaling_model.py [--bucket-mib 25] [--per-gpu-batch 32]
"""
import argparse

from minivgg.distributed.cost_model import layer_costs, overlapped_step, ring_allreduce_seconds

PAPER_IMAGES_PER_SECOND = 74 * 1_281_167 / (2.5 * 7 * 86400) / 4  # Sect. 3.3: 2-3 weeks on 4 Titan Black
LINKS = {"NVLink 400 GB/s": (400e9, 5e-6), "400 Gb/s": (50e9, 10e-6), "100 Gb/s": (12.5e9, 10e-6)}
GPUS = (4, 8, 64, 512)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket-mib", type=float, default=25.0)
    parser.add_argument("--per-gpu-batch", type=int, default=32)
    parser.add_argument("--modern-images-per-second", type=float, default=1000.0)
    args = parser.parse_args()
    layers = layer_costs("D")
    total = sum(b for _, b, _ in layers)
    fc = sum(b for name, b, _ in layers if name.startswith("classifier"))
    print(f"VGG-16 gradients: {total / 1e6:.0f} MB of float32, {fc / total:.1%} in the FC layers, which the backward "
          f"pass produces first")
    speeds = {f"Titan Black ({PAPER_IMAGES_PER_SECOND:.0f} img/s, from the paper)": PAPER_IMAGES_PER_SECOND,
              f"current GPU ({args.modern_images_per_second:.0f} img/s, assumed)": args.modern_images_per_second}
    for label, speed in speeds.items():
        compute = args.per_gpu_batch / speed
        print(f"\n{label}: {compute * 1e3:.0f} ms of compute per step of {args.per_gpu_batch} images per GPU")
        print("| link | " + " | ".join(f"{n} GPUs" for n in GPUS) + " |")
        print("|---|" + "---|" * len(GPUS))
        for link, (bandwidth, latency) in LINKS.items():
            cells = []
            for n in GPUS:
                result = overlapped_step(layers, compute, n, bandwidth, latency, args.bucket_mib * 2 ** 20)
                serial = compute / (compute + ring_allreduce_seconds(total, n, bandwidth, latency))
                cells.append(f"{result['efficiency']:.2f} ({serial:.2f})")
            print(f"| {link} | " + " | ".join(cells) + " |")
    print("\nefficiency with buckets overlapping the backward pass (in brackets: one all-reduce after the backward)")


if __name__ == "__main__":
    main()
