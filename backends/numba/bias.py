"""The bias of a layer: added in the epilogue of the convolution kernel (``conv.py``); its gradient,
``db[f] = sum_m dout[m, f]``, is the column sums of the output gradient, computed here."""
import math

from numba import cuda

from .arrays import REDUCTION_BLOCKS, SIMULATOR, array_module, on_device, reduction_splits

COLUMNS_PER_BLOCK = 4 if SIMULATOR else 64


@cuda.jit
def partial_column_sums(matrix, partial, chunk):
    """``partial[s, col] = sum of matrix[s * chunk : (s + 1) * chunk, col]``, one thread per (column, s).

    Threads of a block take consecutive columns, so each row is read by one coalesced load; blocks along y
    take successive ranges of rows. Grid: (column blocks, splits).
    """
    col = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    split = cuda.blockIdx.y
    n_rows, n_cols = matrix.shape
    if col < n_cols:
        total = 0.0  # float64: a long float32 sum would lose digits
        for row in range(split * chunk, min(n_rows, (split + 1) * chunk)):
            total += matrix[row, col]
        partial[split, col] = total


def column_sums(matrix):
    """(M, F) C-contiguous array -> (F,) array of its column sums, in its dtype."""
    xp = array_module()
    n_rows, n_cols = matrix.shape
    column_blocks = math.ceil(n_cols / COLUMNS_PER_BLOCK)
    splits, chunk = reduction_splits(n_rows, column_blocks, 1, REDUCTION_BLOCKS)
    partial = xp.empty((splits, n_cols), dtype=matrix.dtype)
    partial_column_sums[(column_blocks, splits), COLUMNS_PER_BLOCK](on_device(matrix), on_device(partial), chunk)
    return partial.sum(axis=0)
