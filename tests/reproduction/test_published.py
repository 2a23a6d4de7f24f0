"""``results.json``: the report's measurements for code (the lessons), written and read back, and every way
a file can fail to be one refused with a message naming the file and the problem."""
import json
import math
import os

import numpy as np
import pytest

from minivgg.errors import DataFileError
from minivgg.reproduction import QUICK, evaluate_claims, load_results
from minivgg.reproduction.experiments import CLAIMS
from minivgg.reproduction.published import RESULTS_FILE, results_document, write_results


def _per_seed():
    """Three seeds' measurements: D beats C by 2 +- 0.5 points, E-jittered's transfer features 5 points
    above A's; the other claims unmeasured."""
    return [{"D/dense/96": 30.0 - gain, "C/dense/96": 30.0, "transfer/E-jittered/stack": 95.0 + seed,
             "transfer/A/stack": 90.0 + seed}
            for seed, gain in enumerate((1.5, 2.0, 2.5))]


@pytest.fixture
def written(tmp_path):
    per_seed = _per_seed()
    document = results_document(evaluate_claims(per_seed), per_seed, QUICK, complete=True)
    return write_results(str(tmp_path), document), document


def test_what_is_written_reads_back_claim_by_claim(written):
    path, _ = written
    assert os.path.basename(path) == RESULTS_FILE
    results = load_results(path)
    assert results.complete and results.seeds == 3 and results.claim_keys == tuple(c.key for c in CLAIMS)
    d_c = results.claim("depth-d-c")
    np.testing.assert_array_equal(d_c.favoured_values, [28.5, 28.0, 27.5])
    np.testing.assert_array_equal(d_c.other_values, [30.0, 30.0, 30.0])
    np.testing.assert_allclose(d_c.gains, [1.5, 2.0, 2.5], rtol=1e-12)  # lower error: a positive gain
    assert d_c.mean_gain == pytest.approx(2.0) and d_c.low == pytest.approx(2.0 - 4.303 * 0.5 / math.sqrt(3), rel=1e-3)
    assert d_c.verdict == "reproduced"
    transfer = results.claim("transfer-depth")  # recall: higher is better
    np.testing.assert_allclose(transfer.gains, [5.0, 5.0, 5.0])
    assert results.claim("lrn").verdict == "not measured" and math.isnan(results.claim("lrn").mean_gain)
    np.testing.assert_array_equal(results.measurement("D/dense/96"), [28.5, 28.0, 27.5])
    assert results.verdict_counts() == {"reproduced": 2, "not reproduced": 0, "inconclusive": 0,
                                        "not measured": len(CLAIMS) - 2}


def test_describe_says_which_run_measured_it_and_each_claims_figures(written):
    text = load_results(written[0]).describe(["depth-d-c"])
    assert text.splitlines()[0].startswith("minivgg reproduce: 3 seeds, complete")
    assert "D beats C" in text and "D/dense/96: 28.0 ± 0.5" in text and "C/dense/96: 30.0 ± 0.0" in text
    assert "gain +2.00 [+0.76, +3.24], 3/3 seeds   -> reproduced" in text


def test_a_partial_run_says_so(tmp_path):
    per_seed = _per_seed()
    path = write_results(str(tmp_path), results_document(evaluate_claims(per_seed), per_seed, QUICK, complete=False))
    results = load_results(path)
    assert not results.complete and "PARTIAL" in results.describe(["depth-d-c"])


def test_an_unknown_claim_or_measurement_names_what_there_is(written):
    results = load_results(written[0])
    with pytest.raises(KeyError, match="no claim 'depth'; it has lrn, depth-b-a"):
        results.claim("depth")
    with pytest.raises(KeyError, match="no measurement 'E/dense/96'"):
        results.measurement("E/dense/96")


def _broken(tmp_path, document, change):
    document = json.loads(json.dumps(document))
    change(document)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document))
    return str(path)


def _set(path, value):
    def change(document):
        target = document
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set(["format"], "something else"), "its \"format\" is not"),
    (_set(["version"], 2), "version 2; this minivgg reads version 1"),
    (_set(["complete"], "yes"), "\"complete\" is missing or not a bool"),
    (lambda d: d.pop("claims"), "\"claims\" is missing"),
    (_set(["seeds"], 4), "\"seeds\" differs"),
    (_set(["measurements", 0, "D/dense/96"], "28.5"), "a seed's measurements are not finite numbers"),
    (lambda d: d["claims"][0].pop("verdict"), "a claim lacks one of"),
    (_set(["claims", 4, "verdict"], "proven"), "claim 'depth-d-c' has the verdict 'proven'"),
    (_set(["claims", 4, "gains"], [1.5, 2.0]), "claim 'depth-d-c': its value lists differ in length"),
    (_set(["claims", 4, "gains"], [1.5, None, 2.5]), "claim 'depth-d-c': \"gains\" is not a list of finite"),
    (_set(["claims", 4, "interval"], {"low": 1.0}), "claim 'depth-d-c': \"interval\" has no mean"),
])
def test_a_file_that_is_not_in_the_format_is_refused_naming_the_problem(written, tmp_path, change, message):
    path = _broken(tmp_path, written[1], change)
    with pytest.raises(DataFileError, match="broken.json is not a minivgg reproduction results file: .*"
                       + message.replace("(", r"\(").replace("[", r"\[")):
        load_results(path)


def test_nan_missing_not_json_a_folder_and_a_huge_file_are_refused(written, tmp_path, monkeypatch):
    from minivgg.errors import NotAFileError
    from minivgg.reproduction import published

    text = open(written[0]).read().replace('"D/dense/96": 28.5', '"D/dense/96": NaN', 1)
    (tmp_path / "nan.json").write_text(text)
    with pytest.raises(DataFileError, match="nan.json .*not finite numbers"):
        load_results(str(tmp_path / "nan.json"))
    with pytest.raises(DataFileError, match="absent.json does not exist: .*minivgg reproduce --report-dir"):
        load_results(str(tmp_path / "absent.json"))
    (tmp_path / "text.json").write_text("{not json")
    with pytest.raises(DataFileError, match="text.json .*: not JSON"):
        load_results(str(tmp_path / "text.json"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(NotAFileError):
        load_results(str(tmp_path / "folder"))
    monkeypatch.setattr(published, "_MAX_BYTES", 100)
    with pytest.raises(DataFileError, match="larger than"):
        load_results(written[0])


def test_the_committed_results_are_found_from_the_package_or_refused_with_a_reason(written, tmp_path, monkeypatch):
    from minivgg.reproduction import committed_results, published

    # The package two folders below a root whose docs/reproduction holds the file, as in a clone.
    package = tmp_path / "clone" / "minivgg" / "reproduction"
    package.mkdir(parents=True)
    monkeypatch.setattr(published, "__file__", str(package / "published.py"))
    with pytest.raises(DataFileError, match="no docs/reproduction/results.json beside this minivgg"):
        committed_results()
    docs = tmp_path / "clone" / "docs" / "reproduction"
    docs.mkdir(parents=True)
    (docs / "results.json").write_text(open(written[0]).read())
    assert committed_results().claim("depth-d-c").verdict == "reproduced"


def test_the_committed_results_are_the_full_run_the_committed_report_shows():
    from minivgg.reproduction import DEFAULT, committed_results

    results = committed_results()
    assert results.complete and results.seeds == DEFAULT.seeds
    assert results.claim_keys == tuple(c.key for c in CLAIMS)
    assert results.verdict_counts()["not measured"] == 0
    report = open(os.path.join(os.path.dirname(results.path), "README.md"), encoding="utf-8").read()
    counts = results.verdict_counts()
    assert (f"**{counts['reproduced']} claims reproduced, {counts['not reproduced']} not reproduced, "
            f"{counts['inconclusive']} inconclusive**") in report
    for key in results.claim_keys:  # each claim's row in the report carries the verdict the file holds
        claim = results.claim(key)
        row = next(line for line in report.splitlines() if line.startswith(f"| {claim.statement} ({claim.section})"))
        assert f"**{claim.verdict}**" in row
