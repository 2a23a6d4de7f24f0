"""Appendix A in miniature: localisation of Fashion-MNIST items placed on photographs.

Each scene is a window of one of scikit-learn's two photographs (lowered contrast), with one clothing item of
the seed's Fashion-MNIST drawn on it at a random size and place (``minivgg.localisation.scenes.render_scene``:
the item's intensity, scaled to its brightest pixel, is the blending mask, in a stroke colour that stands out
from the patch); the ground-truth box is the tight box of the pixels where the item outweighs the photo. The
items of the training and validation scenes come from the seed's training images, those of the test scenes
from its test images.

As in the paper, the localisation nets start from a classification net of the same data: here the seed's net
A, trained on Fashion-MNIST (Sect. 3), fine-tuned on crops of the scenes that hold the whole item. From it, a
new last layer regresses boxes: single-class regression with the FC layers fine-tuned, per-class regression
with the FC layers fine-tuned, and per-class regression with every layer fine-tuned (Table 8's three rows),
each at the fixed S of the scenes' side. Protocol 1 reads the box of the ground-truth class from the centre
crop (Table 8); protocol 2 applies the net densely to the whole scene, merges the boxes greedily and rates them
with the classifier's five most probable classes (Table 9), of 10 classes here rather than 1000.

The scenes are 96 x 96 with items of 32 to 64 pixels, and the nets take 64 x 64 crops: the centre crop sees
the middle two thirds of a scene, so an item near an edge is partly outside it, which is what protocol 2's
dense windows (2 x 2 at Q = 96, 32 pixels apart) are for.
"""
import os

import numpy as np

from .classification import WEIGHTS_FILE
from .epochs import train_epoch_by_epoch

__all__ = ["LOCALISATION_NETS", "CLASSIFIER", "item_scenes", "scenes_run", "train_classifier",
           "train_localisation_net", "classifier_errors", "localisation_results"]

# Table 8's rows: (name, regression, fine-tuned layers).
LOCALISATION_NETS = (("SCR-fc", "SCR", "fc"), ("PCR-fc", "PCR", "fc"), ("PCR-all", "PCR", "all"))
CLASSIFIER = "classifier"


def item_scenes(images, labels, class_names, count, size, item_sides, seed, split):
    """``count`` scenes of ``size`` x ``size``: items drawn from ``images`` (N, H, W) grey uint8 with
    ``labels``, each on a window of a photograph. Returns a ``BoxDataset``; everything fixed by ``seed`` and
    ``split`` (a number that keeps the splits' draws apart)."""
    from sklearn.datasets import load_sample_images

    from ..localisation.data import BoxDataset
    from ..localisation.scenes import render_scene

    rng = np.random.default_rng([int(seed), 25, int(split)])
    photos = [np.asarray(photo, dtype=np.uint8) for photo in load_sample_images().images]
    chosen = rng.choice(len(images), size=count, replace=count > len(images))
    scenes, boxes = [], []
    for index in chosen:
        item = np.asarray(images[index], dtype=np.float64)
        # The item's own brightest pixel is full strength, so a dark garment is as visible as a bright one.
        glyph = 16.0 * item / max(item.max(), 1.0)
        photo = photos[int(rng.integers(len(photos)))]
        scene, box = render_scene(photo, glyph, size, int(rng.integers(item_sides[0], item_sides[1] + 1)), rng)
        scenes.append(scene)
        boxes.append(box[None, :])
    return BoxDataset(scenes, np.asarray(labels)[chosen], boxes, class_names)


def scenes_run(miniature, seed, classifier):
    """The scenes of ``seed`` and the classifier to fine-tune on them (``classifier``, a copy of the seed's
    trained net A, given the scenes' mean and standard deviation), as a ``localisation.recipe.ScenesRun``."""
    from ..localisation.recipe import SCENES, ScenesRun
    from ..preprocessing import Preprocessing
    from .classification import load_seed_data

    data = load_seed_data(miniature, seed)
    counts = dict(zip(("train", "val", "test"), miniature.scenes))
    splits = {name: item_scenes(data.items[name].images, data.items[name].labels, data.class_names, counts[name],
                                miniature.scene_size, miniature.item_sides, seed, number)
              for number, name in enumerate(("train", "val", "test"))}
    pixels = np.concatenate([image.reshape(-1, 3) for image in splits["train"].images]).astype(np.float64)
    classifier.preprocessing = Preprocessing("RGB", 255.0, tuple(pixels.mean(axis=0)), tuple(pixels.std(axis=0)))
    options = dict(SCENES, config=classifier.config, size=miniature.scene_size, crop_size=miniature.crop,
                   scale=miniature.scene_size, test_scales=(miniature.scene_size,),
                   width_multiplier=miniature.width_multiplier, fc_width=miniature.fc_width,
                   batch_size=miniature.batch_size, classifier_learning_rate=miniature.learning_rate,
                   classifier_epochs=miniature.classifier_epochs, localisation_epochs=miniature.localisation_epochs,
                   localisation_learning_rate=miniature.localisation_learning_rate)
    return ScenesRun(splits, classifier, options)


def train_classifier(run, run_dir, seed, bar=None):
    """Fine-tune the scenes' classifier on crops holding the whole item; the net, or None if interrupted."""
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


def classifier_errors(classifier, scenes, scale):
    """Top-1 and top-5 error (%) of the classifier's dense posteriors of the test scenes at Q = ``scale``: what
    protocol 2's class guesses start from."""
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
    top1, top5 = classifier_errors(classifier, test, scale)
    results["localisation/classifier/top-1"], results["localisation/classifier/top-5"] = top1, top5
    return results
