"""Decoding one image file into the RGB uint8 array every other part of the pipeline expects.

Photo collections are messy: ImageNet's training set alone holds grayscale JPEGs, CMYK JPEGs and a PNG
saved with a ``.JPEG`` name. Every readable file is converted to RGB here; a file that cannot be decoded
(corrupt, truncated, not an image) raises ``BadImageError`` naming it, which the loader turns into a skip
with a warning instead of the end of a run.

Large JPEGs are decoded with Pillow's *draft* mode: libjpeg scales the image down by 1/2, 1/4 or 1/8 in the
DCT domain while decoding, which costs a fraction of a full decode followed by a resize. The reduced image
always keeps its smallest side at or above the side the caller asks for, so the exact isotropic rescaling
that follows (``transforms.rescale_smallest_side``) only ever shrinks it.
"""
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


def _sixteen_bit_to_eight(array):
    # 16-bit grayscale (Pillow modes I;16 and I) spans 0-65535; 32-bit "I" images whose values stay within
    # 0-255 are 8-bit data in a wide container and are kept as they are.
    array = np.asarray(array, dtype=np.int64)
    if array.max(initial=0) > 255:
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
    if mode.startswith("I"):  # "I", "I;16", "I;16B", ...: 16- or 32-bit grayscale
        gray = _sixteen_bit_to_eight(np.asarray(image))
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


def as_rgb_array(image, index=0):
    """An image given in memory as the (H, W, 3) uint8 RGB array the pipeline expects: a PIL image goes through
    ``to_rgb_array`` (alpha composited, 16 bits scaled, as a decoded file), an array must already be one.
    ``index`` names the image in the error (its place in a list)."""
    if hasattr(image, "convert"):  # a PIL image: the same conversion as a file's
        image.load()
        return to_rgb_array(image, f"image {index}")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image {index}: expected an RGB uint8 array (H, W, 3) or a PIL image, got "
                         f"{image.dtype} {image.shape}")
    return image


def decode_image(path, draft_smallest_side=None):
    """Read an image file as an RGB uint8 array.

    Parameters
    ----------
    path : path of a JPEG, PNG or other file Pillow reads
    draft_smallest_side : optional int S: the smallest side the caller will rescale the image to. A JPEG
        whose smallest side is at least 2 S is decoded at 1/2, 1/4 or 1/8 of its size (DCT-domain
        downscaling, ``draft_request``); its decoded smallest side is still >= S.

    Returns
    -------
    (H, W, 3) uint8 array, RGB (conversions as in ``to_rgb_array``).

    Raises
    ------
    FileNotFoundError if ``path`` does not exist; BadImageError (a ValueError) naming ``path`` for a file
    that is not an image, is corrupt or truncated, or declares more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``
    (Pillow's decompression-bomb limit, about 89 Mpx: an 11000 x 11000 PNG of one colour is a 117 KB file
    that would decode to 363 MB). The check is on the size the file declares, before anything is decoded.
    """
    try:
        with warnings.catch_warnings():
            # A truncated or odd file can trigger Pillow warnings; the error below says what failed. But
            # the decompression-bomb warning (more than Image.MAX_IMAGE_PIXELS pixels declared) is the only
            # thing standing between a small file and gigabytes of decoded pixels: it becomes an error.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(path, "rb") as handle, Image.open(handle) as image:
                if draft_smallest_side is not None and image.format == "JPEG":
                    request = draft_request(image.width, image.height, int(draft_smallest_side))
                    if request is not None:
                        image.draft("RGB", request)
                image.load()
                return to_rgb_array(image, name=str(path))
    except FileNotFoundError:
        raise
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadImageError(f"{path}: refusing to decode: {error} (raise PIL.Image.MAX_IMAGE_PIXELS if the "
                            f"file is trusted)") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # OSError covers "cannot identify image file" and "image file is truncated"; libjpeg and libpng
        # report some corruptions as SyntaxError or ValueError.
        raise BadImageError(f"{path}: cannot decode image: {error}") from error


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
