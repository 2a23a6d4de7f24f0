"""The statistics behind the reproduction's verdicts: the paired t-interval and the three verdicts."""
import math

import numpy as np
import pytest

from minivgg.reproduction.statistics import Interval, mean_and_std, mean_interval, paired_interval, verdict


def test_t_interval_matches_the_textbook_value():
    # 3 seeds, differences 1, 2, 3: mean 2, sd 1, t_{0.975, 2} = 4.302653, half-width 4.302653 / sqrt(3).
    interval = mean_interval([1.0, 2.0, 3.0])
    assert interval.mean == pytest.approx(2.0, rel=1e-12)
    assert interval.high - interval.mean == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)
    assert interval.mean - interval.low == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)


def test_t_interval_covers_the_mean_95_percent_of_the_time():
    # The interval's coverage, checked by simulation: a z-interval (too narrow at n = 3) covers about 80%.
    rng = np.random.default_rng(0)
    samples = rng.normal(1.5, 2.0, size=(4000, 3))
    covered = np.mean([(lambda i: i.low <= 1.5 <= i.high)(mean_interval(s)) for s in samples])
    assert 0.94 <= covered <= 0.96


def test_paired_interval_is_the_interval_of_the_seed_by_seed_differences():
    favoured, other = [10.0, 12.0, 11.0], [11.0, 14.0, 14.0]
    paired = paired_interval(favoured, other)
    direct = mean_interval([1.0, 2.0, 3.0])
    assert (paired.mean, paired.low, paired.high) == pytest.approx((direct.mean, direct.low, direct.high), rel=1e-12)


def test_pairing_removes_what_the_seeds_share():
    # Seeds that differ a lot (10, 20, 30) with a consistent 1-point gain: unpaired the gain is lost in the
    # spread; paired it is a finding.
    better, worse = np.array([10.0, 20.0, 30.0]), np.array([11.1, 20.9, 31.0])
    assert verdict(paired_interval(better, worse)) == "reproduced"
    assert mean_interval(worse).low < mean_interval(better).high  # the unpaired intervals overlap


def test_a_difference_well_within_the_noise_is_inconclusive():
    rng = np.random.default_rng(1)
    better = 20 + rng.normal(0, 1.0, 5)
    worse = better + np.array([0.9, -1.1, 0.4, -0.6, 0.5])  # mean gain 0.02, spread 0.8
    interval = paired_interval(better, worse)
    assert interval.low < 0 < interval.high
    assert verdict(interval, "better") == "inconclusive"


def test_a_consistent_gain_is_reproduced_and_a_consistent_loss_is_not():
    assert verdict(paired_interval([10.0, 10.5, 9.8], [12.0, 12.4, 11.9])) == "reproduced"
    assert verdict(paired_interval([12.0, 12.4, 11.9], [10.0, 10.5, 9.8])) == "not reproduced"


def test_not_worse_claims_need_any_loss_shown_below_the_margin():
    # "LRN does not improve on A": A favoured, A-LRN the other side. Differences around zero, tight:
    # reproduced within a 1-point margin, inconclusive within 0.1.
    gain = paired_interval([30.0, 31.0, 29.5], [30.1, 30.9, 29.6])
    assert verdict(gain, "not worse", margin=1.0) == "reproduced"
    assert verdict(gain, "not worse", margin=0.1) == "inconclusive"
    # The other side better beyond the noise contradicts the claim.
    assert verdict(paired_interval([30.0, 31.1, 29.4], [28.0, 29.0, 27.5]), "not worse", margin=1.0) == \
        "not reproduced"
    # The other side clearly worse reproduces it.
    assert verdict(paired_interval([30.0, 31.1, 29.4], [31.0, 32.0, 30.5]), "not worse", margin=0.5) == "reproduced"


def test_one_seed_gives_no_interval_and_no_verdict():
    interval = paired_interval([10.0], [20.0])
    assert not interval.defined and interval.n == 1
    assert verdict(interval) == "inconclusive"
    assert verdict(interval, "not worse", margin=5.0) == "inconclusive"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one of each per seed"):
        paired_interval([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="no values"):
        mean_interval([])
    with pytest.raises(ValueError, match="kind"):
        verdict(Interval(1.0, 0.5, 1.5, 3), "worse")
    with pytest.raises(ValueError, match="margin"):
        verdict(Interval(1.0, 0.5, 1.5, 3), "not worse", margin=-1.0)


def test_mean_and_std_use_the_sample_standard_deviation():
    assert mean_and_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0), rel=1e-12)
    mean, std = mean_and_std([4.0])
    assert mean == 4.0 and math.isnan(std)
