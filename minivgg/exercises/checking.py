"""What every exercise shares: a verdict with graded hints, a learner's function compared with the library's
on random cases, a backward pass checked by central differences, and a pen-and-paper answer compared with the
number the library computes.

A check never raises because of the learner's code: a function that raises, returns the wrong shape or the
wrong numbers gets a FAILED verdict naming the case, and a stub that still raises ``NotImplementedError`` gets
"not attempted yet" (so a lesson runs top to bottom before anyone has done its exercises). The hints are
graded: the verdict shows the first, which says what is wrong ("your output is shifted by one pixel: check the
padding"); ``verdict.hint()`` reveals the next, more specific one. A known mistake is recognised by computing
what a function with that mistake would return on the same case and finding the learner's output equal to it.

Comparisons are norm-wise relative errors (``minivgg.gradcheck.relative_error``), so they mean the same at
every magnitude: the cases use realistic ones (pixels minus the mean, weights of 0.01, activations near 1).
"""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..gradcheck import numerical_gradient, relative_error

__all__ = ["PASSED", "FAILED", "NOT_ATTEMPTED", "Verdict", "Verdicts", "Case", "Mistake", "Question",
           "compare_with_library", "check_gradient", "check_answers", "attempt", "tolerance_for"]

PASSED, FAILED, NOT_ATTEMPTED = "passed", "FAILED", "not attempted yet"

# Norm-wise relative error allowed between the learner's result and the library's. A right float32 function
# differs from the library's by rounding (about 1e-7 relative); any real mistake moves the result by far more.
TOLERANCE = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}


def tolerance_for(dtype):
    """The relative error allowed for results of ``dtype`` (float32: 1e-4, float64: 1e-9)."""
    return TOLERANCE.get(np.dtype(dtype), 1e-9)


class Verdict:
    """The outcome of one exercise: ``status`` (PASSED, FAILED or NOT_ATTEMPTED), a one-line ``summary`` and,
    when it failed, graded ``hints`` (the first is shown; ``hint()`` reveals the next)."""

    def __init__(self, exercise, status, summary, hints=()):
        self.exercise, self.status, self.summary = exercise, status, summary
        self.hints = list(hints)
        self.shown = min(1, len(self.hints))

    @property
    def passed(self):
        return self.status == PASSED

    @property
    def attempted(self):
        return self.status != NOT_ATTEMPTED

    def hint(self):
        """Reveal the next, more specific hint and return it (the last one again when all are shown)."""
        if not self.hints:
            return "no hint: this exercise " + ("passed" if self.passed else "is not attempted yet")
        self.shown = min(self.shown + 1, len(self.hints))
        return self.hints[self.shown - 1]

    def __repr__(self):
        lines = [f"{self.exercise}: {self.status} - {self.summary}"]
        for number, text in enumerate(self.hints[:self.shown], start=1):
            lines.append(f"    hint {number}/{len(self.hints)}: {text}")
        if self.shown < len(self.hints):
            lines.append("    (call .hint() on this result for a more specific hint)")
        return "\n".join(lines)

    __str__ = __repr__


class Verdicts(list):
    """Several verdicts (a lesson's pen-and-paper questions), shown one under the other."""

    @property
    def passed(self):
        return all(verdict.passed for verdict in self)

    def __repr__(self):
        done = sum(verdict.passed for verdict in self)
        return "\n".join([repr(verdict) for verdict in self] + [f"{done} of {len(self)} right"])

    __str__ = __repr__


@dataclass
class Case:
    """One call of the function under test: ``description`` says what it is ("x (2, 3, 7, 6) float32, stride
    2, padding 1"), ``arguments`` what is passed (copied before each call, so neither function sees the
    other's in-place changes)."""

    description: str
    arguments: tuple
    keywords: dict = field(default_factory=dict)

    def call(self, function):
        copy = _copied(self.arguments)
        return function(*copy, **dict(self.keywords))


@dataclass
class Mistake:
    """A known mistake: ``hints`` (what is wrong first, then how to fix it) and ``detect(case, got, want)``,
    True when the learner's output ``got`` is what a function with this mistake returns on ``case``; or, made
    with ``Mistake.computing``, the ``wrong_function`` itself, whose output is compared with the learner's."""

    hints: tuple
    detect: Callable = None
    wrong_function: Callable = None

    @classmethod
    def computing(cls, wrong_function, *hints):
        """The mistake whose function is ``wrong_function`` (called like the function under test)."""
        return cls(tuple(hints), wrong_function=wrong_function)

    def matches(self, case, got, want, rtol=None):
        """Whether ``got`` is this mistake's output on ``case`` (to the comparison's own tolerance)."""
        if self.wrong_function is None:
            return self.detect(case, got, want)
        try:
            wrong = case.call(self.wrong_function)
        except Exception:  # the wrong reading does not apply to this case
            return False
        return _difference(got, wrong, rtol) is None


def attempt(exercise, call):
    """Run ``call()``; returns ``(value, None)``, or ``(None, verdict)`` when it raised: NOT_ATTEMPTED for
    ``NotImplementedError`` (the stub as given), FAILED naming the exception otherwise."""
    try:
        return call(), None
    except NotImplementedError:
        return None, Verdict(exercise, NOT_ATTEMPTED, "the stub still raises NotImplementedError; fill it in "
                                                      "and run this cell again")
    except Exception as error:  # the learner's code: report it, never stop the lesson
        return None, Verdict(exercise, FAILED, f"it raised {type(error).__name__}: {error}",
                             ["read the message above: the function stopped before returning a result"])


def _copied(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) and not _is_flat_numbers(value) else (value,)


def _is_flat_numbers(value):
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value)


def _difference(got, want, rtol=None, names=None):
    """None when ``got`` equals ``want`` (arrays within ``rtol``, tuples element by element), else a phrase
    saying how they differ."""
    got_parts, want_parts = _as_tuple(got), _as_tuple(want)
    if len(got_parts) != len(want_parts):
        return f"it returned {len(got_parts)} value(s) where the library returns {len(want_parts)}"
    for index, (g, w) in enumerate(zip(got_parts, want_parts)):
        name = names[index] if names else ("the output" if len(want_parts) == 1 else f"output {index}")
        if g is None:
            return f"{name} is None: return it"
        w = np.asarray(w)
        try:
            g = np.asarray(g)
        except Exception:
            return f"{name} is a {type(g).__name__}, not an array"
        if g.shape != w.shape:
            return f"{name} has shape {g.shape} where the library's has {w.shape}"
        if w.dtype.kind == "f" and g.dtype != w.dtype:
            return f"{name} is {g.dtype} where the library's is {w.dtype}: keep the input's dtype"
        if w.dtype.kind != "f":
            if not np.array_equal(g, w):
                return f"{name} differs: {_first_difference(g, w)}"
            continue
        if not np.all(np.isfinite(g)):
            return f"{name} holds NaN or infinite values"
        error = relative_error(g, w)
        if error > (tolerance_for(w.dtype) if rtol is None else rtol):
            return f"{name} differs from the library's: relative error {error:.1e} ({_first_difference(g, w)})"
    return None


def _first_difference(got, want):
    if got.ndim == 0:
        return f"{got} instead of {want}"
    difference = np.abs(got.astype(np.float64) - want.astype(np.float64)) if want.dtype.kind in "fiub" else None
    index = np.unravel_index(int(np.argmax(difference)), got.shape) if difference is not None else None
    if index is None:
        return "values differ"
    index_text = ", ".join(str(int(i)) for i in index)
    return f"largest difference at [{index_text}]: {got[index]:.6g} instead of {want[index]:.6g}"


def compare_with_library(exercise, candidate, reference, cases, mistakes=(), hints=(), names=None, rtol=None):
    """Call ``candidate`` and ``reference`` on every case and compare the results.

    Parameters
    ----------
    exercise : str, the name the verdict carries
    candidate : the learner's function
    reference : the library's function, called the same way
    cases : sequence of ``Case``
    mistakes : sequence of ``Mistake``, tried in order on the first case that differs
    hints : the graded hints for a difference no known mistake explains
    names : names of the outputs when the function returns a tuple ("dx", "dW", "db")
    rtol : relative error allowed (default by dtype: ``tolerance_for``)

    Returns
    -------
    Verdict
    """
    for case in cases:
        want = case.call(reference)
        got, verdict = attempt(exercise, lambda: case.call(candidate))
        if verdict is not None:
            if not verdict.attempted:
                return verdict
            return Verdict(exercise, FAILED, f"on {case.description}, {verdict.summary}", verdict.hints)
        difference = _difference(got, want, rtol, names)
        if difference is None:
            continue
        for mistake in mistakes:
            if mistake.matches(case, got, want, rtol):
                return Verdict(exercise, FAILED, f"on {case.description}: {difference}", mistake.hints)
        return Verdict(exercise, FAILED, f"on {case.description}: {difference}", hints)
    example = f", e.g. {cases[0].description}" if len(cases) > 1 else f": {cases[0].description}"
    return Verdict(exercise, PASSED, f"equals the library's result on all {len(cases)} cases{example}")


def check_gradient(exercise, backward, forward, cases, hints=(), h=1e-5, rtol=1e-7):
    """Check a learner's backward pass against central differences of the library's forward, in float64.

    Parameters
    ----------
    backward : the learner's function, ``backward(dout, *arguments) -> dx``
    forward : the library's, ``forward(*arguments) -> out`` (x first)
    cases : ``Case``s whose first argument is the float64 input x, its values away from kinks and ties
    h, rtol : the finite-difference step, and the relative error allowed

    The objective is ``f(x) = sum(forward(x) * dout)`` for a fixed random ``dout``: its gradient is exactly
    what ``backward(dout, x, ...)`` must return (lesson 2).
    """
    for number, case in enumerate(cases):
        x, *rest = _copied(case.arguments)
        dout = np.random.default_rng(number).standard_normal(np.shape(forward(x, *rest, **case.keywords)))
        numeric = numerical_gradient(lambda: float(np.sum(forward(x, *rest, **case.keywords) * dout)), x, h)
        got, verdict = attempt(exercise, lambda: backward(dout.copy(), x.copy(), *_copied(tuple(rest)),
                                                          **case.keywords))
        if verdict is not None:
            return verdict
        got = np.asarray(got, dtype=np.float64)
        if got.shape != numeric.shape:
            return Verdict(exercise, FAILED, f"gradient check on {case.description}: dx has shape {got.shape}, "
                                             f"x has {numeric.shape}", hints)
        error = relative_error(got, numeric)
        if error > rtol:
            return Verdict(exercise, FAILED, f"gradient check on {case.description}: relative error {error:.1e} "
                                             f"against central differences", hints)
    return Verdict(exercise, PASSED, f"agrees with central differences of the library's forward (float64) on "
                                     f"{len(cases)} cases")


def both(first, then):
    """The first verdict if it did not pass; else ``then()``'s (run only then: a gradient check after a
    comparison) if it did not; else one that says both passed."""
    if not first.passed:
        return first
    second = then()
    if not second.passed:
        return second
    return Verdict(first.exercise, PASSED, f"{first.summary}; and it {second.summary}")


@dataclass
class Question:
    """A pen-and-paper question: ``text``, the library's ``answer()`` (computed when checked, never written
    down), a relative ``tolerance`` (0: exact), graded ``hints`` for a wrong answer, and ``mistakes``: pairs
    ``(wrong_answer(), hints)`` for answers a known slip gives."""

    text: str
    answer: Callable
    tolerance: float = 0.0
    hints: tuple = ()
    mistakes: tuple = ()

    def check(self, key, given):
        if given is None or given is Ellipsis:
            return Verdict(key, NOT_ATTEMPTED, self.text)
        right = self.answer()
        if _same_answer(given, right, self.tolerance):
            return Verdict(key, PASSED, self.text)
        for wrong_answer, hints in self.mistakes:
            if _same_answer(given, wrong_answer(), self.tolerance):
                return Verdict(key, FAILED, f"{self.text} Not {given!r}.", hints)
        return Verdict(key, FAILED, f"{self.text} Not {given!r}.", self.hints)


def _same_answer(given, right, tolerance):
    if isinstance(right, tuple):
        return (isinstance(given, (tuple, list)) and len(given) == len(right)
                and all(_same_answer(g, r, tolerance) for g, r in zip(given, right)))
    try:
        given = float(given)
    except (TypeError, ValueError):
        return False
    return abs(given - right) <= tolerance * abs(right) if tolerance else given == right


def check_answers(questions, answers):
    """Check the answers given by keyword (``None``: not answered yet) against ``questions``, a dict of
    ``Question`` by key. ValueError for a key that is not a question. Returns ``Verdicts``, one per question."""
    unknown = set(answers) - set(questions)
    if unknown:
        raise ValueError(f"no question is called {sorted(unknown)}; the questions are {sorted(questions)}")
    return Verdicts(question.check(key, answers.get(key)) for key, question in questions.items())
