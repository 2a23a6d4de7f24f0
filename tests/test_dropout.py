"""Inverted dropout: keeps about 1 - p of the units, scales them by 1 / (1 - p), is the identity in eval mode;
its masks are keyed by (seed, step, index in the global batch), so however a batch is split, the same units drop."""
import numpy as np
import pytest

from minivgg.backends.reference.counter_random import uniform_numpy
from minivgg.layers import Dropout, Linear, Sequential, dropout_layers, set_dropout_position


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


def test_a_unit_is_kept_iff_its_counter_uniform_is_at_least_p():
    layer = Dropout(0.3, seed=11)
    layer.set_position(step=5, first_sample=40)
    kept = layer.forward(np.ones((6, 2, 7), np.float32)) != 0
    np.testing.assert_array_equal(kept, uniform_numpy(11, 5, 40, (6, 2, 7)) >= np.float32(0.3))


def test_a_whole_batch_and_its_device_batches_drop_the_same_units():
    x = np.ones((32, 50), np.float32)
    whole = Dropout(0.5, seed=3)
    whole.set_position(step=9, first_sample=0)
    pieces = []
    for first in (0, 8, 16, 24):  # accumulated device batches, or the shards of 2 or 4 processes
        split = Dropout(0.5, seed=3)
        split.set_position(step=9, first_sample=first)
        pieces.append(split.forward(x[first:first + 8]))
    np.testing.assert_array_equal(whole.forward(x), np.concatenate(pieces))


def test_masks_differ_between_steps_and_seeds_and_move_on_by_themselves():
    x = np.ones((4, 64), np.float32)
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    first_a, first_b = a.forward(x), b.forward(x)
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.array_equal(first_a, a.forward(x))  # without a trainer each forward is the next step
    assert not np.array_equal(first_b, Dropout(0.5, seed=8).forward(x))


def test_the_trainer_positions_every_dropout_layer_of_a_model():
    net = Sequential(Linear(3, 4), Dropout(0.5, seed=1), Sequential(Dropout(0.5, seed=2)))
    set_dropout_position(net, step=12, first_sample=64)
    assert [(layer.step, layer.first_sample) for layer in dropout_layers(net)] == [(12, 64), (12, 64)]


def test_a_fixed_mask_overrides_the_draw_for_gradient_checks():
    layer = Dropout(0.5, seed=0)
    layer.fixed_mask = np.array([[True, False, True]])
    np.testing.assert_array_equal(layer.forward(np.ones((1, 3), np.float32)), [[2.0, 0.0, 2.0]])


def test_p_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


@pytest.mark.parametrize("backend_name", ["numba", "cupy"])
def test_every_backend_drops_the_units_the_reference_drops(backend_name):
    import minivgg

    if backend_name not in minivgg.available_backends():
        pytest.skip(f"backend {backend_name} is not available here")
    x = np.ones((5, 33), np.float32)
    reference = Dropout(0.5, seed=21)
    reference.set_position(step=3, first_sample=7)
    expected = reference.forward(x)
    minivgg.set_backend(backend_name)
    try:
        layer = Dropout(0.5, seed=21)
        layer.set_position(step=3, first_sample=7)
        np.testing.assert_array_equal(minivgg.to_host(layer.forward(minivgg.asarray(x))), expected)
    finally:
        minivgg.set_backend("numpy")


def test_a_checkpoint_holds_the_seed_alone_and_older_ones_still_load(tmp_path):
    from minivgg.training.checkpoint import load_checkpoint, restore_model, save_checkpoint
    from minivgg.training.optimiser import SGD

    net = Sequential(Linear(3, 4, rng=0), Dropout(0.5, seed=5))
    save_checkpoint(tmp_path / "c.safetensors", net, SGD(net), {})
    params, _, state = load_checkpoint(tmp_path / "c.safetensors")
    assert state["dropout"] == [5]
    other = Sequential(Linear(3, 4, rng=1), Dropout(0.5, seed=9))
    restore_model(other, params, state)
    assert dropout_layers(other)[0].seed == 5
    with pytest.warns(UserWarning, match="different masks"):  # [seed, calls] of the per-layer generator
        restore_model(other, params, dict(state, dropout=[[6, 40]]))
    assert dropout_layers(other)[0].seed == 6
