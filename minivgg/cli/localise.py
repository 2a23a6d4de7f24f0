"""``minivgg localise train|evaluate|predict`` (``localize`` too): object localisation as in Appendix A.

    minivgg localise train --regression PCR --fine-tune all          (the embedded digits-on-photos set)
    minivgg localise train --annotations VOC2007/Annotations --images VOC2007/JPEGImages \
        --classifier classifier.safetensors --scale 256 --regression SCR --fine-tune fc   (your own boxes)
    minivgg localise train --resume runs/localise
    minivgg localise evaluate --weights RUN/localisation.safetensors --classifier RUN/classifier.safetensors
    minivgg localise predict IMAGE --weights ... --classifier ... --output boxes.png [--annotation IMAGE.xml]

``train`` trains the classification net on the embedded scenes first (or starts from ``--classifier``),
then fine-tunes the localisation net initialised from it and writes both weight files, an example test
scene and its PASCAL VOC annotation into the run folder. With ``--annotations`` and ``--images`` (PASCAL
VOC's Annotations/ and JPEGImages/, or ILSVRC CLS-LOC's Annotations/CLS-LOC/train and Data/CLS-LOC/train)
it fine-tunes from ``--classifier`` on those boxes at the fixed scale ``--scale``, one training sample per
object, validating on ``--val-annotations``/``--val-images`` or on a seeded ``--val-fraction`` of the
images; every class must be one of the classifier's. The run folder keeps a checkpoint each epoch, and
``--resume RUN_DIR`` continues an interrupted run exactly (only ``--epochs``, ``--checkpoint-every`` and
``--quiet`` may change). ``evaluate`` prints the columns of Tables 8 and 9
on the embedded test scenes: the whole-image and centre-box baselines, the centre-crop error with the
ground-truth class for each net, and the dense, merged top-5 error of all nets together. ``predict`` draws
the top guesses (and the ground truth of ``--annotation``) on an image.
"""
import argparse
import os

from ..training import run_folder
from .options import (add_overwrite_option, batch_size, choice_of, nonnegative_float, nonnegative_int,
                      positive_float, positive_int, probability, scale_side, seed, test_scales)
from ..errors import RunFolderError, UsageError
from ..files import (Output, atomic_write, check_not_inside_inputs, check_outputs, marked, require_regular_file,
                     write_json)
from ..text import shown
from ..weights.record import TrainingRecord

CLASSIFIER_FILE, LOCALISATION_FILE = "classifier.safetensors", "localisation.safetensors"
EXAMPLE_IMAGE, EXAMPLE_ANNOTATION = "example.png", "example.xml"
DEFAULT_RUN_DIR = os.path.join("runs", "localise")
# The fine-tuning run inside the run folder (train()'s checkpoint and log) and the saved options.
FINE_TUNING_DIR = "localisation"
DEFAULT_VAL_FRACTION, DEFAULT_BATCH_SIZE = 0.1, 32
# Options that only mean something for a run on an annotated folder, and those only the embedded run has.
FOLDER_OPTIONS = ("images", "val_annotations", "val_images", "val_fraction", "scale", "batch_size", "flip",
                  "skip_unannotated", "checkpoint_every")
EMBEDDED_OPTIONS = ("classifier_epochs",)
CLASSIFIER_DIGEST = "classifier_sha256"
# The schema of each `localise train` option, to parse the saved values of a resumed run with.
_OPTION_SCHEMA = {}


def _sha256_digest(value):
    """A saved SHA-256: 64 lowercase hex digits."""
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"must be a SHA-256 (64 hex digits), got {str(value)[:80]!r}")
    return value


def register(subparsers):
    parser = subparsers.add_parser("localise", aliases=["localize"],
                                   help="localisation nets (Appendix A): train, evaluate, draw boxes",
                                   description=__doc__.replace("``", ""),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    train = actions.add_parser("train", help="fine-tune a localisation net (the embedded scenes, or --annotations)")
    # Defaults are None and filled in later, so that --resume can tell an option given from one left out.
    train.add_argument("--run-dir", default=None, help=f"where the weights go (default {DEFAULT_RUN_DIR})")
    train.add_argument("--classifier", help="start from this classification net (default on the embedded scenes: "
                       "train one first; needed with --annotations)")
    train.add_argument("--regression", type=choice_of("SCR", "PCR"), default=None,
                       help="single-class (4 outputs) or per-class (4 per class) regression (default PCR)")
    train.add_argument("--fine-tune", type=choice_of("all", "fc"), default=None,
                       help="fine-tune all layers or only the FC ones (default all)")
    train.add_argument("--epochs", type=positive_int, default=None,
                       help="localisation epochs (default: the embedded run's; with --annotations the paper's "
                       "74, fewer if the schedule ends first)")
    train.add_argument("--classifier-epochs", type=positive_int, default=None,
                       help="epochs of the classifier trained first on the embedded scenes")
    train.add_argument("--learning-rate", type=positive_float, default=None,
                       help="localisation learning rate (default with --annotations 1e-3, Appendix A.1; the "
                       "embedded run's 2e-2)")
    train.add_argument("--seed", type=seed, default=None, help="data order, crops, held-out images, "
                       "the new box layer (default 0)")
    train.add_argument("--quiet", action="store_true", default=None, help="no progress bars")
    own = train.add_argument_group("your own annotated images", "PASCAL VOC / ILSVRC XML boxes, one file an image")
    own.add_argument("--annotations", metavar="DIR", help="the XML files (VOC: Annotations/; ILSVRC: "
                     "Annotations/CLS-LOC/train), paired with the images by their path")
    own.add_argument("--images", metavar="DIR", help="the images (VOC: JPEGImages/; ILSVRC: Data/CLS-LOC/train)")
    own.add_argument("--val-annotations", metavar="DIR", help="held-out XML files for validation (with "
                     "--val-images; default: a --val-fraction of the images)")
    own.add_argument("--val-images", metavar="DIR", help="the held-out images")
    own.add_argument("--val-fraction", type=probability, default=None,
                     help=f"without --val-annotations: hold out this seeded fraction of the images (default "
                     f"{DEFAULT_VAL_FRACTION:g})")
    own.add_argument("--scale", type=scale_side, default=None, help="the fixed training scale S (default: the "
                     "paper's 256 for 224 crops, in proportion to the classifier's input size)")
    own.add_argument("--batch-size", type=batch_size, default=None,
                     help=f"crops per SGD step (default {DEFAULT_BATCH_SIZE})")
    own.add_argument("--flip", action="store_true", default=None, help="mirror half the training crops")
    own.add_argument("--skip-unannotated", action="store_true", default=None,
                     help="leave out images without an XML file (ILSVRC has boxes for some training images only)")
    own.add_argument("--checkpoint-every", type=nonnegative_int, default=None,
                     help="also checkpoint every N steps (default 0: at the end of each epoch only)")
    own.add_argument("--resume", metavar="RUN_DIR", help="continue the interrupted --annotations run in RUN_DIR")
    train.set_defaults(func=run_train)
    _OPTION_SCHEMA.update(run_folder.option_schema(train))

    evaluate = actions.add_parser("evaluate", help="Table 8/9 columns on the embedded test scenes")
    _inference_options(evaluate)
    evaluate.add_argument("--annotations", metavar="DIR", help="evaluate on this folder of PASCAL VOC / ILSVRC "
                          "XML files (with --images) instead of the embedded test scenes")
    evaluate.add_argument("--images", metavar="DIR", help="the folder of the images the annotations name")
    evaluate.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    evaluate.add_argument("--seed", type=seed, default=0, help="the scenes' seed (as in training)")
    add_overwrite_option(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    predict = actions.add_parser("predict", help="draw the predicted boxes of one image into a PNG")
    predict.add_argument("image", metavar="IMAGE", help="an image file")
    _inference_options(predict)
    predict.add_argument("--annotation", help="the image's PASCAL VOC / ILSVRC XML: ground truth to draw")
    predict.add_argument("--output", default=None, help="PNG to write (default IMAGE_boxes.png); never IMAGE, and an "
                         "existing file only if minivgg drew it (or with --overwrite)")
    add_overwrite_option(predict)
    predict.set_defaults(func=run_predict)


def _inference_options(parser):
    from ..localisation.merge import MERGE_THRESHOLD

    parser.add_argument("--weights", nargs="+", required=True, help="localisation nets; several are pooled")
    parser.add_argument("--classifier", required=True, help="the classification net (classes, box ratings)")
    parser.add_argument("--scales", type=test_scales, default=None,
                        help="test scales Q, e.g. 64,96 (default: the scale S the nets were fine-tuned at on "
                        "annotated images; the embedded run's 64,96 for its nets)")
    parser.add_argument("--top", type=positive_int, default=5, help="guesses per image (default 5)")
    parser.add_argument("--merge-threshold", type=nonnegative_float, default=MERGE_THRESHOLD,
                        help=f"stop merging above this match score (default {MERGE_THRESHOLD})")


def _default_scales(paths):
    """The test scales when --scales is not given: the training scales S of nets fine-tuned on annotated
    folders (testing at Q = S, Sect. 4.1), else the embedded run's."""
    from .. import weights
    from ..evaluation.scales import single_test_scale

    recorded = set()
    for path in paths:
        training = weights.read_metadata(path)[0]["training"]
        if training is not None and training.annotations is not None and training.train_scale is not None:
            recorded.add(single_test_scale(training.train_scale))
    if recorded:
        return tuple(sorted(recorded))
    from ..localisation.recipe import SCENES

    return SCENES["test_scales"]


def _load(args):
    from .. import weights
    from ..localisation import load_localisation_net

    classifier = weights.load(args.classifier).eval()
    nets = [load_localisation_net(path).eval() for path in args.weights]
    scales = tuple(args.scales) if args.scales is not None else _default_scales(args.weights)
    for path, net in zip(args.weights, nets):
        if net.input_size != classifier.input_size or net.num_classes != classifier.num_classes:
            raise ValueError(f"{path} ({net.num_classes} classes, input {net.input_size}) does not go with the "
                             f"classifier {args.classifier} ({classifier.num_classes} classes, input "
                             f"{classifier.input_size})")
    if min(scales) < classifier.input_size:
        raise ValueError(f"--scales {list(scales)}: every test scale must be at least the input size "
                         f"{classifier.input_size}")
    return classifier, nets, scales


def _command(args):
    """``minivgg localise train`` as the user spelt it (``localize`` is accepted too), for messages."""
    return f"minivgg {args.command} train"


def _default(value, default):
    return default if value is None else value


def _options(names):
    return ", ".join("--" + name.replace("_", "-") for name in names)


def run_train(args):
    if args.resume is not None or args.annotations is not None:
        return _train_on_folder(args)

    misplaced = [name for name in FOLDER_OPTIONS if getattr(args, name) is not None]
    if misplaced:
        raise UsageError(f"{_options(misplaced)}: only for training on your own images (--annotations, --images)")
    return _train_on_scenes(args)


def _train_on_scenes(args):
    args.run_dir, args.seed = _default(args.run_dir, DEFAULT_RUN_DIR), _default(args.seed, 0)
    args.regression, args.fine_tune = _default(args.regression, "PCR"), _default(args.fine_tune, "all")
    overrides = {key: value for key, value in (("localisation_epochs", args.epochs),
                                               ("classifier_epochs", args.classifier_epochs),
                                               ("localisation_learning_rate", args.learning_rate))
                 if value is not None}
    _check_new_run_folder(args.run_dir)
    with run_folder.claimed(args.run_dir):  # one run at a time in the folder
        _check_new_run_folder(args.run_dir)  # again, under the lock
        return _train_on_scenes_in_folder(args, overrides)


def _train_on_scenes_in_folder(args, overrides):
    from .. import weights
    from ..localisation import (fine_tune_localisation, localisation_net, save_localisation_net,
                                train_classifier_on_boxes)
    from ..localisation.annotations import format_annotation
    from ..localisation.recipe import digit_scenes_run

    run = digit_scenes_run(seed=args.seed, **overrides)
    splits, options = run.splits, run.options
    if args.classifier is not None:
        classifier = weights.load(args.classifier)
        if classifier.num_classes != len(splits["train"].class_names) or \
                classifier.input_size != options["crop_size"]:
            raise ValueError(f"{args.classifier}: a classifier of {classifier.num_classes} classes at "
                             f"{classifier.input_size}x{classifier.input_size}; the embedded scenes need "
                             f"{len(splits['train'].class_names)} classes at {options['crop_size']}")
        classifier_path = args.classifier
        run_folder.mark_run_folder(args.run_dir)
    else:
        run_folder.mark_run_folder(args.run_dir)  # the first file written: the folder is minivgg's from now on
        classifier = run.classifier
        print(f"training the classification net (configuration {classifier.config}, "
              f"{classifier.num_parameters():,} parameters) on {len(splits['train'])} scenes")
        result = train_classifier_on_boxes(classifier, splits["train"], splits["val"],
                                           os.path.join(args.run_dir, "classifier"), options["scale"],
                                           run.settings("classifier"), seed=args.seed, progress=not args.quiet,
                                           min_object_fraction=1.0)
        print(f"classifier: validation top-1 error {result['history'][-1]['val_top1_error']:.1%}")
        classifier_path = os.path.join(args.run_dir, CLASSIFIER_FILE)
        weights.save(classifier, classifier_path)
    net = localisation_net(classifier, args.regression, args.fine_tune, seed=args.seed + 1)
    print(f"fine-tuning a {net.regression} localisation net ({args.fine_tune} layers, {net.num_parameters():,} "
          f"trained parameters) at S = {options['scale']}, learning rate {options['localisation_learning_rate']:g}")
    result = fine_tune_localisation(net, splits["train"], splits["val"], os.path.join(args.run_dir, "localisation"),
                                    options["scale"], settings=run.settings("localisation"), seed=args.seed,
                                    progress=not args.quiet)
    print(f"localisation: validation error (centre crop, ground-truth class) "
          f"{result['history'][-1]['val_top1_error']:.1%}")
    path = os.path.join(args.run_dir, LOCALISATION_FILE)
    net.model.training_record = TrainingRecord(train_scale=options["scale"], epochs=len(result["history"]))
    save_localisation_net(net, path)
    # An example test scene with its annotation, to try `minivgg localise predict` on.
    from PIL import Image

    image, label, boxes = splits["test"].load(0)
    example_path = os.path.join(args.run_dir, EXAMPLE_IMAGE)
    atomic_write(example_path, lambda temporary: Image.fromarray(image).save(temporary, format="PNG"))
    annotation = format_annotation(EXAMPLE_IMAGE, image.shape[1], image.shape[0],
                                   [splits["test"].class_names[label]] * len(boxes), boxes)

    def write_annotation(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(annotation)
    atomic_write(os.path.join(args.run_dir, EXAMPLE_ANNOTATION), write_annotation)
    print(f"weights: {classifier_path}, {path}")
    print(f"try: minivgg {args.command} predict {example_path} --weights {path} --classifier {classifier_path} "
          f"--annotation {os.path.join(args.run_dir, EXAMPLE_ANNOTATION)}")
    return 0


# --- fine-tuning on an annotated folder ------------------------------------------------------------------------

def _check_new_run(args):
    """Fill in the defaults of a new run and refuse contradictory options and a folder holding a run."""
    from ..localisation.training import FINE_TUNE_LEARNING_RATE
    from ..training.settings import TrainSettings

    missing = [name for name in ("images", "classifier") if getattr(args, name) is None]
    if missing:
        raise UsageError(f"--annotations needs {_options(missing)}: the images the XML files describe and the "
                         f"trained classification net the localisation net starts from (Appendix A.1)")
    misplaced = [name for name in EMBEDDED_OPTIONS if getattr(args, name) is not None]
    if misplaced:
        raise UsageError(f"{_options(misplaced)}: only for the embedded scenes; with --annotations the "
                         f"classifier is --classifier")
    if (args.val_annotations is None) != (args.val_images is None):
        raise UsageError("--val-annotations and --val-images go together: the held-out XML files and their images")
    if args.val_annotations is not None and args.val_fraction is not None:
        raise UsageError("--val-fraction holds out part of --annotations; with --val-annotations there is nothing "
                         "to hold out: give one of them")
    if args.val_fraction is not None and args.val_fraction == 0:
        raise UsageError("--val-fraction 0 leaves no image for validation: give a fraction in (0, 1) or "
                         "--val-annotations and --val-images")
    if args.val_annotations is None:
        args.val_fraction = _default(args.val_fraction, DEFAULT_VAL_FRACTION)
    defaults = {"run_dir": DEFAULT_RUN_DIR, "seed": 0, "regression": "PCR", "fine_tune": "all",
                "learning_rate": FINE_TUNE_LEARNING_RATE, "epochs": TrainSettings.max_epochs,
                "batch_size": DEFAULT_BATCH_SIZE, "flip": False, "skip_unannotated": False, "checkpoint_every": 0,
                "quiet": False}
    for name, value in defaults.items():
        setattr(args, name, _default(getattr(args, name), value))
    check_not_inside_inputs(args.run_dir, "--run-dir", [args.annotations, args.images, args.val_annotations,
                                                        args.val_images])
    _check_new_run_folder(args.run_dir)


def _check_new_run_folder(run_dir):
    """A new run (embedded or on a folder) never writes over another run's files."""
    run_folder.check_new_run_folder(run_dir, "a localisation run", resumable=run_folder.ARGUMENTS_FILE,
                                    finished=(FINE_TUNING_DIR,))


def _apply_saved(args):
    """``--resume RUN_DIR``: take the saved options (``run_folder.apply_saved``). Returns the SHA-256 of the
    classifier file the run started from."""

    saved = run_folder.read_arguments(args.resume, f"{_command(args)} --annotations", _OPTION_SCHEMA,
                                      {CLASSIFIER_DIGEST: _sha256_digest})
    if "annotations" not in saved:
        raise RunFolderError(f"{os.path.join(args.resume, run_folder.ARGUMENTS_FILE)} does not hold the options of "
                             f"a localisation run")
    run_folder.apply_saved(args, saved, args.resume)
    return saved.get(CLASSIFIER_DIGEST)


def _read_folders(args, class_names):
    """``(train set, validation set)``: one training sample per object, one validation sample per class an
    image holds (``localisation.folders``), every image rescaled to S when it is read."""
    from ..localisation.folders import UnannotatedImagesError, pair_annotations, read_box_folder, split_pairs

    unannotated = "skip" if args.skip_unannotated else "error"

    def pairs(annotations, images):
        try:
            return pair_annotations(annotations, images, unannotated=unannotated)
        except UnannotatedImagesError as error:
            raise UnannotatedImagesError(f"{error}; --skip-unannotated trains on the annotated ones only",
                                         error.images) from None
    train_pairs = pairs(args.annotations, args.images)
    if args.val_annotations is not None:
        val_pairs = pairs(args.val_annotations, args.val_images)
        described = f"{len(val_pairs)} images of {args.val_annotations}"
    else:
        train_pairs, val_pairs = split_pairs(train_pairs, args.val_fraction, seed=args.seed)
        described = f"{len(val_pairs)} images held out (--val-fraction {args.val_fraction:g}, seed {args.seed})"
    progress = not args.quiet
    # Only the headers now; each image is decoded when a crop is taken, so the set may be of any size.
    train_set, val_set = (read_box_folder(pairs, class_names, args.scale, samples=samples, lazy=True,
                                          progress=progress)
                          for pairs, samples in ((train_pairs, "object"), (val_pairs, "class")))
    if len(train_set) < args.batch_size:
        objects = f"{len(train_set)} training object{'s' if len(train_set) != 1 else ''}"
        raise UsageError(f"--batch-size {args.batch_size} is more than the {objects} of {args.annotations}: give "
                         f"a smaller --batch-size")
    print(f"training on {len(train_set)} objects in {len(train_pairs)} images of {args.annotations}, validating on "
          f"{described}")
    return train_set, val_set


def _train_on_folder(args):
    resume = args.resume is not None
    saved_digest = _apply_saved(args) if resume else _check_new_run(args)
    with run_folder.claimed(args.run_dir):  # one run at a time in the folder, from the first check to the end
        if not resume:
            _check_new_run_folder(args.run_dir)  # again, under the lock
        return _train_on_folder_in_folder(args, resume, saved_digest)


def _train_on_folder_in_folder(args, resume, saved_digest):
    from .. import weights
    from ..localisation import fine_tune_localisation, localisation_net, save_localisation_net
    from ..training.settings import TrainSettings
    from ..weights.download import sha256_of

    classifier = weights.load(args.classifier)
    digest = sha256_of(args.classifier)
    if resume and digest != saved_digest:
        raise RunFolderError(f"--resume {args.run_dir}: {args.classifier} is not the file the run started from "
                             f"(its contents changed); the frozen and restored layers would not match")
    if classifier.class_names is None:
        raise UsageError(f"{args.classifier} records no class names to match the annotations' classes with")
    if args.scale is None:
        args.scale = -(-classifier.input_size * 256 // 224)  # Appendix A.1's S = 256 for 224 crops
    if args.scale < classifier.input_size:
        raise UsageError(f"--scale {args.scale} is smaller than the classifier's {classifier.input_size}x"
                         f"{classifier.input_size} input: S must be at least the crop")
    train_set, val_set = _read_folders(args, classifier.class_names)
    settings = TrainSettings(batch_size=args.batch_size, learning_rate=args.learning_rate, max_epochs=args.epochs,
                             checkpoint_every=args.checkpoint_every)
    fine_tuning_dir = os.path.join(args.run_dir, FINE_TUNING_DIR)
    net = localisation_net(classifier, args.regression, args.fine_tune, seed=args.seed + 1)
    if resume:  # every check of the checkpoint, the net's shapes included, before anything is written
        run_folder.check_resumable_folder(args.run_dir, settings, fine_tuning_dir, model=net)
    run_folder.mark_run_folder(args.run_dir)  # the first file written: the folder is minivgg's from now on
    run_folder.remove_stale_temporaries_in([args.run_dir])
    run_folder.write_arguments(args.run_dir, args, extra={CLASSIFIER_DIGEST: digest})
    print(f"{'resuming' if resume else 'fine-tuning'} a {net.regression} localisation net from {args.classifier} "
          f"({args.fine_tune} layers, {net.num_parameters():,} trained parameters) at S = {args.scale}, learning "
          f"rate {args.learning_rate:g}; run folder {args.run_dir}")
    hint = f"continue with `{_command(args)} --resume {args.run_dir}`"
    try:
        result = fine_tune_localisation(net, train_set, val_set, fine_tuning_dir, args.scale, settings=settings,
                                        seed=args.seed, progress=not args.quiet, flip=args.flip, resume=resume)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted at once; {hint} from the last checkpoint") from None
    if not result["finished"]:
        raise KeyboardInterrupt(f"interrupted; checkpoint written: {hint}")
    history = result["history"]
    print(f"localisation: validation error (centre crop, ground-truth class) {history[-1]['val_top1_error']:.1%} "
          f"after {len(history)} epochs")
    path = os.path.join(args.run_dir, LOCALISATION_FILE)
    net.model.training_record = TrainingRecord(train_scale=args.scale, epochs=len(history),
                                               annotations=args.annotations, learning_rate=args.learning_rate)
    save_localisation_net(net, path)
    print(f"weights: {path}")
    evaluate_on = (f"--annotations {args.val_annotations} --images {args.val_images}"
                   if args.val_annotations is not None else "--annotations DIR --images DIR")
    print(f"try: minivgg {args.command} evaluate --weights {path} --classifier {args.classifier} {evaluate_on}")
    return 0


def run_evaluate(args):
    from ..localisation import evaluate_localisation, format_localisation_table, mean_relative_size
    from ..localisation.scenes import load_digit_scenes
    from ..localisation.recipe import SCENES


    if (args.annotations is None) != (args.images is None):
        raise ValueError("--annotations and --images go together: the XML files and the images they name")
    check_outputs([Output(args.json, "--json", "json")], inputs=[args.classifier, *args.weights, args.annotations,
                                                                 args.images], overwrite=args.overwrite,
                  data_folders=[args.annotations, args.images])
    classifier, nets, scales = _load(args)
    if args.annotations is not None:
        from ..localisation import read_annotated_images

        if classifier.class_names is None:
            raise ValueError(f"{args.classifier} records no class names to match the annotations' classes with")
        test = read_annotated_images(args.annotations, args.images, class_names=classifier.class_names)
        reference, described = test, f"{len(test)} annotated images of {args.annotations}"
    else:
        splits = load_digit_scenes(size=SCENES["size"], digit_sides=SCENES["digit_sides"], seed=args.seed)
        if len(splits["test"].class_names) != classifier.num_classes:
            raise ValueError(f"{args.classifier} has {classifier.num_classes} classes, the embedded scenes 10")
        test, reference, described = splits["test"], splits["train"], f"{len(splits['test'])} test scenes"
    # The centre-box baseline takes the mean box size of the training scenes (of the evaluated set itself
    # for an annotation folder, which flatters it).
    rows = evaluate_localisation(test, nets, classifier, scales, top=args.top,
                                 baseline_size=mean_relative_size(reference),
                                 merge_threshold=args.merge_threshold, progress=True)
    print(described)
    print(format_localisation_table(rows))
    if args.json is not None:

        write_json(args.json, marked({"rows": rows}))
    return 0


def run_predict(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import numpy as np

    from ..data import decode_image
    from ..evaluation.posteriors import check_finite_outputs
    from ..localisation import localise, read_annotation
    from ..localisation.draw import draw_boxes, save_figure

    output = args.output if args.output is not None else os.path.splitext(args.image)[0] + "_boxes.png"
    check_outputs([Output(output, "--output", "png")], inputs=[args.image, args.classifier, *args.weights,
                                                               args.annotation], overwrite=args.overwrite)
    require_regular_file(args.image, "image file")  # before the nets are loaded: a pipe would block the read
    classifier, nets, scales = _load(args)
    image = decode_image(args.image)
    truth, truth_labels = (), None
    if args.annotation is not None:
        annotation = read_annotation(args.annotation)
        if (annotation.height, annotation.width) != image.shape[:2]:
            raise ValueError(f"{args.annotation} describes a {annotation.width}x{annotation.height} image, "
                             f"{args.image} is {image.shape[1]}x{image.shape[0]}")
        truth, truth_labels = annotation.boxes, list(annotation.names)
    answer = localise(nets, classifier, image, scales, top=args.top, merge_threshold=args.merge_threshold)
    check_finite_outputs(np.asarray(answer.class_posteriors)[None], "class scores", classifier.dtype,
                         classifier.preprocessing)
    check_finite_outputs(np.asarray(answer.boxes, dtype=np.float64).reshape(1, -1), "boxes", nets[0].model.dtype,
                         nets[0].model.preprocessing)
    names = classifier.class_names or [f"class {i}" for i in range(classifier.num_classes)]
    labels = [f"{rank + 1}. {shown(names[c])} {answer.class_posteriors[c]:.0%}"
              for rank, c in enumerate(answer.classes)]
    for label, box in zip(labels, answer.boxes):
        print(f"{label}: box ({', '.join(f'{v:.1f}' for v in box)})")
    figure, axes = plt.subplots(figsize=(5, 5 * image.shape[0] / image.shape[1]))
    # The best guess in red, the others in orange.
    draw_boxes(axes, image, answer.boxes[1:], labels[1:], colour="orange", truth=truth, truth_labels=truth_labels)
    draw_boxes(axes, image, answer.boxes[:1], labels[:1], colour="red",
               title=f"top-{len(answer.classes)} guesses (dense boxes merged), Q = {','.join(map(str, scales))}")
    save_figure(figure, output)
    plt.close(figure)
    print(f"wrote {output}")
    return 0
