"""Exercises with automatic checks, one module per lesson.

Each lesson leaves the learner functions to write (stubs that raise ``NotImplementedError`` until done) for
things the library already computes, and pen-and-paper questions. A module's ``check_*`` function compares the
learner's function with the library's on random inputs of realistic size (several shapes, strides, paddings and
dtypes, relative tolerances), checks a backward pass against central differences in float64, and returns a
``Verdict``: passed, failed with graded hints (``verdict.hint()`` for the next one), or not attempted yet. Its
``check_answers(**answers)`` compares answers with numbers the library computes; the answers are written
nowhere. Solutions are not in the lessons: the library's own source is the solution, and the lessons show it.

=====================  ======  ===========================================================================
module                 lesson  the learner writes
=====================  ======  ===========================================================================
``convolution``        1       the naive convolution, im2col
``backpropagation``    2       col2im, max-pooling's backward (ties), LRN's backward
``receptive_fields``   3       the receptive-field recursion
``configurations``     4       a Table 1 column's parameters and multiply-adds
``training_recipe``    5       the SGD-with-momentum step, the learning-rate schedule, He initialisation
``scale_jittering``    6       drawing S, the isotropic rescaling, the PCA colour shift
``dense_evaluation``   7       FC1 as a convolution, dense score-map averaging with flips, multi-crop's grid
``gpu_precision``      8       TF32 rounding
``gpu_kernels``        8b      the implicit GEMM's index maths, forward and data gradient
``data_parallel``      9       the ring all-reduce
``localisation``       10      IoU, OverFeat's greedy merging
``transfer_features``  11      VOC 2007's 11-point AP, stacking descriptors
=====================  ======  ===========================================================================
"""
from .checking import FAILED, NOT_ATTEMPTED, PASSED, Verdict, Verdicts

__all__ = ["FAILED", "NOT_ATTEMPTED", "PASSED", "Verdict", "Verdicts"]
