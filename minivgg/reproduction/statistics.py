"""Paired comparisons over seeds, and the verdict a claim gets from one.

Every comparison of the reproduction is paired: both sides were measured with the same seeds (the same
training subset, data order and test images), so what varies between seeds cancels in each seed's
difference. The verdict reads the 95% Student t-interval of the mean paired difference:

- a claim that one side beats the other (``"better"``: the gain of the side the paper favours over the
  other is positive) is *reproduced* when the whole interval lies above zero, *not reproduced* when it lies
  below, and *inconclusive* when it contains zero: a difference within the noise is never called a finding;
- a claim that the other side does not help (``"not worse"``, e.g. Table 3's "LRN does not improve on A":
  A, the favoured side, is not worse than A-LRN) is *reproduced* when the interval shows that any loss of
  the favoured side is smaller than a stated margin (its lower end above ``-margin``), *not reproduced* when
  the other side is better beyond the noise (the upper end below zero), and *inconclusive* otherwise.

Why a t-interval: with three to five seeds an exact sign-flip permutation test cannot reach 5% at all (its
smallest two-sided p-value is 2 / 2**n: 25% for three seeds, 6.25% for five), so it could never call
anything a finding. The t-interval assumes the paired differences are roughly normal; the report prints
every seed's difference next to it, so a reader can see whether they are. With one seed there is no
interval, and every verdict is inconclusive.
"""
import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CONFIDENCE", "VERDICTS", "KINDS", "Interval", "mean_interval", "paired_interval", "verdict", "mean_and_std",
           "format_mean_std"]

CONFIDENCE = 0.95
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
KINDS = ("better", "not worse")


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` values and its two-sided t-interval ``[low, high]`` (NaN when ``n < 2``)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def defined(self):
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)


def _values(values, name):
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name}: no values")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: the values must be finite, got {array.tolist()}")
    return array


@functools.lru_cache(maxsize=64)
def _t_quantile(probability, degrees_of_freedom):
    from scipy.stats import t

    return float(t.ppf(probability, degrees_of_freedom))


def mean_interval(values, confidence=CONFIDENCE):
    """The t-interval of the mean of ``values`` (n,): ``mean +- t_{(1+c)/2, n-1} * std / sqrt(n)``, with the
    sample standard deviation (``ddof=1``). n = 1 gives an undefined interval (NaN ends)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    array = _values(values, "mean_interval")
    n, mean = array.size, float(array.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, confidence)
    half = _t_quantile(0.5 + confidence / 2, n - 1) * float(array.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, confidence)


def paired_interval(favoured, other, confidence=CONFIDENCE):
    """The t-interval of the mean paired difference ``other - favoured`` (n,), seed by seed: for errors,
    positive when the side the claim favours has the lower error (the favoured side's gain). ValueError
    unless both have one value per seed."""
    a, b = _values(favoured, "paired_interval"), _values(other, "paired_interval")
    if a.shape != b.shape:
        raise ValueError(f"paired_interval: {a.size} and {b.size} values; a paired comparison needs one of each "
                         f"per seed")
    return mean_interval(b - a, confidence)


def verdict(interval, kind="better", margin=0.0):
    """"reproduced", "not reproduced" or "inconclusive" for a claim whose measured gain has ``interval``.

    Parameters
    ----------
    interval : ``Interval`` of the favoured side's gain (``paired_interval``)
    kind : "better" (the paper says the gain is positive) or "not worse" (the paper says the other side
        brings no gain: the favoured side loses at most ``margin``)
    margin : for "not worse", the largest loss that still counts as none (same unit as the gain)
    """
    if kind not in KINDS:
        raise ValueError(f"verdict: kind must be one of {KINDS}, got {kind!r}")
    if not margin >= 0:
        raise ValueError(f"verdict: margin must be >= 0, got {margin!r}")
    if not interval.defined:
        return "inconclusive"
    if kind == "better":
        if interval.low > 0:
            return "reproduced"
        if interval.high < 0:
            return "not reproduced"
        return "inconclusive"
    if interval.low > -margin:
        return "reproduced"
    if interval.high < 0:
        return "not reproduced"
    return "inconclusive"


def mean_and_std(values):
    """``(mean, std)`` of ``values``, the std with ``ddof=1`` (NaN for one value)."""
    array = _values(values, "mean_and_std")
    return float(array.mean()), (float(array.std(ddof=1)) if array.size > 1 else math.nan)


def format_mean_std(values, digits=1):
    """``"27.2 ± 3.3"``: the mean and std of ``values`` as the report prints them; the mean alone for one
    value, ``"-"`` for none."""
    if len(values) == 0:
        return "-"
    mean, std = mean_and_std(values)
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"
