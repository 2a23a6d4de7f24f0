"""Record a whole training step as a CUDA graph once, then replay it: one launch instead of ~200.

A VGG step at a fixed batch shape launches the same kernels on the same buffers every time, so the CPU
work of issuing them (Python, CuPy, the cuDNN frontend; tens of microseconds each) can be paid once.
It pays where kernels are short: small batches, small images, the lessons' tiny nets; at batch 64 and
224x224 the GPU is the bottleneck and a replay saves a few percent at most.

How. The step runs ``warmup_steps`` times normally (kernels compile, cuDNN plans and the workspace reach
their final size), then once under stream capture. Everything it allocates comes from a memory pool kept
for this graph alone, so the buffers the recorded kernels use (activations, gradients, the loss) stay
valid and are overwritten in place by each replay: after ``replay()``, ``layer.grads`` and the returned
outputs hold the new values. Inputs work the same way: copy each batch into the arrays the step read
during capture (``x_static[...] = batch``) before replaying.

What a step may do: launch kernels, cuBLAS and cuDNN work. What it may not: copy to the host (so call
the backend's loss op, which keeps the loss on the device, not ``SoftmaxCrossEntropyLoss.forward``, which
returns a Python float), or change shapes. Python scalars (the learning rate) are recorded as they were:
capture again to change them. Dropout masks still change at each replay: the graph first advances the
device counter that the dropout kernel hashes (``counter_random``).
"""
import contextlib

from .activation import step_counter
from .device import cupy
from .kernels import get_kernel

ADVANCE_SOURCE = r"""
extern "C" __global__ void advance_step(unsigned long long* step) { step[0] += 1; }
"""


class CapturedStep:
    """A training step recorded as a CUDA graph.

    Parameters
    ----------
    step : callable with no arguments, returning whatever the caller wants to read after a replay (device
        arrays: the loss, the scores); it reads its inputs from arrays that stay the same between calls
    warmup_steps : int >= 1, eager runs before the capture

    Attributes
    ----------
    outputs : what ``step`` returned during capture; a replay rewrites these arrays in place
    """

    def __init__(self, step, warmup_steps=2):
        if not isinstance(warmup_steps, int) or warmup_steps < 1:
            raise ValueError(f"CapturedStep: warmup_steps must be an integer >= 1, got {warmup_steps!r}")
        self.pool = cupy.cuda.MemoryPool()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        advance = get_kernel("advance_step", ADVANCE_SOURCE, cupy.float32)
        counter = step_counter()
        with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
            for _ in range(warmup_steps):
                step()
            self.stream.synchronize()
            self.stream.begin_capture()
            try:
                advance((1,), (1,), (counter,))
                self.outputs = step()
            except BaseException:
                with contextlib.suppress(Exception):  # close the broken capture; the step's error is the news
                    self.stream.end_capture()
                raise
            self.graph = self.stream.end_capture()

    def replay(self):
        """Launch the recorded step on its stream; returns ``outputs`` (valid once the stream has synchronised)."""
        self.graph.launch(self.stream)
        return self.outputs

    def synchronize(self):
        """Wait until every replay launched so far has finished."""
        self.stream.synchronize()
