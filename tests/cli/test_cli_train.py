"""`minivgg train` end to end on tiny data: every documented flag does what it says, the paper's stage chain
S = 256 -> 384 -> [256; 512] and pre-initialisation from net A run from the command line, and a resumed run
applies or refuses each option it is given."""
import json
import os
import signal

import numpy as np
import pytest
from tiny_imagenet import SMALL_NET, WNIDS, make_tiny_imagenet

from minivgg import weights
from minivgg.cli.program import main

TRAIN_IMAGES = 3 * 8  # tiny_imagenet: three classes of eight training images


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_imagenet(tmp_path_factory.mktemp("tiny") / "ILSVRC2012")


def train(capsys, *arguments):
    """Run `minivgg train ARGUMENTS --quiet` in-process: (exit code, stdout, stderr)."""
    code = main(["train", "--quiet", *map(str, arguments)])
    out, err = capsys.readouterr()
    return code, out, err


def training_record(run_dir):
    """(architecture, training record as the header stores it) of a finished run's final weights."""
    record, _ = weights.read_metadata(run_dir / "model.safetensors")
    return record["architecture"], json.loads(record["training"].to_json())


def log_entries(run_dir):
    return [json.loads(line) for line in open(run_dir / "log.jsonl")]


def parameters(path):
    return {name: layer.params[key] for name, layer, key in weights.load(path).named_parameters()}


# --- the paper's stage chain ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chain(data, tmp_path_factory):
    """A/256 from scratch, D/256 pre-initialised from it, D/384 from D/256, D/256-512 from D/384; the steps from
    weights use a learning rate of 1e-12, so their final weights show what they started from."""
    runs = tmp_path_factory.mktemp("chain")
    outputs = {}
    for name, arguments in [
            ("A_256", ["--preset", "A/256", *SMALL_NET]),
            ("D_256", ["--preset", "D/256", "--init-from", runs / "A_256" / "model.safetensors", "--batch-size", "8",
                       "--epochs", "1", "--learning-rate", "1e-12"]),
            ("D_384", ["--preset", "D/384", "--weights", runs / "D_256" / "model.safetensors", "--batch-size", "8",
                       "--epochs", "1", "--learning-rate", "1e-12"]),
            ("D_256-512", ["--preset", "D/256-512", "--weights", runs / "D_384" / "model.safetensors",
                           "--batch-size", "8", "--epochs", "1"])]:
        code = main(["train", "--quiet", "--data", str(data), *map(str, arguments), "--run-dir", str(runs / name)])
        assert code == 0, name
        outputs[name] = runs / name
    return outputs


def test_the_stage_chain_runs_from_the_command_line_at_the_scaled_stages(chain):
    scales = {name: training_record(run)[1]["train_scale"] for name, run in chain.items()}
    # --crop 32 scales each stage's S by 32/224: 256 -> 37, 384 -> 55, [256, 512] -> [37, 73]
    assert scales == {"A_256": 37, "D_256": 37, "D_384": 55, "D_256-512": [37, 73]}
    for name, run in chain.items():
        architecture, training = training_record(run)
        # the later stages take the width, FC width and crop of the weights they start from
        small = (architecture["width_multiplier"], architecture["fc_width"], architecture["input_size"])
        assert small == (0.125, 16, 32)
        assert architecture["config"] == name[0]
        assert log_entries(run)[0]["epoch"] == 1
    assert training_record(chain["D_256-512"])[1]["settings"]["learning_rate"] == 1e-3  # the preset's (Sect. 3.1)


def test_pre_initialisation_copies_net_a_into_the_deeper_net(chain):
    a, d = parameters(chain["A_256"] / "model.safetensors"), parameters(chain["D_256"] / "model.safetensors")
    # A's four convs sit on Table 1's rows of D's features.0, .5, .10, .12 (D has two convs a block); FCs the same
    for a_name, d_name in [("features.0", "features.0"), ("features.3", "features.5"), ("features.6", "features.10"),
                           ("features.8", "features.12"), ("classifier.0", "classifier.0"),
                           ("classifier.6", "classifier.6")]:
        np.testing.assert_allclose(d[f"{d_name}.weight"], a[f"{a_name}.weight"], atol=1e-6, err_msg=d_name)
    assert not np.allclose(d["features.2.weight"].std(), 0)  # the layers in between are random, not zero


def test_the_next_stage_starts_from_the_previous_weights(chain):
    before, after = parameters(chain["D_256"] / "model.safetensors"), parameters(chain["D_384"] / "model.safetensors")
    for name in before:
        np.testing.assert_allclose(after[name], before[name], atol=1e-6, err_msg=name)


def test_the_chain_is_evaluated_on_the_devkit_labelled_validation_set(chain, data, capsys, tmp_path):
    code = main(["evaluate", "--data", str(data), "--weights", str(chain["D_384"] / "model.safetensors"),
                 str(chain["D_256-512"] / "model.safetensors"), "--scales", "paper", "--method", "dense",
                 "--save-posteriors", str(tmp_path / "posteriors")])
    out = capsys.readouterr().out
    assert code == 0
    assert "50,55,60" in out and "37,55,73" in out and "fusion: D & D" in out  # Sect. 4.2's Q, scaled with the crop
    # two files called model.safetensors: the posteriors still get a file each
    assert sorted(os.listdir(tmp_path / "posteriors")) == ["D_256-512_model.npz", "D_384_model.npz"]


# --- every documented flag, on the ImageNet path and on the digits ---------------------------------------------

IMAGENET_COMBINATIONS = {
    "preset and small net": (["--preset", "A/256", *SMALL_NET], {"config": "A", "train_scale": 37}),
    "config without preset": (["--config", "B", *SMALL_NET], {"config": "B", "train_scale": 37}),
    "explicit scale jitter": (["--preset", "A/256", *SMALL_NET, "--scale", "32-48"],
                              {"train_scale": [32, 48]}),
    "every optimisation flag": (["--preset", "A/384", *SMALL_NET[:6], "--batch-size", "8", "--device-batch", "4",
                                 "--learning-rate", "0.003", "--epochs", "2", "--patience", "1", "--seed", "3",
                                 "--init", "glorot", "--checkpoint-every", "1", "--workers", "2"],
                                {"batch_size": 8, "learning_rate": 0.003, "max_epochs": 2, "patience": 1,
                                 "checkpoint_every": 1, "train_scale": 55}),
}


@pytest.mark.parametrize("combination", list(IMAGENET_COMBINATIONS))
def test_every_imagenet_flag_combination_trains_end_to_end(combination, data, tmp_path, capsys):
    arguments, expected = IMAGENET_COMBINATIONS[combination]
    code, out, err = train(capsys, "--data", data, *arguments, "--run-dir", tmp_path / "run")
    assert code == 0, err
    assert f"on {TRAIN_IMAGES} images" in out
    architecture, training = training_record(tmp_path / "run")
    found = dict(training["settings"], train_scale=training["train_scale"], config=architecture["config"])
    assert {key: found[key] for key in expected} == expected
    assert len(log_entries(tmp_path / "run")) == training["epochs"] >= 1
    if "--device-batch" in arguments:
        assert "8 images per step (2 passes of 4)" in out
    saved = json.load(open(tmp_path / "run" / "arguments.json"))
    assert saved["data"] == str(data) and "backend" not in saved


def test_a_default_run_folder_is_named_after_the_stage(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--backend", "numpy", "train", "--quiet", "--data", str(data), "--preset", "A/256", *SMALL_NET]) == 0
    assert (tmp_path / "runs" / "A_37" / "model.safetensors").exists()  # the stage at the S it trained: 256 * 32/224


def test_digits_runs_take_the_small_run_knobs_and_the_device_batch(tmp_path, capsys):
    code, out, err = train(capsys, "--width", "0.125", "--fc-width", "16", "--batch-size", "64", "--device-batch",
                           "32", "--epochs", "1", "--config", "B", "--init", "paper", "--learning-rate", "0.02",
                           "--crop", "36", "--patience", "1", "--run-dir", tmp_path / "digits")
    assert code == 0, err
    assert "on 1079 images" in out and "64 images per step (2 passes of 32)" in out and "test top-1 accuracy" in out
    architecture, training = training_record(tmp_path / "digits")
    assert (architecture["config"], architecture["input_size"], architecture["fc_width"]) == ("B", 36, 16)
    assert training["train_scale"] == [36, 45]  # the digits' S in [32, 40], scaled with the crop to 36
    # fine-tuning from those weights trains on the training split (1079 images), not the test split (359)
    code, out, err = train(capsys, "--weights", tmp_path / "digits" / "model.safetensors", "--batch-size", "64",
                           "--epochs", "1", "--run-dir", tmp_path / "fine-tuned")
    assert code == 0, err
    assert "on 1079 images" in out and "starting from the weights of" in out
    assert training_record(tmp_path / "fine-tuned")[0]["config"] == "B"  # the weights' configuration


def test_preset_without_data_is_refused_not_ignored(tmp_path, capsys):
    code, _, err = train(capsys, "--preset", "D/384", "--run-dir", tmp_path / "run")
    assert code == 1 and "--preset D/384 is a stage of the paper on ImageNet-style photos and needs --data" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--batch-size", "8", "--device-batch", "3"], "--batch-size 8 is not a multiple of --device-batch 3"),
    (["--weights", "w.safetensors", "--init-from", "a.safetensors"], None),
    (["--crop", "16"], "32"),
])
def test_contradicting_train_options_are_refused_at_once(arguments, message, data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = train(capsys, "--data", data, *arguments, "--run-dir", tmp_path / "run")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert message is None or message in err
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_weights_for_other_classes_are_refused_unless_asked(chain, data, tmp_path, capsys):
    model = weights.load(chain["A_256"] / "model.safetensors")
    model.class_names = ["cat", "dog", "cow"]
    weights.save(model, tmp_path / "other.safetensors")
    code, _, err = train(capsys, "--data", data, "--preset", "A/384", "--weights", tmp_path / "other.safetensors",
                         "--batch-size", "8", "--epochs", "1", "--run-dir", tmp_path / "run")
    assert code == 1 and "name other classes than the data" in err and "--ignore-class-names" in err
    code, _, err = train(capsys, "--data", data, "--preset", "A/384", "--weights", tmp_path / "other.safetensors",
                         "--batch-size", "8", "--epochs", "1", "--run-dir", tmp_path / "run2", "--ignore-class-names")
    assert code == 0, err
    assert weights.load(tmp_path / "run2" / "model.safetensors").class_names == WNIDS


# --- resume: options that may change apply, the others are refused --------------------------------------------

@pytest.fixture
def finished_run(data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(capsys, "--data", data, "--preset", "A/256", *SMALL_NET, "--run-dir", run_dir)[0] == 0
    return run_dir


def snapshot(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_resume_applies_epochs_patience_workers_quiet_and_checkpoint_interval(finished_run, capsys):
    code, out, err = train(capsys, "--resume", finished_run, "--epochs", "2", "--patience", "4", "--workers", "1",
                           "--checkpoint-every", "2")
    assert code == 0, err
    assert [entry["epoch"] for entry in log_entries(finished_run)] == [1, 2]
    settings = training_record(finished_run)[1]["settings"]
    assert (settings["max_epochs"], settings["patience"], settings["checkpoint_every"]) == (2, 4, 2)
    saved = json.load(open(finished_run / "arguments.json"))
    assert (saved["epochs"], saved["workers"], saved["quiet"]) == (2, 1, True)
    # resumed again without options: the options applied last time stay
    assert train(capsys, "--resume", finished_run)[0] == 0 and len(log_entries(finished_run)) == 2


@pytest.mark.parametrize("arguments, option", [
    (["--batch-size", "16"], "--batch-size"), (["--config", "B"], "--config"), (["--seed", "1"], "--seed"),
    (["--learning-rate", "0.5"], "--learning-rate"), (["--width", "0.25"], "--width"), (["--scale", "40"], "--scale"),
    (["--data", "elsewhere"], "--data"), (["--run-dir", "elsewhere"], "--run-dir"),
])
def test_resume_refuses_options_that_would_make_another_run(finished_run, arguments, option, capsys):
    before = snapshot(finished_run)
    code, _, err = train(capsys, "--resume", finished_run, *arguments)
    assert code == 1 and f"{option} (" in err and "a resumed run keeps its options" in err
    assert snapshot(finished_run) == before


def test_resume_refuses_fewer_epochs_than_done(finished_run, capsys):
    train(capsys, "--resume", finished_run, "--epochs", "2")
    before = snapshot(finished_run)
    code, _, err = train(capsys, "--resume", finished_run, "--epochs", "1")
    assert code == 1 and "completed 2 epochs already" in err
    assert snapshot(finished_run) == before


def ctrl_c_during_steps(monkeypatch, steps):
    """Press Ctrl-C (a real SIGINT) inside the given SGD steps (1-based), once per listed step."""
    from minivgg.training.optimiser import SGD

    step, calls = SGD.step, []

    def pressing(self, learning_rate):
        calls.append(1)
        for _ in range(steps.count(len(calls))):
            os.kill(os.getpid(), signal.SIGINT)
        return step(self, learning_rate)
    monkeypatch.setattr(SGD, "step", pressing)


def test_ctrl_c_checkpoints_exits_130_and_the_resumed_run_ends_bit_identical(data, tmp_path, capsys, monkeypatch):
    arguments = ["--data", data, "--preset", "A/256", *SMALL_NET[:-2], "--epochs", "2"]
    assert train(capsys, *arguments, "--run-dir", tmp_path / "uninterrupted")[0] == 0
    with monkeypatch.context() as patch:
        ctrl_c_during_steps(patch, [4])  # epoch 2, its first step
        code, out, err = train(capsys, *arguments, "--run-dir", tmp_path / "run")
    assert code == 130 and "interrupted; checkpoint written: continue with `minivgg train --resume" in err
    assert "Traceback" not in err and not (tmp_path / "run" / "model.safetensors").exists()
    assert train(capsys, "--resume", tmp_path / "run")[0] == 0
    reference, resumed = (parameters(tmp_path / name / "model.safetensors") for name in ("uninterrupted", "run"))
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(data, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        ctrl_c_during_steps(patch, [2, 2])  # twice in step 2; step 1 was checkpointed
        code, _, err = train(capsys, "--data", data, "--preset", "A/256", *SMALL_NET, "--checkpoint-every", "1",
                             "--run-dir", run_dir)
    assert code == 130 and "interrupted at once; the last checkpoint in" in err and "is intact" in err
    assert "Traceback" not in err
    assert sorted(os.listdir(run_dir)) == [".minivgg-run", "arguments.json", "checkpoint.safetensors"]  # no temporary
    from minivgg.training.checkpoint import load_checkpoint
    assert load_checkpoint(str(run_dir / "checkpoint.safetensors"))[2]["position"]["global_step"] == 1
    assert train(capsys, "--resume", run_dir)[0] == 0


def test_ctrl_c_during_start_up_exits_130_quietly(data, tmp_path, capsys, monkeypatch):
    import minivgg.data

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(minivgg.data, "compute_statistics", interrupted)
    code, _, err = train(capsys, "--data", data, "--preset", "A/256", *SMALL_NET, "--run-dir", tmp_path / "run")
    assert code == 130 and err.strip() == "minivgg train: interrupted"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--data", "missing-folder", "--preset", "A/256"], "ImageNet folder missing-folder does not exist"),
    (["--preset", "A/256", "--scale", "20"], "S_min=20 is smaller than the 32 crop"),
    (["--preset", "F/256"], "unknown preset 'F/256'"),
    (["--preset", "A/256", "--weights", "missing.safetensors"], "no weight file at missing.safetensors"),
    (["--preset", "A/256", "--init-from", "missing.safetensors"], "no weight file at missing.safetensors"),
])
def test_bad_train_input_found_at_start_is_one_line(arguments, message, data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arguments = arguments if arguments[0] == "--data" else ["--data", data, *arguments]
    code, _, err = train(capsys, *arguments, *SMALL_NET, "--run-dir", tmp_path / "run")
    assert code == 1 and message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_weights_of_another_configuration_are_refused(chain, data, tmp_path, capsys):
    code, _, err = train(capsys, "--data", data, "--preset", "D/384", "--weights", chain["A_256"] / "model.safetensors",
                         "--batch-size", "8", "--epochs", "1", "--run-dir", tmp_path / "run")
    assert code == 1 and "holds weights for config = 'A', the model has 'D'" in err


def test_a_truncated_checkpoint_is_refused_on_resume_and_left_alone(finished_run, capsys):
    checkpoint = finished_run / "checkpoint.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    before = snapshot(finished_run)
    code, _, err = train(capsys, "--resume", finished_run)
    assert code == 1 and "is not a readable checkpoint (truncated or corrupt?)" in err
    assert snapshot(finished_run) == before


def test_a_run_from_weights_resumes_with_their_preprocessing_without_the_file(chain, data, tmp_path, capsys,
                                                                              monkeypatch):
    """The starting weights' preprocessing is recorded with the run, so a resumed run feeds the same images
    even when the file it started from has gone."""
    from minivgg.preprocessing import TORCHVISION

    model = weights.load(chain["A_256"] / "model.safetensors")
    model.preprocessing = TORCHVISION
    weights.save(model, tmp_path / "start.safetensors")
    with monkeypatch.context() as patch:
        ctrl_c_during_steps(patch, [2])
        code, _, _ = train(capsys, "--data", data, "--preset", "A/384", "--weights", tmp_path / "start.safetensors",
                           "--batch-size", "8", "--epochs", "1", "--run-dir", tmp_path / "run")
    assert code == 130
    (tmp_path / "start.safetensors").unlink()
    assert train(capsys, "--resume", tmp_path / "run")[0] == 0
    assert weights.load(tmp_path / "run" / "model.safetensors").preprocessing == TORCHVISION
