"""Batch normalisation over the channels of a convolutional map (Ioffe & Szegedy 2015, Alg. 1 and Sect. 3.2).

    x_hat[n, c, h, w] = (x[n, c, h, w] - mean[c]) / sqrt(var[c] + eps),    y = gamma[c] * x_hat + beta[c]

In training the statistics are the batch's own, over the N * H * W values of each channel ("so that different
elements of the same feature map, at different locations, are normalized in the same way", Sect. 3.2), and the
variance that normalises is the biased one (divided by m = N * H * W), as in the paper's Alg. 1 and PyTorch.
The same call updates the running averages used in evaluation, in place, with PyTorch's convention:

    running_mean <- (1 - momentum) * running_mean + momentum * mean
    running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)

``momentum`` weighs the *new* batch (PyTorch's 0.1; Keras's ``momentum=0.99`` weighs the old value instead),
and the running variance is the unbiased estimate, the population variance the paper's Alg. 2 uses for
inference (its ``m / (m - 1) * E_B[var_B]``). These conventions are torchvision's ``vgg*_bn``'s, so its
published running averages mean the same thing here. In evaluation the running averages normalise and
nothing is updated. This mirrors ``torch.nn.functional.batch_norm(x, running_mean, running_var, weight,
bias, training, momentum, eps)``.

Array-module generic: the same code runs on NumPy and CuPy arrays.
"""
from collections import namedtuple

from .array_module import array_module

BatchNormCache = namedtuple("BatchNormCache", "x_hat gamma inverse_std training")


def _per_channel(vector):
    """(C,) -> (1, C, 1, 1), to broadcast against (N, C, H, W)."""
    return vector.reshape(1, -1, 1, 1)


def batch_norm2d_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """Normalise each channel, then scale and shift it.

    Parameters
    ----------
    x : (N, C, H, W) array
    gamma, beta : (C,) arrays, the learned scale and shift
    running_mean, running_var : (C,) arrays; read in evaluation, updated in place in training
    momentum : float in (0, 1], the weight of this batch in the running averages
    eps : float > 0, added to the variance
    training : bool, batch statistics (and update the running ones) or the running ones

    Returns
    -------
    out : (N, C, H, W) array
    cache : BatchNormCache
    """
    xp = array_module(x, gamma)
    if training:
        mean = x.mean(axis=(0, 2, 3))
        centred = x - _per_channel(mean)
        var = (centred * centred).mean(axis=(0, 2, 3))  # biased: divided by m, as the batch is normalised
        m = x.size // x.shape[1]
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * m / (m - 1)) * var  # unbiased, as PyTorch keeps it
    else:
        centred = x - _per_channel(running_mean)
        var = running_var
    inverse_std = 1 / xp.sqrt(var + eps)
    x_hat = centred * _per_channel(inverse_std)
    out = x_hat * _per_channel(gamma) + _per_channel(beta)
    return out, BatchNormCache(x_hat, gamma, inverse_std, training)


def batch_norm2d_backward(dout, cache):
    """Gradient of ``batch_norm2d_forward``.

    With ``g = dout`` and sums over the m = N * H * W positions of a channel:

        dbeta = sum(g),    dgamma = sum(g * x_hat)
        training:   dx = gamma / (m * std) * (m * g - sum(g) - x_hat * sum(g * x_hat))
        evaluation: dx = gamma / std * g       (the running statistics are constants)

    The training formula is the paper's chain rule (Sect. 3) collapsed: the batch mean and variance
    depend on every x, which is what the two subtracted sums account for.

    Parameters
    ----------
    dout : (N, C, H, W) array
    cache : BatchNormCache

    Returns
    -------
    dx : (N, C, H, W) array
    dgamma, dbeta : (C,) arrays
    """
    x_hat, gamma, inverse_std, training = cache
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    scale = _per_channel(gamma * inverse_std)
    if not training:
        return dout * scale, dgamma, dbeta
    m = dout.size // dout.shape[1]
    dx = scale * (dout - _per_channel(dbeta / m) - x_hat * _per_channel(dgamma / m))
    return dx, dgamma, dbeta
