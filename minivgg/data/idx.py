"""The IDX format: MNIST's, Fashion-MNIST's (and EMNIST's, KMNIST's) images and labels, gzipped or not.

An IDX file is a header and one array of numbers, all big-endian (LeCun et al.'s MNIST page):

    bytes 0-1   zero
    byte  2     the type of the numbers: 0x08 unsigned byte, 0x09 signed byte, 0x0B short (2 bytes),
                0x0C int (4 bytes), 0x0D float (4 bytes), 0x0E double (8 bytes)
    byte  3     the number of dimensions d
    then        d sizes, each a 4-byte unsigned integer, the first the number of items
    then        the numbers, last dimension fastest (C order)

Images are ``(N, rows, columns)`` unsigned bytes (``idx3-ubyte``), labels ``(N,)`` unsigned bytes
(``idx1-ubyte``). A file whose name ends in ``.gz`` is decompressed first. Every file that is not what it
should be is a ``DataFileError`` naming it: a bad magic number, an unknown type, a truncated file (or one
longer than its header says), a header with the wrong number of dimensions or type for images or labels,
and image and label files that count different numbers of items. Nothing is allocated beyond the file's
real size: the header's sizes are checked against the bytes that are there before the array is built.
"""
import gzip
import os
import zlib

import numpy as np

from ..errors import DataFileError

__all__ = ["IDX_TYPES", "read_idx", "read_idx_images", "read_idx_labels", "read_idx_pair", "write_idx"]

# The type byte -> the big-endian NumPy type of the numbers.
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float",
               0x0E: "double"}


CHUNK = 1 << 22  # bytes read at a time: a header declaring more than the file holds allocates no more


def _open(path):
    """The file, decompressed as it is read when its name ends in ``.gz``; a path that is not a regular file (a
    named pipe would block the read) is refused before it is opened."""
    from ..files import require_regular_file

    require_regular_file(path, "data file")
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _read_at_most(handle, size, path):
    """Up to ``size`` bytes, read in chunks so that only what is there is ever allocated."""
    parts, remaining = [], size
    try:
        while remaining > 0:
            block = handle.read(min(CHUNK, remaining))
            if not block:
                break
            parts.append(block)
            remaining -= len(block)
    except (OSError, EOFError, zlib.error) as error:
        if not path.endswith(".gz"):
            raise  # a read error of the disk, not of the format
        # not gzip, or a gzip stream cut short or damaged
        raise DataFileError(f"{path} is not a complete gzip file ({error}): download it again") from None
    return b"".join(parts)


def read_idx(path):
    """The array an IDX file holds (any type, any number of dimensions).

    Parameters
    ----------
    path : an IDX file, gzipped when its name ends in ``.gz``

    Returns
    -------
    ndarray of the header's shape, in the native byte order (uint8 for ``ubyte`` files).

    Raises
    ------
    FileNotFoundError for a missing file; DataFileError naming the file for a bad magic number, an unknown
    type, or a size that does not match the header (truncated or with bytes left over).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file {path} does not exist")
    with _open(path) as handle:
        magic = _read_at_most(handle, 4, path)
        if len(magic) < 4:
            raise DataFileError(f"{path} is not an IDX file: {len(magic)} bytes, shorter than the 4-byte magic "
                                f"number")
        if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
            raise DataFileError(f"{path} is not an IDX file: its magic number is 0x{magic.hex()}, expected "
                                f"0x0000TTDD with type TT one of {', '.join(f'{t:02x}' for t in IDX_TYPES)} and "
                                f"DD dimensions")
        dtype, dimensions = IDX_TYPES[magic[2]], magic[3]
        sizes = _read_at_most(handle, 4 * dimensions, path)
        if len(sizes) < 4 * dimensions:
            raise DataFileError(f"{path} is truncated: it ends inside its header, which declares {dimensions} "
                                f"dimensions")
        shape = tuple(int(size) for size in np.frombuffer(sizes, ">u4"))
        expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
        body = _read_at_most(handle, expected + 1, path)  # one byte more tells a file with bytes left over
    if len(body) != expected:
        kind = "truncated" if len(body) < expected else "longer than its header says"
        held = f"{len(body):,}" if len(body) < expected else "more"
        raise DataFileError(f"{path} is {kind}: its header declares {'x'.join(map(str, shape)) or 'one'} "
                            f"{_TYPE_NAMES[magic[2]]}(s), {expected:,} bytes after the header, but it holds {held}")
    return np.frombuffer(body, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _check_unsigned_bytes(path, array, dimensions, what):
    if array.dtype != np.uint8 or array.ndim != dimensions:
        raise DataFileError(f"{path} holds {array.ndim}-dimensional {array.dtype} numbers of shape {array.shape}; "
                            f"{what} are {dimensions}-dimensional unsigned bytes (an idx{dimensions}-ubyte file)")
    return array


def read_idx_images(path):
    """(N, rows, columns) uint8 images from an ``idx3-ubyte`` file; DataFileError for any other content."""
    return _check_unsigned_bytes(path, read_idx(path), 3, "images")


def read_idx_labels(path):
    """(N,) uint8 labels from an ``idx1-ubyte`` file; DataFileError for any other content."""
    return _check_unsigned_bytes(path, read_idx(path), 1, "labels")


def read_idx_pair(images_path, labels_path):
    """``(images (N, rows, columns) uint8, labels (N,) int64)`` from an image file and its label file.

    DataFileError when the two count different numbers of items (naming both files).
    """
    images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise DataFileError(f"{os.fspath(images_path)} holds {len(images):,} images but {os.fspath(labels_path)} "
                            f"holds {len(labels):,} labels: they must count the same items")
    return images, labels.astype(np.int64)


def write_idx(path, array):
    """Write ``array`` (of a type in ``IDX_TYPES``) as an IDX file, gzipped when ``path`` ends in ``.gz``."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: IDX has no type for {array.dtype}; use one of "
                        f"{', '.join(str(d.newbyteorder('=')) for d in IDX_TYPES.values())}")
    body = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
            + np.ascontiguousarray(array, IDX_TYPES[code]).tobytes())
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(body)
