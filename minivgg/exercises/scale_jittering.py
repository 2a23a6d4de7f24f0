"""Lesson 6's exercises: drawing the training scale S, the isotropic rescaling, the PCA colour shift, and
questions on the scales of Sect. 3.1 and 4.

::

    from minivgg.exercises import scale_jittering
    scale_jittering.check_draw_scale(draw_scale)                  # draw_scale(rng, S_min, S_max) -> int S
    scale_jittering.check_rescaled_size(rescaled_size)            # rescaled_size(height, width, S) -> (h, w)
    scale_jittering.check_colour_offset(colour_offset)            # colour_offset(eigenvalues, eigenvectors, alpha)
"""
import numpy as np

from ..data import PCAColourShift, ScaleJitter
from ..data.transforms import rescaled_size as library_rescaled_size
from ..evaluation.posteriors import paper_scales
from .checking import (FAILED, NOT_ATTEMPTED, PASSED, Case, Mistake, Question, Verdict, attempt,
                       check_answers as _check_answers, compare_with_library)

__all__ = ["check_draw_scale", "check_rescaled_size", "check_colour_offset", "QUESTIONS", "check_answers"]

DRAWS = 20000


def check_draw_scale(draw_scale):
    """Check ``draw_scale(rng, S_min, S_max) -> int`` against ``minivgg.data.ScaleJitter.draw``: a fixed scale
    (S_min == S_max) gives S_min; a range gives whole numbers covering exactly [S_min, S_max], both ends
    included, each about equally often (every count within five standard deviations of DRAWS / values)."""
    exercise = "draw_scale"
    for low, high in ((256, 256), (32, 40), (256, 512)):
        rng = np.random.default_rng(14)
        draws, verdict = attempt(exercise, lambda: [draw_scale(rng, low, high) for _ in range(DRAWS)])
        if verdict is not None:
            return verdict if verdict.status == NOT_ATTEMPTED else Verdict(
                exercise, FAILED, f"S in [{low}, {high}]: {verdict.summary}", verdict.hints)
        draws = np.asarray(draws)
        jitter = ScaleJitter(low, high)  # the library's range, both ends included
        low, high = jitter.S_min, jitter.S_max
        where = f"S in [{low}, {high}]"
        if not np.all(draws == np.round(draws)):
            return Verdict(exercise, FAILED, f"{where}: {draws[draws != np.round(draws)][0]} is not a whole number",
                           ["S is the smallest side in pixels: draw integers (rng.integers)"])
        values, counts = np.unique(draws, return_counts=True)
        if values.min() < low or values.max() > high:
            return Verdict(exercise, FAILED, f"{where}: drew {values.min()} ... {values.max()}",
                           ["every S must lie in [S_min, S_max]"])
        if low < high and values.max() < high:
            return Verdict(exercise, FAILED, f"{where}: S_max = {high} was never drawn in {DRAWS} draws",
                           ["rng.integers(a, b) draws from a to b - 1: its upper bound is exclusive",
                            "draw with rng.integers(S_min, S_max + 1), as ScaleJitter.draw does"])
        if values.size != high - low + 1:
            return Verdict(exercise, FAILED, f"{where}: only {values.size} of the {high - low + 1} scales drawn",
                           ["every whole S from S_min to S_max must be possible"])
        expected = DRAWS / values.size
        spread = np.sqrt(expected * (1 - 1 / values.size))
        if np.abs(counts - expected).max() > 5 * spread:
            return Verdict(exercise, FAILED, f"{where}: some scales drawn far more often than others",
                           ["the paper draws S uniformly: every value equally likely"])
    return Verdict(exercise, PASSED, "a fixed S, and uniform whole S on [32, 40] and [256, 512], ends included, "
                                     "as ScaleJitter.draw")


def _rescale_cases():
    sizes = [(375, 500, 256), (500, 375, 256), (333, 500, 384), (40, 40, 36), (480, 640, 512), (1, 7, 3),
             (17, 300, 224)]
    return [Case(f"a {h}x{w} image to S = {s}", (h, w, s)) for h, w, s in sizes]


def _library_size(height, width, smallest):
    return np.array(library_rescaled_size(height, width, smallest))


def _wrap(function):
    return lambda *arguments: np.array(function(*arguments))


def _truncated(height, width, smallest):
    if height <= width:
        return np.array((smallest, max(1, int(width * smallest / height))))
    return np.array((max(1, int(height * smallest / width)), smallest))


def _largest_side(height, width, smallest):
    if height >= width:
        return np.array((smallest, max(1, int(width * smallest / height + 0.5))))
    return np.array((max(1, int(height * smallest / width + 0.5)), smallest))


def _swapped(height, width, smallest):
    return _library_size(height, width, smallest)[::-1]


RESCALE_MISTAKES = (
    Mistake.computing(_swapped, "your (height, width) are swapped: return (height, width) in that order"),
    Mistake.computing(_largest_side, "you set the largest side to S: S is the smallest side (Sect. 3.1)",
                      "the smaller of height and width becomes S; the other keeps the aspect ratio"),
    Mistake.computing(_truncated, "your other side is one pixel short on some images: round to the nearest pixel "
                                  "instead of truncating", "int(side * S / smallest + 0.5)"),
)


def check_rescaled_size(rescaled_size):
    """Compare ``rescaled_size(height, width, S) -> (h, w)`` with ``minivgg.data.transforms.rescaled_size``:
    the smaller side becomes S, the other ``round(side * S / smallest)`` (at least 1 pixel)."""
    return compare_with_library("rescaled_size", _wrap(rescaled_size), _library_size, _rescale_cases(),
                                RESCALE_MISTAKES, ("the smaller side becomes S; the other is scaled by the same "
                                                   "factor S / smallest side, rounded to a whole pixel",))


class _Given:
    """A stand-in generator whose ``normal`` returns chosen numbers: the library's colour shift with given
    alphas."""

    def __init__(self, alpha):
        self.alpha = np.asarray(alpha, dtype=np.float64)

    def normal(self, loc, scale, size):
        return loc + scale * self.alpha


def _library_offset(eigenvalues, eigenvectors, alpha):
    return PCAColourShift(eigenvalues, eigenvectors, std=1.0)(_Given(alpha))


def _colour_cases():
    rng = np.random.default_rng(15)
    cases = []
    correlated = np.array([[1, 0.9, 0.8], [0, 0.4, 0.3], [0, 0, 0.3]])  # R, G and B move together, as in photos
    for name, pixels in (("ImageNet-like pixels", rng.normal(120, 60, (500, 3)) @ correlated),
                         ("grey-ish pixels", rng.normal(100, 30, (500, 1)) + rng.normal(0, 5, (500, 3)))):
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(pixels, rowvar=False))
        for alpha in (rng.normal(0, 0.1, 3), np.array([0.1, 0.0, 0.0])):
            cases.append(Case(f"{name}, alpha {np.round(alpha, 3)}", (eigenvalues, eigenvectors, alpha)))
    return cases


def _transposed_vectors(eigenvalues, eigenvectors, alpha):
    return _library_offset(eigenvalues, eigenvectors.T, alpha)


def _not_rescaled(eigenvalues, eigenvectors, alpha):
    return _library_offset(eigenvalues, eigenvectors, alpha) * 255.0


def _square_roots(eigenvalues, eigenvectors, alpha):
    return eigenvectors @ (alpha * np.sqrt(eigenvalues)) / 255.0


COLOUR_MISTAKES = (
    Mistake.computing(_transposed_vectors,
                      "you took the eigenvectors as rows: eigenvector k is column k (eigenvectors[:, k]), as "
                      "numpy.linalg.eigh returns them", "offset = eigenvectors @ (alpha * eigenvalues) / 255"),
    Mistake.computing(_not_rescaled,
                      "your offset is 255 times too large: the eigenvalues are of 0-255 pixels, and the formula is "
                      "applied to pixels in [0, 1] (as fb.resnet.torch does) then scaled back to 0-255",
                      "divide by 255: P (alpha * lambda) / 255"),
    Mistake.computing(_square_roots, "you used the square roots of the eigenvalues; Krizhevsky et al. multiply "
                                     "alpha by the eigenvalue itself"),
)


def check_colour_offset(colour_offset):
    """Compare ``colour_offset(eigenvalues, eigenvectors, alpha) -> (3,)`` RGB offset (0-255) with
    ``minivgg.data.PCAColourShift`` given the same alphas."""
    return compare_with_library("colour_offset", colour_offset, _library_offset, _colour_cases(), COLOUR_MISTAKES,
                                ("the offset is a combination of the three eigenvectors, eigenvector k weighted by "
                                 "alpha_k lambda_k",))


QUESTIONS = {
    "jittered_test_scales": Question(
        "A net trained with S jittered in [256, 512]: the three test scales Q of Sect. 4.2? Answer (Q1, Q2, Q3).",
        lambda: paper_scales((256, 512)), hints=("for jittered S: S_min, the middle, S_max",)),
    "fixed_test_scales": Question(
        "A net trained at a fixed S = 384: the three test scales Q of Sect. 4.2? Answer (Q1, Q2, Q3).",
        lambda: paper_scales(384), hints=("for a fixed S: S - 32, S, S + 32",)),
    "crop_share": Question(
        "A square image rescaled to S = 512: what fraction of it does one 224x224 crop cover? (three significant "
        "digits)", lambda: (224 / library_rescaled_size(512, 512, 512)[0]) ** 2, tolerance=0.005,
        hints=("(crop side / S) squared",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
