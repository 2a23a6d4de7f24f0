"""The SGD update with momentum and weight decay (Sect. 3.1) as one kernel per parameter.

The NumPy reference writes it as three in-place array statements and a temporary; here each element is
read once and written once:

    v <- momentum * v - learning_rate * (grad + weight_decay * param);   param <- param + v
"""
from .device import cupy
from .kernels import compute_scalar, get_kernel, index, launch

SGD_MOMENTUM_SOURCE = r"""
extern "C" __global__ void sgd_momentum_update(value_t* param, const value_t* grad, value_t* velocity, long long n,
                                               compute_t learning_rate, compute_t momentum,
                                               compute_t weight_decay) {
    GRID_STRIDE_LOOP(i, n) {
        compute_t w = load(param[i]);
        compute_t v = momentum * load(velocity[i]) - learning_rate * (load(grad[i]) + weight_decay * w);
        velocity[i] = store(v);
        param[i] = store(w + v);
    }
}
"""


def sgd_momentum_update(param, grad, velocity, learning_rate, momentum, weight_decay):
    """One SGD step, in place, in the form of Krizhevsky et al. (2012) that the paper follows.

    Parameters
    ----------
    param, velocity : C-contiguous CuPy arrays of one shape and dtype, updated in place
    grad : array of that shape and dtype (made contiguous if it is not)
    learning_rate, momentum, weight_decay : float

    Returns
    -------
    None
    """
    for name, array in (("param", param), ("velocity", velocity)):
        if not array.flags.c_contiguous:
            raise ValueError(f"sgd_momentum_update: {name} must be C-contiguous to be updated in place")
    if not (param.shape == grad.shape == velocity.shape):
        raise ValueError(f"sgd_momentum_update: param {param.shape}, grad {grad.shape} and velocity "
                         f"{velocity.shape} must have one shape")
    if not (param.dtype == grad.dtype == velocity.dtype):
        raise TypeError(f"sgd_momentum_update: param {param.dtype}, grad {grad.dtype} and velocity "
                        f"{velocity.dtype} must have one dtype")
    grad = cupy.ascontiguousarray(grad)
    dtype = param.dtype
    launch(get_kernel("sgd_momentum_update", SGD_MOMENTUM_SOURCE, dtype), param.size,
           (param, grad, velocity, index(param.size), compute_scalar(dtype, learning_rate),
            compute_scalar(dtype, momentum), compute_scalar(dtype, weight_decay)))
