"""Appendix B's descriptors pinned where mutation testing found them loose: the scale, the flip and the batch size
reach every dense pass, the parts are normalised as documented, and the settings and errors say what they
should. Each test failed on the mutant it was written against (benchmarks/RESULTS.md)."""
import importlib

import numpy as np
import pytest

from minivgg import vgg
from minivgg.evaluation.dense import dense_outputs, spatial_mean
from minivgg.transfer.extraction import FeatureSettings, descriptors_at_scale, extract, l2_normalise, stack

extraction = importlib.import_module("minivgg.transfer.extraction")


@pytest.fixture(scope="module")
def model():
    # Glorot x sqrt(2) weights: activations of realistic size, so the relative comparisons below can fail.
    return vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, seed=0,
               weight_init="glorot-relu").eval()


@pytest.fixture
def images():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in [(36, 50), (52, 40), (40, 40)]]


def _by_hand(net, preprocessing, images, scale, flip):
    """The fc7 map at Q = ``scale`` averaged over space, and over the mirror: float32."""
    pooled = [dense_outputs(net, preprocessing, images, scale, flipped) for flipped in ((False, True) if flip
                                                                                       else (False,))]
    return np.mean(pooled, axis=0).astype(np.float32)


def test_descriptors_at_a_scale_see_the_images_rescaled_to_it_and_mirrored(model, images):
    net = model.features_at("fc7", fully_convolutional=True)
    got = descriptors_at_scale(net, model.preprocessing, images, 48, flip=True)
    assert got.dtype == np.float32
    expected = _by_hand(net, model.preprocessing, images, 48, True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    # The scale and the mirror each change the descriptors, so losing either would be seen.
    for other in (_by_hand(net, model.preprocessing, images, 40, True),
                  _by_hand(net, model.preprocessing, images, 48, False)):
        assert np.abs(other - expected).max() > 1e-3 * np.abs(expected).max()


@pytest.mark.parametrize("aggregation", ["stack", "average"])
@pytest.mark.parametrize("flip", [True, False])
def test_extract_combines_each_scale_s_descriptors_with_the_flip_asked_for(model, images, aggregation, flip):
    net = model.features_at("fc7", fully_convolutional=True)
    parts = [_by_hand(net, model.preprocessing, images, q, flip) for q in (40, 48)]
    expected = stack(parts) if aggregation == "stack" else l2_normalise(np.mean([l2_normalise(p) for p in parts], 0))
    got = extract(model, images, scales=(40, 48), aggregation=aggregation, flip=flip)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    other = extract(model, images, scales=(40, 48), aggregation=aggregation, flip=not flip)
    assert np.abs(other - got).max() > 1e-3


def test_the_batch_size_reaches_every_dense_pass(model, images, monkeypatch):
    sizes = []

    def recording(*args, **kwargs):
        sizes.append(kwargs.get("batch_size", args[5] if len(args) > 5 else None))
        return dense_outputs(*args, **kwargs)

    monkeypatch.setattr(extraction, "dense_outputs", recording)
    extract(model, images, scales=(40, 48), batch_size=2, boxes=[(0, 0, 30, 30)] * 3)
    assert len(sizes) == 8 and set(sizes) == {2}  # 2 scales x 2 flips, for the images and for the boxes


def test_l2_normalise_gives_float32_unit_rows_and_keeps_rows_of_zeros():
    out = l2_normalise(np.array([[0.0, 0.0], [3.0, 4.0]]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[0, 0], [0.6, 0.8]], np.float32))


def test_stacking_nothing_or_parts_of_other_lengths_is_refused_by_name():
    with pytest.raises(ValueError, match="^stack: no descriptors to stack$"):
        stack([])
    with pytest.raises(ValueError, match=r"^stack: the descriptors describe different numbers of images: \[2, 3\]$"):
        stack([np.ones((2, 4)), np.ones((3, 4))])


def test_feature_settings_keep_whole_scales_and_a_boolean_flip():
    settings = FeatureSettings(scales=[1, 40.0], flip=0)
    assert settings.scales == (1, 40) and all(type(q) is int for q in settings.scales)
    assert settings.flip is False and FeatureSettings(flip=1).flip is True
    for scales in ((), (0, 40)):
        with pytest.raises(ValueError, match=r"^FeatureSettings: scales must be positive integers, got"):
            FeatureSettings(scales=scales)


def test_extract_refuses_what_it_cannot_do_and_names_it(model, images):
    with pytest.raises(TypeError, match=r"^extract: give either settings or its fields, not both \(\['flip'\]\)$"):
        extract(model, images, FeatureSettings(), flip=False)
    with pytest.raises(ValueError, match="^extract: 2 boxes for 3 images$"):
        extract(model, images, scales=(40,), boxes=[(0, 0, 9, 9)] * 2)
    with pytest.raises(TypeError, match="image 1 is a float"):
        extract(model, [images[0], 2.5], scales=(40,))


def test_extract_gives_the_model_s_training_mode_back(model, images):
    try:
        for mode in (True, False):
            model.train(mode)
            extract(model, images[:1], scales=(40,))
            assert model.training is mode
    finally:
        model.eval()


def test_non_finite_descriptors_are_named_with_the_preprocessing():
    from minivgg.errors import NonFiniteOutputError

    broken = vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, seed=0).eval()
    _, layer, key = next(iter(broken.named_parameters()))
    layer.params[key][...] = np.nan
    with pytest.raises(NonFiniteOutputError) as error:
        extract(broken, [np.full((40, 40, 3), 9, np.uint8)], scales=(40,))
    assert "the model's descriptors are NaN or infinite" in str(error.value)
    assert f"({broken.preprocessing})" in str(error.value)


def test_spatial_mean_leaves_one_vector_an_image_as_it_is():
    vectors = np.arange(6.0).reshape(2, 3)
    assert spatial_mean(vectors) is vectors
    np.testing.assert_array_equal(spatial_mean(np.arange(24.0).reshape(1, 2, 3, 4)), [[5.5, 17.5]])


def test_a_box_from_the_image_s_edge_keeps_its_first_row_and_column_and_an_empty_box_is_refused():
    from minivgg.transfer.extraction import crop_box

    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    np.testing.assert_array_equal(crop_box(image, (0, 0, 10, 8)), image[:8, :10])
    np.testing.assert_array_equal(crop_box(image, (-5, -5, 40, 40)), image)  # clipped to the image
    for empty in ((5, 2, 5, 9), (5, 2, 9, 2)):
        with pytest.raises(ValueError, match="holds no pixel of the 20x30 image"):
            crop_box(image, empty)


# --- the fourth round of mutation testing -------------------------------------------------------------------------
def test_descriptors_average_the_mirror_and_take_8_images_a_pass_unless_told(model, monkeypatch):
    images = [np.random.default_rng(i).integers(0, 256, size=(40, 44, 3), dtype=np.uint8) for i in range(9)]
    net = model.features_at("fc7", fully_convolutional=True)
    sizes = []

    def recording(*args, **kwargs):
        sizes.append(kwargs.get("batch_size", args[5] if len(args) > 5 else None))
        return dense_outputs(*args, **kwargs)

    monkeypatch.setattr(extraction, "dense_outputs", recording)
    default = descriptors_at_scale(net, model.preprocessing, images, 40)
    assert sizes == [8, 8]  # the image and its mirror
    np.testing.assert_array_equal(default, descriptors_at_scale(net, model.preprocessing, images, 40, flip=True))
    assert np.abs(default - descriptors_at_scale(net, model.preprocessing, images, 40, flip=False)).max() > 1e-3
    sizes.clear()
    extract(model, images, scales=(40,))
    assert sizes == [8, 8]


def test_descriptors_beyond_float32_are_refused_without_a_warning_first():
    """A float64 net's activations above float32's largest number become infinite in the float32 descriptor: the
    error names them; NumPy's overflow warning is not shown as well."""
    import warnings

    from minivgg.errors import NonFiniteOutputError

    net64 = vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, seed=0,
                weight_init="glorot-relu", dtype=np.float64).eval()
    fc7 = net64.features_at("fc7", fully_convolutional=True)
    layer = [layer for layer in fc7.layers if "W" in layer.params][-1]
    layer.params["W"] = layer.params["W"] * 1e300
    image = np.random.default_rng(0).integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    assert np.isfinite(dense_outputs(fc7, net64.preprocessing, [image])).all()  # finite in float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteOutputError, match="descriptors are NaN or infinite for 1 of 1 images"):
            descriptors_at_scale(fc7, net64.preprocessing, [image], 40)


def test_the_settings_as_a_dict_equal_their_json_reading():
    """A stored record (``minivgg features``' file, the transfer report) read back compares equal to the settings
    it was written from."""
    import json

    record = FeatureSettings(scales=(40, 48), aggregation="average").to_dict()
    assert record == {"layer": "fc7", "scales": [40, 48], "aggregation": "average", "flip": True}
    assert json.loads(json.dumps(record)) == record
