"""Inverted dropout: keeps about 1 - p of the units, scales them by 1 / (1 - p), is the identity in eval mode."""
import numpy as np
import pytest

from minivgg.layers import Dropout


@pytest.mark.parametrize("p", [0.5, 0.2, 0.8])
def test_kept_fraction_and_scaling(p):
    layer = Dropout(p, seed=1)
    x = np.ones((200, 500), np.float32)
    out = layer.forward(x)
    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.01  # 100,000 draws: the standard error is ~0.0016
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.03  # the expected activation is unchanged
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, out)  # the same units are dropped and scaled on the way back


def test_eval_mode_is_the_identity():
    layer = Dropout(0.5, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    assert layer.forward(x) is x
    assert layer.backward(x) is x


def test_seeded_masks_repeat_and_differ_per_call():
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    x = np.ones((4, 64), np.float32)
    first_a, first_b = a.forward(x), b.forward(x)
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.array_equal(first_a, a.forward(x))


def test_p_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)
