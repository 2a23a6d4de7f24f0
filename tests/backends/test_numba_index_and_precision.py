"""The Numba backend's kernels do their index arithmetic in 32 bits where the sizes allow and sum in the arrays'
own precision (issue 26, item 9): on a GPU, 64-bit integer division and float64 arithmetic are many times
slower than 32-bit (GeForce cards run float64 at 1/64 of float32). Checked under the CUDA simulator, where the
kernels run as Python on NumPy scalars of the types they compute in; their speed shows only on a GPU."""
import numpy as np
import pytest

import minivgg
from minivgg.backends.numba import arrays


class Sized:
    def __init__(self, size):
        self.size = size


def test_index_arithmetic_is_32_bit_below_2_to_the_31_elements():
    import numba
    assert arrays.index_type(Sized(10), Sized(2 ** 31 - 1)) is numba.int32
    assert arrays.index_type(Sized(10), Sized(2 ** 31)) is numba.int64


@pytest.fixture
def numba_backend():
    backend = minivgg.set_backend("numba")
    backend.speed_up_simulator()
    return backend


@pytest.mark.parametrize("limit", [arrays.INDEX_LIMIT, 1], ids=["int32", "int64"])
def test_pooling_and_lrn_give_the_reference_numbers_with_either_index_width(numba_backend, rng, monkeypatch, limit):
    """Both kernel variants (``limit=1`` forces the 64-bit one) against the reference, forward and backward."""
    from minivgg.backends.reference import lrn, pool
    monkeypatch.setattr(arrays, "INDEX_LIMIT", limit)
    x = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)
    for ours, theirs, arguments in [((numba_backend.max_pool2d_forward, numba_backend.max_pool2d_backward),
                                     (pool.max_pool2d_forward, pool.max_pool2d_backward), (2, 2)),
                                    ((numba_backend.lrn_forward, numba_backend.lrn_backward),
                                     (lrn.lrn_forward, lrn.lrn_backward), (3,))]:
        out, cache = ours[0](minivgg.asarray(x), *arguments)
        expected, expected_cache = theirs[0](x, *arguments)
        np.testing.assert_allclose(minivgg.to_host(out), expected, rtol=1e-6)
        dout = rng.standard_normal(expected.shape).astype(np.float32)
        np.testing.assert_allclose(minivgg.to_host(ours[1](minivgg.asarray(dout), cache)),
                                   theirs[1](dout, expected_cache), rtol=1e-5, atol=1e-6)


# Kernels that sum in float64 on purpose: a long column sum (bias gradients), the soft-max's normaliser.
FLOAT64_ON_PURPOSE = {("bias.py", "partial_column_sums"), ("loss.py", "softmax_rows_kernel")}


def test_no_kernel_computes_in_float64_by_a_float_literal():
    """In a Numba kernel ``total = 0.0`` or ``2.0 * alpha`` is a float64 constant, which makes the arithmetic
    around it float64 whatever the arrays' type (the simulator, on NumPy's scalars, cannot show it: NumPy 2
    keeps float32 there). So kernels take their zeros and constants as arguments in the arrays' precision."""
    import ast
    import os
    folder = os.path.dirname(arrays.__file__)
    found = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name)) as handle:
            tree = ast.parse(handle.read())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef) or not any(
                    "jit" in ast.unparse(decorator) for decorator in function.decorator_list):
                continue
            if (name, function.name) in FLOAT64_ON_PURPOSE:
                continue
            body = function.body[1:] if ast.get_docstring(function) else function.body
            found += [f"{name}:{node.lineno} in {function.name}: {ast.unparse(node)}" for statement in body
                      for node in ast.walk(statement)
                      if isinstance(node, ast.Constant) and isinstance(node.value, float)]
    assert not found, "float64 constants in kernels: " + "; ".join(found)
