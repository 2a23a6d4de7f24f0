"""What a training run trains on, recorded in its checkpoint, so that ``--resume`` continues on the same data.

"Continues exactly" means the same images: a resumed run whose training folder has changed (an image renamed,
all of them replaced, a class folder added) would carry on with the weights and schedule of one dataset on
another, and nothing would say so. A run's checkpoint therefore holds a fingerprint of its training and
validation sets (``fingerprints``), and a resume on other data is refused naming what changed
(``check_same_data``):

- a folder of image files (``ImageFiles``): the classes, and each file's name, label, size and modification
  time, as two digests (names and labels; names, labels, sizes and times), plus the list itself for a set of
  up to ``LISTED_FILES`` files, so that the message can name the files added, removed or changed;
- images in memory (``ArrayDataset``: the digits, Fashion-MNIST, CIFAR-10): the classes and a digest of the
  arrays and labels;
- any other dataset with a ``fingerprint()``: the classes and that digest. A dataset without one (the
  localisation scenes) records none, and is not checked.
"""
import hashlib
import os

__all__ = ["LISTED_FILES", "dataset_fingerprint", "file_entries", "content_digest", "fingerprints",
           "parse_fingerprints", "check_same_data", "describe_changes"]

LISTED_FILES = 20_000  # files listed one by one in a checkpoint (a few hundred kB of header at most)
_KINDS = ("files", "arrays", "other")


def _digest(lines):
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8", "surrogateescape"))
        digest.update(b"\n")
    return digest.hexdigest()


def file_entries(dataset):
    """``[name, label, size, modification time in ns]`` of each file of an ``ImageFiles`` (-1, -1 for a file
    gone since it was listed)."""
    return _file_entries(dataset)


def content_digest(entries):
    """A digest of ``file_entries``: it changes when a file is added, removed, renamed, relabelled or
    rewritten."""
    return _digest(f"{n}\t{label}\t{size}\t{time}" for n, label, size, time in entries)


def _file_entries(dataset):
    entries = []
    for name, label in zip(dataset.files, dataset.labels):
        try:
            status = os.stat(os.path.join(dataset.root, name))
            size, modified = status.st_size, status.st_mtime_ns
        except OSError:  # vanished since the listing: it counts as changed
            size, modified = -1, -1
        entries.append([str(name), int(label), int(size), int(modified)])
    return entries


def dataset_fingerprint(dataset):
    """The fingerprint of one dataset (the module docstring), a JSON-able dict, or None for a dataset that has
    none. Image files are known by their ``root`` and ``files``, images in memory by their ``images`` array."""
    import numpy as np

    if dataset is None:
        return None
    classes = [str(name) for name in getattr(dataset, "class_names", [])]
    if isinstance(getattr(dataset, "root", None), str) and isinstance(getattr(dataset, "files", None), list):
        entries = _file_entries(dataset)
        record = {"kind": "files", "classes": classes, "images": len(entries),
                  "names": _digest(f"{n}\t{label}" for n, label, _, _ in entries),
                  "content": content_digest(entries)}
        if len(entries) <= LISTED_FILES:
            record["files"] = entries
        return record
    if isinstance(getattr(dataset, "images", None), np.ndarray):
        return {"kind": "arrays", "classes": classes, "images": len(dataset), "content": dataset.fingerprint()}
    try:
        digest = dataset.fingerprint()
    except (AttributeError, NotImplementedError):
        return None
    return {"kind": "other", "classes": classes, "images": len(dataset), "content": _digest([str(digest)])}


def fingerprints(datasets):
    """``{split: fingerprint}`` of ``datasets`` (``{"train": dataset, "val": dataset or None}``), the splits
    without one left out; None when none has one."""
    found = {split: dataset_fingerprint(dataset) for split, dataset in datasets.items()}
    found = {split: value for split, value in found.items() if value is not None}
    return found or None


def _bad(source, what, value):
    return ValueError(f"{source}: the checkpoint's dataset fingerprint {what}, got {str(value)[:80]}; the file is "
                      f"damaged or was edited by hand (nothing was changed)")


def _parse_one(value, source, split):
    if not isinstance(value, dict) or value.get("kind") not in _KINDS:
        raise _bad(source, f"of {split} must be an object of kind {', '.join(_KINDS)}", value)
    classes, images = value.get("classes"), value.get("images")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise _bad(source, f"of {split} must list its classes as strings", classes)
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise _bad(source, f"of {split} must count its images", images)
    for key in ("content",) + (("names",) if value["kind"] == "files" else ()):
        if not isinstance(value.get(key), str):
            raise _bad(source, f"of {split} must hold a digest {key!r}", value.get(key))
    files = value.get("files")
    if files is not None and not (isinstance(files, list) and all(
            isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in entry[1:]) for entry in files)):
        raise _bad(source, f"of {split} must list files as [name, label, size, time]", files)
    return value


def parse_fingerprints(value, source):
    """The ``dataset`` entry of a checkpoint's state, checked (``{split: fingerprint}``, or None for a
    checkpoint of a minivgg that recorded none)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(split, str) for split in value):
        raise _bad(source, "must map splits to fingerprints", value)
    return {split: _parse_one(item, source, split) for split, item in value.items()}


def _names(items, count=3):
    items = sorted(items)
    shown = ", ".join(items[:count])
    return shown + (f" and {len(items) - count} more" if len(items) > count else "")


def describe_changes(saved, current):
    """What differs between two fingerprints of one split, as phrases ("the classes changed: added ['bird']");
    empty when they are the same."""
    if saved["classes"] != current["classes"]:
        added = [c for c in current["classes"] if c not in saved["classes"]]
        removed = [c for c in saved["classes"] if c not in current["classes"]]
        what = (f"added {added[:5]}" if added else "") + ("; " if added and removed else "") + (
            f"removed {removed[:5]}" if removed else "")
        return [f"the classes changed ({what or 'the same names, in another order'}: {len(saved['classes'])} then, "
                f"{len(current['classes'])} now)"]
    if saved["kind"] != current["kind"]:
        return [f"the data are another kind of dataset ({saved['kind']} then, {current['kind']} now)"]
    if saved["content"] == current["content"] and saved.get("names") == current.get("names"):
        return []
    if saved["kind"] != "files":
        return [f"the images changed ({saved['images']} then, {current['images']} now; their digest differs)"]
    if "files" in saved and "files" in current:
        then = {entry[0]: entry[1:] for entry in saved["files"]}
        now = {entry[0]: entry[1:] for entry in current["files"]}
        added, removed = set(now) - set(then), set(then) - set(now)
        relabelled = [name for name in set(then) & set(now) if then[name][0] != now[name][0]]
        changed = [name for name in set(then) & set(now) if then[name][1:] != now[name][1:]]
        phrases = []
        for items, what in ((added, "added"), (removed, "removed or renamed"), (relabelled, "moved to another class"),
                            (changed, "changed (another size or modification time)")):
            if items:
                phrases.append(f"{len(items)} file{'s' if len(items) != 1 else ''} {what}: {_names(items)}")
        return phrases or ["the images changed"]
    if saved["names"] != current["names"]:
        return [f"files were added, removed or renamed ({saved['images']} images then, {current['images']} now)"]
    return ["files changed (the same names, other sizes or modification times)"]


def check_same_data(saved, datasets, run_dir, current=None):
    """UsageError unless ``datasets`` (``{"train": ..., "val": ...}``; or their ``fingerprints``, ``current``)
    are the data the run in ``run_dir`` trained on, as its checkpoint's fingerprints ``saved`` say; each
    difference named. A checkpoint without fingerprints (an earlier minivgg) is not checked."""
    from ..errors import UsageError

    if saved is None:
        return
    current = (fingerprints(datasets) if current is None else current) or {}
    problems = []
    for split, then in saved.items():
        now = current.get(split)
        if now is None:
            continue
        phrases = describe_changes(then, now)
        if phrases:
            problems.append(f"{split}: {'; '.join(phrases)}")
    if problems:
        raise UsageError(f"--resume {run_dir}: the data are not those the run trained on ({'; '.join(problems)}); a "
                         f"resumed run continues exactly only on the same data: put them back, or start a new run "
                         f"(another --run-dir); nothing was changed")
