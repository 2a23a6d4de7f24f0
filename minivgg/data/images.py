"""Decoding one image file into the RGB uint8 array every other part of the pipeline expects.

Photo collections are messy: ImageNet's training set alone holds grayscale JPEGs, CMYK JPEGs and a PNG
saved with a ``.JPEG`` name. Every readable file is converted to RGB here; a file that cannot be decoded
(corrupt, truncated, not an image) raises ``BadImageError`` naming it, which the loader turns into a skip
with a warning instead of the end of a run.

One image, one answer: a file, a PIL image and an array go through one conversion (``to_rgb_array``), so
``predict(model, Image.open(p))`` and ``predict(model, p)`` see the same pixels:

- **alpha** (RGBA, LA, a palette with transparency, an (H, W, 4) array) is composited over white
  (``ALPHA_BACKGROUND``): ``rgb * a + 255 * (1 - a)``, the page a transparent image is shown on;
- **16 bits** (Pillow's ``I;16`` modes, uint16 arrays) are scaled to 8: ``round(v / 257)``, so 65535 is 255
  (never clipped); 32-bit integer images (mode ``I``) whose values stay within 0-255 are 8-bit data in a wide
  container and kept, others are taken as 16-bit;
- **EXIF orientation** is applied (``PIL.ImageOps.exif_transpose``): a phone photo stored sideways with an
  orientation tag is seen upright, as a viewer shows it. (torchvision's default loader ignores the tag; Caffe's
  OpenCV loader applies it.) A PIL image already transposed has no tag left and is not turned twice;
- grey images (and (H, W) arrays) are repeated over the three channels; CMYK and YCbCr are converted by Pillow.

A file's declared size is checked before it is decoded: beyond Pillow's ``MAX_IMAGE_PIXELS`` or an aspect
ratio of ``limits.MAX_ASPECT_RATIO`` it is refused (a 1 x 100000 PNG is 372 bytes, and rescaled to a short side
of 256 it would be 25.6 million pixels long). A path that is not a regular file (a named pipe) is refused
before it is opened.

Large JPEGs are decoded with Pillow's *draft* mode: libjpeg scales the image down by 1/2, 1/4 or 1/8 in the
DCT domain while decoding, which costs a fraction of a full decode followed by a resize. The reduced image
always keeps its smallest side at or above the side the caller asks for, so the exact isotropic rescaling
that follows (``transforms.rescale_smallest_side``) only ever shrinks it.
"""
import contextlib
import math
import warnings

import numpy as np
from PIL import Image

__all__ = ["BadImageError", "BadImageWarning", "IMAGE_EXTENSIONS", "ALPHA_BACKGROUND", "decode_image", "as_rgb_array",
           "draft_request", "to_rgb_array", "is_image_file", "skip_record", "warn_skipped", "UNREADABLE"]

# Suffixes (compared in lower case) of the files a dataset folder is searched for.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")

# Transparent pixels are composited over white: the usual page a transparent PNG is shown on.
ALPHA_BACKGROUND = 255


class BadImageError(ValueError):
    """An image file that cannot be decoded (corrupt, truncated, not an image, unsupported pixel format)."""


# What loading one image may raise without ending a run: an undecodable file, or one that vanished or cannot
# be read (an I/O error on a network file system) after the dataset was listed.
UNREADABLE = (BadImageError, OSError)


class BadImageWarning(UserWarning):
    """Images were skipped because they could not be read; the warning says how many and which."""


def is_image_file(name):
    """True for a file name with one of ``IMAGE_EXTENSIONS`` (any case) that is not hidden (``.`` first).

    Hidden files are left out because macOS copies leave ``._name.jpg`` resource forks beside the images.
    """
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def draft_request(width, height, smallest_side):
    """The size to ask Pillow's JPEG draft mode for, or None when drafting cannot help.

    Parameters
    ----------
    width, height : the file's size in pixels
    smallest_side : int, the smallest side S the image will be rescaled to

    Returns
    -------
    (request_width, request_height) with the file's aspect ratio and smallest side S, or None when the
    file's smallest side is under 2 S: libjpeg reduces only by 2, 4 or 8, and picks the largest reduction
    that keeps both sides at or above the request, so the decoded smallest side stays >= S.
    """
    factor = smallest_side / min(width, height)
    if factor > 0.5:
        return None
    return math.ceil(width * factor), math.ceil(height * factor)


def _sixteen_bit_to_eight(array, sixteen_bits=True):
    """0-65535 to 0-255, rounded (65535 -> 255). ``sixteen_bits=False`` (Pillow's 32-bit mode ``I``): values
    that stay within 0-255 are 8-bit data in a wide container and are kept as they are."""
    array = np.asarray(array, dtype=np.int64)
    if sixteen_bits or array.max(initial=0) > 255:
        array = (np.clip(array, 0, 65535) + 128) // 257
    return np.clip(array, 0, 255).astype(np.uint8)


def to_rgb_array(image, name="image"):
    """A decoded PIL image as an RGB array, whatever its pixel format.

    Parameters
    ----------
    image : PIL.Image.Image, already loaded
    name : how to name the image in an error (its path)

    Returns
    -------
    (H, W, 3) uint8 array, RGB. Grayscale and bilevel images are repeated over the three channels; CMYK
    and YCbCr are converted by Pillow (which undoes the inverted CMYK that Adobe writes); palette images are
    expanded; 16-bit grayscale is scaled to 8 bits; an alpha channel (RGBA, LA, a palette with transparency)
    is composited over ``ALPHA_BACKGROUND``: ``rgb * a + 255 * (1 - a)``.

    Raises
    ------
    BadImageError for pixel formats with no RGB meaning here (floating-point images).
    """
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image)
    if mode.startswith("I"):  # "I;16", "I;16B", ...: 16-bit grayscale; "I": 32-bit
        gray = _sixteen_bit_to_eight(np.asarray(image), sixteen_bits=mode.startswith("I;16"))
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:] / 255.0
        rgb = rgba[:, :, :3] * alpha + ALPHA_BACKGROUND * (1.0 - alpha)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    if mode in ("L", "1", "P", "CMYK", "YCbCr"):
        return np.asarray(image.convert("RGB"))
    raise BadImageError(f"{name}: pixel format {mode!r} cannot be converted to RGB (expected an 8- or 16-bit "
                        f"grayscale, RGB, RGBA, palette or CMYK image)")


def _upright(image):
    """``image`` turned as its EXIF orientation tag says (the image itself when it has none)."""
    from PIL import ImageOps

    try:
        if image.getexif().get(_ORIENTATION, 1) in (1, None):  # upright already: no copy
            return image
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, AttributeError):  # damaged EXIF: as stored
        return image


_ORIENTATION = 0x0112  # the EXIF tag


def _array_to_rgb(array, name):
    """An array of pixels as RGB uint8, converted as a decoded file of that layout would be."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    layouts = "(H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA"
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"{name}: expected an image array {layouts}, got {array.dtype} of shape {array.shape}")
    if array.dtype == np.uint16:
        array = _sixteen_bit_to_eight(array)
    elif array.dtype != np.uint8:
        advice = (" (pixels in [0, 1]? multiply by 255, round and cast to uint8)" if array.dtype.kind == "f"
                  else "")
        raise ValueError(f"{name}: expected uint8 pixels (0-255) or uint16 (0-65535), got {array.dtype}{advice}")
    from ..limits import check_aspect_ratio

    check_aspect_ratio(array.shape[0], array.shape[1], name)
    if array.ndim == 3 and array.shape[2] == 3:
        return array
    return to_rgb_array(Image.fromarray(np.ascontiguousarray(array), "L" if array.ndim == 2 else "RGBA"), name)


def as_rgb_array(image, index=0):
    """Any one image as the (H, W, 3) uint8 RGB array the pipeline expects, through the conversion a decoded
    file goes through (the module docstring): a PIL image (EXIF orientation applied, alpha composited, 16 bits
    scaled), an array ((H, W) grey, (H, W, 3) RGB, (H, W, 4) RGBA; uint8, or uint16 scaled), a path, the bytes of
    an encoded image or a binary file object (decoded by ``decode_image``). ``index`` names the image in an
    error (its place in a list)."""
    import io
    import os

    name = f"image {index}"
    if isinstance(image, (str, os.PathLike)):
        return decode_image(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(io.BytesIO(bytes(image)), name=f"{name} (bytes)")
    if hasattr(image, "read"):  # an open file: its bytes are decoded as the file's would be
        return decode_image(image, name=f"{name} ({getattr(image, 'name', 'a file object')})")
    if isinstance(image, Image.Image):
        from ..limits import check_aspect_ratio

        check_aspect_ratio(image.height, image.width, name)
        image.load()
        return to_rgb_array(_upright(image), name)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} is a {type(image).__name__}; give a file path, the bytes of an image file, an open "
                        f"file, a PIL image or an array of pixels ((H, W, 3) uint8)")
    return _array_to_rgb(image, name)


def decode_image(path, draft_smallest_side=None, name=None):
    """Read an image file as an RGB uint8 array.

    Parameters
    ----------
    path : path of a JPEG, PNG or other file Pillow reads (or an open binary file)
    draft_smallest_side : optional int S: the smallest side the caller will rescale the image to. A JPEG
        whose smallest side is at least 2 S is decoded at 1/2, 1/4 or 1/8 of its size (DCT-domain
        downscaling, ``draft_request``); its decoded smallest side is still >= S.
    name : how to name the image in errors (default: ``path``)

    Returns
    -------
    (H, W, 3) uint8 array, RGB (conversions as in ``to_rgb_array``).

    Raises
    ------
    FileNotFoundError if ``path`` does not exist; ``NotAFileError`` for a path that is not a regular file;
    BadImageError (a ValueError) naming ``path`` for a file that is not an image, is corrupt or truncated, or
    declares more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's decompression-bomb limit, about 89 Mpx:
    an 11000 x 11000 PNG of one colour is a 117 KB file that would decode to 363 MB) or an aspect ratio beyond
    ``limits.MAX_ASPECT_RATIO``. The checks are on the size the file declares, before anything is decoded.
    """
    import os

    from ..errors import TooLargeError
    from ..files import require_regular_file
    from ..limits import check_aspect_ratio

    opened = not isinstance(path, (str, bytes, os.PathLike))
    name = name if name is not None else (getattr(path, "name", "image") if opened else os.fspath(path))
    if not opened:
        require_regular_file(path, "image file")
    try:
        with warnings.catch_warnings():
            # A truncated or odd file can trigger Pillow warnings; the error below says what failed. But
            # the decompression-bomb warning (more than Image.MAX_IMAGE_PIXELS pixels declared) is the only
            # thing standing between a small file and gigabytes of decoded pixels: it becomes an error.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with (contextlib.nullcontext(path) if opened else open(path, "rb")) as handle, \
                    Image.open(handle) as image:
                check_aspect_ratio(image.height, image.width, str(name))
                if draft_smallest_side is not None and image.format == "JPEG":
                    request = draft_request(image.width, image.height, int(draft_smallest_side))
                    if request is not None:
                        image.draft("RGB", request)
                image.load()
                return to_rgb_array(_upright(image), name=str(name))
    except FileNotFoundError:
        raise
    except BadImageError:
        raise
    except TooLargeError as error:  # an image like that is skipped in training, as an undecodable one
        raise BadImageError(f"{error}: refusing to decode it") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadImageError(f"{name}: refusing to decode: {error} (raise PIL.Image.MAX_IMAGE_PIXELS if the "
                            f"file is trusted)") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # OSError covers "cannot identify image file" and "image file is truncated"; libjpeg and libpng
        # report some corruptions as SyntaxError or ValueError.
        raise BadImageError(f"{name}: cannot decode image: {error}") from error


def skip_record(name, error):
    """``(name, reason)`` for the skipped list: the error's message without the file name it starts with."""
    reason = str(error)
    return name, reason[len(name) + 2:] if reason.startswith(f"{name}: ") else reason


def warn_skipped(skipped, context, one="unreadable image", several="unreadable images"):
    """Warn (``BadImageWarning``) that the images in ``skipped`` (a list of ``(file, reason)``) were skipped
    during ``context`` ("epoch 3", "statistics"); nothing when the list is empty. ``one`` and ``several``
    name what was skipped."""
    if not skipped:
        return
    shown = "; ".join(f"{name}: {reason}" for name, reason in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    warnings.warn(f"{context}: skipped {len(skipped)} {several if len(skipped) > 1 else one} "
                  f"({shown}{more})", BadImageWarning, stacklevel=3)
