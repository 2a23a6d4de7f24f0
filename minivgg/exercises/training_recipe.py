"""Lesson 5's exercises: the SGD-with-momentum step, the learning-rate schedule, He initialisation, and
questions on the training recipe of Sect. 3.1.

::

    from minivgg.exercises import training_recipe
    training_recipe.check_sgd_momentum_step(sgd_momentum_step)   # (param, grad, velocity, lr, momentum, decay)
    training_recipe.check_learning_rates(learning_rates)         # (val_accuracies, lr, factor, patience, reductions)
    training_recipe.check_he_normal(he_normal)                   # (shape, rng) -> weights
"""
import numpy as np

from ..layers import Conv2d
from ..training.schedule import ReduceOnPlateau
from . import library
from .checking import (FAILED, NOT_ATTEMPTED, PASSED, Case, Mistake, Question, Verdict, attempt,
                       check_answers as _check_answers, compare_with_library)

__all__ = ["check_sgd_momentum_step", "check_learning_rates", "check_he_normal", "QUESTIONS", "check_answers"]


# ---- the SGD step -------------------------------------------------------------------------------------------

def _steps_of(step):
    """Three steps of ``step`` (in place) with a learning rate divided by 10 before the third, from a velocity
    that is not zero: the result tells every placement of the learning rate and every sign apart."""
    def run(param, velocity, grads, rates, momentum, weight_decay):
        for grad, rate in zip(grads, rates):
            step(param, grad, velocity, rate, momentum, weight_decay)
        return param, velocity
    return run


def _sgd_cases():
    rng = np.random.default_rng(11)
    cases = []
    for shape, dtype, scale in [((64, 3, 3, 3), np.float32, 0.01), ((10, 256), np.float64, 0.05),
                                ((128,), np.float32, 0.0)]:
        # Weights of a fresh layer (biases start at zero), gradients and a velocity of the size training gives.
        param = rng.normal(0, scale, shape) if scale else np.zeros(shape)
        grads = [rng.normal(0, 1e-3, shape).astype(dtype) for _ in range(3)]
        velocity = rng.normal(0, 1e-4, shape)
        cases.append(Case(f"{np.dtype(dtype).name} {shape}, learning rate 1e-2, 1e-2, then 1e-3, momentum 0.9, "
                          f"weight decay 5e-4", (param.astype(dtype), velocity.astype(dtype), grads,
                                                 (1e-2, 1e-2, 1e-3), 0.9, 5e-4)))
    return cases


def _momentum_sign(param, grad, velocity, lr, momentum, decay):
    velocity *= -momentum
    velocity -= lr * (grad + decay * param)
    param += velocity


def _step_uphill(param, grad, velocity, lr, momentum, decay):
    velocity *= momentum
    velocity -= lr * (grad + decay * param)
    param -= velocity


def _rate_outside(param, grad, velocity, lr, momentum, decay):
    velocity *= momentum
    velocity += grad + decay * param
    param -= lr * velocity


def _no_decay(param, grad, velocity, lr, momentum, decay):
    library.sgd_momentum_update(param, grad, velocity, lr, momentum, 0.0)


def _decay_after(param, grad, velocity, lr, momentum, decay):
    """Weight decay taken from the updated weights instead of the current ones."""
    velocity *= momentum
    velocity -= lr * grad
    param += velocity
    velocity -= lr * decay * param
    param -= lr * decay * param


def _untouched(case, got, want):
    param, velocity = case.arguments[:2]
    return np.array_equal(got[0], param) and np.array_equal(got[1], velocity)


SGD_MISTAKES = (
    Mistake(("param and velocity did not change: update them in place (velocity *= ..., param += ...); the "
             "optimiser keeps references to these arrays, so a new array it never sees",
             "x = x + y makes a new array; x += y (or x[...] = ...) changes the one you were given"), _untouched),
    Mistake.computing(_steps_of(_momentum_sign),
                      "your velocity flips sign at every step: momentum keeps it going the same way, v <- +m v - ...",
                      "v <- momentum * v - lr * (grad + weight_decay * param); param <- param + v"),
    Mistake.computing(_steps_of(_step_uphill),
                      "your weights move up the gradient: the velocity already holds -lr * grad, so add it",
                      "param <- param + v"),
    Mistake.computing(_steps_of(_rate_outside),
                      "that is PyTorch's form, the learning rate outside the velocity: the paper follows Krizhevsky "
                      "et al. (as Caffe), with the learning rate inside it, so lowering the rate slows the very next "
                      "step", "v <- momentum * v - lr * (grad + weight_decay * param); param <- param + v"),
    Mistake.computing(_steps_of(_no_decay),
                      "the weight decay is missing: the L2 penalty 5e-4 * |w|^2 / 2 adds weight_decay * param to "
                      "the gradient"),
    Mistake.computing(_steps_of(_decay_after), "the weight decay must use the weights before the step, added to "
                                               "the gradient inside the velocity"),
)


def check_sgd_momentum_step(sgd_momentum_step):
    """Compare ``sgd_momentum_step(param, grad, velocity, learning_rate, momentum, weight_decay)`` (updating
    ``param`` and ``velocity`` in place, returning nothing) with the library's update over three steps whose
    learning rate changes, from a non-zero velocity."""
    return compare_with_library("sgd_momentum_step", _steps_of(sgd_momentum_step),
                                _steps_of(library.sgd_momentum_update), _sgd_cases(), SGD_MISTAKES,
                                ("after the first step, compare param and velocity with the formula by hand",
                                 "v <- momentum * v - lr * (grad + weight_decay * param); param <- param + v"),
                                names=("param", "velocity"))


# ---- the learning-rate schedule -----------------------------------------------------------------------------

def _library_rates(accuracies, learning_rate, factor, patience, max_reductions):
    schedule = ReduceOnPlateau(learning_rate, factor, patience, max_reductions)
    rates = []
    for accuracy in accuracies:
        if schedule.epoch_end(accuracy):
            break
        rates.append(schedule.learning_rate)
    return np.array(rates, dtype=np.float64)


def _schedule_cases():
    rng = np.random.default_rng(12)
    rising = np.minimum(0.2 + 0.08 * np.arange(40), 0.9) + rng.normal(0, 0.01, 40)  # a training curve with noise
    stairs = np.repeat([0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.75, 0.75, 0.75, 0.75], 3)
    tiny_gains = 0.5 + 5e-5 * np.arange(30)  # improvements below min_improvement do not count
    cases = [Case("a rising, noisy validation accuracy, patience 2", (rising, 1e-2, 0.1, 2, 3)),
             Case("a staircase of plateaus, patience 3", (stairs, 1e-2, 0.1, 3, 3)),
             Case("gains of 5e-5 an epoch (below the 1e-4 that counts), patience 2", (tiny_gains, 1e-2, 0.1, 2, 3)),
             Case("a staircase, factor 0.5, one reduction allowed", (stairs, 0.05, 0.5, 2, 1))]
    return cases


def _rates_without_reset(accuracies, learning_rate, factor, patience, max_reductions):
    best, waiting, reductions, rates = -np.inf, 0, 0, []
    for accuracy in accuracies:
        if accuracy > best + 1e-4:
            best, waiting = accuracy, 0
        else:
            waiting += 1
            if waiting >= patience:
                if reductions == max_reductions:
                    break
                learning_rate *= factor
                reductions += 1  # the counter is not reset: every later flat epoch reduces again
        rates.append(learning_rate)
    return np.array(rates)


def _rates_without_patience(accuracies, learning_rate, factor, patience, max_reductions):
    return _library_rates(accuracies, learning_rate, factor, 1, max_reductions)


def _rates_stopping_at_last_reduction(accuracies, learning_rate, factor, patience, max_reductions):
    rates = _library_rates(accuracies, learning_rate, factor, patience, max_reductions)
    final = learning_rate * factor ** max_reductions
    last = np.flatnonzero(rates <= final * (1 + 1e-9))
    return rates if last.size == 0 else rates[:last[0]]


def _rates_counting_any_gain(accuracies, learning_rate, factor, patience, max_reductions):
    schedule = ReduceOnPlateau(learning_rate, factor, patience, max_reductions, min_improvement=0.0)
    rates = []
    for accuracy in accuracies:
        if schedule.epoch_end(accuracy):
            break
        rates.append(schedule.learning_rate)
    return np.array(rates)


SCHEDULE_MISTAKES = (
    Mistake.computing(_rates_without_reset,
                      "after a reduction you reduce again at the very next flat epoch: start counting the plateau "
                      "afresh after each reduction", "set the count of epochs without improvement to 0 when you "
                      "reduce"),
    Mistake.computing(_rates_without_patience,
                      "you reduce at the first epoch without improvement: wait `patience` epochs"),
    Mistake.computing(_rates_stopping_at_last_reduction,
                      "you stop training when you make the last reduction: train at the last learning rate until "
                      "its own plateau, then stop (the paper reduced three times and stopped after the next one)"),
    Mistake.computing(_rates_counting_any_gain,
                      "an accuracy that beats the best by less than 1e-4 must not count as an improvement (noise)",
                      "improved = accuracy > best + 1e-4"),
)


def check_learning_rates(learning_rates):
    """Compare ``learning_rates(val_accuracies, learning_rate, factor, patience, max_reductions)`` with
    ``minivgg.training.schedule.ReduceOnPlateau``.

    ``learning_rates`` returns the learning rate in force after each epoch's validation accuracy, one per epoch,
    and stops (returns the list so far, without that epoch) at the epoch where training ends: the first plateau
    after ``max_reductions`` reductions. An epoch improves when its accuracy beats the best so far by more than
    1e-4; ``patience`` epochs without improvement make a plateau; each plateau multiplies the rate by ``factor``
    and starts the count again.
    """
    return compare_with_library("learning_rates", learning_rates, _library_rates, _schedule_cases(), SCHEDULE_MISTAKES,
                                ("print your rates beside the accuracies and mark where each plateau begins",
                                 "keep best, epochs_without_improvement and reductions; on a plateau, either stop "
                                 "(reductions == max_reductions) or reduce and reset the count"),
                                rtol=1e-12)


# ---- He initialisation --------------------------------------------------------------------------------------

# fan_out = 3 fan_in first, so that every wrong reading of the formula gives its own std.
HE_SHAPES = ((384, 128, 3, 3), (64, 3, 3, 3), (1000, 4096), (512, 512, 3, 3))


def _fan_in(shape):
    return int(np.prod(shape[1:]))


def check_he_normal(he_normal):
    """Check ``he_normal(shape, rng) -> array`` statistically: for four layer shapes, the mean is 0, the
    standard deviation sqrt(2 / fan_in) (fan_in = in_channels * k * k), and the shape of a normal
    distribution (kurtosis 3), each within four standard errors; the same generator seed gives the same
    weights."""
    exercise = "he_normal"
    for shape in HE_SHAPES:
        weights, verdict = attempt(exercise, lambda: he_normal(shape, np.random.default_rng(13)))
        if verdict is not None:
            return verdict if verdict.status == NOT_ATTEMPTED else Verdict(exercise, FAILED, f"shape {shape}: "
                                                                           f"{verdict.summary}", verdict.hints)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != shape:
            return Verdict(exercise, FAILED, f"shape {shape}: got an array of shape {weights.shape}",
                           ["draw exactly `shape` numbers: rng.normal(0, std, size=shape)"])
        fan_in, fan_out = _fan_in(shape), shape[0] * int(np.prod(shape[2:]))
        n, expected = weights.size, np.sqrt(2.0 / fan_in)
        std, mean = weights.std(), weights.mean()
        summary = f"shape {shape}: std {std:.4g} where sqrt(2 / fan_in) = {expected:.4g}"
        if abs(mean) > 4 * expected / np.sqrt(n):
            return Verdict(exercise, FAILED, f"shape {shape}: mean {mean:.3g}, not 0", ["centre the weights on 0"])
        if abs(std / expected - 1) > 4 / np.sqrt(2 * n):
            readings = [(np.sqrt(2.0 / fan_out), ("you divide by the fan-out (out_channels * k * k); He's forward "
                                                 "rule divides by the fan-in, in_channels * k * k",)),
                        (2.0 / fan_in, ("your std is 2 / fan_in: that is the variance; take its square root",)),
                        (np.sqrt(2.0 / (fan_in + fan_out)), ("that is Glorot's variance, 2 / (fan_in + fan_out); "
                                                           "He's is 2 / fan_in",)),
                        (np.sqrt(2.0 / shape[1]), ("your fan-in leaves out the kernel: each output sums "
                                                  "in_channels * k * k products",)),
                        (np.sqrt(1.0 / fan_in), ("the factor 2 is missing: a ReLU zeroes half of its input, which "
                                                "the 2 makes up for",))]
            for value, hints in readings:
                if abs(std / value - 1) < 0.02 and abs(value / expected - 1) > 0.02:
                    return Verdict(exercise, FAILED, summary, hints)
            return Verdict(exercise, FAILED, summary, ["std = sqrt(2 / fan_in), fan_in = shape[1] * kh * kw "
                                                       "(the number of products each output sums)"])
        kurtosis = np.mean((weights - mean) ** 4) / std ** 4
        if abs(kurtosis - 3) > 4 * np.sqrt(24 / n):
            return Verdict(exercise, FAILED, f"shape {shape}: the right std but kurtosis {kurtosis:.2f}, where a "
                                             f"normal distribution has 3", ["He et al. draw from a normal "
                                                                            "distribution: rng.normal"])
        again = np.asarray(he_normal(shape, np.random.default_rng(13)))
        if not np.array_equal(again, weights):
            return Verdict(exercise, FAILED, "the same generator seed gave different weights",
                           ["draw from the generator you are given (rng.normal), not np.random"])
    return Verdict(exercise, PASSED, f"mean 0, std sqrt(2 / fan_in) and normal, within four standard errors, "
                                     f"for shapes {', '.join(str(s) for s in HE_SHAPES)}")


# ---- questions ----------------------------------------------------------------------------------------------

def _lowest_rate():
    schedule = ReduceOnPlateau()
    while not schedule.epoch_end(0.5):
        pass
    return schedule.learning_rate


def _velocity_limit():
    param, velocity = np.zeros(1), np.zeros(1)
    for _ in range(1000):
        library.sgd_momentum_update(param, np.ones(1), velocity, 1.0, 0.9, 0.0)
    return round(float(-velocity[0]), 6)


def _drawn_std(weight_init, channels, kernel=3):
    return float(np.std(Conv2d(channels, 2 * channels, kernel, rng=0, weight_init=weight_init, dtype=np.float64)
                        .params["W"]))


QUESTIONS = {
    "paper_variance_as_std": Question(
        "The paper draws the weights of net A 'from a normal distribution with the zero mean and 10^-2 "
        "variance'. Taken literally, what standard deviation is that?", lambda: float(np.sqrt(1e-2)),
        tolerance=1e-9, hints=("the standard deviation is the square root of the variance",),
        mistakes=((lambda: 1e-2, ("0.01 is the std the released models (and minivgg) use, a variance of 1e-4; the "
                                  "sentence says variance 10^-2",)),)),
    "he_std_conv3_1": Question(
        "He initialisation: the standard deviation of conv3_1's weights in D (128 -> 256 channels, 3x3)? (three "
        "significant digits)", lambda: _drawn_std("he", 128), tolerance=0.01,
        hints=("sqrt(2 / fan_in), fan_in = 128 x 3 x 3",)),
    "he_over_glorot": Question(
        "For a 3x3 layer with C inputs and 2C outputs, He's std divided by Glorot's? (two decimals)",
        lambda: _drawn_std("he", 64) / _drawn_std("glorot", 64), tolerance=0.01,
        hints=("He: 2 / fan_in; Glorot: 2 / (fan_in + fan_out), with fan_out = 2 fan_in",)),
    "lowest_learning_rate": Question(
        "Sect. 3.1's schedule starts at 1e-2 and divides by 10 three times: the last learning rate?", _lowest_rate,
        tolerance=1e-9, hints=("1e-2 / 10^3",)),
    "velocity_limit": Question(
        "With momentum 0.9, no weight decay and the same gradient g at every step, the velocity tends to -lr * g "
        "times what?", _velocity_limit, tolerance=1e-6,
        hints=("at the limit v = 0.9 v - lr g: solve for v",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
