"""Issue 26, items 6 and 7, on a real GPU (marked ``gpu``; skipped without one, run by
``benchmarks/gpu_cupy_checks.sh``): what the stand-ins cannot show, because NumPy does their arithmetic.

- The fused SGD kernel, compiled by NVRTC with ``--fmad=false``, gives the reference's six CuPy kernels' numbers
  bit for bit (with contraction into FMAs it would round ``wd * w + g`` once instead of twice).
- Preprocessing on the device (CuPy's multiply and add) gives the host's float32 numbers bit for bit.
- The copy stream, with real streams running concurrently, feeds every batch intact (events, not luck).
"""
import numpy as np
import pytest

import minivgg

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy_backend():
    if "cupy" not in minivgg.available_backends():
        pytest.skip("needs the cupy backend on an NVIDIA GPU")
    return minivgg.set_backend("cupy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_sgd_kernel_gives_the_reference_kernels_numbers_bit_for_bit(cupy_backend, dtype):
    import cupy

    from minivgg.backends.reference.optimizer import sgd_momentum_update

    rng = np.random.default_rng(0)
    param, grad, velocity = (cupy.asarray(rng.normal(0, scale, (512, 4608)).astype(dtype))
                             for scale in (0.05, 1e-3, 1e-3))
    reference = [array.copy() for array in (param, grad, velocity)]
    for step in range(5):
        sgd_momentum_update(reference[0], reference[1], reference[2], 0.01, 0.9, 5e-4)  # CuPy, kernel by kernel
        cupy_backend.sgd_momentum_update(param, grad, velocity, 0.01, 0.9, 5e-4)
    np.testing.assert_array_equal(param.get(), reference[0].get())
    np.testing.assert_array_equal(velocity.get(), reference[2].get())


@pytest.mark.parametrize("name", ["paper", "caffe", "torchvision"])
def test_preprocessing_on_the_gpu_gives_the_hosts_numbers_bit_for_bit(cupy_backend, name):
    import cupy

    from minivgg.preprocessing import CAFFE_VGG, TORCHVISION, paper_mean_rgb

    preprocessing = {"paper": paper_mean_rgb((123.7, 116.8, 103.9)), "caffe": CAFFE_VGG,
                     "torchvision": TORCHVISION}[name]
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
    offsets = rng.normal(0, 8, (16, 3))
    gain, shift = preprocessing.affine(len(pixels), offsets)
    on_device = preprocessing.apply_affine(cupy.asarray(pixels), gain, cupy.asarray(shift))
    np.testing.assert_array_equal(on_device.get(), preprocessing.apply(pixels, offsets))


def test_the_copy_stream_feeds_every_batch_intact_while_the_gpu_computes(cupy_backend):
    import cupy

    from minivgg.data.device_feed import device_batches
    from minivgg.preprocessing import TORCHVISION

    rng = np.random.default_rng(2)
    batches = [(rng.integers(0, 256, (64, 224, 224, 3), dtype=np.uint8), rng.normal(0, 8, (64, 3)), k)
               for k in range(12)]
    weights = cupy.asarray(rng.normal(0, 0.01, (224 * 3, 224 * 3)).astype(np.float32))
    fed = []
    for x, k in device_batches(iter(batches), TORCHVISION):
        for _ in range(20):  # a step's worth of work on the computing stream while the next batch is copied
            product = x.reshape(-1, 224 * 3)[:224 * 3] @ weights
        fed.append((k, x))  # read back after the loop: a read here would wait for the computing stream and let
        # the copies never overtake it, hiding a missing event
    assert product.shape == (224 * 3, 224 * 3) and [k for k, _ in fed] == list(range(12))
    for k, x in fed:
        np.testing.assert_array_equal(x.get(), TORCHVISION.apply(batches[k][0], batches[k][1]), err_msg=f"batch {k}")
