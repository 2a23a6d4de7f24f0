"""Appendix B's pieces: VOC average precision, mean class recall, the Caltech split protocol, dense
multi-scale descriptors, the feature cache and the linear SVMs."""
import warnings

import numpy as np
import pytest

from minivgg import vgg
from minivgg.layers import Sequential
from minivgg.models import paper_layer_names
from minivgg.transfer import (FeatureCache, FeatureSettings, ShortClassWarning, average_precision, class_split,
                              extract, features_of, l2_normalise, mean_and_std, mean_average_precision,
                              mean_class_recall, random_splits, stack, train_multiclass, train_multilabel)
from minivgg.transfer.extraction import descriptors_at_scale
from minivgg.transfer.metrics import DEVKIT_RECALL_LEVELS, matlab_colon


# --- average precision, both VOC definitions ------------------------------------------------------------

def test_ap_of_alternating_ranking_by_hand():
    # Ranked +, -, +, -: points (recall, precision) = (.5, 1), (.5, .5), (1, 2/3), (1, .5).
    scores, labels = [0.9, 0.8, 0.7, 0.6], [1, -1, 1, -1]
    # 11-point: thresholds 0 .. 0.5 reach precision 1, thresholds 0.6 .. 1 reach 2/3.
    assert average_precision(scores, labels, "voc07") == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    # Area: recall 0 -> .5 at precision 1, .5 -> 1 at 2/3.
    assert average_precision(scores, labels, "area") == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_ap_with_three_positives_by_hand():
    # Ranked +, +, -, +, -, -: recall reaches 2/3 at precision 1 and 1 at precision 3/4.
    scores, labels = [6, 5, 4, 3, 2, 1], [1, 1, -1, 1, -1, -1]
    assert average_precision(scores, labels, "voc07") == pytest.approx((7 * 1 + 4 * 0.75) / 11)
    assert average_precision(scores, labels, "area") == pytest.approx(2 / 3 * 1 + 1 / 3 * 0.75)


def test_the_devkits_recall_levels_are_matlabs_colon_values():
    levels = matlab_colon(0, 0.1, 1)
    # MATLAB builds 0:0.1:1 from both ends: 3 * 0.1 on the left, 1 - 3 * 0.1 on the right, 0.5 in the middle.
    assert levels == [0.0, 0.1, 0.2, 3 * 0.1, 0.4, 0.5, 1 - 0.4, 1 - 3 * 0.1, 1 - 0.2, 1 - 0.1, 1.0]
    assert levels[3] == 0.30000000000000004 and levels[3] > 3 / 10  # a recall of 3/10 does not reach it
    assert levels[6] == 6 / 10 and levels[7] == 7 / 10  # where linspace gives 0.6000000000000001, ...0001
    assert list(DEVKIT_RECALL_LEVELS) == levels and matlab_colon(0, 0.25, 1) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_recall_of_exactly_three_tenths_does_not_reach_the_devkits_fourth_level():
    # Ten positives ranked +, +, +, -, -, -, then seven +: recall 3/10 at precision 1, then 4/7 ... 10/13,
    # the best precision from recall 0.4 on being 10/13 (at recall 1).
    scores, labels = list(range(13, 0, -1)), [1, 1, 1, -1, -1, -1] + [1] * 7
    devkit = (3 * 1 + 8 * 10 / 13) / 11  # the level 0.30000000000000004 is reached only from recall 0.4 on
    tolerant = (4 * 1 + 7 * 10 / 13) / 11  # 0.3 read as 3/10
    assert average_precision(scores, labels) == pytest.approx(devkit, rel=1e-12)
    assert average_precision(scores, labels, recall_levels="tolerant") == pytest.approx(tolerant, rel=1e-12)
    assert tolerant - devkit == pytest.approx(3 / 143)
    scores2, labels2 = np.stack([scores, scores], 1), np.stack([labels, labels], 1)
    assert mean_average_precision(scores2, labels2)[0] == pytest.approx(devkit, rel=1e-12)
    assert mean_average_precision(scores2, labels2, recall_levels="tolerant")[0] == pytest.approx(tolerant, rel=1e-12)
    with pytest.raises(ValueError, match="unknown recall_levels 'linspace'"):
        average_precision(scores, labels, recall_levels="linspace")


def test_recall_of_exactly_six_tenths_reaches_the_devkits_seventh_level():
    # Ten positives ranked six +, four -, four +: recall 6/10 at precision 1, then 7/11, 8/12, 9/13, 10/14.
    # MATLAB's seventh level is 1 - 0.4 == 6/10, reached; linspace's 0.6000000000000001 would not be.
    scores, labels = list(range(14, 0, -1)), [1] * 6 + [-1] * 4 + [1] * 4
    expected = (7 * 1 + 4 * 10 / 14) / 11
    assert average_precision(scores, labels) == pytest.approx(expected, rel=1e-12)
    assert average_precision(scores, labels) != pytest.approx((6 * 1 + 5 * 10 / 14) / 11, rel=1e-6)


def test_ap_with_many_ties_does_not_depend_on_the_order_the_images_are_listed():
    rng = np.random.default_rng(0)
    scores, labels = np.round(rng.random(60), 1), np.where(rng.random(60) < 0.3, 1, -1)  # 11 distinct scores
    reference = {method: average_precision(scores, labels, method) for method in ("voc07", "area")}
    devkit = set()
    for _ in range(5):
        order = rng.permutation(60)
        for method in ("voc07", "area"):
            assert average_precision(scores[order], labels[order], method) == pytest.approx(reference[method])
        devkit.add(round(average_precision(scores[order], labels[order], "area", ties="devkit"), 12))
    assert len(devkit) > 1  # the devkit's stable order does depend on it


def test_tied_scores_count_as_one_threshold_or_in_devkit_order():
    # One positive and one negative with the same score: as one threshold the only point is (1, 1/2).
    for labels in ([1, -1], [-1, 1]):
        assert average_precision([0.5, 0.5], labels, "area") == pytest.approx(0.5)
        assert average_precision([0.5, 0.5], labels, "voc07") == pytest.approx(0.5)
    # The devkit's stable sort keeps the listed order: positive first gives a perfect ranking.
    assert average_precision([0.5, 0.5], [1, -1], "area", ties="devkit") == pytest.approx(1.0)
    assert average_precision([0.5, 0.5], [-1, 1], "area", ties="devkit") == pytest.approx(0.5)
    # A tie inside a longer ranking: +, (-, + tied), - gives (.5, 1), (1, 2/3), (1, .5).
    assert average_precision([0.9, 0.5, 0.5, 0.1], [1, -1, 1, -1], "voc07") == pytest.approx((6 + 5 * 2 / 3) / 11)


def test_difficult_images_are_ignored_as_the_devkit_does():
    scores, labels = [0.9, 0.8, 0.7, 0.6], [1, -1, 1, -1]
    for difficult_score in (1.0, 0.75, 0.0):  # wherever a difficult image ranks, it changes nothing
        with_difficult = (scores + [difficult_score], labels + [0])
        for method in ("voc07", "area"):
            assert average_precision(*with_difficult, method) == pytest.approx(
                average_precision(scores, labels, method))


def test_class_without_positives_has_no_ap_and_is_left_out_of_the_mean():
    assert np.isnan(average_precision([0.3, 0.2], [-1, -1]))
    assert np.isnan(average_precision([0.3, 0.2], [-1, 0]))
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    labels = np.array([[1, -1], [-1, -1], [1, -1], [-1, 0]])
    with pytest.warns(RuntimeWarning, match="no positive"):
        mean, per_class = mean_average_precision(scores, labels, "area", class_names=["cat", "dog"])
    assert np.isnan(per_class[1])
    assert mean == pytest.approx(per_class[0]) == pytest.approx(5 / 6)


def test_map_is_the_mean_of_the_class_aps():
    scores = np.array([[0.9, 0.2], [0.8, 0.9], [0.7, 0.1], [0.6, 0.5]])
    labels = np.array([[1, 1], [-1, -1], [1, 1], [-1, -1]])
    mean, per_class = mean_average_precision(scores, labels, "voc07")
    expected = [average_precision(scores[:, k], labels[:, k], "voc07") for k in range(2)]
    assert per_class == pytest.approx(expected) and mean == pytest.approx(np.mean(expected))


def test_ap_refuses_bad_input():
    with pytest.raises(ValueError, match="method"):
        average_precision([1.0], [1], method="voc2010")
    with pytest.raises(ValueError, match="1 \\(present\\), -1"):
        average_precision([1.0, 0.0], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        average_precision([1.0, 0.0], [1])
    with pytest.raises(ValueError, match="finite"):
        average_precision([np.nan, 0.0], [1, -1])


def test_mean_class_recall_weighs_classes_not_images():
    # Class 0 has three test images (two right), class 1 one (right): accuracy 3/4, mean class recall 5/6.
    assert mean_class_recall([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx((2 / 3 + 1) / 2)
    # A prediction that is no class (NaN) is never right; labels outside the classes are refused.
    assert mean_class_recall([np.nan, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx((1 / 3 + 1) / 2)
    for labels, num_classes in (([0, 0, 0, 2], 2), ([0, 0, 0, -1], None), ([0.0, 0.0, 0.0, 1.0], None)):
        with pytest.raises(ValueError, match="labels must be class indices"):
            mean_class_recall([0, 0, 1, 1], labels, num_classes)
    assert mean_and_std([91.0, 92.0, 93.0]) == pytest.approx((92.0, 1.0))
    assert mean_and_std([90.0]) == (90.0, 0.0)


# --- the Caltech split protocol ------------------------------------------------------------------------

def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_caltech101_split_has_30_training_and_up_to_50_test_images_per_class():
    labels = _labels([40, 31, 120])
    train, test = class_split(labels, 30, 50, seed=0, split=0)
    assert np.bincount(labels[train]).tolist() == [30, 30, 30]
    assert np.bincount(labels[test]).tolist() == [10, 1, 50]
    assert not set(train) & set(test)


def test_caltech256_split_tests_on_all_the_rest():
    labels = _labels([80, 100])
    train, test = class_split(labels, 60, None)
    assert np.bincount(labels[train]).tolist() == [60, 60]
    assert np.bincount(labels[test]).tolist() == [20, 40]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(180))


def test_splits_are_seeded_and_differ_from_each_other():
    labels = _labels([50, 50])
    first = random_splits(labels, 30, 10, num_splits=3, seed=7)
    again = random_splits(labels, 30, 10, num_splits=3, seed=7)
    other = random_splits(labels, 30, 10, num_splits=3, seed=8)
    for (a_train, a_test), (b_train, b_test) in zip(first, again):
        assert np.array_equal(a_train, b_train) and np.array_equal(a_test, b_test)
    assert not np.array_equal(first[0][0], first[1][0])
    assert not np.array_equal(first[0][0], other[0][0])


def test_class_with_fewer_images_than_asked_keeps_one_for_testing_and_warns():
    labels = _labels([5, 40])
    with pytest.warns(ShortClassWarning, match="at most 30 images"):
        train, test = class_split(labels, 30, 50, class_names=["tiny", "big"])
    assert np.bincount(labels[train]).tolist() == [4, 30]
    assert np.bincount(labels[test]).tolist() == [1, 10]
    with pytest.raises(ValueError, match="'lonely' has 1 image"):
        class_split(_labels([1, 40]), 30, class_names=["lonely", "big"])
    with warnings.catch_warnings(record=True) as caught:  # one warning for all the splits, not one each
        warnings.simplefilter("always")
        random_splits(labels, 30, num_splits=3)
    assert len([w for w in caught if w.category is ShortClassWarning]) == 1


# --- descriptors -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_net():
    # Glorot's weights with the ReLU gain: activations of realistic size (tens), not the 1e-10 of N(0, 0.01^2),
    # so the comparisons below, relative, can fail.
    model = vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, seed=0,
                weight_init="glorot-relu")
    return model.eval()


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in sizes]


def test_layer_names_are_the_released_models_names():
    names = vgg("D", num_classes=10, input_size=32, width_multiplier=0.0625, fc_width=8).layer_names()
    assert names[:3] == ["conv1_1", "conv1_2", "pool1"]
    assert names[-5:] == ["conv5_3", "pool5", "fc6", "fc7", "fc8"]
    assert len([n for n in names if n.startswith("conv")]) == 13


def test_features_at_fc8_is_the_forward_pass_and_conv_layers_are_after_relu(tiny_net):
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    scores = tiny_net.forward(x)
    assert np.abs(scores).mean() > 0.1
    np.testing.assert_allclose(tiny_net.features_at("fc8").forward(x), scores, rtol=1e-5,
                               atol=1e-5 * np.abs(scores).max())
    conv = tiny_net.features_at("conv5_2").forward(x)
    assert conv.shape == (2, 64, 2, 2) and conv.min() >= 0
    with pytest.raises(ValueError, match="no layer 'conv5_3'.*conv5_2"):
        tiny_net.features_at("conv5_3")


def test_dense_descriptor_at_the_training_size_is_the_penultimate_activation(tiny_net):
    image = _images([(32, 32)])[0]
    descriptor = extract(tiny_net, [image], scales=(32,), flip=False)
    x = tiny_net.preprocessing.apply(image[None])
    np.testing.assert_allclose(descriptor, l2_normalise(tiny_net.features_at("fc7").forward(x)), rtol=1e-5,
                               atol=1e-6)


def test_descriptor_is_averaged_with_the_flipped_image(tiny_net):
    images = _images([(40, 56), (48, 48)])
    net = tiny_net.features_at("fc7", fully_convolutional=True)
    both = descriptors_at_scale(net, tiny_net.preprocessing, images, 48, flip=True)
    plain = descriptors_at_scale(net, tiny_net.preprocessing, images, 48, flip=False)
    mirrored = descriptors_at_scale(net, tiny_net.preprocessing, [i[:, ::-1].copy() for i in images], 48,
                                    flip=False)
    assert np.abs(plain).mean() > 0.1 and np.abs(plain - mirrored).max() > 1e-2 * np.abs(plain).max()
    np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=1e-5, atol=1e-5 * np.abs(plain).max())


def test_descriptor_is_the_global_average_of_the_dense_map(tiny_net):
    """Appendix B's "global average pooling on the resulting feature map": at Q = 64 the fc7 map of a net of
    32x32 input is 2x2, each position the FC layers on one window of pool5; the descriptor is their mean."""
    image = _images([(64, 64)], seed=3)[0]
    net = tiny_net.features_at("fc7", fully_convolutional=True)
    descriptor = descriptors_at_scale(net, tiny_net.preprocessing, [image], 64, flip=False)[0]
    names = paper_layer_names(tiny_net.specs)
    pool5 = tiny_net.features_at("pool5").forward(tiny_net.preprocessing.apply(image[None]))
    head = Sequential(*tiny_net.layers[names["pool5"] + 1:names["fc7"] + 1])  # flatten, fc6, ReLU, ..., fc7, ReLU
    windows = np.stack([head.forward(np.ascontiguousarray(pool5[:, :, i:i + 1, j:j + 1]))[0]
                        for i in (0, 1) for j in (0, 1)])
    mean = windows.mean(axis=0)
    assert np.abs(windows.max(axis=0) - mean).max() > 1e-2 * np.abs(mean).max()  # max pooling would differ
    np.testing.assert_allclose(descriptor, mean, rtol=1e-4, atol=1e-4 * np.abs(mean).max())


def test_stacking_scales_multiplies_the_dimension_and_averaging_keeps_it(tiny_net):
    images = _images([(40, 60), (64, 48), (33, 33)])
    stacked = extract(tiny_net, images, scales=(32, 48, 64), aggregation="stack")
    averaged = extract(tiny_net, images, scales=(32, 48, 64), aggregation="average")
    assert stacked.shape == (3, 3 * 16) and averaged.shape == (3, 16)
    for features in (stacked, averaged):
        assert np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    conv = extract(tiny_net, images, scales=(32, 64), layer="pool5", aggregation="stack")
    assert conv.shape == (3, 2 * 64)


def test_box_descriptor_is_stacked_after_the_whole_image(tiny_net):
    images = _images([(64, 80), (50, 50)])
    boxes = [(10, 5, 60, 50), (0, 0, 40, 45)]
    with_boxes = extract(tiny_net, images, scales=(32,), boxes=boxes)
    assert with_boxes.shape == (2, 32)
    assert np.allclose(np.linalg.norm(with_boxes, axis=1), 1.0, atol=1e-5)
    whole = extract(tiny_net, images, scales=(32,))
    assert np.allclose(with_boxes[:, :16] * np.sqrt(2), whole, atol=1e-5)
    with pytest.raises(ValueError, match="holds no pixel"):
        extract(tiny_net, images[:1], scales=(32,), boxes=[(90, 0, 100, 10)])


def test_two_nets_stack_to_unit_norm_descriptors(tiny_net):
    other = vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=8, seed=1).eval()
    images = _images([(40, 40)] * 3)
    a, b = extract(tiny_net, images, scales=(32,)), extract(other, images, scales=(32,))
    both = stack([a, b])
    assert both.shape == (3, 24)
    assert np.allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)


def test_scales_below_the_training_size_are_refused(tiny_net):
    with pytest.raises(ValueError, match="at least the net's input size 32"):
        extract(tiny_net, _images([(40, 40)]), scales=(16,))
    with pytest.raises(ValueError, match="aggregation"):
        FeatureSettings(aggregation="max")


# --- the feature cache --------------------------------------------------------------------------------

def _write_jpegs(folder, count, seed=0):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(_images([(36 + 4 * (i % 3), 40) for i in range(count)], seed)):
        path = folder / f"image_{i:04d}.jpg"
        Image.fromarray(image).save(path, quality=90)
        paths.append(str(path))
    return paths


def test_second_run_reads_the_cache_instead_of_recomputing(tiny_net, tmp_path, monkeypatch):
    import minivgg.transfer.features as features_module

    paths = _write_jpegs(tmp_path / "images", 4)
    calls = []
    real_extract = features_module.extract
    def counting_extract(model, images, *arguments, **options):
        calls.append(len(images))
        return real_extract(model, images, *arguments, **options)

    monkeypatch.setattr(features_module, "extract", counting_extract)
    settings = FeatureSettings(scales=(32, 40), aggregation="stack", flip=True)
    cache = FeatureCache(tmp_path / "cache")
    first = features_of(tiny_net, paths, settings, cache)
    assert (cache.hits, cache.misses, sum(calls)) == (0, 4, 4)
    second = features_of(tiny_net, paths, settings, cache)
    assert (cache.hits, sum(calls)) == (4, 4)  # nothing recomputed
    assert np.array_equal(first, second)
    # Other settings, another net, or a changed file are other keys.
    features_of(tiny_net, paths, FeatureSettings(scales=(32,), flip=True), cache)
    assert sum(calls) == 8
    other = vgg("A", num_classes=5, input_size=32, width_multiplier=0.125, fc_width=16, seed=5).eval()
    features_of(other, paths[:1], settings, cache)
    assert sum(calls) == 9
    from PIL import Image

    Image.fromarray(_images([(40, 40)], seed=3)[0]).save(paths[1])
    features_of(tiny_net, paths, settings, cache)
    assert sum(calls) == 10
    # Every stored descriptor is an .npz without pickles.
    stored = list((tmp_path / "cache").rglob("*.npz"))
    assert len(stored) == 10
    assert np.load(stored[0], allow_pickle=False)["descriptor"].dtype == np.float32
    # A damaged file is a miss, recomputed and rewritten, not an error.
    for damaged in stored:
        damaged.write_bytes(damaged.read_bytes()[:40])
    again = features_of(tiny_net, paths, settings, cache)
    assert sum(calls) == 14 and np.array_equal(again[[0, 2, 3]], first[[0, 2, 3]])


def test_large_jpegs_are_drafted_no_smaller_than_the_largest_scale(tmp_path):
    from PIL import Image

    from minivgg.transfer.features import load_source

    path = tmp_path / "large.jpg"
    Image.fromarray(_images([(256, 320)], seed=1)[0]).save(path, quality=90)
    image = load_source(str(path), FeatureSettings(scales=(32, 128)))
    assert min(image.shape[:2]) >= 128  # Q = 128 a downscaling, not an enlargement of a 32-pixel draft
    assert min(image.shape[:2]) < 256  # and still drafted


def test_cache_key_tells_apart_every_box_and_image():
    from minivgg.transfer.cache import image_key

    image = np.zeros((4, 4, 3), np.uint8)
    boxes = [None, (0, 0, 2, 2), (0, 0, 2, 3), (100.0001, 0, 101, 2), (100.0002, 0, 101, 2),
             (1234567.0, 0, 1234569.0, 2), (1234568.0, 0, 1234569.0, 2)]
    keys = {image_key(image, box) for box in boxes}
    assert len(keys) == len(boxes)
    assert image_key(image, (1, 2, 3, 4)) == image_key(image.copy(), np.array([1.0, 2.0, 3.0, 4.0]))
    other = image.copy()
    other[0, 0, 0] = 1
    assert image_key(other) != image_key(image)


# --- the linear SVMs ---------------------------------------------------------------------------------------

def _blobs(count_per_class, classes, dimension=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(classes, dimension))
    labels = np.repeat(np.arange(classes), count_per_class)
    return centres[labels] + rng.normal(size=(len(labels), dimension)), labels


def test_multiclass_svm_chooses_C_by_cross_validation_and_separates_blobs():
    features, labels = _blobs(20, 3)
    svm = train_multiclass(features[::2], labels[::2], C_grid=(0.001, 0.1, 10.0), folds=3)
    assert svm.C in (0.001, 0.1, 10.0)
    assert mean_class_recall(svm.predict(features[1::2]), labels[1::2]) > 0.9
    with pytest.raises(ValueError, match="needs two"):
        train_multiclass(features[:5], np.zeros(5, np.int64))


def test_multilabel_svms_leave_difficult_images_out_of_training(monkeypatch):
    import minivgg.transfer.svm as svm_module

    features, labels = _blobs(10, 2)
    flags = np.stack([np.where(labels == 0, 1, -1), np.where(labels == 1, 1, -1)], axis=1)
    flags[:3, 1] = 0  # three images difficult for class 1
    seen = []
    real = svm_module.choose_C
    monkeypatch.setattr(svm_module, "choose_C", lambda f, t, *a: seen.append(len(t)) or real(f, t, *a))
    svms = train_multilabel(features, flags, C_grid=(0.1, 1.0), folds=2)
    assert seen == [20, 17]
    scores = svms.scores(features)
    assert scores.shape == (20, 2)
    assert mean_average_precision(scores, flags, "area")[0] > 0.9
    flags[:, 0] = -1
    with pytest.raises(ValueError, match="no positive"):
        train_multilabel(features, flags, class_names=["aeroplane", "bicycle"])


def test_boolean_labels_mean_present_or_absent():
    scores = [0.9, 0.8, 0.7, 0.6]
    assert average_precision(scores, [True, False, True, False], "area") == pytest.approx(
        average_precision(scores, [1, -1, 1, -1], "area"))
