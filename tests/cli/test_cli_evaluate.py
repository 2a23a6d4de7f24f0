"""`minivgg evaluate` and `minivgg predict` on a tiny ImageNet folder: weights for other classes are refused
unless asked, posteriors of several models never collide or replace a file, and the options are honoured."""
import os

import pytest
from tiny_imagenet import WNIDS, make_tiny_imagenet

import minivgg
from minivgg import weights
from minivgg.cli.program import main
from minivgg.preprocessing import paper_mean_rgb


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_imagenet(tmp_path_factory.mktemp("tiny") / "ILSVRC2012")


def weight_file(path, class_names=WNIDS, seed=0):
    model = minivgg.vgg("A", num_classes=3, input_size=32, width_multiplier=0.125, fc_width=16, weight_init="glorot",
                        seed=seed)
    model.preprocessing = paper_mean_rgb((120.0, 110.0, 100.0))
    model.class_names = class_names
    path.parent.mkdir(parents=True, exist_ok=True)
    weights.save(model, path)
    return path


def evaluate(capsys, data, *arguments):
    code = main(["evaluate", "--data", str(data), "--scales", "36", *map(str, arguments)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("names, message", [
    (["cat", "dog", "cow"], "name other classes than the data: output 0 is 'cat' but the data's class 0 is "
                            "'n01440764' (3 of 3 differ)"),
    ([WNIDS[1], WNIDS[0], WNIDS[2]], "name other classes than the data (the same classes in another order)"),
])
def test_weights_naming_other_classes_are_refused_unless_asked(names, message, data, tmp_path, capsys):
    path = weight_file(tmp_path / "other.safetensors", names)
    code, out, err = evaluate(capsys, data, "--weights", path)
    assert code == 1 and message in err and "pass --ignore-class-names to evaluate anyway" in err and out == ""
    code, out, _ = evaluate(capsys, data, "--weights", path, "--ignore-class-names")
    assert code == 0 and "top-1 err" in out


def test_published_class_names_match_an_imagenet_folder(data, tmp_path, capsys):
    """Converted weights name their classes "tench", ...; an ImageNet folder names them n01440764, ..."""
    path = weight_file(tmp_path / "published.safetensors", ["tench", "goldfish", "great white shark"])
    assert evaluate(capsys, data, "--weights", path)[0] == 0


def test_posteriors_of_models_with_the_same_file_name_never_collide_or_overwrite(data, tmp_path, capsys):
    a = weight_file(tmp_path / "runs" / "a" / "model.safetensors", seed=1)
    b = weight_file(tmp_path / "runs" / "b" / "model.safetensors", seed=2)
    folder = tmp_path / "posteriors"
    code, out, err = evaluate(capsys, data, "--weights", a, b, "--save-posteriors", folder,
                              "--json", tmp_path / "table.json")
    assert code == 0, err
    assert sorted(os.listdir(folder)) == ["a_model.npz", "b_model.npz"]
    assert f"written to {folder / 'a_model.npz'}" in out and (tmp_path / "table.json").exists()
    from minivgg.evaluation.posteriors import load_posteriors
    first, second = (load_posteriors(folder / name)[0] for name in ("a_model.npz", "b_model.npz"))
    assert not (first == second).all()  # each file holds its own model's posteriors
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    code, out, err = evaluate(capsys, data, "--weights", a, b, "--save-posteriors", folder)
    assert code == 1 and "exist already" in err and "nothing was evaluated or replaced" in err and out == ""
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before
    (tmp_path / "a-file").write_text("x")
    code, _, err = evaluate(capsys, data, "--weights", a, "--save-posteriors", tmp_path / "a-file")
    assert code == 1 and "is a file, not a folder" in err


def test_the_same_file_twice_gets_two_names():
    from minivgg.evaluation.posteriors import posterior_file_names

    assert posterior_file_names(["x/m.safetensors", "x/m.safetensors"]) == ["m.npz", "m-2.npz"]
    assert posterior_file_names(["d16.safetensors", "e19.safetensors"]) == ["d16.npz", "e19.npz"]


def test_files_apart_only_in_their_top_folder_are_named_by_it():
    from minivgg.evaluation.posteriors import posterior_file_names

    top = os.path.abspath(os.sep)  # the root: every folder of the paths is needed to tell them apart
    paths = [os.path.join(top, "a", "m.safetensors"), os.path.join(top, "b", "m.safetensors")]
    assert posterior_file_names(paths) == ["a_m.npz", "b_m.npz"]


def test_scales_paper_needs_a_recorded_training_scale(data, tmp_path, capsys):
    path = weight_file(tmp_path / "untrained.safetensors")
    code = main(["evaluate", "--data", str(data), "--weights", str(path), "--scales", "paper"])
    assert code == 1 and "--scales paper needs the training scale" in capsys.readouterr().err


def test_predict_shows_at_most_every_class_and_takes_the_scales(data, tmp_path, capsys):
    path = weight_file(tmp_path / "w.safetensors")
    image = str(next((data / "val").iterdir()))
    assert main(["predict", image, "--weights", str(path), "--top", "20", "--scales", "36,40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == image and len(lines) == 1 + 3  # all three classes, not 20 and not one fewer
    assert main(["predict", image, "--weights", str(path), "--top", "1", "--method", "single-crop"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.parametrize("train_scale, expected_q", [(44, "44"), ([32, 48], "40"), (None, "37")])
def test_without_scales_the_test_scale_is_sect_4_1s_for_the_recorded_training_scale(data, tmp_path, capsys,
                                                                                     train_scale, expected_q):
    """Q = S for a fixed S, (S_min + S_max) / 2 for a jittered one; 8/7 of the 32 crop (37) when unrecorded."""
    import json

    from minivgg.weights.record import TrainingRecord

    path = weight_file(tmp_path / "w.safetensors")
    if train_scale is not None:
        model = weights.load(path)
        model.training_record = TrainingRecord(train_scale=tuple(train_scale) if isinstance(train_scale, list)
                                               else train_scale)
        weights.save(model, path)
    code = main(["evaluate", "--data", str(data), "--weights", str(path), "--json", str(tmp_path / "t.json")])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "t.json").read_text())["rows"][0]["test_Q"] == expected_q


def test_images_are_decoded_no_smaller_than_the_largest_test_scale(data, tmp_path, capsys, monkeypatch):
    """A JPEG's draft (reduced-size decoding) must leave every scale a downscaling: its smallest side >= max(Q)."""
    from minivgg.data.datasets import ImageFiles

    asked = []
    load = ImageFiles.load

    def recording_load(self, index, draft_smallest_side=None):
        asked.append(draft_smallest_side)
        return load(self, index, draft_smallest_side)
    monkeypatch.setattr(ImageFiles, "load", recording_load)
    path = weight_file(tmp_path / "w.safetensors")
    assert main(["evaluate", "--data", str(data), "--weights", str(path), "--scales", "36,48,40"]) == 0
    assert asked and set(asked) == {48}
