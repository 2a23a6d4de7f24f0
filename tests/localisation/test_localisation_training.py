"""Appendix A end to end in miniature: a classifier trained on the embedded digits-on-photos scenes, a
single-class-regression localisation net initialised from it and fine-tuned with ``minivgg.training.train``
(the box objective), and its localisation error against two box baselines on the test scenes."""
import numpy as np
import pytest

from minivgg.localisation import (evaluate_localisation, fine_tune_localisation, localisation_net, mean_relative_size,
                                  train_classifier_on_boxes)
from minivgg.localisation.recipe import digit_scenes_run

EPOCHS = 8  # of 30 steps: about the fewest after which the tiny net has left its initial plateau


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("localisation")
    run = digit_scenes_run(seed=0, classifier_epochs=EPOCHS, localisation_epochs=EPOCHS)
    splits = run.splits
    train_classifier_on_boxes(run.classifier, splits["train"], splits["val"], folder / "classifier",
                              run.options["scale"], run.settings("classifier"), min_object_fraction=1.0)
    untrained = localisation_net(run.classifier, "SCR", "all", seed=1)
    net = localisation_net(run.classifier, "SCR", "all", seed=1)
    result = fine_tune_localisation(net, splits["train"], splits["val"], folder / "localisation",
                                    run.options["scale"], settings=run.settings("localisation"))
    return run, untrained, net, result


def test_fine_tuned_box_net_beats_whole_image_and_centre_box_baselines(trained):
    run, untrained, net, _ = trained
    test = run.splits["test"]
    rows = evaluate_localisation(test, [untrained, net], scales=[run.options["scale"]],
                                 baseline_size=mean_relative_size(run.splits["train"]))
    errors = {(row["method"], i): row["error"] for i, row in enumerate(rows)}
    whole, centre = errors[("whole-image box", 0)], errors[("centre box", 1)]
    before, after = errors[("centre crop, GT class", 2)], errors[("centre crop, GT class", 3)]
    print(f"\nlocalisation error on {len(test)} test scenes: whole-image box {whole:.1f}%, centre box {centre:.1f}%, "
          f"SCR net before fine-tuning {before:.1f}%, after {after:.1f}%")
    # The baselines miss nearly everything: the digits are small and anywhere in the scene.
    assert whole > 90 and centre > 85
    # Fine-tuning, not the initialisation, does it: clearly better than either baseline.
    assert after < min(whole, centre) - 15
    assert before > 90


def test_training_log_records_the_localisation_error(trained):
    _, _, _, result = trained
    history = result["history"]
    assert result["finished"] and len(history) == EPOCHS
    # The validation error the schedule watches is the box error, and it falls while the net trains.
    assert history[-1]["val_top1_error"] < history[0]["val_top1_error"]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert all(np.isfinite(entry["val_loss"]) for entry in history)
