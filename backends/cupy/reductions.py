"""Per-channel sums of channels-last gradients: the bias gradient of a convolution or FC layer.

``db[f] = sum over batch and space of dout[n, f, y, x]``. With channels innermost (NHWC, or the (N, F) of
an FC layer) the gradient is a (rows, F) matrix and ``db`` its column sums. A reduction along the slow
axis with one thread per column reads memory with a stride of F elements; instead each block here takes
a tile of 32 channels x 8 rows, so a warp reads 32 neighbouring channels of one row (coalesced), walks
down the rows, and writes one partial sum per channel; the partials (a few hundred rows) are then summed.
No atomics, so the result is the same on every run.

The fused variant also applies ReLU's backward on the way (``dpre = dout * (out > 0)``), for a
convolution whose ReLU ran inside its cuDNN graph: one pass over the gradient instead of two.
"""
from .device import cupy
from .kernels import get_kernel, index

TILE_CHANNELS, TILE_ROWS = 32, 8
MAX_ROW_BLOCKS = 1024
MIN_ROWS_PER_THREAD = 16  # below this a thread spends more time starting than adding

_TILED_SUM = r"""
extern "C" __global__ void NAME(const value_t* dout, const value_t* out, value_t* dpre, long long rows,
                                int channels, compute_t* partial) {
    __shared__ compute_t tile[8][33];  /* 33: no shared-memory bank conflicts when row 0 reads a column */
    int c = blockIdx.x * 32 + threadIdx.x;
    compute_t total = 0;
    if (c < channels) {
        for (long long r = (long long)blockIdx.y * 8 + threadIdx.y; r < rows; r += (long long)gridDim.y * 8) {
            long long i = r * channels + c;
            BODY
        }
    }
    tile[threadIdx.y][threadIdx.x] = total;
    __syncthreads();
    if (threadIdx.y == 0 && c < channels) {
        for (int k = 1; k < 8; ++k) total += tile[k][threadIdx.x];
        partial[(long long)blockIdx.y * channels + c] = total;
    }
}
"""

CHANNEL_SUM_SOURCE = _TILED_SUM.replace("NAME", "channel_sum").replace("BODY", "total += load(dout[i]);")
RELU_BACKWARD_CHANNEL_SUM_SOURCE = _TILED_SUM.replace("NAME", "relu_backward_channel_sum").replace(
    "BODY", "compute_t g = load(out[i]) > 0 ? load(dout[i]) : (compute_t)0; dpre[i] = store(g); total += g;")


def row_blocks_for(rows):
    """Blocks along the rows: enough to fill the GPU, few enough that each thread adds at least 16 rows."""
    if rows < 0:
        raise ValueError(f"row_blocks_for: rows must be >= 0, got {rows}")
    return max(1, min(MAX_ROW_BLOCKS, -(-rows // (TILE_ROWS * MIN_ROWS_PER_THREAD))))


def _tiled_sum(name, source, dout_rows, out_rows, dpre_rows, sum_dtype):
    rows, channels = dout_rows.shape
    row_blocks = row_blocks_for(rows)
    kernel = get_kernel(name, source, dout_rows.dtype)
    compute = cupy.float64 if dout_rows.dtype == cupy.float64 else cupy.float32
    partial = cupy.empty((row_blocks, channels), dtype=compute)
    grid = (-(-channels // TILE_CHANNELS), row_blocks)
    kernel(grid, (TILE_CHANNELS, TILE_ROWS), (dout_rows, out_rows, dpre_rows, index(rows), cupy.int32(channels),
                                              partial))
    return partial.sum(axis=0, dtype=sum_dtype)


def channel_sum(dout_rows, sum_dtype):
    """Column sums of a C-contiguous (rows, F) gradient, as a (F,) array of ``sum_dtype``.

    Adds in float32 for float32 and bfloat16 gradients, float64 for float64 ones.
    """
    return _tiled_sum("channel_sum", CHANNEL_SUM_SOURCE, dout_rows, dout_rows, dout_rows, sum_dtype)


def relu_backward_channel_sum(dout_rows, relu_output_rows, sum_dtype):
    """ReLU's backward and the bias gradient in one pass over C-contiguous (rows, F) arrays.

    Returns
    -------
    dpre : (rows, F) array, ``dout * (relu_output > 0)``: the gradient before the ReLU
    db : (F,) array of ``sum_dtype``, the column sums of ``dpre``
    """
    dpre = cupy.empty_like(dout_rows)
    db = _tiled_sum("relu_backward_channel_sum", RELU_BACKWARD_CHANNEL_SUM_SOURCE, dout_rows, relu_output_rows,
                    dpre, sum_dtype)
    return dpre, db
