"""The lessons executed, their outputs stored in the notebooks: ``python tools/execute_lessons.py [LESSON ...]``.

The committed notebooks ``lessons/NN_*.ipynb`` hold their outputs and figures, so they read fully without
running (on a code host, or opened in Jupyter). Their cells come from the jupytext twins ``lessons/NN_*.py``,
the reviewed source. This tool runs each lesson from its source in a fresh kernel and an empty working folder,
and writes the notebook with its outputs, the same bytes from run to run on one machine: cell ids derived
from the cells' content, no timings, the Python version left out of the metadata, each cell's streams
merged, the kernel's hash seed and OpenBLAS's kernels fixed (``kernel_environment``; the lessons seed their
own generators).

An output with noise in it is refused, naming the cell (``output_noise``): a traceback, anything on stderr (a
warning, a progress bar), a progress widget, a folder of this machine.

The test suite executes each lesson once (``tests/lessons/test_lessons.py``) and compares the fresh outputs
with the stored ones cell by cell (``compare_outputs``); when they differ beyond the tolerances below, the
test fails and names this command. What is compared:

- text (printed, or a value's text, HTML or Markdown) word for word, whitespace runs counted as one space, and
  number for number: an integer exactly; a decimal within ``RELATIVE_TOLERANCE`` of the stored one or one
  unit of its last printed digit (rounding may flip that digit); a decimal below ``SMALL`` (the error of a
  gradient check, a difference of rounding: its digits depend on the machine's BLAS and cores) less than
  a factor of ``SMALL_FACTOR`` apart and of the same sign, or both below ``NOISE_FLOOR``; a duration or a
  speed (a number followed by ``s``, ``ms``, ``min``, ``seconds``, ``GFLOP/s`` ...) not at all; a cell tagged
  ``numbers-vary`` (measurements of the machine: ``# %% tags=["numbers-vary"]`` in the source) has its
  numbers left out, its words still compared;
- figures by their presence and their size in pixels (within ``IMAGE_SIZE_TOLERANCE``), never by their pixels;
- the kinds of output of each cell, in order.

    python tools/execute_lessons.py                  # every lesson, written into lessons/*.ipynb
    python tools/execute_lessons.py 03 05            # lessons by number (or name, or path)
    python tools/execute_lessons.py --check          # execute and compare with the stored outputs; write nothing
"""
import base64
import hashlib
import itertools
import os
import re
import shutil
import struct
import sys
import tempfile

__all__ = ["RELATIVE_TOLERANCE", "SMALL", "SMALL_FACTOR", "NOISE_FLOOR", "IMAGE_SIZE_TOLERANCE", "REGENERATE",
           "lesson_sources", "lesson_notebook", "stored_executed_notebook", "execute_lesson", "kernel_environment",
           "output_noise", "compare_outputs", "find_lessons", "main"]

RELATIVE_TOLERANCE = 1e-3  # a decimal's drift between machines (BLAS kernels, core counts) that is not a change
SMALL, SMALL_FACTOR = 1e-4, 10.0  # decimals this small are errors of rounding or truncation: under a factor of 10
NOISE_FLOOR = 1e-12  # below this, on both sides, a number is rounding noise around zero
IMAGE_SIZE_TOLERANCE = 0.1  # a figure's width and height may move by 10% (font metrics under a tight bbox)
NUMBERS_VARY = "numbers-vary"  # the tag of a cell whose numbers are measurements of this machine (timings)
REGENERATE = "python tools/execute_lessons.py"

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|(?<=[A-Za-z_])\d+")
# A number followed by one of these is a duration or a speed measured on this machine: never compared.
_DURATION = re.compile(r" ?(?:[µu]?s|ms|ns|min|seconds?|minutes?|hours?|[A-Za-z]+/s)\b")
# Folders of a machine that an output must not name: they differ from one machine or run to the next.
_MACHINE_PATH = re.compile(r"(?:^|[\s'\"(=:])(?:/(?:home|root|tmp|var/folders|private|Users)/|[A-Za-z]:\\)"
                           r"|(?:site|dist)-packages")
_WIDGET = "application/vnd.jupyter.widget-view+json"
_IMAGES = ("image/png", "image/jpeg")


def lesson_sources(folder="lessons"):
    """The jupytext sources in ``folder`` (``.py`` files with a jupytext header), in file-name order."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no lessons folder at {folder}; run from the repository root or pass --lessons")
    sources = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".py") and os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                if "jupytext:" in handle.read(400):
                    sources.append(path)
    if not sources:
        raise FileNotFoundError(f"{folder} holds no jupytext lesson (.py with a jupytext header)")
    return sources


def lesson_notebook(source):
    """A lesson's notebook from its jupytext source, with cell ids that depend only on the cells.

    Parameters
    ----------
    source : a lesson's jupytext ``.py`` (or an ``.ipynb``)

    Returns an ``nbformat`` notebook (version 4). Each cell's id is the first 8 hex digits of the SHA-1 of its
    type and source (with ``-2``, ``-3`` ... after a repeated cell), so regenerating a notebook changes the
    ids of the cells that changed only.
    """
    import jupytext

    notebook = jupytext.read(source)
    seen = {}
    for cell in notebook.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell["id"] = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
    return notebook


def stored_executed_notebook(source):
    """The committed executed notebook beside a lesson's source, if it is that source executed: its path, or
    None when it is missing, holds no output, or its cells are not the source's (edited since)."""
    import nbformat

    stored = os.path.splitext(os.fspath(source))[0] + ".ipynb"
    if not os.path.exists(stored) or not os.fspath(source).endswith(".py"):
        return None
    notebook = nbformat.read(stored, as_version=4)
    cells = [(cell.cell_type, cell.source) for cell in notebook.cells]
    executed = any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    same = cells == [(cell.cell_type, cell.source) for cell in lesson_notebook(source).cells]
    return stored if executed and same else None


def _merge_streams(outputs):
    """The outputs with consecutive stream outputs of one name joined (their split depends on timing)."""
    merged = []
    for output in outputs:
        if (output.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1]["name"] == output["name"]):
            merged[-1]["text"] += output["text"]
        else:
            merged.append(output)
    return merged


def _cell_label(index, cell):
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"code cell {index + 1} ({first[:60]!r})"


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def output_noise(notebook, folders=()):
    """What in a notebook's outputs is noise rather than the lesson: a list of sentences, empty when clean.

    Parameters
    ----------
    notebook : an executed ``nbformat`` notebook
    folders : paths of this run (the working folder, the repository) that no output may name, besides the
        usual folders of a machine (home, temporary, site-packages)

    Noise is a traceback, anything on stderr (warnings, text progress bars), a progress widget, a carriage
    return (a bar redrawn in place), or a folder of this machine.
    """
    problems = []
    for index, cell in enumerate(_code_cells(notebook)):
        label = _cell_label(index, cell)
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                problems.append(f"{label} raised {output.get('ename')}: {output.get('evalue')}")
                continue
            if kind == "stream" and output.get("name") == "stderr":
                problems.append(f"{label} wrote to stderr (a warning or a progress bar): "
                                f"{output['text'].strip()[:200]!r}")
            data = output.get("data", {})
            if _WIDGET in data:
                problems.append(f"{label} shows a widget (a progress bar?): pass progress=False to the library")
            texts = [output["text"]] if kind == "stream" else [value for mime, value in data.items()
                                                               if mime.startswith("text/")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                if "\r" in text:
                    problems.append(f"{label} redraws a line (\\r: a progress bar): {text.strip()[:120]!r}")
                named = [os.fspath(folder) for folder in folders if folder and os.fspath(folder) in text]
                match = _MACHINE_PATH.search(text)
                if named or match:
                    where = named[0] if named else text[max(0, match.start() - 40):match.end() + 40].strip()
                    problems.append(f"{label} names a folder of this machine: {where!r}")
    return problems


def execute_lesson(source, folder, timeout=600, working_folder=None, kernel_name="python3"):
    """Run a lesson top to bottom in a fresh kernel and write the executed notebook: ``folder/<lesson>.ipynb``.

    Parameters
    ----------
    source : a lesson's jupytext ``.py`` (or its ``.ipynb``)
    folder : where the executed notebook is written (atomically; the lessons folder to store the outputs)
    timeout : seconds a cell may run
    working_folder : the lesson's current directory (default: a fresh temporary folder, removed after)
    kernel_name : the Jupyter kernel to run it in

    Returns the path of the executed notebook. A cell that raises stops the lesson with nbclient's
    ``CellExecutionError`` (naming the cell and its traceback); outputs with noise in them (``output_noise``)
    raise ``ValueError`` naming each; in both cases nothing is written.
    """
    import nbclient

    notebook = lesson_notebook(source)
    destination = os.path.join(os.fspath(folder), os.path.splitext(os.path.basename(source))[0] + ".ipynb")
    environment = kernel_environment(os.environ)
    repository = os.path.dirname(os.path.dirname(os.path.abspath(source)))
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryDirectory() as sockets:
        working = os.path.abspath(os.fspath(working_folder or scratch))
        kernel = _kernel_manager(kernel_name, sockets)
        client = nbclient.NotebookClient(notebook, km=kernel, timeout=timeout, record_timing=False,
                                         coalesce_streams=True, resources={"metadata": {"path": working}})
        try:
            client.execute(env=environment)
        finally:
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)
        problems = output_noise(notebook, folders=(working, repository))
    if problems:
        raise ValueError(f"{os.path.basename(source)}: outputs with noise in them, nothing written:\n  "
                         + "\n  ".join(problems))
    for cell in _code_cells(notebook):
        cell.outputs = _merge_streams(cell.outputs)
    notebook.metadata.get("language_info", {}).pop("version", None)  # the Python of this machine
    _write_notebook(notebook, destination)
    return destination


def kernel_environment(environ, cpu_flags=None):
    """The environment a lesson's kernel runs in: ``environ`` with the settings that make its outputs the same
    from run to run and from machine to machine (``NUMBA_ENABLE_CUDASIM`` and ``OPENBLAS_CORETYPE`` already set
    in ``environ`` are kept). ``cpu_flags``: the CPU's feature flags (default: ``/proc/cpuinfo``'s, if any).

    - ``PYTHONHASHSEED=0``: sets and dicts of strings print in one order;
    - no ``MPLBACKEND``: figures go to the notebook (the kernel's inline backend);
    - ``NUMBA_ENABLE_CUDASIM=1`` without a GPU: Numba's kernels run in its CUDA simulator, as in the tests;
    - ``OPENBLAS_CORETYPE=Haswell`` on a CPU with AVX2 and FMA (what Haswell's kernels use): OpenBLAS otherwise
      picks its matrix kernels by the CPU, and its AVX-512 kernels round differently from its AVX2 ones. The
      lessons' nets trained on one CPU then differed from those trained on another after a few epochs (lesson
      07, one seed: 1.39% against 1.67% top-1 error), and the stored outputs were current on one kind of
      machine only.
    """
    flags = _cpu_flags() if cpu_flags is None else set(cpu_flags)
    environment = dict(environ, PYTHONHASHSEED="0")
    environment.pop("MPLBACKEND", None)
    if shutil.which("nvidia-smi") is None:
        environment.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    if {"avx2", "fma"} <= flags:
        environment.setdefault("OPENBLAS_CORETYPE", "Haswell")
    return environment


def _cpu_flags():
    """The feature flags of this machine's CPU from ``/proc/cpuinfo`` (Linux); none where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _kernel_manager(kernel_name, sockets):
    """A manager for one kernel, talking to it through local sockets in ``sockets`` where the system has them
    (no TCP port taken, and no warning from the kernel about unencrypted TCP), else through TCP."""
    from jupyter_client.manager import KernelManager

    if os.name == "posix":
        return KernelManager(kernel_name=kernel_name, transport="ipc", ip=os.path.join(sockets, "kernel"))
    return KernelManager(kernel_name=kernel_name)


def _write_notebook(notebook, path):
    import nbformat

    from minivgg.files import atomic_write

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda temporary: nbformat.write(notebook, temporary))


# ---- comparing stored outputs with fresh ones -------------------------------------------------------------

def _text(value):
    return "".join(value) if isinstance(value, list) else value


def _numbers_agree(stored, fresh):
    """Two printed numbers: integers equal; decimals within the relative tolerance or one unit of the last
    printed digit apart; small decimals (rounding and truncation errors) within a factor of ten."""
    if stored == fresh:
        return True
    decimal = any(mark in token for token in (stored, fresh) for mark in ".eE")
    if not decimal:
        return False
    a, b = float(stored), float(fresh)
    if max(abs(a), abs(b)) <= NOISE_FLOOR:
        return True
    if max(abs(a), abs(b)) < SMALL:  # a gradient check's 3e-11 may be 8e-11 elsewhere; 1e-3 would be a bug
        return a * b > 0 and max(abs(a), abs(b)) < SMALL_FACTOR * min(abs(a), abs(b))  # 1e-5 vs 1e-6: differ

    def last_digit(token):  # one unit of the last printed digit: 0.123 -> 1e-3, 3.3e-11 -> 1e-12
        mantissa, _, exponent = token.lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        return 10.0 ** (int(exponent or 0) - decimals)

    # the finer of the two printings decides: "2.31" against a stored "2.302585" is a change of format
    return abs(a - b) <= max(RELATIVE_TOLERANCE * max(abs(a), abs(b)),
                             1.01 * min(last_digit(stored), last_digit(fresh)))


def _text_difference(stored, fresh, numbers_vary):
    """None when two texts agree (words exactly, numbers within tolerance), else a sentence quoting both."""
    stored_parts, fresh_parts = _NUMBER.split(stored), _NUMBER.split(fresh)
    stored_numbers, fresh_numbers = _NUMBER.findall(stored), _NUMBER.findall(fresh)

    def words(parts):
        return [" ".join(part.split()) for part in parts]

    def quote(text, token_index):
        # the line holding the token_index-th number (or the first differing words)
        position = 0
        for match_index, match in enumerate(_NUMBER.finditer(text)):
            if match_index == token_index:
                position = match.start()
                break
        start = text.rfind("\n", 0, position) + 1
        end = text.find("\n", position)
        return text[start:end if end >= 0 else len(text)].strip()[:160]

    if words(stored_parts) != words(fresh_parts):
        # quote the first line whose words differ (numbers masked), which is where a reader should look
        for stored_line, fresh_line in itertools.zip_longest(stored.splitlines(), fresh.splitlines(), fillvalue=""):
            if words(_NUMBER.split(stored_line)) != words(_NUMBER.split(fresh_line)):
                return f"the text differs: stored {stored_line.strip()[:160]!r}, now {fresh_line.strip()[:160]!r}"
        return (f"the text differs: stored {len(stored_numbers)} numbers in {len(stored)} characters, now "
                f"{len(fresh_numbers)} in {len(fresh)}: stored ends {stored.strip()[-100:]!r}, now {fresh.strip()[-100:]!r}")
    if numbers_vary:
        return None
    durations = {index for index, match in enumerate(_NUMBER.finditer(stored)) if _DURATION.match(stored, match.end())}
    for index, (a, b) in enumerate(zip(stored_numbers, fresh_numbers)):
        if index not in durations and not _numbers_agree(a, b):
            return (f"a number differs beyond the tolerance: stored {a} in {quote(stored, index)!r}, "
                    f"now {b} in {quote(fresh, index)!r}")
    return None


def _image_size(mime, data):
    """(width, height) of a base64 PNG or JPEG, from its header."""
    raw = base64.b64decode(_text(data))
    if mime == "image/png":
        return struct.unpack(">II", raw[16:24])
    from io import BytesIO

    from PIL import Image

    return Image.open(BytesIO(raw)).size


def _output_summary(outputs):
    """A cell's outputs as compared: every stream's text by name, and the other outputs in order."""
    streams, shown = {}, []
    for output in outputs:
        if output.get("output_type") == "stream":
            streams[output["name"]] = streams.get(output["name"], "") + _text(output["text"])
        elif output.get("output_type") in ("display_data", "execute_result"):
            shown.append(output.get("data", {}))
    return streams, shown


def compare_outputs(stored, fresh):
    """Where a stored notebook's outputs are out of date against a fresh execution: a list of sentences.

    Parameters
    ----------
    stored : the committed notebook (``nbformat``)
    fresh : the same lesson just executed

    Returns one sentence per differing cell, naming it; an empty list when the stored outputs are current
    within the module's tolerances (see the module's docstring).
    """
    stored_cells, fresh_cells = _code_cells(stored), _code_cells(fresh)
    if [c.source for c in stored_cells] != [c.source for c in fresh_cells]:
        return [f"the code cells differ from the stored notebook's ({len(stored_cells)} stored, "
                f"{len(fresh_cells)} now)"]
    differences = []
    for index, (old, new) in enumerate(zip(stored_cells, fresh_cells)):
        label = _cell_label(index, new)
        numbers_vary = NUMBERS_VARY in new.get("metadata", {}).get("tags", [])
        (old_streams, old_shown), (new_streams, new_shown) = _output_summary(old.outputs), _output_summary(new.outputs)
        problems = [f"{'the stored outputs hold' if output in old.outputs else 'it now raises'} a traceback: "
                    f"{output.get('ename')}: {output.get('evalue')}" for output in old.outputs + new.outputs
                    if output.get("output_type") == "error"]
        for name in sorted(set(old_streams) | set(new_streams)):
            if name not in old_streams or name not in new_streams:
                problems.append(f"{name} {'appeared' if name in new_streams else 'is gone'}")
            else:
                difference = _text_difference(old_streams[name], new_streams[name], numbers_vary)
                if difference:
                    problems.append(f"{name}: {difference}")
        if len(old_shown) != len(new_shown):
            problems.append(f"{len(old_shown)} figures or values stored, {len(new_shown)} now")
        for number, (old_data, new_data) in enumerate(zip(old_shown, new_shown), start=1):
            if sorted(old_data) != sorted(new_data):
                problems.append(f"output {number} was {sorted(old_data)}, now {sorted(new_data)}")
                continue
            for mime in sorted(new_data):
                if mime in _IMAGES:
                    (w0, h0), (w1, h1) = _image_size(mime, old_data[mime]), _image_size(mime, new_data[mime])
                    if abs(w1 - w0) > IMAGE_SIZE_TOLERANCE * w0 or abs(h1 - h0) > IMAGE_SIZE_TOLERANCE * h0:
                        problems.append(f"figure {number} was {w0}x{h0} pixels, now {w1}x{h1}")
                elif mime.startswith("text/"):
                    difference = _text_difference(_text(old_data[mime]), _text(new_data[mime]), numbers_vary)
                    if difference:
                        problems.append(f"output {number} ({mime}): {difference}")
                elif old_data[mime] != new_data[mime]:
                    problems.append(f"output {number} ({mime}) differs")
        differences += [f"{label}: {problem}" for problem in problems]
    return differences


# ---- the command ------------------------------------------------------------------------------------------

def find_lessons(names, folder="lessons"):
    """The jupytext sources that ``names`` designate (all of them for none): a lesson's number ("03", "8b"
    as "08b"), its name, or a path to its ``.py`` or ``.ipynb``. An unknown name is a ``ValueError`` listing
    the lessons."""
    sources = lesson_sources(folder)
    if not names:
        return sources
    stems = {os.path.splitext(os.path.basename(source))[0]: source for source in sources}
    chosen = []
    for name in names:
        stem = os.path.splitext(os.path.basename(name))[0]
        matches = [s for s in stems if s == stem or s.split("_")[0] in (stem, stem.zfill(2), stem.zfill(3))]
        if len(matches) != 1:
            problem = f"no lesson {name!r}" if not matches else f"{name!r} names {len(matches)} lessons"
            raise ValueError(f"{problem}; the lessons are: {', '.join(stems)}")
        if stems[matches[0]] not in chosen:
            chosen.append(stems[matches[0]])
    return chosen


def main(argv=None):
    """The command line (see the module's docstring); the exit code: 1 when ``--check`` finds stale outputs."""
    import argparse

    from minivgg.cli.options import positive_int
    from minivgg.cli.program import run_guarded
    from minivgg.progress import progress_bar

    parser = argparse.ArgumentParser(prog="execute_lessons", description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers, names or paths (default: every lesson)")
    parser.add_argument("--folder", default="lessons", help="the lessons folder (default: lessons)")
    parser.add_argument("--check", action="store_true",
                        help="execute and compare with the stored outputs instead of writing them")
    parser.add_argument("--timeout", type=positive_int, default=600, help="seconds a cell may run (default 600)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    context = {"program": "execute_lessons", "debug": False}

    def execute_from_arguments():
        args = parser.parse_args(argv)
        context["debug"] = args.debug
        try:  # name a missing extra before any lesson runs
            import jupytext  # noqa: F401
            import nbclient  # noqa: F401
            from nbclient.exceptions import CellExecutionError
        except ImportError as error:
            raise ImportError(f"{error.name}: executing the lessons needs the docs extra: "
                              f"pip install -e \".[docs]\"") from error
        import nbformat

        sources = find_lessons(args.lessons, args.folder)
        stale = []
        with tempfile.TemporaryDirectory() as scratch:
            for source in progress_bar(sources, desc="lessons", unit="lesson"):
                stem = os.path.splitext(os.path.basename(source))[0]
                try:
                    written = execute_lesson(source, scratch if args.check else os.path.dirname(source),
                                             timeout=args.timeout)
                except CellExecutionError as error:
                    print(f"execute_lessons: error: {stem} failed, its notebook is unchanged:\n{error}",
                          file=sys.stderr)
                    return 1
                if args.check:
                    stored = os.path.splitext(source)[0] + ".ipynb"
                    differences = (compare_outputs(nbformat.read(stored, as_version=4),
                                                   nbformat.read(written, as_version=4))
                                   if os.path.exists(stored) else [f"{stored} does not exist"])
                    if differences:
                        stale.append(stem.split("_")[0])
                        print(f"{stem}: the stored outputs are out of date:\n  " + "\n  ".join(differences[:10]))
        if args.check:
            print(f"{len(sources) - len(stale)} of {len(sources)} lessons current"
                  + (f"; regenerate with: {REGENERATE} {' '.join(stale)}" if stale else ""))
            return 1 if stale else 0
        print(f"{len(sources)} lessons executed, their outputs stored in {args.folder}/")
        return 0

    return run_guarded(context, execute_from_arguments)


if __name__ == "__main__":
    sys.exit(main())
