"""Subcommands of the ``minivgg`` command line, one module each (see ``minivgg.cli``)."""
