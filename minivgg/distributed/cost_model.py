"""What a data-parallel step costs: the ring all-reduce, and how much of it the backward pass hides.

A ring all-reduce of ``b`` bytes over N ranks sends each rank's 1/N chunk around the ring twice (reduce-scatter,
then all-gather): every rank sends and receives ``2 (N - 1) / N x b`` bytes, in ``2 (N - 1)`` hops, so

    t(b) = 2 (N - 1) / N x b / bus_bandwidth + 2 (N - 1) x latency          (NCCL's "bus bandwidth" model)

With buckets (``buckets.py``) the sum of a bucket starts when the backward pass has produced its last gradient
and runs while the backward pass goes on; one bucket at a time goes through the ring. Only what is still being
summed when the backward pass ends adds to the step.
"""
import numpy as np

__all__ = ["ring_allreduce_seconds", "layer_costs", "overlapped_step", "simulate_ring_allreduce"]


def ring_allreduce_seconds(nbytes, ranks, bus_bandwidth, latency=0.0):
    """Seconds to all-reduce ``nbytes`` over ``ranks`` with a ring of ``bus_bandwidth`` bytes/s per rank."""
    if ranks == 1:
        return 0.0
    return 2 * (ranks - 1) / ranks * nbytes / bus_bandwidth + 2 * (ranks - 1) * latency


def layer_costs(config="D", input_size=224, num_classes=1000, **model_options):
    """Per layer with parameters, in forward order: ``(name, gradient bytes in float32, multiply-adds per image)``
    of a Table 1 configuration (``minivgg.summary``); no weights are made."""
    from ..models import layer_specs
    from ..summary import summarise

    rows = summarise(layer_specs(config, num_classes, input_size, **model_options), input_size)
    return [(row.name, 4 * row.parameters, row.multiply_adds) for row in rows if row.parameters]


def overlapped_step(layers, compute_seconds, ranks, bus_bandwidth, latency=0.0, bucket_bytes=25 * 2 ** 20,
                    backward_share=2 / 3):
    """The time of one data-parallel step, with the gradient sums overlapping the backward pass.

    Parameters
    ----------
    layers : ``layer_costs(...)``: (name, gradient bytes, multiply-adds) in forward order
    compute_seconds : forward + backward time of one rank's share of the batch (no communication)
    ranks, bus_bandwidth, latency : the ring (``ring_allreduce_seconds``)
    bucket_bytes : the buckets' size; gradients are bucketed in backward order, as ``GradientBuckets`` does
    backward_share : the backward pass's share of the compute (its two products against the forward's one)

    Returns
    -------
    dict: ``step`` (seconds), ``exposed`` (communication not hidden), ``communication`` (all of it, serial),
    ``efficiency`` = compute / step
    """
    macs = np.array([m for _, _, m in layers], dtype=float)
    forward = compute_seconds * (1 - backward_share)
    backward_time = compute_seconds * backward_share * macs / macs.sum()
    # Walk the backward pass from the last layer; a bucket is sent when its last gradient is ready.
    clock, channel_free, bucket, total = forward, forward, 0, 0.0
    for (_, nbytes, _), seconds in zip(layers[::-1], backward_time[::-1]):
        clock += seconds
        bucket += nbytes
        if bucket >= bucket_bytes:
            cost = ring_allreduce_seconds(bucket, ranks, bus_bandwidth, latency)
            channel_free, total, bucket = max(channel_free, clock) + cost, total + cost, 0
    if bucket:
        cost = ring_allreduce_seconds(bucket, ranks, bus_bandwidth, latency)
        channel_free, total = max(channel_free, clock) + cost, total + cost
    step = max(clock, channel_free)
    return {"step": step, "exposed": step - clock, "communication": total, "efficiency": compute_seconds / step}


def simulate_ring_allreduce(arrays):
    """The ring all-reduce step by step on N host arrays (one per rank), for teaching and checking the formula.

    Each array is cut into N chunks. Reduce-scatter: in N - 1 rounds rank r sends one chunk to rank r + 1, which
    adds it to its own; afterwards rank r holds the full sum of chunk r + 1. All-gather: in N - 1 more rounds the
    summed chunks travel on around the ring. Returns ``(results, sent)``: every rank's copy of the sum, and the
    elements each rank sent, ``2 (N - 1) / N`` of an array.
    """
    ranks = len(arrays)
    chunks = [np.array_split(np.array(a, dtype=np.float64), ranks) for a in arrays]
    sent = [0] * ranks
    for round_ in range(ranks - 1):  # reduce-scatter
        outgoing = [(r, (r - round_) % ranks, chunks[r][(r - round_) % ranks].copy()) for r in range(ranks)]
        for r, index, chunk in outgoing:
            chunks[(r + 1) % ranks][index] += chunk
            sent[r] += chunk.size
    for round_ in range(ranks - 1):  # all-gather: rank r starts with the complete chunk r + 1
        outgoing = [(r, (r + 1 - round_) % ranks, chunks[r][(r + 1 - round_) % ranks].copy()) for r in range(ranks)]
        for r, index, chunk in outgoing:
            chunks[(r + 1) % ranks][index] = chunk
            sent[r] += chunk.size
    return [np.concatenate(c) for c in chunks], sent
