"""The ElementwiseKernels of minivgg's CuPy backend and the NumPy twin the stand-in computes each with.

Each entry repeats the kernel's CUDA operation text: when the backend's kernel changes, the stand-in
refuses to run it until its twin here is updated to match (``cupy.ElementwiseKernel`` stand-in).
"""
import numpy

from . import register_kernel_twin

# backends/cupy/conv.py: the fused ReLU's backward, dx = dy where y > 0, else 0
register_kernel_twin("minivgg_relu_backward", "dx = y > (T)0 ? dy : (T)0",
                     lambda y, dy: numpy.where(y > 0, dy, numpy.zeros((), dy.dtype)))


def _sgd_momentum_update(grad, learning_rate, momentum, weight_decay, param, velocity):
    """The kernel's statements in order, each rounded to the parameter's dtype (the scalars cast to it, as the
    kernel's ``T`` parameters are)."""
    scalar = param.dtype.type
    kept = velocity * scalar(momentum)
    change = scalar(learning_rate) * (grad + scalar(weight_decay) * param)
    velocity = kept - change
    return param + velocity, velocity


# backends/cupy/optimizer.py: v <- m v - lr (g + wd w); w <- w + v, in place (it reads its outputs)
register_kernel_twin("minivgg_sgd_momentum_update",
                     "T kept = velocity * momentum; T change = learning_rate * (grad + weight_decay * param); "
                     "velocity = kept - change; param = param + velocity",
                     _sgd_momentum_update, reads_outputs=True)
