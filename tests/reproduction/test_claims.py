"""The claims as data, and how a claim's two sides become a gain, an interval and a verdict."""
import numpy as np
import pytest

from minivgg.reproduction.experiments import CLAIMS, NETS, SECTIONS, Claim, claims_of
from minivgg.reproduction.report import ClaimResult, resolve


def test_every_claim_has_a_unique_key_and_one_section():
    keys = [claim.key for claim in CLAIMS]
    assert len(keys) == len(set(keys))
    for claim in CLAIMS:
        assert sum(claim in claims_of(prefixes) for _, prefixes in SECTIONS) == 1, claim.key


def test_the_issue_s_claims_are_all_there():
    sections = " ".join(claim.section for claim in CLAIMS)
    for where in ("Table 3", "Sect. 4.1", "Sect. 3.1", "Table 4", "Table 5", "Table 6", "Appendix A", "Appendix B"):
        assert where in sections
    statements = " ".join(claim.statement for claim in CLAIMS).lower()
    for words in ("local response normalisation", "depth", "1x1", "jittering", "q = s", "shallow", "n(0, 0.01^2)",
                  "pre-initialising", "glorot", "q = 64, 96, 128", "multi-crop", "fusing", "per-class regression",
                  "fine-tuning all layers", "dense boxes", "shallower", "random", "raw pixels", "stacking"):
        assert words in statements, words


def test_every_net_a_claim_names_is_trained():
    names = {spec.name for spec in NETS}
    for claim in CLAIMS:
        for side in (claim.favoured, claim.other):
            if isinstance(side, str) and "/" in side and not side.startswith(
                    ("best-of/", "table5/", "fusion/", "localisation/", "transfer/")):
                assert side.split("/")[0] in names, side


def _claim(**changes):
    fields = dict(key="k", section="s", statement="x beats y", paper="p", favoured="x", other="y")
    return Claim(**dict(fields, **changes))


def test_a_lower_error_on_the_favoured_side_is_a_positive_gain():
    seeds = [{"x": 10.0, "y": 12.0}, {"x": 11.0, "y": 12.5}, {"x": 9.5, "y": 11.9}]
    result = ClaimResult(_claim(), seeds)
    np.testing.assert_allclose(result.gains, [2.0, 1.5, 2.4])
    assert result.verdict == "reproduced" and result.agreeing == 3
    tie = ClaimResult(_claim(), [{"x": 10.0, "y": 12.0}, {"x": 11.0, "y": 11.0}, {"x": 9.5, "y": 9.0}])
    assert tie.agreeing == 1  # a tie is no gain


def test_a_higher_recall_on_the_favoured_side_is_a_positive_gain():
    seeds = [{"x": 92.0, "y": 90.0}, {"x": 93.0, "y": 90.5}, {"x": 91.5, "y": 90.1}]
    result = ClaimResult(_claim(higher_is_better=True), seeds)
    np.testing.assert_allclose(result.gains, [2.0, 2.5, 1.4])
    assert result.verdict == "reproduced"
    # The same numbers read as errors say the opposite.
    assert ClaimResult(_claim(), seeds).verdict == "not reproduced"


def test_best_of_takes_the_lower_error_or_the_higher_recall_seed_by_seed():
    results = {"a": 10.0, "b": 12.0}
    assert resolve("best-of/a|b", results) == 10.0
    assert resolve("best-of/a|b", results, higher_is_better=True) == 12.0
    assert resolve("best-of/a|missing", results) is None
    assert resolve("chance", {}) == pytest.approx(90.0)
    assert resolve(5, {}) == 5.0


def test_a_claim_with_a_missing_side_is_not_measured():
    result = ClaimResult(_claim(), [{"x": 10.0}, {"x": 11.0}])
    assert not result.measured and result.verdict == "not measured"
    # Seeds where both sides exist are compared; the others are left out.
    partial = ClaimResult(_claim(), [{"x": 10.0, "y": 11.0}, {"x": 11.0}])
    assert partial.seeds == 1 and partial.verdict == "inconclusive"


def test_a_not_worse_claim_against_chance():
    # "N(0, 0.01^2) stalls": chance is favoured, the net's error the other side, a 5-point margin.
    stalled = [{"n": 89.9}, {"n": 90.0}, {"n": 90.1}]
    assert ClaimResult(_claim(favoured="chance", other="n", kind="not worse", margin=5.0), stalled).verdict == \
        "reproduced"
    learning = [{"n": 40.0}, {"n": 45.0}, {"n": 38.0}]
    assert ClaimResult(_claim(favoured="chance", other="n", kind="not worse", margin=5.0), learning).verdict == \
        "not reproduced"
