"""``minivgg download NAME...``: fetch published VGG weights by name, check them, convert them, cache them.

``minivgg download`` alone lists the names. The files go to $MINIVGG_HOME (default ~/.cache/minivgg); an
interrupted download continues where it stopped when the command is run again."""


def _sha256(text):
    import argparse

    from ..weights.download import checked_digest

    try:
        return checked_digest(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers):
    parser = subparsers.add_parser("download", help="fetch published weights by name (vgg16, vgg16_bn, "
                                   "vgg16_caffe, ...) into the cache", description=__doc__.replace("``", ""))
    parser.add_argument("names", nargs="*", metavar="NAME", help="published weights; none: list them")
    parser.add_argument("--cache", default=None, help="cache folder (default: $MINIVGG_HOME or ~/.cache/minivgg)")
    parser.add_argument("--sha256", type=_sha256, default=None,
                        help="expected SHA-256 of the published file (one NAME only)")
    parser.set_defaults(func=run)


def _list(cache):
    from ..weights.published import PUBLISHED

    print(f"{'name':<12} {'source':<12} {'config':<7} {'top-1':>6} {'top-5':>6}  checked against")
    for entry in PUBLISHED.values():
        config = entry.config + ("+BN" if entry.batch_norm else "")
        digest = (f"SHA-256 prefix {entry.sha256}" if entry.sha256 and len(entry.sha256) < 64
                  else "SHA-256" if entry.sha256 else "nothing published")
        print(f"{entry.name:<12} {entry.source_format:<12} {config:<7} {entry.accuracy.get('top1', 0):6.2f} "
              f"{entry.accuracy.get('top5', 0):6.2f}  {digest}")
    print(f"cache: {cache}")


def run(args):

    from ..weights.published import cache_folder, weights_file

    cache = args.cache if args.cache is not None else cache_folder()
    if not args.names:
        _list(cache)
        return 0
    if args.sha256 is not None and len(args.names) != 1:
        raise ValueError("--sha256 is the digest of one file: give exactly one NAME with it")
    for name in args.names:  # offline or cut off: a DownloadError (an OSError), one line from the CLI's handler
        print(f"{name}: {weights_file(name, cache, progress=True, sha256=args.sha256)}")
    return 0
