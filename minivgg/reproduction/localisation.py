"""Appendix A in miniature: localisation on the embedded scenes (handwritten digits on photographs).

As in the paper, a classification net is trained first, and the localisation nets start from it with a new
last layer regressing boxes: single-class regression with the FC layers fine-tuned, per-class regression with
the FC layers fine-tuned, and per-class regression with every layer fine-tuned (Table 8's three rows), each
at the fixed S of the scenes' side. Protocol 1 reads the box of the ground-truth class from the centre crop
(Table 8); protocol 2 applies the net densely to the whole scene, merges the boxes greedily and rates them
with the classifier's most probable classes (Table 9: the top 5 of 1000; here the top one of 10, since
five guesses of ten classes would hardly test the classifier at all).

The scenes are 96 x 96 with digits of 24 to 48 pixels, and the nets take 64 x 64 crops: the centre crop sees
the middle two thirds of a scene, so a digit near an edge is partly outside it, which is what protocol 2's
dense windows (2 x 2 at Q = 96, 32 pixels apart) are for.
"""
import os

from .classification import WEIGHTS_FILE
from .epochs import train_epoch_by_epoch

__all__ = ["LOCALISATION_NETS", "scenes_run", "train_classifier", "train_localisation_net",
           "localisation_results", "CLASSIFIER", "classifier_top5_error"]

# Table 8's rows: (name, regression, fine-tuned layers).
LOCALISATION_NETS = (("SCR-fc", "SCR", "fc"), ("PCR-fc", "PCR", "fc"), ("PCR-all", "PCR", "all"))
CLASSIFIER = "classifier"


def scenes_run(miniature, seed):
    """The scenes of ``seed`` and the untrained classifier (``minivgg.localisation.recipe``) at the miniature's
    sizes."""
    from ..localisation.recipe import digit_scenes_run

    train, val, test = miniature.scenes
    return digit_scenes_run(seed=seed, counts={"train": train, "val": val, "test": test},
                            config=miniature.localisation_config, size=miniature.scene_size,
                            digit_sides=tuple(miniature.digit_sides), crop_size=miniature.crop,
                            scale=miniature.scene_size, test_scales=(miniature.scene_size,),
                            width_multiplier=miniature.width_multiplier, fc_width=miniature.fc_width,
                            classifier_epochs=miniature.classifier_epochs,
                            localisation_epochs=miniature.localisation_epochs,
                            localisation_learning_rate=miniature.localisation_learning_rate)


def train_classifier(run, run_dir, seed, bar=None):
    """Train the scenes' classifier on crops holding the whole digit; its weights, or None if interrupted."""
    from dataclasses import replace

    from .. import weights
    from ..localisation.data import BoxCropLoader
    from ..training import train
    from ..weights.record import TrainingRecord

    model, options = run.classifier, run.options
    settings = run.settings("classifier")
    loaders = [BoxCropLoader(run.splits[split], settings.batch_size, options["scale"], model.input_size,
                             model.preprocessing, train=training, targets="classes", min_object_fraction=1.0,
                             seed=seed) for split, training in (("train", True), ("val", False))]

    def train_one(epochs, resume):
        return train(model, loaders[0], loaders[1], replace(settings, max_epochs=epochs), run_dir, resume=resume,
                     progress=False)

    result = train_epoch_by_epoch(train_one, settings.max_epochs, run_dir, bar)
    if result is None:
        return None
    model.training_record = TrainingRecord(train_scale=options["scale"], flip=False, epochs=len(result["history"]))
    weights.save(model, os.path.join(run_dir, WEIGHTS_FILE))
    return model.eval()


def train_localisation_net(run, classifier, regression, fine_tune, run_dir, seed, bar=None):
    """Fine-tune a localisation net from ``classifier`` (Appendix A.1); the net, or None if interrupted."""
    from dataclasses import replace

    from ..localisation import fine_tune_localisation, localisation_net, save_localisation_net
    from ..weights.record import TrainingRecord

    options = run.options
    settings = run.settings("localisation")
    net = localisation_net(classifier, regression, fine_tune, seed=seed + 1)

    def train_one(epochs, resume):
        return fine_tune_localisation(net, run.splits["train"], run.splits["val"], run_dir, options["scale"],
                                      settings=replace(settings, max_epochs=epochs), seed=seed, resume=resume)

    result = train_epoch_by_epoch(train_one, settings.max_epochs, run_dir, bar)
    if result is None:
        return None
    net.model.training_record = TrainingRecord(train_scale=options["scale"], epochs=len(result["history"]),
                                               learning_rate=settings.learning_rate)
    save_localisation_net(net, os.path.join(run_dir, WEIGHTS_FILE))
    return net.eval()


def classifier_top5_error(classifier, scenes, scale):
    """Top-1 and top-5 error (%) of the classifier's dense posteriors of the test scenes at Q = ``scale``: what
    protocol 2's class guesses start from."""
    import numpy as np

    from ..evaluation import posteriors
    from ..evaluation.metrics import top_k_error

    probabilities = posteriors(classifier, list(scenes.images), "dense", (scale,), flip=False)
    labels = np.asarray(scenes.labels)
    return 100 * float(top_k_error(probabilities, labels, 1)), 100 * float(top_k_error(probabilities, labels, 5))


def localisation_results(run, classifier, nets, guesses):
    """``{"localisation/<net>/protocol-1": %, "localisation/PCR-all/protocol-2": %, ...}`` on the test scenes,
    with the baselines and the classifier's errors (``evaluate_localisation``); protocol 2 makes ``guesses``
    (class, box) guesses per scene."""
    from ..localisation import evaluate_localisation, mean_relative_size

    test, scale = run.splits["test"], run.options["scale"]
    results = {}
    rows = evaluate_localisation(test, [nets[name] for name, _, _ in LOCALISATION_NETS], None, [scale],
                                 baseline_size=mean_relative_size(run.splits["train"]))
    for row in rows:
        if row["method"] == "centre crop, GT class":
            name = f"{row['regression']}-{row['fine_tuned']}"
            results[f"localisation/{name}/protocol-1"] = row["error"]
        else:
            results[f"localisation/baseline/{row['method']}"] = row["error"]
    dense = evaluate_localisation(test, [nets["PCR-all"]], classifier, [scale], top=guesses)
    results["localisation/PCR-all/protocol-2"] = next(r["error"] for r in dense if r["method"].startswith("dense"))
    top1, top5 = classifier_top5_error(classifier, test, scale)
    results["localisation/classifier/top-1"], results["localisation/classifier/top-5"] = top1, top5
    return results
