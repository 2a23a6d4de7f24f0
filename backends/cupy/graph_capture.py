"""Record a whole training step as a CUDA graph once, then replay it: one launch instead of ~200.

A VGG step at a fixed batch shape launches the same kernels on the same buffers every time, so the CPU work
of issuing them (Python, CuPy, the cuDNN frontend; tens of microseconds each) can be paid once. It should pay
where kernels are short: small batches, small images, the lessons' tiny nets. (No GPU figure yet: measure
with ``benchmarks/bench_gpu.py`` before relying on it.)

How. The step runs ``warmup_steps`` times normally (kernels compile, cuDNN plans and the workspace reach
their final size), then once under stream capture. Everything it allocates comes from a memory pool kept for
this graph alone, so the buffers the recorded kernels use stay valid and are overwritten in place by each
replay. Inputs work the same way: copy each batch into the arrays the step read during capture
(``x_static[...] = batch``) before replaying.

What a step may not do: copy to the host (so keep the loss on the device), change shapes, or draw random
numbers: Python scalars (the learning rate, a dropout mask's step) are recorded as they were, so a replay
repeats the captured dropout mask. Capture steps without dropout, or capture again.
"""
import contextlib

from .device import cupy


class CapturedStep:
    """A training step recorded as a CUDA graph.

    Parameters
    ----------
    step : callable with no arguments, returning whatever the caller wants to read after a replay (device
        arrays: the loss, the scores); it reads its inputs from arrays that stay the same between calls
    warmup_steps : int >= 0, eager runs before the capture (0 when the caller has just run ``step`` itself)

    Attributes
    ----------
    outputs : what ``step`` returned during capture; a replay rewrites these arrays in place
    """

    def __init__(self, step, warmup_steps=2):
        if not isinstance(warmup_steps, int) or isinstance(warmup_steps, bool) or warmup_steps < 0:
            raise ValueError(f"CapturedStep: warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.pool = cupy.cuda.MemoryPool()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
            for _ in range(warmup_steps):
                step()
            self.stream.synchronize()
            self.stream.begin_capture()
            try:
                self.outputs = step()
            except BaseException:
                with contextlib.suppress(Exception):  # close the broken capture; the step's error is the news
                    self.stream.end_capture()
                raise
            self.graph = self.stream.end_capture()

    def replay(self):
        """Launch the recorded step on its stream and wait for it; returns ``outputs``, now rewritten."""
        # The capture stream does not wait for the caller's stream by itself: wait for the work queued there
        # (the new batch copied into the input arrays) before the graph reads it.
        cupy.cuda.get_current_stream().synchronize()
        self.graph.launch(self.stream)
        self.stream.synchronize()
        return self.outputs


def capture_step(step, warmup_steps=2):
    """The ``graph_capture`` capability of the contract: ``CapturedStep(step, warmup_steps)``."""
    return CapturedStep(step, warmup_steps)
