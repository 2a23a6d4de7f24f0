"""Features on disk: each image's descriptor is computed once per net and settings, then read back.

Extracting very deep features is the slow part of Appendix B (a VGG-16 forward pass per image, scale and
flip); training the SVMs is quick. So every descriptor is stored under a key made of

- the net: a SHA-256 of the weight file's bytes (``weights_fingerprint``), or of an in-memory model's
  parameters, architecture and preprocessing (``model_fingerprint``);
- the image: its absolute path, size and modification time (``image_key``), or for an array its bytes;
  plus the box, if any;
- the settings (``FeatureSettings``: layer, scales, aggregation, flip).

Change any of them and the key changes, so a stale descriptor is never returned. Each descriptor is one
small ``.npz`` file (read with ``allow_pickle=False``), written to a temporary name and renamed into place,
so an interrupted run leaves only whole files and the next run continues where it stopped.
"""
import hashlib
import json
import os
import zipfile

import numpy as np

from ..backend import to_host
from ..files import atomic_write

__all__ = ["FeatureCache", "weights_fingerprint", "model_fingerprint", "image_key", "default_cache_folder"]

# Part of every key, raised when the same settings start to give other descriptors, so that none stored
# before is read back: 2, JPEGs drafted at the largest scale (at the smallest before); 3, the dense net's
# poolings round up (Caffe's ceil mode), so its map covers the whole image at every Q.
KEY_VERSION = 3


def default_cache_folder():
    """``$XDG_CACHE_HOME/minivgg/features``, or ``~/.cache/minivgg/features``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minivgg", "features")


def weights_fingerprint(path):
    """SHA-256 (hex) of a weight file's contents."""
    from ..weights.download import sha256_of

    return sha256_of(os.fspath(path))


def model_fingerprint(model):
    """SHA-256 (hex) of a model's parameters (names, dtypes, shapes, values), architecture and preprocessing:
    the key of a net that has no weight file (trained or initialised in this process)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"architecture": model.architecture(),
                              "preprocessing": model.preprocessing.to_dict()}, sort_keys=True).encode())
    for name, layer, key in model.named_parameters():
        array = np.ascontiguousarray(to_host(layer.params[key]))
        digest.update(f"{name}|{array.dtype}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def image_key(image, box=None):
    """What identifies an image: ``"path|size|mtime"`` for a file (FileNotFoundError if missing), a SHA-256
    of shape and pixels for an array; the box appended when there is one."""
    if isinstance(image, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(image))
        status = os.stat(path)
        key = f"file|{path}|{status.st_size}|{status.st_mtime_ns}"
    else:
        array = np.ascontiguousarray(image)
        key = f"array|{array.dtype}|{array.shape}|{hashlib.sha256(array.tobytes()).hexdigest()}"
    if box is not None:
        # repr, not a rounded format: boxes 0.001 pixel apart are other descriptors.
        key += "|box " + ",".join(repr(float(v)) for v in box)
    return key


class FeatureCache:
    """One ``.npz`` file per descriptor under ``folder``, named by the hash of (net, image, settings).

    Attributes
    ----------
    folder : str, created on first write
    hits, misses : how many lookups found a stored descriptor and how many did not (the second run of the
        same extraction is all hits)
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise ValueError(f"feature cache {self.folder} exists and is not a folder")
        self.hits = 0
        self.misses = 0

    def key(self, net_key, image, settings):
        """The file key of one descriptor: SHA-256 of the net's fingerprint, ``image`` (an ``image_key``
        string) and the settings' JSON."""
        record = json.dumps({"net": net_key, "image": image, "settings": settings.to_dict(),
                             "version": KEY_VERSION}, sort_keys=True)
        return hashlib.sha256(record.encode()).hexdigest()

    def _path(self, key):
        return os.path.join(self.folder, key[:2], f"{key}.npz")

    def get(self, key):
        """The stored (D,) float32 descriptor, or None (counted as a miss; a damaged file, or one holding anything
        but a finite (D,) float32 descriptor, is a miss too, and is computed again)."""
        path = self._path(key)
        try:
            if os.path.lexists(path) and not os.path.isfile(path):  # a pipe would block the read
                raise OSError(f"{path} is not a regular file")
            with np.load(path, allow_pickle=False) as data:
                descriptor = data["descriptor"]
            if descriptor.ndim != 1 or descriptor.dtype != np.float32 or not np.isfinite(descriptor).all():
                raise ValueError(f"{path} holds {descriptor.dtype} {descriptor.shape}, not a finite descriptor")
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # absent, or cut short by a crash
            self.misses += 1
            return None
        self.hits += 1
        return descriptor

    def put(self, key, descriptor):
        """Store a (D,) descriptor atomically."""
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)

        def write(temporary):
            with open(temporary, "wb") as handle:
                np.savez(handle, descriptor=np.asarray(descriptor, dtype=np.float32))

        atomic_write(path, write)
