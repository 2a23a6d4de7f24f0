"""``minivgg localize train|evaluate|predict``: object localisation as in Appendix A.

    minivgg localize train --regression PCR --fine-tune all          (the embedded digits-on-photos set)
    minivgg localize evaluate --weights RUN/localisation.safetensors --classifier RUN/classifier.safetensors
    minivgg localize predict IMAGE --weights ... --classifier ... --output boxes.png [--annotation IMAGE.xml]

``train`` trains the classification net on the embedded scenes first (or starts from ``--classifier``),
then fine-tunes the localisation net initialised from it and writes both weight files, an example test
scene and its PASCAL VOC annotation into the run folder. ``evaluate`` prints the columns of Tables 8 and 9
on the embedded test scenes: the whole-image and centre-box baselines, the centre-crop error with the
ground-truth class for each net, and the dense, merged top-5 error of all nets together. ``predict`` draws
the top guesses (and the ground truth of ``--annotation``) on an image.
"""
import argparse
import json
import os

from minivgg.options import choice_of, nonnegative_float, nonnegative_int, positive_float, positive_int, \
    positive_int_list

CLASSIFIER_FILE, LOCALISATION_FILE = "classifier.safetensors", "localisation.safetensors"
EXAMPLE_IMAGE, EXAMPLE_ANNOTATION = "example.png", "example.xml"


def register(subparsers):
    parser = subparsers.add_parser("localize", help="localisation nets (Appendix A): train, evaluate, draw boxes",
                                   description=__doc__.replace("``", ""),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    train = actions.add_parser("train", help="fine-tune a localisation net on the embedded scenes")
    train.add_argument("--run-dir", default=os.path.join("runs", "localize"), help="where the weights go")
    train.add_argument("--classifier", help="start from this classification net (default: train one first)")
    train.add_argument("--regression", type=choice_of("SCR", "PCR"), default="PCR",
                       help="single-class (4 outputs) or per-class (4 per class) regression (default PCR)")
    train.add_argument("--fine-tune", type=choice_of("all", "fc"), default="all",
                       help="fine-tune all layers or only the FC ones (default all)")
    train.add_argument("--epochs", type=positive_int, default=None, help="localisation epochs")
    train.add_argument("--classifier-epochs", type=positive_int, default=None)
    train.add_argument("--learning-rate", type=positive_float, default=None,
                       help="localisation learning rate (default 1e-3, Appendix A.1)")
    train.add_argument("--seed", type=nonnegative_int, default=0)
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=run_train)

    evaluate = actions.add_parser("evaluate", help="Table 8/9 columns on the embedded test scenes")
    _inference_options(evaluate)
    evaluate.add_argument("--annotations", metavar="DIR", help="evaluate on this folder of PASCAL VOC / ILSVRC "
                          "XML files (with --images) instead of the embedded test scenes")
    evaluate.add_argument("--images", metavar="DIR", help="the folder of the images the annotations name")
    evaluate.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    evaluate.add_argument("--seed", type=nonnegative_int, default=0, help="the scenes' seed (as in training)")
    evaluate.set_defaults(func=run_evaluate)

    predict = actions.add_parser("predict", help="draw the predicted boxes of one image into a PNG")
    predict.add_argument("image", metavar="IMAGE", help="an image file")
    _inference_options(predict)
    predict.add_argument("--annotation", help="the image's PASCAL VOC / ILSVRC XML: ground truth to draw")
    predict.add_argument("--output", default=None, help="PNG to write (default IMAGE_boxes.png)")
    predict.set_defaults(func=run_predict)


def _inference_options(parser):
    from minivgg.localisation.merge import MERGE_THRESHOLD

    parser.add_argument("--weights", nargs="+", required=True, help="localisation nets; several are pooled")
    parser.add_argument("--classifier", required=True, help="the classification net (classes, box ratings)")
    parser.add_argument("--scales", type=positive_int_list, default=None,
                        help="test scales Q, e.g. 64,96 (default: the embedded run's)")
    parser.add_argument("--top", type=positive_int, default=5, help="guesses per image (default 5)")
    parser.add_argument("--merge-threshold", type=nonnegative_float, default=MERGE_THRESHOLD,
                        help=f"stop merging above this match score (default {MERGE_THRESHOLD})")


def _load(args):
    from minivgg import weights
    from minivgg.localisation import load_localisation_net
    from minivgg.localisation.recipe import SCENES

    classifier = weights.load(args.classifier).eval()
    nets = [load_localisation_net(path).eval() for path in args.weights]
    scales = tuple(args.scales) if args.scales is not None else SCENES["test_scales"]
    for path, net in zip(args.weights, nets):
        if net.input_size != classifier.input_size or net.num_classes != classifier.num_classes:
            raise ValueError(f"{path} ({net.num_classes} classes, input {net.input_size}) does not go with the "
                             f"classifier {args.classifier} ({classifier.num_classes} classes, input "
                             f"{classifier.input_size})")
    if min(scales) < classifier.input_size:
        raise ValueError(f"--scales {list(scales)}: every test scale must be at least the input size "
                         f"{classifier.input_size}")
    return classifier, nets, scales


def run_train(args):
    from minivgg import weights
    from minivgg.localisation import (fine_tune_localisation, localisation_net, save_localisation_net,
                                      train_classifier_on_boxes)
    from minivgg.localisation.annotations import format_annotation
    from minivgg.localisation.recipe import digit_scenes_run

    overrides = {key: value for key, value in (("localisation_epochs", args.epochs),
                                               ("classifier_epochs", args.classifier_epochs),
                                               ("localisation_learning_rate", args.learning_rate))
                 if value is not None}
    run = digit_scenes_run(seed=args.seed, **overrides)
    splits, options = run.splits, run.options
    os.makedirs(args.run_dir, exist_ok=True)
    if args.classifier is not None:
        classifier = weights.load(args.classifier)
        if classifier.num_classes != len(splits["train"].class_names) or \
                classifier.input_size != options["crop_size"]:
            raise ValueError(f"{args.classifier}: a classifier of {classifier.num_classes} classes at "
                             f"{classifier.input_size}x{classifier.input_size}; the embedded scenes need "
                             f"{len(splits['train'].class_names)} classes at {options['crop_size']}")
        classifier_path = args.classifier
    else:
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
    save_localisation_net(net, path, metadata={"training": json.dumps({"scale": options["scale"],
                                                                       "epochs": len(result["history"])})})
    # An example test scene with its annotation, to try `minivgg localize predict` on.
    from PIL import Image

    image, label, boxes = splits["test"].load(0)
    example_path = os.path.join(args.run_dir, EXAMPLE_IMAGE)
    Image.fromarray(image).save(example_path)
    with open(os.path.join(args.run_dir, EXAMPLE_ANNOTATION), "w") as handle:
        handle.write(format_annotation(EXAMPLE_IMAGE, image.shape[1], image.shape[0],
                                       [splits["test"].class_names[label]] * len(boxes), boxes))
    print(f"weights: {classifier_path}, {path}")
    print(f"try: minivgg localize predict {example_path} --weights {path} --classifier {classifier_path} "
          f"--annotation {os.path.join(args.run_dir, EXAMPLE_ANNOTATION)}")
    return 0


def run_evaluate(args):
    from minivgg.localisation import evaluate_localisation, format_localisation_table, mean_relative_size
    from minivgg.localisation.scenes import load_digit_scenes
    from minivgg.localisation.recipe import SCENES

    if (args.annotations is None) != (args.images is None):
        raise ValueError("--annotations and --images go together: the XML files and the images they name")
    classifier, nets, scales = _load(args)
    if args.annotations is not None:
        from minivgg.localisation import read_annotated_images

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
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0


def run_predict(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minivgg.data import decode_image
    from minivgg.localisation import localise, read_annotation
    from minivgg.localisation.draw import draw_boxes, save_figure

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
    names = classifier.class_names or [f"class {i}" for i in range(classifier.num_classes)]
    labels = [f"{rank + 1}. {names[c]} {answer.class_posteriors[c]:.0%}" for rank, c in enumerate(answer.classes)]
    for label, box in zip(labels, answer.boxes):
        print(f"{label}: box ({', '.join(f'{v:.1f}' for v in box)})")
    figure, axes = plt.subplots(figsize=(5, 5 * image.shape[0] / image.shape[1]))
    # The best guess in red, the others in orange.
    draw_boxes(axes, image, answer.boxes[1:], labels[1:], colour="orange", truth=truth, truth_labels=truth_labels)
    draw_boxes(axes, image, answer.boxes[:1], labels[:1], colour="red",
               title=f"top-{len(answer.classes)} guesses (dense boxes merged), Q = {','.join(map(str, scales))}")
    output = args.output if args.output is not None else os.path.splitext(args.image)[0] + "_boxes.png"
    save_figure(figure, output)
    plt.close(figure)
    print(f"wrote {output}")
    return 0
