"""The SGD update with momentum and weight decay as one kernel per parameter (the reference's arithmetic).

The reference's ``sgd_momentum_update`` is six array expressions (``v *= m``, ``wd * w``, ``g + ...``,
``lr * ...``, ``v -= ...``, ``w += v``): on a GPU, six kernels, each a pass over the whole parameter, so 6 x 32 =
192 launches a step for VGG-16 and six passes over its 138M weights. Here the same arithmetic is one
elementwise kernel that reads each element once and writes it back.

The same numbers: each product and sum is rounded to the parameter's precision as the reference rounds it in
its separate kernels. The kernel is compiled without fused multiply-adds (``--fmad=false``), since NVRTC would
otherwise contract ``wd * w + g`` into one FMA rounded once. (That CUDA then matches the reference bit for bit
is what the test suite checks through the CuPy stand-in's NumPy twin of this kernel; on a GPU only a GPU run
shows it: ``benchmarks/gpu_cupy_checks.sh``.)
"""
from .device import cupy

# v <- momentum v - lr (g + wd w); w <- w + v, in the reference's order of operations.
SGD_MOMENTUM_OPERATION = ("T kept = velocity * momentum; "
                          "T change = learning_rate * (grad + weight_decay * param); "
                          "velocity = kept - change; "
                          "param = param + velocity")
_kernels = {}


def _sgd_kernel():
    if "sgd" not in _kernels:
        _kernels["sgd"] = cupy.ElementwiseKernel(
            "T grad, T learning_rate, T momentum, T weight_decay", "T param, T velocity", SGD_MOMENTUM_OPERATION,
            "minivgg_sgd_momentum_update", options=("--fmad=false",))
    return _kernels["sgd"]


def sgd_momentum_update(param, grad, velocity, learning_rate, momentum, weight_decay):
    """One SGD step, in place, as the reference's ``sgd_momentum_update`` (Krizhevsky et al.'s form):

        v <- momentum * v - learning_rate * (grad + weight_decay * param)
        param <- param + v

    Parameters
    ----------
    param, grad, velocity : CuPy arrays of one shape and dtype; ``param`` and ``velocity`` are updated in place
    learning_rate, momentum, weight_decay : float, each cast to the parameter's dtype as the reference's
        NumPy arithmetic casts a Python float

    Returns
    -------
    None
    """
    _sgd_kernel()(grad, learning_rate, momentum, weight_decay, param, velocity)
