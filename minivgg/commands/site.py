"""``minivgg site``: the lessons, executed, as an HTML site with their figures (open site/index.html).

Run from the repository root after ``pip install -e ".[docs]"``. Every lesson in lessons/ is executed from
its jupytext source (a few minutes in all), then rendered with MkDocs and mkdocs-jupyter; ``--executed DIR``
reuses notebooks already executed there."""


def register(subparsers):
    from minivgg.options import positive_int

    parser = subparsers.add_parser("site", help="build an HTML site of the executed lessons (needs the docs extra)",
                                   description=__doc__.replace("``", ""))
    parser.add_argument("--lessons", default="lessons", help="folder of jupytext lessons (default: lessons)")
    parser.add_argument("--output", default="site", help="site folder to write (default: site)")
    parser.add_argument("--executed", default=None, help="folder of executed <lesson>.ipynb to use as they are")
    parser.add_argument("--timeout", type=positive_int, default=600, help="seconds a cell may run (default 600)")
    parser.set_defaults(func=run)


def run(args):
    import os
    import sys

    try:  # name a missing docs extra before any lesson runs
        import mkdocs_jupyter  # noqa: F401
        from nbclient.exceptions import CellExecutionError
    except ImportError as error:
        raise ImportError(f"{error.name}: the site needs the docs extra: pip install -e \".[docs]\"") from error
    from minivgg.site import build_site

    try:
        titles = build_site(args.lessons, args.output, executed=args.executed, timeout=args.timeout)
    except CellExecutionError as error:
        print(f"minivgg site: error: a lesson failed, no site written:\n{error}", file=sys.stderr)
        return 1
    print(f"{len(titles)} lessons -> {os.path.join(os.path.abspath(args.output), 'index.html')}")
    return 0
