"""``minivgg train``: the paper's training recipe (Sect. 3.1) — the project's main job.

With no ``--data`` it trains a quarter-width configuration A on the embedded digits (scikit-learn's real
handwritten digits, rendered as RGB; nothing is downloaded) and reports the test top-1 accuracy. With
``--data PATH`` (an ImageNet-style folder: ``train/<class>/*``, ``val/``) it runs one of the paper's stages,
``--preset CONFIG/SCALE``; the stage chain of Sect. 3.1 is a run per stage::

    minivgg train --data ILSVRC2012 --preset A/256
    minivgg train --data ILSVRC2012 --preset D/256 --init-from runs/A_256/model.safetensors
    minivgg train --data ILSVRC2012 --preset D/384 --weights runs/D_256/model.safetensors
    minivgg train --data ILSVRC2012 --preset D/256-512 --weights runs/D_384/model.safetensors

``--data fashion-mnist`` or ``--data cifar10`` (found on disk or downloaded and checked: ``minivgg.data.catalogue``),
or a folder of their files, trains the digits' small net on real photographs; ``--per-class N`` takes a seeded
subset of the training images.

``--width``, ``--fc-width`` and ``--crop`` make any of them a trial run that takes seconds on a CPU (the
crop scales the stage's S with it, keeping the paper's proportions); a run started from weights takes their
width, FC width and crop unless told otherwise. ``--resume RUN_DIR`` continues an interrupted run exactly;
it may change only how long it goes on and how it shows it (``--epochs``, ``--patience``, ``--workers``,
``--quiet``, ``--checkpoint-every``); any other option that differs from the saved one is refused. A run
folder holding another run's files is never written into.
``--processes N`` (or ``mpirun -np N minivgg train ...``) trains on N data-parallel processes with the result
of one (Sect. 3.3, ``minivgg.distributed``); a run can be resumed on another number of processes.
"""
import argparse
import os
from dataclasses import asdict

from ..training import run_folder
from .options import nonnegative_int, positive_float, positive_int, scale

COMMAND = "minivgg train"
# Not options of the run (``run_folder.NOT_SAVED``), and the number of processes: a run may resume on another.
NOT_SAVED = run_folder.NOT_SAVED + ("processes", "gpus", "rank_timeout")
# Recorded beside the options when the run starts from weights: the preprocessing those weights expect.
PREPROCESSING_KEY = "starting_weights_preprocessing"
_OPTION_TYPES = {}


def register(subparsers):
    parser = subparsers.add_parser("train", help="train a VGG net (default: a small one on the embedded digits)",
                                   description=__doc__.replace("``", "").replace("::", ":"),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="fashion-mnist or cifar10 (found, else downloaded and checked), a folder of "
                        "their files (IDX, CIFAR-10 binary), or an ImageNet-style folder with train/ and val/ "
                        "(default: the embedded digits)")
    parser.add_argument("--preset", help="a stage of the paper, CONFIG/SCALE: e.g. D/256, D/384, D/256-512 "
                        "(needs --data)")
    parser.add_argument("--config", help="Table 1 column (A, A-LRN, B, C, D, E); overrides the preset's")
    parser.add_argument("--run-dir", default=None, help="where checkpoints, log and weights go (default runs/NAME); "
                        "never one holding another run's files")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the interrupted run in RUN_DIR exactly")
    parser.add_argument("--weights", help="start from these weights (the previous stage: S=256 -> 384 -> 256-512)")
    parser.add_argument("--init-from", help="pre-initialise from a trained net A's weights (Sect. 3.1)")
    parser.add_argument("--init", choices=["paper", "glorot", "he"], help="random initialisation: paper (N(0, "
                        "0.01^2)), glorot (Glorot & Bengio) or he (N(0, 2/fan_in), He et al. 2015) (default: paper "
                        "for ImageNet, glorot for the digits, Fashion-MNIST and CIFAR-10)")
    parser.add_argument("--ignore-class-names", action="store_true", default=None,
                        help="start from weights even if they name other classes than the data's")
    parser.add_argument("--batch-size", type=positive_int, help="images per SGD step (paper: 256)")
    parser.add_argument("--device-batch", type=positive_int, help="images per forward pass; gradients are "
                        "accumulated (default: the batch, at most 64 on --data)")
    parser.add_argument("--learning-rate", type=positive_float, help="first learning rate (default: the preset's)")
    parser.add_argument("--epochs", type=positive_int, help="at most this many epochs (paper: 74)")
    parser.add_argument("--patience", type=positive_int, help="epochs without validation gain before the rate drops")
    parser.add_argument("--workers", type=nonnegative_int, help="data-loading processes (default 0: in-process)")
    parser.add_argument("--checkpoint-every", type=nonnegative_int, help="also checkpoint every N steps (default "
                        "0: at the end of each epoch only)")
    parser.add_argument("--seed", type=nonnegative_int, help="data order, augmentation and initial weights "
                        "(default 0)")
    parser.add_argument("--quiet", action="store_true", default=None, help="no progress bars")
    small = parser.add_argument_group("small runs", "a smaller net and smaller images, the pipeline unchanged")
    small.add_argument("--width", type=positive_float, help="conv channel multiplier (default 1; the digits 0.25)")
    small.add_argument("--fc-width", type=positive_int, help="hidden FC width (default 4096; the digits 256)")
    small.add_argument("--crop", type=positive_int, help="training crop side, >= 32 (default 224; the digits 32); "
                       "S scales with it unless --scale is given")
    small.add_argument("--scale", type=scale, help="training scale S, or S_MIN-S_MAX to jitter it "
                       "(default: the preset's)")
    small.add_argument("--per-class", type=positive_int, help="Fashion-MNIST, CIFAR-10: use this many training "
                       "images of each class, a seeded choice (a tenth of them held out for validation)")
    from .data_parallel import add_arguments as add_data_parallel_arguments
    add_data_parallel_arguments(parser)
    parser.set_defaults(func=run)
    _OPTION_TYPES.update(run_folder.option_types(parser))


def _default(value, default):
    return default if value is None else value


def _image_folder(args):
    """Whether --data is an ImageNet-style folder of image files (the paper's stages), rather than the digits or
    images read into memory (Fashion-MNIST, CIFAR-10, a folder of their files)."""
    from ..data.catalogue import is_array_data

    return args.data is not None and not is_array_data(args.data)


# --- the run: what the options describe -----------------------------------------------------------------------

def _take_architecture_from_starting_weights(args):
    """A run started from weights builds their architecture unless told otherwise: the next stage of the chain
    needs only ``--preset`` and ``--weights`` (or ``--init-from``: net A's width, FC width and crop)."""
    from ..weights.weight_file import read_metadata

    source = args.weights if args.weights is not None else args.init_from
    if source is None:
        return
    architecture = read_metadata(source)[0]["architecture"]
    defaults = {"width": architecture.get("width_multiplier"), "fc_width": architecture.get("fc_width"),
                "crop": architecture.get("input_size")}
    if args.weights is not None and args.preset is None:
        defaults["config"] = architecture.get("config")
    for key, value in defaults.items():
        if getattr(args, key) is None and value is not None:
            setattr(args, key, value)


def _run_name(args):
    from ..data.catalogue import DATASETS, is_array_data
    from ..training.recipes import DIGITS, imagenet_stage

    if args.data is None:
        return f"digits-{_default(args.config, DIGITS['config'])}"
    if is_array_data(args.data):
        name = args.data if args.data.lower() in DATASETS else os.path.basename(os.path.normpath(args.data))
        return f"{name}-{_default(args.config, DIGITS['config'])}"
    stage = imagenet_stage(_preset_name(args), args.config, args.crop, args.scale)
    return stage.name.replace("/", "_")


def _preset_name(args):
    return args.preset if args.preset is not None else f"{_default(args.config, 'D')}/256"


def _batches(args):
    """(SGD batch, device batch), refused at once unless the first is a multiple of the second."""
    from ..errors import UsageError
    from ..training.recipes import DIGITS
    from ..training.settings import TrainSettings

    batch_size = _default(args.batch_size, TrainSettings.batch_size if _image_folder(args) else DIGITS["batch_size"])
    device_batch = _default(args.device_batch, min(64, batch_size) if _image_folder(args) else batch_size)
    if batch_size % device_batch:
        raise UsageError(f"--batch-size {batch_size} is not a multiple of --device-batch {device_batch}: an SGD "
                         f"step accumulates whole device batches")
    return batch_size, device_batch


def _build(args):
    """The Run the arguments describe (``minivgg.training.recipes``), with the command line's overrides applied."""
    from dataclasses import replace

    from ..data.catalogue import is_array_data
    from ..errors import UsageError
    from ..training.recipes import dataset_run, digits_run, imagenet_run

    batch_size, device_batch = _batches(args)
    small = {"width_multiplier": args.width, "fc_width": args.fc_width, "crop_size": args.crop, "scale": args.scale}
    small = {key: value for key, value in small.items() if value is not None}
    workers = _default(args.workers, 0)
    if args.per_class is not None and not is_array_data(args.data):
        raise UsageError(f"--per-class takes a subset of Fashion-MNIST, CIFAR-10 or a folder of their files, not "
                         f"of {'the embedded digits' if args.data is None else args.data}")
    if not _image_folder(args):
        if args.preset is not None:
            # A preset is a stage of the paper: S = 256 or more, 224x224 crops of photos. On 40x40 digits or
            # 28x28 clothes it cannot mean anything, and training something else under its name would mislead.
            raise UsageError(f"--preset {args.preset} is a stage of the paper on ImageNet-style photos and needs "
                             f"--data FOLDER; for the embedded digits, Fashion-MNIST or CIFAR-10 give --config, "
                             f"--scale, --crop instead")
        names = {"config": "config", "init": "weight_init", "learning_rate": "learning_rate",
                 "epochs": "max_epochs", "patience": "patience"}
        overrides = {key: getattr(args, option) for option, key in names.items() if getattr(args, option) is not None}
        common = dict(seed=_default(args.seed, 0), workers=workers, device_batch=device_batch, batch_size=batch_size)
        run = (digits_run(**common, **overrides, **small) if args.data is None else
               dataset_run(args.data, per_class=args.per_class, progress=not args.quiet, **common, **overrides,
                           **small))
    else:
        run = imagenet_run(args.data, _preset_name(args), config=args.config, weight_init=_default(args.init, "paper"),
                           device_batch=device_batch, seed=_default(args.seed, 0), workers=workers,
                           progress=not args.quiet, **small)
        overrides = {key: getattr(args, option) for option, key in
                     {"learning_rate": "learning_rate", "epochs": "max_epochs", "patience": "patience"}.items()
                     if getattr(args, option) is not None}
        run.settings = replace(run.settings, batch_size=batch_size, **overrides)
    run.settings = replace(run.settings, checkpoint_every=_default(args.checkpoint_every, 0))
    return run


def _start_from_weights(job, args, saved_preprocessing, root=True):
    """``--weights`` / ``--init-from``: put the starting weights in, and feed every loader images prepared as
    those weights expect (saying so on rank 0 only, ``root``). Returns the preprocessing to record (None when
    the run starts from scratch)."""
    from .. import weights
    from ..errors import UsageError
    from ..class_names import check_class_names
    from ..preprocessing import Preprocessing

    model = job.model
    if args.weights is not None and args.init_from is not None:
        raise UsageError("--weights and --init-from both give the starting weights: use one (--weights for the "
                         "next stage of a chain, --init-from for net A's layers in a deeper net)")
    if args.weights is None and args.init_from is None:
        return None
    data_classes = list(job.train_loader.dataset.class_names)
    if saved_preprocessing is not None:  # resumed: the checkpoint has the weights, the arguments their preprocessing
        preprocessing = Preprocessing.from_dict(saved_preprocessing)
    else:
        source = args.weights if args.weights is not None else args.init_from
        if args.weights is not None:
            weights.load_into(model, args.weights)
            message = f"starting from the weights of {args.weights}"
        else:
            net_a = weights.load(args.init_from)
            model.init_from(net_a)
            message = (f"pre-initialised from {args.init_from}: configuration {net_a.config}'s first four conv "
                       f"layers and its three FC layers (Sect. 3.1)")
        if root:
            print(message)
        if not args.ignore_class_names:
            try:
                check_class_names(model.class_names, data_classes, source=source)
            except ValueError as error:
                raise UsageError(f"{error}; pass --ignore-class-names to start from them anyway") from None
        preprocessing = model.preprocessing
    model.preprocessing = preprocessing
    for loader in (job.train_loader, job.val_loader, job.test_loader):
        if loader is not None:
            loader.preprocessing = preprocessing
    model.class_names = data_classes  # the labels index this data's classes
    return preprocessing.to_dict()


def _run_folder(args):
    """``(run folder, preprocessing recorded by a resumed run or None)``, once it is certain the run may go there:
    a resumed run's folder and saved options are read (the command line's checked against them), a new run's
    folder holds no other run's files."""
    if args.resume is None:
        _take_architecture_from_starting_weights(args)
        run_dir = args.run_dir if args.run_dir is not None else os.path.join("runs", _run_name(args))
        run_folder.check_new_run_folder(run_dir)
        return run_dir, None
    saved = run_folder.read_arguments(args.resume, COMMAND, _OPTION_TYPES)
    run_folder.apply_saved(args, saved, args.resume, NOT_SAVED)
    run_folder.require_checkpoint(args.resume)
    return args.resume, saved.get(PREPROCESSING_KEY)


def _save_final_weights(model, path, settings, result, job, run_dir):
    from .. import weights
    from ..errors import WriteError
    from ..weights.record import TrainingRecord

    model.training_record = TrainingRecord(train_scale=job.train_scale, flip=job.train_loader.augmentation.flip,
                                           epochs=len(result["history"]), settings=asdict(settings))
    try:
        weights.save(model, path)
    except WriteError as error:
        raise WriteError(f"{error}; the finished run's checkpoint {os.path.join(run_dir, run_folder.CHECKPOINT)} "
                         f"is intact: `{COMMAND} --resume {run_dir}` writes the weights again") from error


def run(args):
    from .data_parallel import as_rank, start_ranks_if_asked, this_rank

    code = start_ranks_if_asked(args)
    if code is not None:  # this process started the ranks, and they have finished
        return code
    parallel = this_rank(args)
    return as_rank(parallel, lambda: _run(args, parallel))


def _run(args, parallel):
    """One process's run; on several ranks (``parallel``) only rank 0 writes files and prints."""
    import minivgg
    from ..errors import WriteError
    from ..evaluation.validation import evaluate_loader
    from ..training import train

    root = parallel is None or parallel.is_root
    resume = args.resume is not None
    run_dir, saved_preprocessing = _run_folder(args)
    if root:
        run_folder.remove_stale_temporaries_in([run_dir] + ([os.path.join(args.data, "train")]
                                                            if _image_folder(args) else []))
    job = _build(args)
    model, loader, settings = job.model, job.train_loader, job.settings
    recorded_preprocessing = _start_from_weights(job, args, saved_preprocessing, root)
    if resume:
        run_folder.check_resumable_folder(run_dir, settings)
    if parallel is not None:  # how each step splits over the ranks, refused before anything is written
        parallel.shard(loader, settings.batch_size)
    model.to_backend()
    if root:
        try:
            os.makedirs(run_dir, exist_ok=True)
        except OSError as error:
            raise WriteError(f"could not create the run folder {run_dir} ({error})") from error
        # Also shows at once that the folder is writable.
        run_folder.write_arguments(run_dir, args, NOT_SAVED, None if recorded_preprocessing is None else
                                   {PREPROCESSING_KEY: recorded_preprocessing})
        passes = settings.batch_size // loader.batch_size
        per_step = f"{settings.batch_size} images per step" + (f" ({passes} passes of {loader.batch_size})"
                                                               if passes > 1 else "")
        ranks = "" if parallel is None else f" on {parallel.ranks} processes"
        print(f"training VGG {model.config} ({model.num_parameters():,} parameters) on {len(loader.dataset)} "
              f"images{ranks}, backend {minivgg.get_backend().name}, {per_step}; run folder {run_dir}")
    final = os.path.join(run_dir, run_folder.FINAL_WEIGHTS)
    try:
        result = train(model, loader, job.val_loader, settings, run_dir, resume=resume, progress=not args.quiet,
                       parallel=parallel)
        if result["finished"] and root:
            _save_final_weights(model, final, settings, result, job, run_dir)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted at once; {run_folder.resume_hint(run_dir, COMMAND)}") from None
    if not result["finished"]:
        message = f"interrupted; checkpoint written: continue with `{COMMAND} --resume {run_dir}`"
        if parallel is None:
            raise KeyboardInterrupt(message)
        # Every rank stopped at the same step, after rank 0's checkpoint (``train``): none is left to abort, and
        # each exits with 0, as a rank exiting with another code makes ``python -m mpi4py`` abort them all.
        # (``--processes`` reports the Ctrl-C with the usual 130.)
        if root:
            from .program import interrupted
            interrupted(COMMAND, message)
        return 0
    if job.test_loader is not None:  # every rank takes part in a sharded evaluation
        errors = evaluate_loader(model, job.test_loader) if parallel is None else parallel.evaluate(model,
                                                                                                    job.test_loader)
    if not root:
        return 0
    print(f"weights written to {final}")
    if job.test_loader is not None:
        print(f"test top-1 accuracy: {1 - errors['top1_error']:.2%} ({len(job.test_loader.dataset)} images)")
    return 0
