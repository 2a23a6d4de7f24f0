"""The reproduction's results as data: ``results.json``, written beside the report, read back by the lessons.

The report (``report.py``) is for a reader; this file is for code. It holds every seed's measurements and
every claim's values, gains, interval and verdict, so a lesson can show what the full run measured without
training for an hour, and says where each number came from (the run's date, its seeds, whether it was
complete). It is plain JSON: nothing in it is executed when it is read.

    results = load_results("docs/reproduction/results.json")   # or committed_results() in a clone
    results.claim("stall").verdict          # "reproduced"
    results.measurement("D/dense/96")       # one value per seed
"""
import datetime
import json
import math
import os

import numpy as np

from ..errors import DataFileError
from .statistics import VERDICTS, format_mean_std

__all__ = ["RESULTS_FILE", "FORMAT", "VERSION", "COMMITTED", "results_document", "write_results", "load_results",
           "committed_results", "PublishedClaim", "PublishedResults"]

RESULTS_FILE = "results.json"
FORMAT = "minivgg reproduction results"
VERSION = 1
COMMITTED = ("docs", "reproduction", RESULTS_FILE)  # the full run's, in the repository, linked from the README
_MAX_BYTES = 16 << 20  # the full run's file is about 60 KiB
_VERDICTS = VERDICTS + ("not measured",)
_CLAIM_FIELDS = ("key", "section", "statement", "paper", "measure", "favoured", "other", "favoured_values",
                 "other_values", "gains", "interval", "verdict")


def _finite_list(values):
    return [float(v) for v in values]


def results_document(claim_results, per_seed, miniature, complete, span=None):
    """The JSON-ready dict of a report: ``claim_results`` (``report.ClaimResult``), ``per_seed`` (one dict of
    measurements per seed), the ``miniature`` it ran at, whether every step had finished, and the first and
    last step's times."""
    claims = []
    for r in claim_results:
        c = r.claim
        interval = r.interval
        claims.append({
            "key": c.key, "section": c.section, "statement": c.statement, "paper": c.paper, "measure": c.measure,
            "favoured": c.favoured, "other": c.other,
            "favoured_values": _finite_list(r.favoured), "other_values": _finite_list(r.other),
            "gains": _finite_list(r.gains),
            # NaN is not JSON: an interval of one seed has no ends
            "interval": None if interval is None else {
                "mean": float(interval.mean),
                "low": float(interval.low) if interval.defined else None,
                "high": float(interval.high) if interval.defined else None},
            "verdict": r.verdict})
    return {"format": FORMAT, "version": VERSION, "written": datetime.date.today().isoformat(),
            "steps_ran": None if span is None else [f"{span[0]:%Y-%m-%d %H:%M}", f"{span[1]:%Y-%m-%d %H:%M}"],
            "complete": bool(complete), "seeds": len(per_seed), "miniature": miniature.to_dict(),
            "measurements": [{key: float(value) for key, value in sorted(r.items())} for r in per_seed],
            "claims": claims}


def write_results(folder, document):
    """Write ``document`` as ``folder/results.json``, atomically; returns its path."""
    from ..files import write_json

    path = os.path.join(folder, RESULTS_FILE)
    write_json(path, document)
    return path


class PublishedClaim:
    """One claim as the run measured it: its words, the paper's figure, each side's values per seed, the
    favoured side's gains (positive: the paper's direction), the 95% interval of their mean and the verdict."""

    def __init__(self, fields):
        self.key = fields["key"]
        self.section = fields["section"]
        self.statement = fields["statement"]
        self.paper = fields["paper"]
        self.measure = fields["measure"]
        self.favoured = fields["favoured"]
        self.other = fields["other"]
        self.favoured_values = np.array(fields["favoured_values"], dtype=float)
        self.other_values = np.array(fields["other_values"], dtype=float)
        self.gains = np.array(fields["gains"], dtype=float)
        interval = fields["interval"] or {}
        self.mean_gain = interval.get("mean", math.nan)
        self.low = math.nan if interval.get("low") is None else interval["low"]
        self.high = math.nan if interval.get("high") is None else interval["high"]
        self.verdict = fields["verdict"]

    def describe(self):
        """One line: the claim, both sides as mean +- std, the gain's interval and the verdict."""
        def side(name, values):
            return f"{name}: {format_mean_std(values)}"
        gain = "-" if math.isnan(self.mean_gain) else (
            f"{self.mean_gain:+.2f}" + ("" if math.isnan(self.low) else f" [{self.low:+.2f}, {self.high:+.2f}]"))
        return (f"{self.statement} ({self.section}; paper: {self.paper})\n"
                f"    {side(self.favoured, self.favoured_values)}   {side(self.other, self.other_values)}   gain {gain}, {int(np.sum(self.gains > 0))}/"
                f"{len(self.gains)} seeds   -> {self.verdict}")

    def __repr__(self):
        return f"PublishedClaim({self.key!r}, verdict={self.verdict!r})"


class PublishedResults:
    """A ``results.json`` read back: ``claim(key)``, ``measurement(key)``, ``describe(keys)``."""

    def __init__(self, document, path):
        self.path = path
        self.written = document["written"]
        self.steps_ran = document["steps_ran"]
        self.complete = document["complete"]
        self.seeds = document["seeds"]
        self.miniature = document["miniature"]
        self._measurements = document["measurements"]
        self._claims = {fields["key"]: PublishedClaim(fields) for fields in document["claims"]}

    @property
    def claim_keys(self):
        return tuple(self._claims)

    def claim(self, key):
        """The ``PublishedClaim`` named ``key``; ``KeyError`` listing the keys there are."""
        if key not in self._claims:
            raise KeyError(f"{self.path} has no claim {key!r}; it has {', '.join(self._claims)}")
        return self._claims[key]

    def measurement(self, key):
        """The measurement ``key`` (e.g. ``"D/dense/96"``) of every seed that has it, as an array."""
        values = [seed[key] for seed in self._measurements if key in seed]
        if not values:
            raise KeyError(f"{self.path} has no measurement {key!r}")
        return np.array(values)

    def verdict_counts(self):
        return {name: sum(c.verdict == name for c in self._claims.values()) for name in _VERDICTS}

    def describe(self, keys):
        """The text of the claims ``keys``, after a line saying which run measured them."""
        state = "complete" if self.complete else "PARTIAL (some steps missing)"
        when = f", steps run {self.steps_ran[0]} to {self.steps_ran[1]} UTC" if self.steps_ran else ""
        header = (f"minivgg reproduce: {self.seeds} seeds, {state}{when}; mean ± std over seeds, gain of the "
                  f"paper's favoured side in points with its 95% interval")
        return "\n".join([header] + [self.claim(key).describe() for key in keys])


def _check(condition, path, problem):
    if not condition:
        raise DataFileError(f"{path} is not a minivgg reproduction results file: {problem}")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate(document, path):
    _check(isinstance(document, dict), path, "its top level is not an object")
    _check(document.get("format") == FORMAT, path, f"its \"format\" is not {FORMAT!r}")
    _check(document.get("version") == VERSION, path,
           f"version {document.get('version')!r}; this minivgg reads version {VERSION}")
    for name, kind in (("written", str), ("complete", bool), ("seeds", int), ("miniature", dict),
                       ("measurements", list), ("claims", list)):
        _check(isinstance(document.get(name), kind), path, f"\"{name}\" is missing or not a {kind.__name__}")
    _check(document["seeds"] == len(document["measurements"]) > 0, path,
           "\"seeds\" differs from the number of seeds measured")
    for seed in document["measurements"]:
        _check(isinstance(seed, dict) and all(_is_number(v) for v in seed.values()), path,
               "a seed's measurements are not finite numbers")
    for fields in document["claims"]:
        _check(isinstance(fields, dict) and all(name in fields for name in _CLAIM_FIELDS), path,
               f"a claim lacks one of {', '.join(_CLAIM_FIELDS)}")
        _check(fields["verdict"] in _VERDICTS, path, f"claim {fields['key']!r} has the verdict {fields['verdict']!r}")
        for name in ("favoured_values", "other_values", "gains"):
            _check(isinstance(fields[name], list) and all(_is_number(v) for v in fields[name]), path,
                   f"claim {fields['key']!r}: \"{name}\" is not a list of finite numbers")
        _check(len(fields["gains"]) == len(fields["favoured_values"]) == len(fields["other_values"])
               <= document["seeds"], path, f"claim {fields['key']!r}: its value lists differ in length")
        interval = fields["interval"]
        _check(interval is None or (isinstance(interval, dict) and _is_number(interval.get("mean"))), path,
               f"claim {fields['key']!r}: \"interval\" has no mean")


def load_results(path):
    """Read and check a ``results.json`` that ``minivgg reproduce`` wrote; ``DataFileError`` naming the file
    and the problem when it is missing, too large, not JSON or not in this format."""
    from ..files import require_regular_file

    if not os.path.exists(path):
        raise DataFileError(f"{path} does not exist: the reproduction's results are written by "
                            f"`minivgg reproduce --report-dir FOLDER` as FOLDER/{RESULTS_FILE}")
    require_regular_file(path, "reproduction results")
    _check(os.path.getsize(path) <= _MAX_BYTES, path, f"it is larger than {_MAX_BYTES >> 20} MiB")
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle, parse_constant=lambda name: math.nan)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFileError(f"{path} is not a minivgg reproduction results file: not JSON ({error})") from None
    _validate(document, path)
    return PublishedResults(document, path)


def committed_results():
    """The full run's results committed with the repository (``docs/reproduction/results.json``), for code run
    from a clone, as the lessons are; ``DataFileError`` saying so where minivgg was installed without one."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, *COMMITTED)
    if not os.path.exists(path):
        raise DataFileError(f"no {'/'.join(COMMITTED)} beside this minivgg (at {root}): the committed results come "
                            f"with a clone of the repository; elsewhere, give load_results the results.json of a "
                            f"run of `minivgg reproduce`")
    return load_results(path)
