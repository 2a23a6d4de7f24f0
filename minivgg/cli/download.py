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


_RELEASES = {"torchvision": "torchvision's weights, trained by torchvision with its own recipe",
             "caffe": "the authors' Caffe release"}


def _list(cache):
    """The published weights, grouped by where their accuracy is quoted from and under which protocol: a
    centre-crop figure and a dense multi-scale one are never in the same column."""
    from ..weights.published import PUBLISHED

    groups = {}
    for entry in PUBLISHED.values():
        key = (entry.accuracy.get("quoted_from", "no published accuracy"), entry.accuracy.get("protocol", ""))
        groups.setdefault(key, []).append(entry)
    for number, ((quoted_from, protocol), entries) in enumerate(groups.items()):
        if number:
            print()
        release = _RELEASES.get(entries[0].source_format, entries[0].source_format)
        print(f"{release}; accuracy quoted from {quoted_from}")
        print(f"  protocol: {protocol}")
        print(f"  {'name':<12} {'config':<7} {'top-1 %':>7} {'top-5 %':>7}  checked against")
        for entry in entries:
            config = entry.config + ("+BN" if entry.batch_norm else "")
            digest = (f"SHA-256 prefix {entry.sha256}" if entry.sha256 and len(entry.sha256) < 64
                      else "SHA-256" if entry.sha256 else "nothing published")
            top1, top5 = (f"{entry.accuracy[k]:7.2f}" if k in entry.accuracy else f"{'-':>7}"
                          for k in ("top1", "top5"))
            print(f"  {entry.name:<12} {config:<7} {top1} {top5}  {digest}")
    print(f"\ncache: {cache}")


def run(args):

    from ..files import check_output_folder
    from ..weights.published import cache_folder, weights_file

    cache = args.cache if args.cache is not None else cache_folder()
    if not args.names:
        _list(cache)
        return 0
    if args.sha256 is not None and len(args.names) != 1:
        raise ValueError("--sha256 is the digest of one file: give exactly one NAME with it")
    # A cache that is a file, or cannot be created, is named before anything is fetched.
    check_output_folder(cache, "--cache" if args.cache is not None else "the cache folder")
    for name in args.names:  # offline or cut off: a DownloadError (an OSError), one line from the CLI's handler
        print(f"{name}: {weights_file(name, cache, progress=True, sha256=args.sha256)}")
    return 0
