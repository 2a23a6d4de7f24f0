"""The project's own error types: each is a problem a user can act on, so the command line shows its message
on one line (``minivgg COMMAND: error: ...``) and exits with code 1, without a traceback.

Every one of them also derives from the built-in type a Python caller would catch for that kind of problem
(``ValueError`` for a bad value or combination, ``OSError`` for a file that cannot be written,
``FloatingPointError`` for a run whose numbers stopped being finite), so code written against the
built-in types keeps working.
"""

__all__ = ["MinivggError", "UsageError", "RunFolderError", "WriteError", "TrainingDiverged", "DataFileError",
           "OutputPathError", "NotAFileError", "TooLargeError", "NonFiniteOutputError", "INTERRUPTED_EXIT_CODE"]

INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for a program ended by Ctrl-C


class MinivggError(Exception):
    """Base class of minivgg's own errors: the message says what is wrong and what to do."""


class UsageError(MinivggError, ValueError):
    """Options that contradict each other or the saved run (``--resume`` with another ``--batch-size``)."""


class RunFolderError(MinivggError, ValueError):
    """A run folder that cannot be used as asked: it holds another run's files, is a file, or its saved
    arguments are unreadable. Nothing in it has been changed."""


class WriteError(MinivggError, OSError):
    """A file could not be written (disk full, read-only folder). The message names the file; the file's
    previous version, if any, is intact (writes go to a temporary that is renamed into place)."""


class TrainingDiverged(MinivggError, FloatingPointError):
    """The loss, a gradient or a weight stopped being finite. The message names the step and the learning
    rate; the last checkpoint written before it is kept, and no final weights are written."""


class DataFileError(MinivggError, ValueError):
    """A data file that is not what its name says: a bad header or magic number, a truncated file, image and
    label files that count different items, a format minivgg does not read (pickles). The message names the
    file."""


class OutputPathError(MinivggError, ValueError):
    """An output a command may not write (``minivgg.files.check_outputs``): it is one of the inputs, it exists
    and minivgg did not write it, or its folder is missing or not writable. Raised before any work starts."""


class NotAFileError(MinivggError, OSError):
    """An input path that is not a regular file (a folder, a named pipe, a device): refused before it is
    opened, as reading a pipe would block until something writes into it."""


class TooLargeError(MinivggError, ValueError):
    """An input whose cost exceeds a stated bound (an image's aspect ratio, a net's memory): refused before
    anything is allocated; the message names the size asked for and the limit."""


class NonFiniteOutputError(MinivggError, ValueError):
    """A model's scores or descriptors came out NaN or infinite (weights or preprocessing that overflow the
    dtype the model computes in): an error rather than a printed ``nan%``."""
