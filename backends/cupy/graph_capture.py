"""Record a whole training step as a CUDA graph once, then replay it: one launch instead of ~200.

A VGG step at a fixed batch shape launches the same kernels on the same buffers every time, so the CPU work
of issuing them (Python, CuPy, the cuDNN frontend; tens of microseconds each) can be paid once. It should pay
where kernels are short: small batches, small images, the lessons' tiny nets. (No GPU figure yet: measure
with ``benchmarks/bench_gpu.py`` before relying on it.)

How. The step runs ``warmup_steps`` times normally (kernels compile, cuDNN plans and the workspace reach
their final size), then once under stream capture. Everything it allocates, warm-up runs included, comes
from a memory pool kept for this graph alone: the warm-up's arrays, freed as the capture replaces them, are
reused by it, so recording holds one working set, not two; and the buffers the recorded kernels use stay
valid and are overwritten in place by each replay. So does every cuDNN workspace the recording used (the
shared one may be replaced later by a larger one; ``conv_cudnn.holding_workspaces``). Inputs work the same
way: copy each batch into the arrays the step read during capture (``x_static[...] = batch``) before
replaying.

Streams. The graph runs on a stream of its own, which waits for the caller's stream (where the inputs were
uploaded or copied) through an event before the warm-up runs and before each replay; the caller's stream
in turn waits for the graph's work before anything else it runs reads the outputs or rewrites the inputs.
No host synchronisation is needed except one before the capture itself.

What a step may not do: copy to the host (so keep the loss on the device), change shapes, or draw random
numbers: Python scalars (the learning rate, a dropout mask's step) are recorded as they were, so a replay
repeats the captured dropout mask. Capture steps without dropout, or capture again.
"""
import contextlib

from . import conv_cudnn
from .device import cupy


def _after(stream, other):
    """Make ``stream``'s later work wait for the work queued on ``other`` so far (an event, no host wait)."""
    stream.wait_event(other.record())


class CapturedStep:
    """A training step recorded as a CUDA graph.

    Parameters
    ----------
    step : callable with no arguments, returning whatever the caller wants to read after a replay (device
        arrays: the loss, the scores); it reads its inputs from arrays that stay the same between calls
    warmup_steps : int >= 0, eager runs before the capture. The last one's return value is kept in
        ``warmup_outputs``: a caller whose first real step is that warm-up (``minivgg.training.recorded_step``) reads it
        there, so that the eager step's memory comes from the graph's pool too.

    Attributes
    ----------
    step : the step, kept: whatever it holds (the model, the input arrays) lives as long as the recording
    outputs : what ``step`` returned during capture; a replay rewrites these arrays in place
    warmup_outputs : what the last warm-up run returned (None without warm-up)
    workspaces : the cuDNN workspace buffers the recording points to, kept as long as this object
    """

    def __init__(self, step, warmup_steps=2):
        if not isinstance(warmup_steps, int) or isinstance(warmup_steps, bool) or warmup_steps < 0:
            raise ValueError(f"CapturedStep: warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        # The step's closure owns the arrays the recording points to (weights, inputs, velocities): keep it.
        self.step = step
        self.pool = cupy.cuda.MemoryPool()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.warmup_outputs = None
        caller = cupy.cuda.get_current_stream()
        _after(self.stream, caller)  # the inputs were uploaded on the caller's stream
        with cupy.cuda.using_allocator(self.pool.malloc), self.stream, \
                conv_cudnn.holding_workspaces() as self.workspaces:
            for _ in range(warmup_steps):
                self.warmup_outputs = step()
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
        """Launch the recorded step on its stream, ordered after the caller's stream and before the caller's
        later work; returns ``outputs``, which a read on the caller's stream sees rewritten."""
        caller = cupy.cuda.get_current_stream()
        _after(self.stream, caller)   # the new batch was copied into the input arrays there
        self.graph.launch(self.stream)
        _after(caller, self.stream)   # reads of the outputs, and the next batch's copy, come after the replay
        return self.outputs


def capture_step(step, warmup_steps=2):
    """The ``graph_capture`` capability of the contract: ``CapturedStep(step, warmup_steps)``."""
    return CapturedStep(step, warmup_steps)
