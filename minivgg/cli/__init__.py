"""The ``minivgg`` command line: ``main.py`` (the entry point, its one error handler), ``options.py`` (option
types checked at parse time), and one module per command that parses its options and calls the library."""
from .program import main

__all__ = ["main"]
