"""What mutation testing found unpinned in the metrics and fusion (benchmarks/RESULTS.md, "Mutation testing"):
the refusals' messages, one image being enough, and fusion computed in float64 whatever the models gave."""
import numpy as np
import pytest

from minivgg.evaluation.metrics import top_k_error
from minivgg.evaluation.posteriors import error_table, format_table, fuse, load_posteriors, save_posteriors


def test_an_error_rate_of_no_images_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^top_k_error: no images to measure$"):
        top_k_error(np.zeros((0, 5)), np.zeros(0, np.int64), 1)


@pytest.mark.parametrize("label, expected", [(2, 0.0), (0, 1.0)])
def test_one_image_is_enough_to_measure(label, expected):
    assert top_k_error(np.array([[0.1, 0.2, 0.7]]), np.array([label]), 1) == expected


def test_fusing_nothing_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^fuse: no posteriors given$"):
        fuse([])


def test_fusion_averages_in_float64_whatever_the_models_gave():
    # float32 posteriors whose float32 mean rounds: the fused values are the exact float64 average
    a = np.array([[1.0 + 2.0 ** -23, 0.0]], np.float32)
    b = np.array([[1.0, 0.0]], np.float32)
    fused = fuse([a, b])
    assert fused.dtype == np.float64
    assert fused[0, 0] == 1.0 + 2.0 ** -24   # not representable in float32: float32 arithmetic gives 1.0


def test_saved_posteriors_come_back_as_they_were(tmp_path):
    rng = np.random.default_rng(0)
    posteriors = rng.dirichlet(np.ones(4), size=3)
    labels = np.array([0, 3, 1])
    path = tmp_path / "p.npz"
    save_posteriors(path, posteriors, labels, {"method": "dense", "scales": [256, 384]})
    loaded, loaded_labels, metadata = load_posteriors(path)
    np.testing.assert_array_equal(loaded, posteriors)
    np.testing.assert_array_equal(loaded_labels, labels)
    assert metadata == {"method": "dense", "scales": [256, 384]}


def test_a_file_that_is_not_posteriors_is_named(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(ValueError, match=r"other.npz is not a readable posteriors file"):
        load_posteriors(path)


def test_error_table_gives_each_rows_errors_in_percent():
    posteriors = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3], [0.5, 0.3, 0.2]])
    row = {"configuration": "D", "method": "dense", "posteriors": posteriors, "labels": np.array([0, 1, 1, 2])}
    (entry,) = error_table([row])
    assert entry == {"configuration": "D", "method": "dense", "top1_error": 50.0, "top5_error": 0.0}
    with pytest.raises(ValueError, match="labels reach class 3 but the model has 3 classes"):
        error_table([dict(row, labels=np.array([0, 1, 3, 2]))])
    with pytest.raises(ValueError, match="4 posteriors but 3 labels"):
        error_table([dict(row, labels=np.array([0, 1, 2]))])


def test_posteriors_files_keep_float64_and_int64_and_may_have_no_labels(tmp_path):
    path = tmp_path / "p.npz"
    save_posteriors(path, np.array([[0.25, 0.75]], np.float32), np.array([1], np.int32))
    loaded, labels, _ = load_posteriors(path)
    assert loaded.dtype == np.float64 and labels.dtype == np.int64
    save_posteriors(path, np.array([[0.25, 0.75]]))
    assert load_posteriors(path)[1] is None


def test_a_posteriors_file_holding_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, posteriors=np.array([{"a": 1}], dtype=object), metadata=np.array("{}"))
    with pytest.raises(ValueError, match="pickled.npz is not a readable posteriors file"):
        load_posteriors(path)


def test_error_table_top5_is_the_top_5_error_in_percent_with_many_classes():
    # 7 classes: each image's true class ranks 6th, so top-5 misses every one (and top-6 would hit)
    posteriors = np.tile(np.array([0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05]), (4, 1))
    (entry,) = error_table([{"posteriors": posteriors, "labels": np.full(4, 5)}])
    assert entry["top1_error"] == 100.0 and entry["top5_error"] == 100.0
    (entry,) = error_table([{"posteriors": posteriors, "labels": np.array([5, 5, 4, 4])}])
    assert entry["top5_error"] == 50.0


def test_the_error_table_is_printed_in_the_papers_columns():
    table = [{"configuration": "D", "train_S": "256-512", "test_Q": "256,384,512", "method": "dense",
              "top1_error": 24.8, "top5_error": 7.5},
             {"top1_error": 100.0, "top5_error": 0.04}]   # columns a row lacks are left blank
    header = ("ConvNet config.     train (S)         test (Q)            method top-1 err top-5 err")
    assert format_table(table).splitlines() == [
        header,
        "-" * len(header),
        "D                     256-512      256,384,512             dense     24.8%      7.5%",
        "                                                                    100.0%      0.0%",
    ]


@pytest.mark.parametrize("arrays, what", [
    ({"posteriors": np.full((2, 3, 1), 1 / 3)}, "posteriors of three axes"),
    ({"posteriors": np.ones((2, 3), dtype=np.int64)}, "integer posteriors"),
    ({"metadata": np.array("[1, 2]")}, "metadata that is a list"),
    ({"labels": np.array([0, 1, 2])}, "three labels for two images"),
    ({"labels": np.array([0.0, 1.0])}, "labels that are not integers"),
])
def test_a_readable_file_that_is_not_minivgg_s_posteriors_is_refused_naming_it(tmp_path, arrays, what):
    fields = {"posteriors": np.full((2, 3), 1 / 3), "metadata": np.array("{}"), "labels": np.array([0, 1])}
    fields.update(arrays)
    path = tmp_path / "odd.npz"
    np.savez(path, **fields)
    with pytest.raises(ValueError, match=r"odd.npz is not a posteriors file of minivgg's: \(images, classes\) "
                                         r"posteriors, one integer label per image"):
        load_posteriors(path)
    fields.update({"posteriors": np.full((2, 3), 1 / 3), "metadata": np.array("{}"), "labels": np.array([0, 1])})
    np.savez(path, **fields)
    assert load_posteriors(path)[0].shape == (2, 3)  # the same file, made right, loads: only `what` was wrong


def test_saved_posteriors_are_marked_as_minivgg_s_and_a_path_that_is_no_file_is_named(tmp_path):
    from minivgg.errors import NotAFileError
    from minivgg.files import written_by_minivgg

    path = tmp_path / "p.npz"
    save_posteriors(path, np.full((1, 2), 0.5))
    assert written_by_minivgg(path, "npz")  # so that a later run may overwrite it, and only it
    with pytest.raises(FileNotFoundError, match="no posteriors file at .*absent.npz"):
        load_posteriors(tmp_path / "absent.npz")
    with pytest.raises(NotAFileError, match="posteriors file .*folder"):
        load_posteriors(tmp_path)
