"""The parameter update of mini-batch SGD with momentum and weight decay (Sect. 3.1), as one kernel."""
from numba import cuda

from .arrays import array_module, check_same_dtype, grid_for, on_device


@cuda.jit
def sgd_momentum_kernel(param, grad, velocity, learning_rate, momentum, weight_decay):
    """In place, per element: ``v = momentum * v - learning_rate * (g + weight_decay * w); w += v``."""
    for k in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        velocity[k] = momentum * velocity[k] - learning_rate * (grad[k] + weight_decay * param[k])
        param[k] += velocity[k]


def sgd_momentum_update(param, grad, velocity, learning_rate, momentum, weight_decay):
    """One SGD step, in place, in the form of Krizhevsky et al. (2012), which the paper follows:

        v <- momentum * v - learning_rate * (grad + weight_decay * param)
        param <- param + v

    Parameters
    ----------
    param, grad, velocity : arrays of one shape; ``param`` and ``velocity`` are updated in place, so they
        must be C-contiguous (parameters and buffers made by ``asarray``/``zeros_like`` are)
    learning_rate, momentum, weight_decay : float

    Returns
    -------
    None
    """
    xp = array_module()
    check_same_dtype("sgd_momentum_update", param=param, grad=grad, velocity=velocity)
    for name, array in (("param", param), ("velocity", velocity)):
        if not array.flags.c_contiguous:
            raise ValueError(f"sgd_momentum_update: {name} is updated in place and must be C-contiguous; got "
                             f"strides {array.strides} for shape {array.shape}")
    if grad.shape != param.shape or velocity.shape != param.shape:
        raise ValueError(f"sgd_momentum_update: param, grad and velocity must have one shape, got {param.shape}, "
                         f"{grad.shape} and {velocity.shape}")
    real = param.dtype.type  # the hyperparameters in the parameters' precision, as NumPy uses Python floats
    grad = xp.ascontiguousarray(grad)
    sgd_momentum_kernel[grid_for(param.size)](on_device(param.reshape(-1)), on_device(grad.reshape(-1)),
                                              on_device(velocity.reshape(-1)), real(learning_rate), real(momentum),
                                              real(weight_decay))
