"""Lesson 9's exercises: the ring all-reduce, and questions on what data parallelism sends.

::

    from minivgg.exercises import data_parallel
    data_parallel.check_ring_allreduce(ring_allreduce)   # (arrays, one per rank) -> (results, elements sent per rank)
"""
import numpy as np

from ..distributed.cost_model import layer_costs, simulate_ring_allreduce
from ..models import num_parameters
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library

__all__ = ["check_ring_allreduce", "QUESTIONS", "check_answers"]


def _as_arrays(function):
    """``function``'s ``(results, sent)`` as two arrays: the ranks' results stacked, and the counts."""
    def call(arrays):
        results, sent = function([np.array(a) for a in arrays])
        return np.stack([np.asarray(r, dtype=np.float64) for r in results]), np.asarray(sent, dtype=np.int64)
    return call


def _cases():
    rng = np.random.default_rng(20)
    cases = []
    # Gradients of the size training gives (1e-3), on 2 to 5 ranks, lengths that do and do not split evenly.
    for ranks, length in ((2, 8), (3, 10), (4, 12), (5, 23)):
        cases.append(Case(f"{ranks} ranks, gradients of {length} numbers",
                          ([rng.normal(0, 1e-3, length) for _ in range(ranks)],)))
    return cases


def _reduce_scatter_only(arrays):
    ranks = len(arrays)
    chunks = [np.array_split(np.array(a, dtype=np.float64), ranks) for a in arrays]
    sent = [0] * ranks
    for round_ in range(ranks - 1):
        outgoing = [(r, (r - round_) % ranks, chunks[r][(r - round_) % ranks].copy()) for r in range(ranks)]
        for r, index, chunk in outgoing:
            chunks[(r + 1) % ranks][index] += chunk
            sent[r] += chunk.size
    return [np.concatenate(c) for c in chunks], sent


def _to_everyone(arrays):
    total = np.sum(arrays, axis=0)
    return [total.copy() for _ in arrays], [(len(arrays) - 1) * len(a) for a in arrays]


def _averaged(arrays):
    results, sent = simulate_ring_allreduce(arrays)
    return [r / len(arrays) for r in results], sent


MISTAKES = (
    Mistake.computing(_as_arrays(_reduce_scatter_only),
                      "after your rounds each rank holds the complete sum of one chunk only: the all-gather is "
                      "missing", "N - 1 more rounds in which each rank passes on the finished chunk it holds"),
    Mistake.computing(_as_arrays(_to_everyone),
                      "the right sums, but every rank sends its whole gradient to every other: (N - 1) gradients a "
                      "rank. The ring sends 2 (N - 1) / N of one, whatever N is",
                      "cut each array into N chunks (np.array_split); in each round every rank passes one chunk to "
                      "rank r + 1"),
    Mistake.computing(_as_arrays(_averaged),
                      "an all-reduce sums: your results are the mean; the trainer divides by N itself"),
)


def check_ring_allreduce(ring_allreduce):
    """Compare ``ring_allreduce(arrays) -> (results, sent)`` with ``minivgg.distributed.cost_model.
    simulate_ring_allreduce``: every rank's copy of the sum, and how many numbers each rank sent (chunks from
    ``np.array_split(array, N)``; reduce-scatter then all-gather, N - 1 rounds each)."""
    return compare_with_library("ring_allreduce", _as_arrays(ring_allreduce), _as_arrays(simulate_ring_allreduce),
                                _cases(), MISTAKES,
                                ("check first that every rank ends with the sum, then count what each sends",
                                 "reduce-scatter: in round t rank r sends chunk (r - t) mod N to rank r + 1, which "
                                 "adds it; all-gather: rank r then sends chunk (r + 1 - t) mod N, which is copied"),
                                names=("results", "sent"))


def _vgg16_gradient_bytes():
    return sum(nbytes for _, nbytes, _ in layer_costs("D"))


def _fc_share():
    costs = layer_costs("D")
    return sum(b for name, b, _ in costs if name.startswith("classifier")) / sum(b for _, b, _ in costs)


QUESTIONS = {
    "megabytes_sent": Question(
        "A ring all-reduce of VGG-16's float32 gradient over 8 ranks: how many megabytes (10^6 bytes) does each rank "
        "send per step? (three significant digits)", lambda: 2 * 7 / 8 * _vgg16_gradient_bytes() / 1e6,
        tolerance=0.005, hints=("2 (N - 1) / N of the gradient, 4 bytes per parameter",),
        mistakes=((lambda: _vgg16_gradient_bytes() / 1e6, ("that is one whole gradient; the ring sends 2 (N - 1) / N "
                                                           "of it",)),)),
    "fc_share_of_gradient": Question(
        "What fraction of VGG-16's gradient belongs to its three FC layers? (two significant digits)", _fc_share,
        tolerance=0.01, hints=("the gradient has one number per parameter",)),
    "parameters_of_D": Question(
        "How many parameters does each rank's copy of VGG-16 hold (exactly)?", lambda: num_parameters("D"),
        hints=("every rank holds the whole model; Table 2 rounds it to 138 million",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
