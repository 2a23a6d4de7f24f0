"""``minivgg train``: the paper's training recipe (Sect. 3.1) — the project's main job.

With no ``--data`` it trains a quarter-width configuration A on the embedded digits (scikit-learn's real
handwritten digits, rendered as RGB; nothing is downloaded) and reports the test top-1 accuracy. With
``--data PATH`` (an ImageNet-style folder: ``train/<class>/*``, ``val/``) and ``--preset D/256-512`` it
runs one of the paper's stages. ``--resume RUN_DIR`` continues an interrupted run exactly.
``--processes N`` (or ``mpirun -np N minivgg train ...``) trains on N data-parallel processes with the result
of one (Sect. 3.3, ``minivgg.distributed``); a run can be resumed on another number of processes.
"""
import json
import os
from dataclasses import asdict

ARGUMENTS_FILE = "arguments.json"


def register(subparsers):
    parser = subparsers.add_parser("train", help="train a VGG net (default: a small one on the embedded digits)")
    parser.add_argument("--data", help="ImageNet-style folder with train/ and val/ (default: the embedded digits)")
    parser.add_argument("--preset", help="a stage of the paper, CONFIG/SCALE: e.g. D/256, D/384, D/256-512")
    parser.add_argument("--config", help="Table 1 column (A, A-LRN, B, C, D, E); overrides the preset's")
    parser.add_argument("--run-dir", default=None, help="where checkpoints, log and weights go (default runs/NAME)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the interrupted run in RUN_DIR exactly")
    parser.add_argument("--weights", help="start from these weights (the previous stage: S=256 -> 384 -> 256-512)")
    parser.add_argument("--init-from", help="pre-initialise from a trained net A's weights (Sect. 3.1)")
    parser.add_argument("--init", choices=["paper", "glorot"], help="random initialisation (default: paper for "
                        "ImageNet, glorot for the digits)")
    parser.add_argument("--batch-size", type=int, help="images per SGD step (paper: 256)")
    parser.add_argument("--device-batch", type=int, help="images per forward pass; gradients are accumulated")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--epochs", type=int, help="at most this many epochs (paper: 74)")
    parser.add_argument("--patience", type=int, help="epochs without validation gain before the rate drops")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0: in-process)")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    from minivgg.distributed.command import add_arguments as add_data_parallel_arguments
    add_data_parallel_arguments(parser)
    parser.set_defaults(func=run)


def _build(args):
    """The Run the arguments describe (``minivgg.recipes``), with the command line's overrides applied."""
    from dataclasses import replace

    from minivgg.recipes import digits_run, imagenet_run

    if args.data is None:
        names = {"config": "config", "init": "weight_init", "batch_size": "batch_size",
                 "learning_rate": "learning_rate", "epochs": "max_epochs", "patience": "patience"}
        overrides = {key: getattr(args, option) for option, key in names.items() if getattr(args, option)}
        run = digits_run(seed=args.seed, workers=args.workers, **overrides)
    else:
        run = imagenet_run(args.data, args.preset or f"{args.config or 'D'}/256", config=args.config,
                           weight_init=args.init or "paper", device_batch=args.device_batch or 64, seed=args.seed,
                           workers=args.workers)
        overrides = {key: getattr(args, option) for option, key in
                     {"batch_size": "batch_size", "learning_rate": "learning_rate", "epochs": "max_epochs",
                      "patience": "patience"}.items() if getattr(args, option)}
        run.settings = replace(run.settings, **overrides)
    run.settings = replace(run.settings, checkpoint_every=args.checkpoint_every)
    return run


def run(args):
    from minivgg.distributed.command import as_rank, start_ranks_if_asked, this_rank

    code = start_ranks_if_asked(args)
    if code is not None:  # this process started the ranks, and they have finished
        return code
    parallel = this_rank(args)
    return as_rank(parallel, lambda: _run(args, parallel))


def _run(args, parallel):
    import minivgg
    from minivgg import weights
    from minivgg.train import FINAL_WEIGHTS, train

    root = parallel is None or parallel.is_root
    if args.resume:
        saved = os.path.join(args.resume, ARGUMENTS_FILE)
        if not os.path.exists(saved):
            raise FileNotFoundError(f"{args.resume} has no {ARGUMENTS_FILE}: not a run folder of `minivgg train`")
        with open(saved) as handle:
            args.__dict__.update(json.load(handle), resume=args.resume, run_dir=args.resume,
                                 processes=args.processes, gpus=args.gpus, rank_timeout=args.rank_timeout)
    job = _build(args)
    model, loader, settings = job.model, job.train_loader, job.settings
    run_dir = args.run_dir or os.path.join("runs", job.name)
    if args.weights or args.init_from:
        if args.weights:
            weights.load_into(model, args.weights)
        if args.init_from:
            model.init_from(weights.load(args.init_from))
        # Weights carry the preprocessing they were trained with: feed them images prepared that way.
        for loader in (job.train_loader, job.val_loader, job.test_loader):
            if loader is not None:
                loader.preprocessing = model.preprocessing
        model.class_names = list(job.train_loader.dataset.class_names)  # the labels index this data's classes
    model.to_backend()
    if not args.resume:
        os.makedirs(run_dir, exist_ok=True)
        if os.path.exists(os.path.join(run_dir, "checkpoint.safetensors")):
            raise ValueError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or choose "
                             f"another --run-dir")
        if root:  # the number of processes is not part of a run: it may resume on another
            with open(os.path.join(run_dir, ARGUMENTS_FILE), "w") as handle:
                json.dump({k: v for k, v in vars(args).items()
                           if k not in ("func", "resume", "processes", "gpus", "rank_timeout")}, handle, indent=1)
    if root:
        ranks = "" if parallel is None else f" on {parallel.ranks} processes"
        print(f"training VGG {model.config} ({model.num_parameters():,} parameters) on {len(loader.dataset)} "
              f"images{ranks}, backend {minivgg.get_backend().name}, {settings.batch_size} images per step; run "
              f"folder {run_dir}")
    result = train(model, loader, job.val_loader, settings, run_dir, resume=bool(args.resume),
                   progress=not args.quiet, parallel=parallel)
    if not result["finished"]:
        if root:
            print(f"interrupted; continue with: minivgg train --resume {run_dir}")
        return 0
    if parallel is not None and job.test_loader is not None:
        test_errors = parallel.evaluate(model, job.test_loader)
    if not root:
        return 0
    weights.save(model, os.path.join(run_dir, FINAL_WEIGHTS),
                 metadata={"training": json.dumps({"settings": asdict(settings), "epochs": len(result["history"]),
                                                   "train_scale": job.train_scale,
                                                   "flip": job.train_loader.augmentation.flip})})
    print(f"weights written to {os.path.join(run_dir, FINAL_WEIGHTS)}")
    if job.test_loader is not None:
        from minivgg.train import evaluate_loader

        errors = evaluate_loader(model, job.test_loader) if parallel is None else test_errors
        print(f"test top-1 accuracy: {1 - errors['top1_error']:.2%} ({len(job.test_loader.dataset)} images)")
    return 0
