"""Check that the real GPU stack of the CuPy backend is installed and used; exit 1 naming what is not.

    python benchmarks/gpu_stack_check.py [--json FILE]

Run by ``gpu_cupy_checks.sh`` before the tests and the benchmark, so that neither can pass on a stack that is
not the one the README installs:

1. CuPy sees a GPU; its CUDA runtime and driver versions are printed.
2. cuDNN: the frontend imports and its library answers (``cudnn.backend_version()``), and a small VGG's
   forward and backward on the CuPy backend ran cuDNN's three graph kinds: the executions are counted
   (``conv_cudnn.STATISTICS``), so the checks cannot pass on the im2col route. Its scores and gradients are
   compared with the NumPy reference.
3. NCCL: ``cupy.cuda.nccl.available``, and a one-rank communicator sums a device array.

``--allow-standins`` accepts the test suite's CPU stand-ins (``tests/standins``) in place of CuPy, cuDNN and
NCCL: it checks this script, never a GPU.
"""
import argparse
import json
import sys

import numpy as np


def check(allow_standins=False):
    """Every check's result as ``{name: (passed, detail)}``."""
    results = {}
    try:
        import cupy
    except ImportError as error:
        return {"cupy": (False, f"CuPy cannot be imported: {error}; pip install 'minivgg[cupy]'")}
    standin = getattr(cupy, "IS_STANDIN", False)
    if standin and not allow_standins:
        return {"cupy": (False, "this is the test suite's CuPy stand-in, not CuPy")}
    results["cupy"] = (True, f"CuPy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
                             f"driver {cupy.cuda.runtime.driverGetVersion()}, "
                             f"{cupy.cuda.runtime.getDeviceCount()} GPU(s)" + (" (STAND-IN)" if standin else ""))

    import minivgg
    from minivgg.backends.cupy import conv_cudnn
    results["cudnn library"] = (conv_cudnn.cudnn_problem() is None, conv_cudnn.frontend_status())
    if conv_cudnn.cudnn_problem() is None:
        results.update(_cudnn_runs(minivgg, conv_cudnn))

    from cupy.cuda import nccl
    if not getattr(nccl, "available", False):
        results["nccl"] = (False, "cupy.cuda.nccl.available is False: pip install nvidia-nccl-cu13")
    else:
        buffer = cupy.arange(8, dtype=cupy.float32)
        communicator = nccl.NcclCommunicator(1, nccl.get_unique_id(), 0)
        communicator.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, nccl.NCCL_FLOAT32, nccl.NCCL_SUM,
                               cupy.cuda.get_current_stream().ptr)
        summed = np.array_equal(buffer.get(), np.arange(8, dtype=np.float32))
        results["nccl"] = (summed, f"NCCL {nccl.get_version()}: a one-rank all-reduce "
                                   f"{'kept' if summed else 'changed'} its input")
    return results


def _cudnn_runs(minivgg, conv_cudnn):
    """A small VGG's forward and backward on the CuPy backend: cuDNN's executions counted, numbers compared."""
    from minivgg.layers import SoftmaxCrossEntropyLoss
    from minivgg.models import vgg

    rng = np.random.default_rng(26)
    x, labels = rng.standard_normal((4, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 4)
    found = {}
    for name in ("numpy", "cupy"):
        backend = minivgg.set_backend(name)
        previous = backend.set_precision("fp32") if name == "cupy" else None
        try:
            model = vgg("A", num_classes=10, input_size=32, width_multiplier=0.125, fc_width=32, dropout=0.0,
                        weight_init="glorot", seed=1)
            loss = SoftmaxCrossEntropyLoss()
            before = dict(conv_cudnn.STATISTICS)
            scores = model.forward(minivgg.asarray(x))
            loss.forward(scores, labels)
            model.backward(loss.backward())
            found[name] = (np.asarray(minivgg.to_host(scores)), np.asarray(minivgg.to_host(model.layers[0].grads["W"])))
            executions = {kind: conv_cudnn.STATISTICS[f"{kind} executions"] - before.get(f"{kind} executions", 0)
                          for kind in conv_cudnn.GRAPH_KINDS}
        finally:
            if previous is not None:
                backend.set_precision(previous)
    minivgg.set_backend("numpy")
    ran = all(count > 0 for count in executions.values())
    close = all(np.allclose(c, n, rtol=1e-3, atol=1e-3 * np.abs(n).max()) for c, n in zip(found["cupy"], found["numpy"]))
    return {"cudnn executions": (ran, f"cuDNN graphs run by one training step: {executions}"),
            "cudnn numbers": (close, "scores and first-layer weight gradients " +
                              ("match the NumPy reference (fp32)" if close else "DIFFER from the NumPy reference"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--allow-standins", action="store_true", help="accept the test suite's CPU stand-ins")
    args = parser.parse_args()
    results = check(args.allow_standins)
    for name, (passed, detail) in results.items():
        print(f"{'ok    ' if passed else 'FAILED'} {name}: {detail}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({name: {"passed": passed, "detail": detail} for name, (passed, detail) in results.items()},
                      handle, indent=1)
    return 0 if all(passed for passed, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
