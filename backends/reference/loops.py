"""Direct nested loops, forward and backward: slow, obviously right, and the yardstick the ops are tested against.

Each loop is the formula in the docstring of the op it mirrors, written out element by element (as the
CS231n assignments keep a naive version beside the fast one); each backward is the chain rule of that formula
applied to one input element at a time. NumPy arrays, float64 in the tests; tiny inputs only.
"""
import numpy as np

from ..shapes import output_size


def conv2d_forward_loops(x, W, b, stride=1, padding=0):
    """``out[n, f, y, x] = b[f] + sum_{c, i, j} W[f, c, i, j] * x_pad[n, c, y*s + i, x*s + j]``.

    Shapes as ``conv.conv2d_forward``: x (N, C, H, W), W (F, C, kh, kw), b (F,) -> (N, F, Ho, Wo).
    """
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    out = np.zeros((n, f, out_h, out_w), dtype=np.result_type(x, W))
    for image in range(n):
        for filt in range(f):
            for y in range(out_h):
                for x_ in range(out_w):
                    window = x_pad[image, :, y * stride:y * stride + kh, x_ * stride:x_ * stride + kw]
                    out[image, filt, y, x_] = np.sum(window * W[filt]) + b[filt]
    return out


def conv2d_backward_loops(dout, x, W, stride=1, padding=0):
    """Each output ``out[n, f, y, x]`` adds ``dout * W[f]`` onto its window of ``dx`` and ``dout * window`` onto
    ``dW[f]``; ``db[f] = sum dout[:, f]``. Returns ``(dx, dW, db)`` shaped like x, W and (F,)."""
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dx_pad, dW, db = np.zeros_like(x_pad), np.zeros_like(W), np.zeros(f, dtype=dout.dtype)
    for image in range(n):
        for filt in range(f):
            for y in range(dout.shape[2]):
                for x_ in range(dout.shape[3]):
                    rows, cols = slice(y * stride, y * stride + kh), slice(x_ * stride, x_ * stride + kw)
                    g = dout[image, filt, y, x_]
                    dx_pad[image, :, rows, cols] += g * W[filt]
                    dW[filt] += g * x_pad[image, :, rows, cols]
                    db[filt] += g
    return dx_pad[:, :, padding:padding + h, padding:padding + w], dW, db


def _pool_windows(x, out_h, out_w, kernel_size, stride):
    """Every pooling window of ``x``, one at a time: ``(image, channel, y, x_, window)``, the window a view."""
    n, c = x.shape[:2]
    for image in range(n):
        for channel in range(c):
            for y in range(out_h):
                for x_ in range(out_w):
                    yield image, channel, y, x_, x[image, channel, y * stride:y * stride + kernel_size,
                                                   x_ * stride:x_ * stride + kernel_size]


def max_pool2d_forward_loops(x, kernel_size=2, stride=2):
    """``out[n, c, y, x] = max_{i, j < k} x[n, c, y*s + i, x*s + j]``; shapes as ``pool.max_pool2d_forward``."""
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kernel_size, stride, 0), output_size(w, kernel_size, stride, 0)
    out = np.zeros((n, c, out_h, out_w), dtype=x.dtype)
    for image, channel, y, x_, window in _pool_windows(x, out_h, out_w, kernel_size, stride):
        out[image, channel, y, x_] = window.max()
    return out


def max_pool2d_backward_loops(dout, x, kernel_size=2, stride=2):
    """Each output's gradient goes to the first (row-major) maximum of its window; overlapping windows add."""
    dx = np.zeros_like(x)
    out_h, out_w = dout.shape[2:]
    for image, channel, y, x_, window in _pool_windows(x, out_h, out_w, kernel_size, stride):
        i, j = divmod(int(np.argmax(window)), kernel_size)  # argmax: the first maximum
        dx[image, channel, y * stride + i, x_ * stride + j] += dout[image, channel, y, x_]
    return dx


def _lrn_window(channel, channels, size):
    return range(max(0, channel - (size - 1) // 2), min(channels, channel + size // 2 + 1))


def lrn_forward_loops(x, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_divided_by_size=False):
    """``y[c] = x[c] / (k + alpha' * sum_{c' = c - (size-1)//2}^{c + size//2} x[c']**2) ** beta``, per pixel."""
    alpha_eff = alpha / size if alpha_divided_by_size else alpha
    n, c, h, w = x.shape
    out = np.zeros_like(x)
    for channel in range(c):
        energy = sum(x[:, d] ** 2 for d in _lrn_window(channel, c, size))
        out[:, channel] = x[:, channel] / (k + alpha_eff * energy) ** beta
    return out


def lrn_backward_loops(dout, x, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_divided_by_size=False):
    """``dx[j] = sum_c dout[c] * dy[c]/dx[j]`` with ``dy[c]/dx[j] = [c = j] * scale[c]**-beta
    - 2 * alpha' * beta * x[c] * x[j] * scale[c]**(-beta - 1)`` for every ``c`` whose window holds ``j``."""
    alpha_eff = alpha / size if alpha_divided_by_size else alpha
    channels = x.shape[1]
    scale = np.stack([k + alpha_eff * sum(x[:, d] ** 2 for d in _lrn_window(c, channels, size))
                      for c in range(channels)], axis=1)
    dx = np.zeros_like(x)
    for c in range(channels):
        dx[:, c] += dout[:, c] * scale[:, c] ** -beta
        for j in _lrn_window(c, channels, size):
            dx[:, j] -= dout[:, c] * 2 * alpha_eff * beta * x[:, c] * x[:, j] * scale[:, c] ** (-beta - 1)
    return dx


def relu_forward_loops(x):
    """``out[i] = x[i] if x[i] > 0 else 0``, element by element."""
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        out[index] = x[index] if x[index] > 0 else 0
    return out


def relu_backward_loops(dout, x):
    """``dx[i] = dout[i] if x[i] > 0 else 0`` (the subgradient 0 at 0)."""
    dx = np.zeros_like(dout)
    for index in np.ndindex(x.shape):
        dx[index] = dout[index] if x[index] > 0 else 0
    return dx


def linear_forward_loops(x, W, b):
    """``out[n, o] = b[o] + sum_i x[n, i] * W[o, i]``."""
    out = np.zeros((x.shape[0], W.shape[0]), dtype=np.result_type(x, W))
    for n in range(x.shape[0]):
        for o in range(W.shape[0]):
            out[n, o] = b[o] + sum(x[n, i] * W[o, i] for i in range(W.shape[1]))
    return out


def linear_backward_loops(dout, x, W):
    """``dx[n, i] = sum_o dout[n, o] W[o, i]``, ``dW[o, i] = sum_n dout[n, o] x[n, i]``,
    ``db[o] = sum_n dout[n, o]``."""
    dx, dW, db = np.zeros_like(x), np.zeros_like(W), np.zeros(W.shape[0], dtype=dout.dtype)
    for n in range(x.shape[0]):
        for o in range(W.shape[0]):
            db[o] += dout[n, o]
            for i in range(W.shape[1]):
                dx[n, i] += dout[n, o] * W[o, i]
                dW[o, i] += dout[n, o] * x[n, i]
    return dx, dW, db


def global_average_pool_forward_loops(x):
    """``out[n, c] = sum_{h, w} x[n, c, h, w] / (H * W)``."""
    n, c, h, w = x.shape
    out = np.zeros((n, c), dtype=x.dtype)
    for image in range(n):
        for channel in range(c):
            out[image, channel] = sum(x[image, channel, y, x_] for y in range(h) for x_ in range(w)) / (h * w)
    return out


def global_average_pool_backward_loops(dout, x_shape):
    """``dx[n, c, h, w] = dout[n, c] / (H * W)``."""
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for index in np.ndindex(x_shape):
        dx[index] = dout[index[:2]] / (x_shape[2] * x_shape[3])
    return dx


def softmax_cross_entropy_forward_loops(scores, labels):
    """``loss = -(1/N) sum_n log(exp(s[n, y_n]) / sum_k exp(s[n, k]))``, the maximum subtracted per row."""
    total = 0.0
    for n in range(scores.shape[0]):
        top = max(scores[n])
        log_normaliser = np.log(sum(np.exp(s - top) for s in scores[n]))
        total += log_normaliser - (scores[n, labels[n]] - top)
    return total / scores.shape[0]


def softmax_cross_entropy_backward_loops(dloss, scores, labels):
    """``dscores[n, k] = dloss * (softmax(s[n])[k] - [k = y_n]) / N``."""
    dscores = np.zeros_like(scores)
    n_rows = scores.shape[0]
    for n in range(n_rows):
        top = max(scores[n])
        normaliser = sum(np.exp(s - top) for s in scores[n])
        for k in range(scores.shape[1]):
            dscores[n, k] = dloss * (np.exp(scores[n, k] - top) / normaliser - (k == labels[n])) / n_rows
    return dscores


def euclidean_loss_forward_loops(predictions, targets):
    """``loss = sum_{n, d} (p[n, d] - t[n, d])**2 / (2 N)``."""
    return sum((p - t) ** 2 for p, t in zip(predictions.ravel(), targets.ravel())) / (2 * predictions.shape[0])


def euclidean_loss_backward_loops(dloss, predictions, targets):
    """``dp[n, d] = dloss * (p[n, d] - t[n, d]) / N``."""
    dp = np.zeros_like(predictions)
    for index in np.ndindex(predictions.shape):
        dp[index] = dloss * (predictions[index] - targets[index]) / predictions.shape[0]
    return dp


def sgd_momentum_update_loops(param, grad, velocity, learning_rate, momentum, weight_decay):
    """In place, element by element: ``v = momentum * v - lr * (g + wd * w)``, then ``w = w + v``."""
    for index in np.ndindex(param.shape):
        velocity[index] = momentum * velocity[index] - learning_rate * (grad[index] + weight_decay * param[index])
        param[index] += velocity[index]
