"""The lessons' exercise checkers: each accepts the library's own function (and a right one written here), says
"not attempted" for the stub, and rejects a planted bug with the hint that names it.

The planted bugs are written here, independently of the checkers' own models of the mistakes, the way a learner
would make them: an off-by-one padding, a transposed reshape, a missing flip, a wrong tie rule, a wrong sign.
"""
import ast
from pathlib import Path

import numpy as np
import pytest

from minivgg.exercises import (backpropagation, configurations, convolution, data_parallel, dense_evaluation,
                               gpu_kernels, gpu_precision, localisation, receptive_fields, scale_jittering,
                               training_recipe, transfer_features)
from minivgg.exercises import library
from minivgg.exercises.checking import FAILED, NOT_ATTEMPTED, PASSED, Verdicts


def stub(*arguments, **keywords):
    raise NotImplementedError("fill me in")


def assert_passes(verdict):
    assert verdict.status == PASSED, verdict


def assert_rejected(verdict, words):
    """FAILED, and the first hint (the one shown) names the mistake."""
    assert verdict.status == FAILED, verdict
    assert verdict.hints, verdict
    assert words in verdict.hints[0], verdict


# ---- the verdict itself --------------------------------------------------------------------------------------

def test_a_stub_is_reported_not_attempted_never_raised():
    verdict = convolution.check_conv_forward(stub)
    assert verdict.status == NOT_ATTEMPTED and not verdict.attempted and not verdict.passed
    assert "not attempted" in repr(verdict)


def test_a_function_that_raises_fails_with_its_message_and_does_not_stop_the_lesson():
    def broken(x, W, b, stride, padding):
        return x[10 ** 6]
    verdict = convolution.check_conv_forward(broken)
    assert verdict.status == FAILED and "IndexError" in verdict.summary


def test_hints_are_graded_one_more_at_each_call():
    def unpadded(x, W, b, stride, padding):
        return naive_conv(x, W, b, stride, 0)
    verdict = convolution.check_conv_forward(unpadded)
    shown = repr(verdict)
    assert "hint 1/2" in shown and "hint 2/2" not in shown and ".hint()" in shown
    assert verdict.hint() == verdict.hints[1]
    assert "hint 2/2" in repr(verdict)


def test_questions_not_answered_are_not_attempted_and_unknown_names_are_refused():
    verdicts = receptive_fields.check_answers()
    assert isinstance(verdicts, Verdicts) and all(v.status == NOT_ATTEMPTED for v in verdicts)
    assert "0 of" in repr(verdicts)
    with pytest.raises(ValueError, match="E_after_pool4"):
        receptive_fields.check_answers(E_after_pool_4=100)


ALL_QUESTIONS = [(module.__name__.split(".")[-1], key, question) for module in
                 (convolution, backpropagation, receptive_fields, configurations, training_recipe, scale_jittering,
                  dense_evaluation, gpu_kernels, gpu_precision, data_parallel, localisation, transfer_features)
                 for key, question in module.QUESTIONS.items()]


@pytest.mark.parametrize("module, key, question", ALL_QUESTIONS, ids=[f"{m}.{k}" for m, k, _ in ALL_QUESTIONS])
def test_every_question_accepts_the_librarys_answer_and_refuses_another(module, key, question):
    right = question.answer()
    assert question.check(key, right).status == PASSED
    wrong = tuple(v + 7 for v in right) if isinstance(right, tuple) else right * 1.5 + 7
    assert question.check(key, wrong).status == FAILED
    for wrong_answer, hints in question.mistakes:
        verdict = question.check(key, wrong_answer())
        assert verdict.status == FAILED and verdict.hints[0] == hints[0]


def test_the_questions_answers_are_the_papers_numbers():
    """A few answers the lessons rely on, checked against the paper and its arithmetic."""
    answers = {key: q.answer() for key, q in receptive_fields.QUESTIONS.items()}
    assert answers["D_conv5_3"] == 196 and answers["D_3x3_layers"] == 13 and answers["C_1x1_widening"] == 0
    assert answers["E_after_pool4"] == 124  # 116 after conv4_4, + 8 for pool4
    assert configurations.QUESTIONS["conv3_1_parameters"].answer() == 128 * 256 * 9 + 256
    assert convolution.QUESTIONS["dot_products"].answer() == (256, 128 * 9)
    assert dense_evaluation.QUESTIONS["score_map_shape"].answer() == (6, 10)
    assert dense_evaluation.QUESTIONS["fc6_kernel"].answer() == 7
    assert training_recipe.QUESTIONS["velocity_limit"].answer() == pytest.approx(10)
    assert scale_jittering.QUESTIONS["jittered_test_scales"].answer() == (256, 384, 512)
    assert localisation.QUESTIONS["iou_half_shift"].answer() == pytest.approx(1 / 3)
    assert gpu_precision.QUESTIONS["tf32_rounding_error"].answer() == pytest.approx(2 ** -11, rel=0.01)


def test_a_known_slip_gets_its_own_hint():
    conv4_4 = receptive_fields.QUESTIONS["E_after_pool4"].mistakes[0][0]()
    verdicts = receptive_fields.check_answers(E_after_pool4=conv4_4)
    assert_rejected(verdicts[0], "conv4_4")
    verdicts = training_recipe.check_answers(paper_variance_as_std=0.01)
    assert_rejected(verdicts[0], "released models")


# ---- lesson 1 ------------------------------------------------------------------------------------------------

def naive_conv(x, W, b, stride, padding, shift=0, flip=False, bias=True, dtype=None, stride_in_window=True):
    """A learner's loops, with switches for the usual slips."""
    n, c, h, w = x.shape
    f, _, k, _ = W.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding + shift, padding + shift), (padding, padding)))
    out_h, out_w = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    out = np.zeros((n, f, out_h, out_w), dtype=dtype or x.dtype)
    kernel = W[:, :, ::-1, ::-1] if flip else W
    for image in range(n):
        for filt in range(f):
            for y in range(out_h):
                for x_ in range(out_w):
                    top, left = (y * stride, x_ * stride) if stride_in_window else (y, x_)
                    window = x_pad[image, :, top:top + k, left:left + k]
                    out[image, filt, y, x_] = np.sum(window * kernel[filt]) + (b[filt] if bias else 0)
    return out


def test_conv_checker_accepts_the_library_and_right_loops():
    assert_passes(convolution.check_conv_forward(library.conv2d_forward_loops))
    assert_passes(convolution.check_conv_forward(naive_conv))
    assert_passes(convolution.check_conv_forward(lambda x, W, b, s, p: library.conv2d_forward(x, W, b, s, p)[0]))


@pytest.mark.parametrize("slip, words", [
    (dict(shift=1), "shifted by one pixel"),                      # an off-by-one padding
    (dict(flip=True), "flipped the kernel"),
    (dict(bias=False), "add the bias"),
    (dict(dtype=np.float64), "dtype"),
    (dict(stride_in_window=False), "stride 2"),
])
def test_conv_checker_rejects_a_planted_bug(slip, words):
    assert_rejected(convolution.check_conv_forward(lambda x, W, b, s, p: naive_conv(x, W, b, s, p, **slip)), words)


def test_conv_checker_rejects_a_missing_padding():
    assert_rejected(convolution.check_conv_forward(lambda x, W, b, s, p: naive_conv(x, W, b, s, 0)), "unpadded")


def learner_im2col(x, kh, kw, stride, padding, order="cij", transpose=False, rows="nyx"):
    n, c, h, w = x.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h, out_w = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    windows = {}
    for image in range(n):
        for y in range(out_h):
            for x_ in range(out_w):
                window = x_pad[image, :, y * stride:y * stride + kh, x_ * stride:x_ * stride + kw]
                windows[image, y, x_] = (window.transpose(1, 2, 0) if order == "ijc" else window).reshape(-1)
    keys = sorted(windows, key=(lambda k: k) if rows == "nyx" else (lambda k: (k[0], k[2], k[1])))
    cols = np.array([windows[key] for key in keys])
    return cols.T if transpose else cols


def test_im2col_checker():
    assert_passes(convolution.check_im2col(library.im2col))
    assert_passes(convolution.check_im2col(learner_im2col))
    # a transposed reshape
    assert_rejected(convolution.check_im2col(lambda *a: learner_im2col(*a, order="ijc")), "(i, j, c)")
    assert_rejected(convolution.check_im2col(lambda *a: learner_im2col(*a, transpose=True)), "transpose")
    assert_rejected(convolution.check_im2col(lambda *a: learner_im2col(*a, rows="nxy")), "wrong order")


# ---- lesson 2 ------------------------------------------------------------------------------------------------

def learner_col2im(dcols, x_shape, kh, kw, stride, padding, assign=False, order="cij", crop=True):
    n, c, h, w = x_shape
    out_h, out_w = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    dx = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dcols.dtype)
    row = 0
    for image in range(n):
        for y in range(out_h):
            for x_ in range(out_w):
                values = (dcols[row].reshape(kh, kw, c).transpose(2, 0, 1) if order == "ijc"
                          else dcols[row].reshape(c, kh, kw))
                target = (image, slice(None), slice(y * stride, y * stride + kh), slice(x_ * stride, x_ * stride + kw))
                if assign:
                    dx[target] = values
                else:
                    dx[target] += values
                row += 1
    return dx[:, :, padding:padding + h, padding:padding + w] if crop else dx


def test_col2im_checker():
    assert_passes(backpropagation.check_col2im(library.col2im))
    assert_passes(backpropagation.check_col2im(learner_col2im))
    assert backpropagation.check_col2im(stub).status == NOT_ATTEMPTED
    assert_rejected(backpropagation.check_col2im(lambda *a: learner_col2im(*a, assign=True)), "sum of their gradients")
    assert_rejected(backpropagation.check_col2im(lambda *a: learner_col2im(*a, order="ijc")), "transposed reshape")
    assert_rejected(backpropagation.check_col2im(lambda *a: learner_col2im(*a, crop=False)), "padded array")


def learner_max_pool_backward(dout, x, k, s, ties="first", assign=False):
    dx = np.zeros_like(x)
    for image, channel, y, x_ in np.ndindex(*dout.shape):
        window = x[image, channel, y * s:y * s + k, x_ * s:x_ * s + k]
        if ties == "all":
            winners = np.argwhere(window == window.max())
        elif ties == "last":
            winners = [np.argwhere(window == window.max())[-1]]
        else:
            winners = [np.unravel_index(np.argmax(window), window.shape)]
        for i, j in winners:
            if assign:
                dx[image, channel, y * s + i, x_ * s + j] = dout[image, channel, y, x_]
            else:
                dx[image, channel, y * s + i, x_ * s + j] += dout[image, channel, y, x_]
    return dx


def test_max_pool_backward_checker():
    assert_passes(backpropagation.check_max_pool_backward(library.max_pool2d_backward_loops))
    assert_passes(backpropagation.check_max_pool_backward(learner_max_pool_backward))
    assert_rejected(backpropagation.check_max_pool_backward(lambda *a: learner_max_pool_backward(*a, ties="last")),
                    "last maximum")  # a wrong max-pool tie rule
    assert_rejected(backpropagation.check_max_pool_backward(lambda *a: learner_max_pool_backward(*a, ties="all")),
                    "every maximum")
    assert_rejected(backpropagation.check_max_pool_backward(lambda *a: learner_max_pool_backward(*a, assign=True)),
                    "overlapping")


def learner_lrn_backward(dout, x, size, alpha, beta, k, cross=True, two=2.0, symmetric=False):
    channels = x.shape[1]
    lo, hi = (size - 1) // 2, size // 2

    def window(c):
        return range(max(0, c - lo), min(channels, c + hi + 1))

    s = np.stack([k + alpha * sum(x[:, d] ** 2 for d in window(c)) for c in range(channels)], axis=1)
    y = x * s ** -beta
    dx = dout * s ** -beta
    if cross:
        for j in range(channels):
            cs = window(j) if symmetric else [c for c in range(channels) if j in window(c)]
            for c in cs:
                dx[:, j] -= two * alpha * beta * x[:, j] * dout[:, c] * y[:, c] / s[:, c]
    return dx


def test_lrn_backward_checker():
    assert_passes(backpropagation.check_lrn_backward(library.lrn_backward_loops))
    assert_passes(backpropagation.check_lrn_backward(learner_lrn_backward))
    assert_rejected(backpropagation.check_lrn_backward(lambda *a: learner_lrn_backward(*a, cross=False)), "direct term")
    assert_rejected(backpropagation.check_lrn_backward(lambda *a: learner_lrn_backward(*a, two=1.0)), "2x")
    assert_rejected(backpropagation.check_lrn_backward(lambda *a: learner_lrn_backward(*a, symmetric=True)),
                    "even ones")


# ---- lesson 3 ------------------------------------------------------------------------------------------------

def learner_field(size, jump, start, k, s, p, times_jump=True, update_jump=True, sign=1):
    return (size + (k - 1) * (jump if times_jump else 1), jump * (s if update_jump else 1),
            start + sign * ((k - 1) / 2 - p) * jump)


def test_receptive_field_checker():
    assert_passes(receptive_fields.check_receptive_field_after(learner_field))
    assert receptive_fields.check_receptive_field_after(stub).status == NOT_ATTEMPTED
    assert_rejected(receptive_fields.check_receptive_field_after(lambda *a: learner_field(*a, times_jump=False)),
                    "stride 2")
    assert_rejected(receptive_fields.check_receptive_field_after(lambda *a: learner_field(*a, update_jump=False)),
                    "never grows")
    assert_rejected(receptive_fields.check_receptive_field_after(lambda *a: learner_field(*a, sign=-1)), "wrong way")


# ---- lesson 4 ------------------------------------------------------------------------------------------------

def learner_count(column, what="parameters", biases=True, fc1_map=True, kernel_from_cell=True, pooling=True):
    channels, side, first_fc, total = 3, 224, True, 0
    for cell in column:
        if cell.startswith("conv"):
            k = int(cell[4:cell.index("-")]) if kernel_from_cell else 3
            out = int(cell.split("-")[1])
            total += (out * channels * k * k + (out if biases else 0)) if what == "parameters" else (
                side * side * out * channels * k * k if pooling else 224 * 224 * out * channels * k * k)
            channels = out
        elif cell == "maxpool":
            side //= 2
        elif cell.startswith("FC"):
            out = int(cell.split("-")[1])
            inputs = channels * side * side if (first_fc and fc1_map) else channels
            total += (out * inputs + (out if biases else 0)) if what == "parameters" else out * inputs
            channels, first_fc = out, False
    return total


def test_parameter_and_multiply_add_checkers():
    assert_passes(configurations.check_count_parameters(learner_count))
    assert_passes(configurations.check_count_multiply_adds(lambda c: learner_count(c, "macs")))
    assert_rejected(configurations.check_count_parameters(lambda c: learner_count(c, biases=False)), "biases")
    assert_rejected(configurations.check_count_parameters(lambda c: learner_count(c, fc1_map=False)), "FC1")
    assert_rejected(configurations.check_count_parameters(lambda c: learner_count(c, kernel_from_cell=False)),
                    "1x1 convolutions")
    assert_rejected(configurations.check_count_multiply_adds(lambda c: 2 * learner_count(c, "macs")), "FLOPs")
    assert_rejected(configurations.check_count_multiply_adds(lambda c: learner_count(c, "macs", pooling=False)),
                    "halves the side")


# ---- lesson 5 ------------------------------------------------------------------------------------------------

def learner_sgd(param, grad, velocity, lr, momentum, decay, form="paper"):
    if form == "paper":
        velocity[...] = momentum * velocity - lr * (grad + decay * param)
        param += velocity
    elif form == "momentum sign":
        velocity[...] = -momentum * velocity - lr * (grad + decay * param)
        param += velocity
    elif form == "pytorch":
        velocity[...] = momentum * velocity + grad + decay * param
        param -= lr * velocity
    elif form == "no decay":
        velocity[...] = momentum * velocity - lr * grad
        param += velocity
    elif form == "new arrays":
        velocity = momentum * velocity - lr * (grad + decay * param)
        param = param + velocity


def test_sgd_step_checker():
    assert_passes(training_recipe.check_sgd_momentum_step(library.sgd_momentum_update))
    assert_passes(training_recipe.check_sgd_momentum_step(learner_sgd))
    for form, words in (("momentum sign", "flips sign"), ("pytorch", "PyTorch"), ("no decay", "weight decay"),
                        ("new arrays", "in place")):
        assert_rejected(training_recipe.check_sgd_momentum_step(lambda *a, f=form: learner_sgd(*a, form=f)), words)


def learner_rates(accuracies, lr, factor, patience, max_reductions, reset=True, gain=1e-4, stop_at_last=False):
    best, waiting, reductions, rates = -np.inf, 0, 0, []
    for accuracy in accuracies:
        if accuracy > best + gain:
            best, waiting = accuracy, 0
        else:
            waiting += 1
            if waiting >= patience:
                if reductions == max_reductions:
                    break
                lr *= factor
                reductions += 1
                waiting = 0 if reset else waiting
                if stop_at_last and reductions == max_reductions:
                    break
        rates.append(lr)
    return rates


def test_learning_rate_schedule_checker():
    assert_passes(training_recipe.check_learning_rates(learner_rates))
    assert training_recipe.check_learning_rates(stub).status == NOT_ATTEMPTED
    assert_rejected(training_recipe.check_learning_rates(lambda *a: learner_rates(*a, reset=False)), "afresh")
    assert_rejected(training_recipe.check_learning_rates(lambda *a: learner_rates(*a, gain=0.0)), "1e-4")
    assert_rejected(training_recipe.check_learning_rates(lambda *a: learner_rates(*a, stop_at_last=True)),
                    "last learning rate")


def test_he_initialisation_checker():
    def he(shape, rng, fan="in", as_std=True, law="normal"):
        fan_in, fan_out = int(np.prod(shape[1:])), shape[0] * int(np.prod(shape[2:]))
        variance = 2.0 / (fan_in if fan == "in" else fan_out)
        std = np.sqrt(variance) if as_std else variance
        if law == "uniform":
            return rng.uniform(-np.sqrt(3) * std, np.sqrt(3) * std, size=shape)
        return rng.normal(0, std, size=shape)

    from minivgg.initialisation import he_normal
    assert_passes(training_recipe.check_he_normal(he_normal))
    assert_passes(training_recipe.check_he_normal(he))
    assert training_recipe.check_he_normal(stub).status == NOT_ATTEMPTED
    assert_rejected(training_recipe.check_he_normal(lambda s, r: he(s, r, fan="out")), "fan-out")
    assert_rejected(training_recipe.check_he_normal(lambda s, r: he(s, r, as_std=False)), "variance")
    assert_rejected(training_recipe.check_he_normal(lambda s, r: he(s, r, law="uniform")), "normal distribution")
    assert_rejected(training_recipe.check_he_normal(lambda s, r: np.random.normal(0, np.sqrt(2 / np.prod(s[1:])), s)),
                    "generator")


# ---- lesson 6 ------------------------------------------------------------------------------------------------

def test_scale_drawing_checker():
    assert_passes(scale_jittering.check_draw_scale(lambda rng, a, b: int(rng.integers(a, b + 1))))
    assert_rejected(scale_jittering.check_draw_scale(lambda rng, a, b: int(rng.integers(a, b)) if b > a else a),
                    "exclusive")
    assert_rejected(scale_jittering.check_draw_scale(lambda rng, a, b: rng.uniform(a, b)), "draw integers")
    assert_rejected(scale_jittering.check_draw_scale(lambda rng, a, b: int(round(rng.normal((a + b) / 2, (b - a) / 4)))
                                                     if b > a else a), "[S_min, S_max]")


def test_rescaled_size_checker():
    def rescaled(h, w, s, rounding=round, smallest=True):
        if (h <= w) == smallest:
            return s, max(1, int(rounding(w * s / h)))
        return max(1, int(rounding(h * s / w))), s

    from minivgg.data.transforms import rescaled_size
    assert_passes(scale_jittering.check_rescaled_size(rescaled_size))
    assert_passes(scale_jittering.check_rescaled_size(lambda h, w, s: rescaled(h, w, s, lambda v: np.floor(v + 0.5))))
    assert_rejected(scale_jittering.check_rescaled_size(lambda h, w, s: rescaled(h, w, s, int)), "truncating")
    assert_rejected(scale_jittering.check_rescaled_size(lambda h, w, s: rescaled(h, w, s, smallest=False)),
                    "largest side")


def test_colour_offset_checker():
    def offset(eigenvalues, eigenvectors, alpha, rows=False, scale=255.0):
        vectors = eigenvectors.T if rows else eigenvectors
        return vectors @ (alpha * eigenvalues) / scale

    assert_passes(scale_jittering.check_colour_offset(offset))
    assert_rejected(scale_jittering.check_colour_offset(lambda *a: offset(*a, rows=True)), "as rows")  # transposed
    assert_rejected(scale_jittering.check_colour_offset(lambda *a: offset(*a, scale=1.0)), "255 times")


# ---- lesson 7 ------------------------------------------------------------------------------------------------

def test_fc_as_convolution_checker():
    assert_passes(dense_evaluation.check_fc_as_convolution(lambda W, c, k: W.reshape(len(W), c, k, k)))
    assert_rejected(dense_evaluation.check_fc_as_convolution(lambda W, c, k: W.reshape(len(W), k, k, c)
                                                             .transpose(0, 3, 1, 2)), "transposed reshape")


def learner_dense(net, x, flip, flip_axis=3, softmax_first=False, average_scores=False):
    import minivgg

    def softmax(s, axis=1):
        e = np.exp(s - s.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    views = [x, x[:, :, ::-1, :] if flip_axis == 2 else x[:, :, :, ::-1]] if flip else [x]
    maps = [np.asarray(minivgg.to_host(net.forward(np.ascontiguousarray(v))), np.float64) for v in views]
    if average_scores:
        return softmax(np.mean([m.mean(axis=(2, 3)) for m in maps], axis=0))
    if softmax_first:
        return np.mean([softmax(m).mean(axis=(2, 3)) for m in maps], axis=0)
    return np.mean([softmax(m.mean(axis=(2, 3))) for m in maps], axis=0)


def test_dense_posteriors_checker():
    assert_passes(dense_evaluation.check_dense_posteriors(learner_dense))
    assert dense_evaluation.check_dense_posteriors(stub).status == NOT_ATTEMPTED
    assert_rejected(dense_evaluation.check_dense_posteriors(lambda net, x, flip: learner_dense(net, x, False)),
                    "flipped images")  # a missing flip
    assert_rejected(dense_evaluation.check_dense_posteriors(lambda *a: learner_dense(*a, flip_axis=2)),
                    "upside down")
    assert_rejected(dense_evaluation.check_dense_posteriors(lambda *a: learner_dense(*a, softmax_first=True)),
                    "class score map over space first")
    assert_rejected(dense_evaluation.check_dense_posteriors(lambda *a: learner_dense(*a, average_scores=True)),
                    "soft-max posteriors")


def test_multi_crop_checker():
    from minivgg.evaluation.posteriors import multi_crop_offsets
    assert_passes(dense_evaluation.check_multi_crop_offsets(multi_crop_offsets))
    floor = lambda h, w, c: [((i * (h - c)) // 4, (j * (w - c)) // 4) for i in range(5) for j in range(5)]  # noqa: E731
    assert_rejected(dense_evaluation.check_multi_crop_offsets(floor), "round")


# ---- lesson 8 ------------------------------------------------------------------------------------------------

def learner_tf32(x, mode="even"):
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    if mode == "even":
        bits += 0xFFF + ((bits >> 13) & 1)
    elif mode == "up":
        bits += 0x1000
    bits &= ~np.uint64(0x1FFF)
    return bits.astype(np.uint32).view(np.float32)


def test_tf32_rounding_checker():
    assert_passes(gpu_precision.check_round_to_tf32(lambda x: library.round_like_tensor_cores(x, "tf32")))
    assert_passes(gpu_precision.check_round_to_tf32(learner_tf32))
    assert_rejected(gpu_precision.check_round_to_tf32(lambda x: learner_tf32(x, "truncate")), "truncate")
    assert_rejected(gpu_precision.check_round_to_tf32(lambda x: learner_tf32(x, "up")), "halfway")
    assert_rejected(gpu_precision.check_round_to_tf32(lambda x: x.astype(np.float16).astype(np.float32)),
                    "exponent")


# ---- lesson 8b -----------------------------------------------------------------------------------------------

def test_kernel_index_checkers():
    pytest.importorskip("numba")

    def read(y, x, i, j, s, p, h, w, pad=True):
        row, column = y * s - (p if pad else 0) + i, x * s - (p if pad else 0) + j
        return row, column, 0 <= row < h and 0 <= column < w

    def fed(y, x, i, j, s, p, h, w, divisible=True):
        row, column = y + p - i, x + p - j
        if row < 0 or column < 0 or (divisible and (row % s or column % s)):
            return row, column, False
        return row // s, column // s, row // s < h and column // s < w

    assert_passes(gpu_kernels.check_input_pixel_read_by(read))
    assert_passes(gpu_kernels.check_output_pixel_fed_by(fed))
    assert gpu_kernels.check_input_pixel_read_by(stub).status == NOT_ATTEMPTED
    assert_rejected(gpu_kernels.check_input_pixel_read_by(lambda *a: read(*a, pad=False)), "padding")
    assert_rejected(gpu_kernels.check_output_pixel_fed_by(lambda *a: fed(*a, divisible=False)),
                    "multiple of the stride")


# ---- lesson 9 ------------------------------------------------------------------------------------------------

def learner_ring(arrays, all_gather=True, average=False):
    n = len(arrays)
    chunks = [np.array_split(np.array(a, np.float64), n) for a in arrays]
    sent = [0] * n
    for step in range(n - 1):
        moves = [(r, (r - step) % n) for r in range(n)]
        parts = [chunks[r][i].copy() for r, i in moves]
        for (r, i), part in zip(moves, parts):
            chunks[(r + 1) % n][i] += part
            sent[r] += part.size
    if all_gather:
        for step in range(n - 1):
            moves = [(r, (r + 1 - step) % n) for r in range(n)]
            parts = [chunks[r][i].copy() for r, i in moves]
            for (r, i), part in zip(moves, parts):
                chunks[(r + 1) % n][i] = part
                sent[r] += part.size
    results = [np.concatenate(c) / (n if average else 1) for c in chunks]
    return results, sent


def test_ring_allreduce_checker():
    from minivgg.distributed.cost_model import simulate_ring_allreduce
    assert_passes(data_parallel.check_ring_allreduce(simulate_ring_allreduce))
    assert_passes(data_parallel.check_ring_allreduce(learner_ring))
    assert_rejected(data_parallel.check_ring_allreduce(lambda a: learner_ring(a, all_gather=False)), "all-gather")
    assert_rejected(data_parallel.check_ring_allreduce(lambda a: learner_ring(a, average=True)), "sums")
    total = lambda a: ([np.sum(a, axis=0)] * len(a), [(len(a) - 1) * len(a[0])] * len(a))  # noqa: E731
    assert_rejected(data_parallel.check_ring_allreduce(total), "whole gradient")


# ---- lesson 10 -----------------------------------------------------------------------------------------------

def learner_iou(a, b, clamp=True, subtract=True):
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if clamp:
        w, h = max(w, 0), max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - (w * h if subtract else 0)
    return w * h / union


def test_iou_checker():
    assert_passes(localisation.check_iou(learner_iou))
    assert_rejected(localisation.check_iou(lambda a, b: learner_iou(a, b, clamp=False)), "clamp")
    assert_rejected(localisation.check_iou(lambda a, b: learner_iou(a, b, subtract=False)), "twice")


def learner_merge(boxes, scores, threshold, match_scores, keep="sum", combine="mean", sort=True):
    boxes, scores = [np.array(b, float) for b in boxes], [float(s) for s in scores]
    while len(boxes) > 1:
        d = match_scores(np.array(boxes), np.array(boxes))
        np.fill_diagonal(d, np.inf)
        a, b = np.unravel_index(np.argmin(d), d.shape)
        if d[a, b] > threshold:
            break
        box = (boxes[a] + boxes[b]) / 2 if combine == "mean" else np.r_[np.minimum(boxes[a][:2], boxes[b][:2]),
                                                                           np.maximum(boxes[a][2:], boxes[b][2:])]
        score = scores[a] + scores[b] if keep == "sum" else max(scores[a], scores[b])
        boxes = [x for i, x in enumerate(boxes) if i not in (a, b)] + [box]
        scores = [x for i, x in enumerate(scores) if i not in (a, b)] + [score]
    order = np.argsort(-np.array(scores), kind="stable") if sort else np.arange(len(scores))
    return np.array(boxes)[order], np.array(scores)[order]


def test_greedy_merge_checker():
    from minivgg.localisation import greedy_merge
    assert_passes(localisation.check_greedy_merge(lambda b, s, t, m: greedy_merge(b, s, t)[:2]))
    assert_passes(localisation.check_greedy_merge(learner_merge))
    assert localisation.check_greedy_merge(stub).status == NOT_ATTEMPTED
    assert_rejected(localisation.check_greedy_merge(lambda *a: learner_merge(*a, keep="max")), "sum of the scores")
    assert_rejected(localisation.check_greedy_merge(lambda *a: learner_merge(*a, combine="union")), "averages")
    assert_rejected(localisation.check_greedy_merge(lambda *a: learner_merge(*a, sort=False)), "decreasing order")


# ---- lesson 11 -----------------------------------------------------------------------------------------------

def learner_ap(scores, labels, difficult_negative=False, points=11):
    labels = np.where((labels == 0) & difficult_negative, -1, labels)
    keep = labels != 0
    order = np.argsort(-scores[keep])
    positive = labels[keep][order] == 1
    tp, fp = np.cumsum(positive), np.cumsum(~positive)
    recall, precision = tp / positive.sum(), tp / (tp + fp)
    thresholds = np.arange(11) / 10 if points == 11 else np.arange(1, 11) / 10
    return np.mean([precision[recall >= t - 1e-12].max() if (recall >= t - 1e-12).any() else 0 for t in thresholds])


def test_average_precision_checker():
    from minivgg.transfer import average_precision
    assert_passes(transfer_features.check_average_precision(lambda s, l: average_precision(s, l, "voc07")))
    assert_passes(transfer_features.check_average_precision(learner_ap))
    assert_rejected(transfer_features.check_average_precision(lambda s, l: learner_ap(s, l, difficult_negative=True)),
                    "difficult")
    assert_rejected(transfer_features.check_average_precision(lambda s, l: learner_ap(s, l, points=10)), "11")


def test_stack_checker():
    from minivgg.transfer import stack
    assert_passes(transfer_features.check_stack(stack))

    def joined(parts, each=True):
        parts = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in parts] if each else parts
        out = np.concatenate(parts, axis=1)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    assert_passes(transfer_features.check_stack(joined))
    assert_rejected(transfer_features.check_stack(lambda p: joined(p, each=False)), "each part first")


# ---- the lessons ---------------------------------------------------------------------------------------------

LESSONS = sorted((Path(__file__).resolve().parents[2] / "lessons").glob("*.py"))


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_lesson_has_exercises_checked_by_the_library_and_no_solutions(lesson):
    """Each lesson imports its exercises module, hands every stub it defines to a check, asks its questions with
    no answer filled in, and gives no solution: every stub's body is a docstring and `raise NotImplementedError`."""
    tree = ast.parse(lesson.read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "minivgg.exercises" and any(a.asname == "exercises" for a in node.names)]
    assert imports, f"{lesson.name} does not import its exercises"
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "exercises"]
    checked = {arg.id for call in calls if call.func.attr.startswith("check_") and call.func.attr != "check_answers"
               for arg in call.args if isinstance(arg, ast.Name)}
    answers = [call for call in calls if call.func.attr == "check_answers"]
    assert checked and answers, f"{lesson.name}: no function checked, or no questions asked"
    assert all(isinstance(k.value, ast.Constant) and k.value.value is None for call in answers for k in call.keywords)
    stubs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in checked}
    assert set(stubs) == checked, f"{lesson.name}: checks {checked - set(stubs)} without a stub in the lesson"
    for name, stub_node in stubs.items():
        body = [statement for statement in stub_node.body
                if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))]
        assert len(body) == 1 and isinstance(body[0], ast.Raise) and "NotImplementedError" in ast.unparse(body[0]), \
            f"{lesson.name}: the stub {name} holds more than `raise NotImplementedError`"
