"""Localisation (Appendix A): boxes, IoU, the box encoding, OverFeat's merge, the ILSVRC criterion, the
annotation reader, the box loss and net, the crops, dense prediction. All fast; training is in
test_localisation_training.py."""
import numpy as np
import pytest

from minivgg import gradcheck
from minivgg.localisation import (AnnotationError, BoxCropLoader, BoxDataset, BoxRegressionLoss, BoxTargets,
                                  centre_crop_boxes, decode_boxes, dense_boxes, encode_boxes, greedy_merge,
                                  image_is_localised, iou, load_digit_scenes, localisation_error, localisation_net,
                                  match_scores, parse_annotation, read_annotation)
from minivgg.localisation.annotations import format_annotation
from minivgg.localisation.data import crop_positions
from minivgg.localisation.dense import window_grid
from minivgg.models import vgg


# --- IoU, hand-computed ---------------------------------------------------------------------------------

def test_iou_of_identical_boxes_is_one():
    assert iou([1, 2, 5, 7], [1, 2, 5, 7])[0, 0] == 1.0


def test_iou_of_disjoint_and_of_touching_boxes_is_zero():
    assert iou([0, 0, 2, 2], [3, 3, 5, 5])[0, 0] == 0.0
    # Sharing an edge (x = 2) or only a corner: no area in common.
    assert iou([0, 0, 2, 2], [2, 0, 4, 2])[0, 0] == 0.0
    assert iou([0, 0, 2, 2], [2, 2, 4, 4])[0, 0] == 0.0


def test_iou_of_nested_boxes_is_the_area_ratio():
    # A 2x2 box inside a 4x4 one: intersection 4, union 16.
    assert iou([0, 0, 4, 4], [1, 1, 3, 3])[0, 0] == pytest.approx(4 / 16)


def test_iou_of_partly_overlapping_boxes():
    # [0,4]x[0,2] and [2,6]x[1,3]: intersection [2,4]x[1,2] = 2, union 8 + 8 - 2 = 14.
    assert iou([0, 0, 4, 2], [2, 1, 6, 3])[0, 0] == pytest.approx(2 / 14)


def test_iou_of_degenerate_boxes_is_zero():
    line, point = [1, 1, 1, 5], [2, 2, 2, 2]
    assert iou(line, [0, 0, 4, 4])[0, 0] == 0.0       # zero width inside a box: no area to share
    assert iou(line, line)[0, 0] == 0.0                # union 0: no division by zero, no match
    assert iou(point, point)[0, 0] == 0.0


def test_iou_is_the_full_matrix():
    a = np.array([[0, 0, 2, 2], [0, 0, 4, 4]])
    b = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [10, 10, 11, 11]])
    expected = np.array([[1.0, 1 / 7, 0.0], [4 / 16, 4 / 16, 0.0]])
    np.testing.assert_allclose(iou(a, b), expected)
    np.testing.assert_allclose(iou(b, a), expected.T)


@pytest.mark.parametrize("bad, message", [([3, 0, 1, 2], "x_max < x_min"), ([[0, 0, 1]], "shape"),
                                          ([0, np.nan, 1, 1], "finite")])
def test_iou_refuses_bad_boxes(bad, message):
    with pytest.raises(ValueError, match=message):
        iou(bad, [0, 0, 1, 1])


# --- encoding -------------------------------------------------------------------------------------------

def test_the_box_filling_the_window_encodes_as_half_half_one_one():
    np.testing.assert_allclose(encode_boxes([10, 20, 42, 52], (10, 20, 32)), [[0.5, 0.5, 1.0, 1.0]])
    # The same at another image size: the parameters are relative to the window's side.
    np.testing.assert_allclose(encode_boxes([0, 0, 384, 384], (0, 0, 384)), [[0.5, 0.5, 1.0, 1.0]])


def test_encoding_and_decoding_round_trip(rng):
    corners = rng.uniform(-50, 300, size=(20, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(0, 100, size=(20, 2))], axis=1)
    windows = np.concatenate([rng.uniform(0, 100, (20, 2)), rng.uniform(10, 300, (20, 1))], axis=1)
    np.testing.assert_allclose(decode_boxes(encode_boxes(boxes, windows), windows), boxes, atol=1e-9)
    parameters = rng.uniform(-1, 2, size=(20, 4))
    parameters[:, 2:] = np.abs(parameters[:, 2:])
    np.testing.assert_allclose(encode_boxes(decode_boxes(parameters, windows), windows), parameters, atol=1e-12)


# --- OverFeat's greedy merge ------------------------------------------------------------------------------

def test_match_score_is_zero_for_identical_boxes_and_grows_with_distance():
    scores = match_scores([[0, 0, 10, 10]], [[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [30, 0, 40, 10]])[0]
    assert scores[0] == 0.0
    assert np.all(np.diff(scores) > 0)
    # Shifted by half a side: distance 5 / mean side 10 = 0.5, IoU 50 / 150 = 1/3.
    assert scores[2] == pytest.approx(0.5 + 2 / 3)


def test_merge_averages_close_boxes_sums_their_scores_and_keeps_far_ones():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11],          # one object, two windows
                      [50, 50, 60, 60], [51, 50, 61, 60], [50, 51, 60, 61],   # another, three windows
                      [0, 80, 5, 85]])                          # a stray box
    scores = np.array([0.4, 0.3, 0.2, 0.2, 0.2, 0.05])
    merged, merged_scores, members = greedy_merge(boxes, scores, threshold=0.75)
    assert len(merged) == 3
    # The pair merges into the average of their coordinates; its score is the sum.
    index = next(i for i, m in enumerate(members) if m == [0, 1])
    np.testing.assert_allclose(merged[index], [0.5, 0.5, 10.5, 10.5])
    assert merged_scores[index] == pytest.approx(0.7)
    # Three boxes: the first two are averaged, then the result with the third (OverFeat averages pairs).
    index = next(i for i, m in enumerate(members) if m == [2, 3, 4])
    first_two = 0.5 * (boxes[2] + boxes[3])
    np.testing.assert_allclose(merged[index], 0.5 * (first_two + boxes[4]))
    assert merged_scores[index] == pytest.approx(0.6)
    # Ranked by summed score: the 2-box cluster (0.7) before the 3-box one (0.6) before the stray box.
    np.testing.assert_allclose(merged_scores, [0.7, 0.6, 0.05])


def test_merge_with_threshold_zero_only_joins_identical_boxes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10]])
    merged, scores, _ = greedy_merge(boxes, [1.0, 1.0, 1.0], threshold=0.0)
    assert len(merged) == 2
    np.testing.assert_allclose(scores, [2.0, 1.0])


def test_merge_refuses_bad_scores():
    with pytest.raises(ValueError, match="scores"):
        greedy_merge([[0, 0, 1, 1]], [-1.0])
    with pytest.raises(ValueError, match="no boxes"):
        greedy_merge(np.zeros((0, 4)), [])


# --- the ILSVRC criterion ----------------------------------------------------------------------------------

def test_a_guess_needs_the_right_class_and_iou_at_least_one_half():
    truth_classes, truth_boxes = [3], [[0, 0, 10, 10]]
    half = [0, 0, 10, 5]  # IoU exactly 0.5
    assert image_is_localised([3], [half], truth_classes, truth_boxes, top=1)
    assert not image_is_localised([3], [[0, 0, 10, 4.9]], truth_classes, truth_boxes, top=1)
    assert not image_is_localised([2], [[0, 0, 10, 10]], truth_classes, truth_boxes, top=1)  # wrong class


def test_top_5_counts_a_right_fifth_guess_and_not_a_sixth():
    truth = ([7], [[20, 20, 40, 40]])
    wrong_box, right_box = [0, 0, 5, 5], [21, 21, 40, 41]
    classes = [1, 2, 3, 4, 7, 7]
    boxes = [wrong_box] * 4 + [right_box, right_box]
    assert image_is_localised(classes, boxes, *truth, top=5)
    assert not image_is_localised(classes, boxes, *truth, top=4)
    # The right class with a wrong box, and a right box with a wrong class, both fail.
    assert not image_is_localised([7, 1], [wrong_box, right_box], *truth, top=5)
    guesses_right_sixth = (classes[:4] + [5, 7], boxes)
    assert not image_is_localised(*guesses_right_sixth, *truth, top=5)


def test_any_ground_truth_box_of_the_class_will_do():
    truth_classes, truth_boxes = [4, 4], [[0, 0, 10, 10], [50, 50, 70, 70]]
    assert image_is_localised([4], [[50, 50, 70, 69]], truth_classes, truth_boxes, top=1)


def test_localisation_error_is_the_fraction_of_images_missed():
    truths = [([0], [[0, 0, 10, 10]]), ([1], [[0, 0, 10, 10]])]
    guesses = [([0], [[0, 0, 10, 10]]), ([1], [[20, 20, 30, 30]])]
    assert localisation_error(guesses, truths, top=5) == 0.5


# --- annotations ----------------------------------------------------------------------------------------------

ILSVRC_XML = """<annotation><folder>n01440764</folder><filename>n01440764_10026</filename>
<source><database>ILSVRC_2012</database></source><size><width>250</width><height>200</height><depth>3</depth></size>
<segmented>0</segmented><object><name>n01440764</name><pose>Unspecified</pose><truncated>0</truncated>
<difficult>0</difficult><bndbox><xmin>3</xmin><ymin>5</ymin><xmax>250</xmax><ymax>199</ymax></bndbox></object>
</annotation>"""

VOC_XML = """<annotation><folder>VOC2007</folder><filename>000005.jpg</filename>
<size><width>500</width><height>375</height><depth>3</depth></size>
<object><name>chair</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
<object><name>person</name><bndbox><xmin>100.5</xmin><ymin>50</ymin><xmax>500</xmax><ymax>375</ymax></bndbox></object>
</annotation>"""


def test_ilsvrc_annotation_is_read_in_continuous_coordinates():
    annotation = parse_annotation(ILSVRC_XML)
    assert (annotation.filename, annotation.width, annotation.height) == ("n01440764_10026", 250, 200)
    assert annotation.names == ("n01440764",)
    # Inclusive 1-based pixels 3..250: the continuous box starts at 2 and ends at 250 (width 248 = 250 - 3 + 1).
    np.testing.assert_allclose(annotation.boxes, [[2, 4, 250, 199]])


def test_voc_annotation_with_several_objects(tmp_path):
    path = tmp_path / "000005.xml"
    path.write_text(VOC_XML)
    annotation = read_annotation(path)
    assert annotation.names == ("chair", "person")
    np.testing.assert_allclose(annotation.boxes, [[0, 0, 10, 20], [99.5, 49, 500, 375]])


def test_format_annotation_round_trips():
    boxes = np.array([[0, 0, 10, 20], [5, 6, 7, 8]], dtype=float)
    text = format_annotation("scene.png", 64, 48, ["3", "3"], boxes)
    annotation = parse_annotation(text)
    np.testing.assert_allclose(annotation.boxes, boxes)
    assert (annotation.width, annotation.height, annotation.names) == (64, 48, ("3", "3"))


def _without(text, fragment):
    assert fragment in text
    return text.replace(fragment, "")


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("   \n", "empty"),
    ("<annotation><filename>x", "well-formed"),
    ("<notes/>", "root element"),
    (_without(VOC_XML, "<filename>000005.jpg</filename>"), "filename"),
    (_without(VOC_XML, "<width>500</width>"), "the image: missing <size><width>"),
    (_without(VOC_XML, "<name>chair</name>"), "object 1.*name"),
    (_without(VOC_XML, "<xmin>1</xmin>"), "object 1.*<xmin>"),
    (VOC_XML.replace("<ymax>20</ymax>", "<ymax>twenty</ymax>"), "must be a number"),
    (VOC_XML.replace("<xmax>500</xmax>", "<xmax>501</xmax>"), "outside the 500 x 375 image"),
    (VOC_XML.replace("<xmin>1</xmin>", "<xmin>0</xmin>"), "outside.*pixel_origin=0"),
    (VOC_XML.replace("<xmax>10</xmax>", "<xmax>0.5</xmax>"), "inside out"),
    (VOC_XML.replace("<width>500</width>", "<width>-5</width>"), "positive integers"),
    ("<annotation><filename>a</filename><size><width>5</width><height>5</height></size></annotation>",
     "no <object>"),
])
def test_bad_annotations_get_clear_errors(text, message):
    with pytest.raises(AnnotationError, match=message):
        parse_annotation(text, source="bad.xml")


def test_entity_expansion_bomb_is_refused():
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
            + ']><annotation><filename>&lol9;</filename></annotation>')
    with pytest.raises(AnnotationError, match="entity"):
        parse_annotation(bomb, source="bomb.xml")


def test_external_entity_is_refused():
    external = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
                '<annotation><filename>&secret;</filename></annotation>')
    with pytest.raises(AnnotationError, match="entity"):
        parse_annotation(external)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no annotation file"):
        read_annotation(tmp_path / "missing.xml")


# --- the embedded scenes and the crops ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenes():
    return load_digit_scenes(counts={"train": 24, "val": 8, "test": 8}, seed=3)


def test_scenes_are_seeded_and_their_boxes_cover_the_digit(scenes):
    again = load_digit_scenes(counts={"train": 24, "val": 8, "test": 8}, seed=3)
    np.testing.assert_array_equal(again["train"].images[5], scenes["train"].images[5])
    for image, boxes in zip(scenes["train"].images, scenes["train"].boxes):
        x0, y0, x1, y1 = boxes[0].astype(int)
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
        assert x1 - x0 >= 4 and y1 - y0 >= 8  # a digit drawn at 16 px or more


def test_training_crops_keep_at_least_half_the_object():
    box = np.array([40.0, 10.0, 60.0, 30.0])
    tops, lefts = crop_positions(64, 64, 32, box, 0.5)
    for top, left in zip(tops, lefts):
        inside = (min(box[2], left + 32) - max(box[0], left)) * (min(box[3], top + 32) - max(box[1], top))
        assert inside / 400 >= 0.5 - 1e-9
    # Not only the best position: every position that keeps half the object is a candidate.
    assert len(tops) > 100


def test_crop_targets_are_the_ground_truth_in_the_crop_frame(scenes):
    from minivgg.preprocessing import Preprocessing

    loader = BoxCropLoader(scenes["val"], 4, 64, 32, Preprocessing(), train=False)
    _, targets = next(loader.epoch(0))
    # The centre crop of a 64 image at S = 64 starts at (16, 16).
    expected = encode_boxes(np.concatenate(scenes["val"].boxes[:4]), (16, 16, 32))
    np.testing.assert_allclose(targets.parameters, expected, rtol=1e-6)
    np.testing.assert_array_equal(targets.labels, scenes["val"].labels[:4])


def test_box_dataset_refuses_boxes_outside_the_image():
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="leaves the 10x10 image"):
        BoxDataset([image], [0], [np.array([[0, 0, 11, 5]])], ["a"])


# --- the loss and the net --------------------------------------------------------------------------------------

@pytest.mark.parametrize("regression, outputs", [("SCR", 4), ("PCR", 12)])
def test_box_loss_gradient_float64(rng, regression, outputs):
    loss = BoxRegressionLoss(regression, 3)
    predictions = rng.standard_normal((5, outputs))
    targets = BoxTargets(np.array([0, 2, 1, 2, 0]), rng.standard_normal((5, 4)))
    numeric = gradcheck.numerical_gradient(lambda: loss.forward(predictions, targets), predictions)
    loss.forward(predictions, targets)
    analytic = loss.backward()
    assert gradcheck.relative_error(analytic, numeric) < 1e-6
    if regression == "PCR":  # only the ground-truth class's four outputs are penalised
        for row, label in enumerate(targets.labels):
            untouched = np.delete(analytic[row], np.arange(4 * label, 4 * label + 4))
            assert np.all(untouched == 0)


def _small_classifier(classes=3):
    return vgg("A", num_classes=classes, input_size=32, width_multiplier=0.125, fc_width=16, dropout=0.0,
               weight_init="glorot-relu", seed=0)


@pytest.mark.parametrize("regression, outputs", [("SCR", 4), ("PCR", 12)])
def test_localisation_net_copies_all_but_the_last_layer(regression, outputs):
    classifier = _small_classifier()
    net = localisation_net(classifier, regression)
    assert net.forward(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, outputs)
    source = dict((name, layer.params[key]) for name, layer, key in classifier.named_parameters())
    names = [name for name, _, _ in net.model.named_parameters()]
    for name, layer, key in net.model.named_parameters():
        if name in names[-2:]:
            assert layer.params[key].shape[0] == outputs
        else:
            np.testing.assert_array_equal(layer.params[key], source[name])
            assert layer.params[key] is not source[name]  # a copy: fine-tuning leaves the classifier alone


def test_fine_tuning_fc_only_leaves_the_conv_layers_frozen(rng):
    from minivgg.training.optimiser import SGD

    results = {}
    for fine_tune in ("fc", "all"):
        net = localisation_net(_small_classifier(), "PCR", fine_tune)
        before = {name: layer.params[key].copy() for name, layer, key in net.model.named_parameters()}
        loss, optimizer = BoxRegressionLoss("PCR", 3), SGD(net, momentum=0.0, weight_decay=0.0)
        x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
        loss.forward(net.forward(x), BoxTargets(np.array([0, 1, 2, 1]), rng.uniform(0, 1, (4, 4))))
        net.backward(loss.backward(), input_gradient=False)
        optimizer.step(0.1)
        results[fine_tune] = {name: not np.array_equal(before[name], layer.params[key])
                              for name, layer, key in net.model.named_parameters()}
    assert not any(changed for name, changed in results["fc"].items() if name.startswith("features"))
    assert all(changed for name, changed in results["fc"].items() if name.endswith("weight")
               and name.startswith("classifier"))
    assert any(changed for name, changed in results["all"].items() if name.startswith("features"))


def test_localisation_net_saves_and_loads(tmp_path):
    from minivgg.localisation import load_localisation_net, save_localisation_net
    from minivgg import weights

    classifier = _small_classifier()
    net = localisation_net(classifier, "PCR", "fc")
    save_localisation_net(net, tmp_path / "loc.safetensors")
    loaded = load_localisation_net(tmp_path / "loc.safetensors")
    assert (loaded.regression, loaded.num_classes, loaded.fine_tune) == ("PCR", 3, "fc")
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(loaded.eval().forward(x), net.eval().forward(x))
    weights.save(classifier, tmp_path / "classifier.safetensors")
    with pytest.raises(ValueError, match="classification net, not a localisation net"):
        load_localisation_net(tmp_path / "classifier.safetensors")


# --- dense prediction -----------------------------------------------------------------------------------------

def test_dense_windows_step_by_32():
    np.testing.assert_array_equal(window_grid(2, 3, 32)[:, :2], [[0, 0], [32, 0], [64, 0], [0, 32], [32, 32],
                                                                   [64, 32]])


def test_dense_box_at_the_input_size_equals_the_centre_crop_box(scenes):
    """At Q = the input size the dense map has one position, whose window is the whole (centre) crop."""
    classifier = _small_classifier()
    net = localisation_net(classifier, "PCR")
    image = scenes["test"].images[0][16:48, 16:48].copy()
    dense = dense_boxes(net, classifier, image, [32])
    assert dense.boxes.shape == (1, 3, 4)
    for c in range(3):
        np.testing.assert_allclose(dense.boxes_for(c), centre_crop_boxes(net, [image], [c], 32), atol=1e-4)
    np.testing.assert_allclose(dense.posteriors.sum(axis=1), 1.0, rtol=1e-5)


def test_dense_boxes_refuse_a_classifier_of_another_size():
    net = localisation_net(_small_classifier(), "SCR")
    other = vgg("A", num_classes=3, input_size=64, width_multiplier=0.125, fc_width=16, seed=0)
    with pytest.raises(ValueError, match="input size"):
        dense_boxes(net, other, np.zeros((64, 64, 3), np.uint8), [64])


def test_the_classifier_runs_once_for_several_nets(scenes, monkeypatch):
    """The windows of every net are the classifier's: a second net's boxes take the first one's posteriors."""
    classifier = _small_classifier()
    pcr, scr = localisation_net(classifier, "PCR", seed=1), localisation_net(classifier, "SCR", seed=2)
    image = scenes["test"].images[0]
    first, alone = (dense_boxes(net, classifier, image, [32, 64]) for net in (pcr, scr))
    monkeypatch.setattr(classifier, "to_fully_convolutional", lambda: pytest.fail("the classifier ran again"))
    reused = dense_boxes(scr, classifier, image, [32, 64], posteriors=first.posteriors)
    np.testing.assert_allclose(reused.posteriors, alone.posteriors, rtol=1e-6)
    np.testing.assert_array_equal(reused.boxes, alone.boxes)
    with pytest.raises(ValueError, match="posteriors of 4 positions"):
        dense_boxes(scr, classifier, image, [32, 64], posteriors=first.posteriors[:4])


def test_protocol_2_pools_the_boxes_of_several_nets(scenes):
    from minivgg.localisation import localise

    classifier = _small_classifier()
    pcr, scr = localisation_net(classifier, "PCR", seed=1), localisation_net(classifier, "SCR", seed=2)
    image = scenes["test"].images[0]
    one = localise(pcr, classifier, image, [32, 64])
    both = localise([pcr, scr], classifier, image, [32, 64])
    # 1 position at Q = 32 and 2x2 at Q = 64, for each net: the union before merging.
    assert len(one.dense.boxes) == 5 and len(both.dense.boxes) == 10
    # Five guesses asked, three classes known: one guess per class, most probable first.
    assert sorted(both.classes) == [0, 1, 2] and both.boxes.shape == (3, 4)
    assert np.all(np.diff(both.class_posteriors[both.classes]) <= 0)
    np.testing.assert_allclose(both.class_posteriors, one.class_posteriors)
    assert both.class_posteriors.sum() == pytest.approx(1.0)


def test_annotated_folder_becomes_a_box_dataset(tmp_path):
    from PIL import Image

    from minivgg.localisation import read_annotated_images

    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    Image.fromarray(np.zeros((200, 250, 3), np.uint8)).save(tmp_path / "images" / "n01440764_10026.JPEG")
    (tmp_path / "annotations" / "n01440764_10026.xml").write_text(ILSVRC_XML)
    dataset = read_annotated_images(tmp_path / "annotations", tmp_path / "images")
    assert dataset.class_names == ["n01440764"] and len(dataset) == 1
    np.testing.assert_allclose(dataset.boxes[0], [[2, 4, 250, 199]])
    # An image whose size differs from its annotation's is named.
    Image.fromarray(np.zeros((100, 250, 3), np.uint8)).save(tmp_path / "images" / "n01440764_10026.JPEG")
    with pytest.raises(AnnotationError, match="describes a 250x200 image"):
        read_annotated_images(tmp_path / "annotations", tmp_path / "images")
    with pytest.raises(FileNotFoundError, match="not in"):
        read_annotated_images(tmp_path / "annotations", tmp_path)


def test_interrupted_fine_tuning_resumes_to_the_same_weights(scenes, tmp_path):
    """The box objective goes through minivgg.training's checkpoints: stopping and resuming changes nothing."""
    from minivgg.localisation import fine_tune_localisation
    from minivgg.training import TrainSettings

    settings = TrainSettings(batch_size=4, learning_rate=1e-3, max_epochs=2, patience=10)
    results = []
    for stop in (None, 3):
        net = localisation_net(_small_classifier(10), "PCR", "fc", seed=1)
        run_dir = tmp_path / f"stop-{stop}"
        if stop is not None:
            first = fine_tune_localisation(net, scenes["train"], scenes["val"], run_dir, 40, settings,
                                           stop_after_steps=stop)
            assert not first["finished"]
            net = localisation_net(_small_classifier(10), "PCR", "fc", seed=1)
        result = fine_tune_localisation(net, scenes["train"], scenes["val"], run_dir, 40, settings,
                                        resume=stop is not None)
        assert result["finished"] and len(result["history"]) == 2
        results.append({name: layer.params[key].copy() for name, layer, key in net.model.named_parameters()})
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)


def test_box_objective_counts_right_boxes_and_takes_diverged_ones_as_wrong():
    from minivgg.localisation import BoxRegression

    net = localisation_net(_small_classifier(), "SCR")
    objective = BoxRegression(net)
    targets = BoxTargets(np.array([0, 1, 2]), np.array([[0.5, 0.5, 1, 1]] * 3))
    outputs = np.array([[0.5, 0.5, 1, 1], [0.5, 0.5, 0.5, 0.5], [np.nan, 0.5, 1, 1]])
    # IoU 1, IoU 0.25 (a quarter of the window), NaN: one right.
    np.testing.assert_array_equal(objective.correct_mask(outputs, targets), [True, False, False])
    assert objective.correct(outputs, targets) == 1


def test_a_drawn_box_covers_its_pixels():
    """The image is drawn on the boxes' continuous coordinates: pixel (r, c) spans [c, c + 1] x [r, r + 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minivgg.localisation.draw import draw_boxes

    figure, axes = plt.subplots()
    image = np.zeros((4, 6, 3), np.uint8)
    draw_boxes(axes, image, [[2, 1, 3, 2]], ["one pixel"])
    assert tuple(axes.images[0].get_extent()) == (0, 6, 4, 0)
    assert axes.patches[0].get_xy() == (2, 1) and axes.patches[0].get_width() == 1
    assert axes.get_xlim() == (0, 6) and axes.get_ylim() == (4, 0)
    plt.close(figure)
