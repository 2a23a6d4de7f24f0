"""The ElementwiseKernels of minivgg's CuPy backend and the NumPy twin the stand-in computes each with.

Each entry repeats the kernel's CUDA operation text: when the backend's kernel changes, the stand-in
refuses to run it until its twin here is updated to match (``cupy.ElementwiseKernel`` stand-in).
"""
import numpy

from . import register_kernel_twin

# backends/cupy/conv.py: the fused ReLU's backward, dx = dy where y > 0, else 0
register_kernel_twin("minivgg_relu_backward", "dx = y > (T)0 ? dy : (T)0",
                     lambda y, dy: numpy.where(y > 0, dy, numpy.zeros((), dy.dtype)))
