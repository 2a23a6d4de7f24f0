"""How many input shapes dense evaluation (Sect. 3.2) meets, and how that number can be bounded (an option).

Dense evaluation runs the fully-convolutional net on each whole image rescaled to Q, so every aspect ratio
of a test set is a new input shape. On a GPU a new shape costs: each convolution's cuDNN graph is built for
the exact batch shape (16 graphs for VGG-16), tens of milliseconds each, and ILSVRC-2012's 50,000
validation images come in hundreds of sizes. So the long side can be cropped, centred, to ``Q + k * step``:
at most ``step - 1`` pixels (``step`` = 32 for a 224 net, the net's total stride, so at most 31 of a
500-pixel side), which bounds the shapes of one scale to ``(longest - Q) / step + 1`` per orientation,
whatever the number of images. The short side, Q, is never touched. For nets trained on smaller crops the
step shrinks with the crop, as the test scales do (``scales.paper_scales``).

It is an option (``posteriors(..., shape_buckets=True)``, ``minivgg evaluate --shape-buckets``), off by
default: the paper's dense evaluation sees the whole image, and so does minivgg's unless asked otherwise.
"""
__all__ = ["shape_step", "crop_to_bucket", "bucketed_size"]

STRIDE = 32  # VGG's five 2x2 poolings: one score-map position per 32 input pixels at 224


def shape_step(crop_size):
    """The bucket width of the long side for a net trained on ``crop_size`` crops: 32 at 224, scaled with it."""
    return max(1, int(round(STRIDE * int(crop_size) / 224)))


def bucketed_size(height, width, step):
    """``(height, width)`` with the long side lowered to the short side plus a multiple of ``step``."""
    short, long = min(height, width), max(height, width)
    long = short + (long - short) // step * step
    return (short, long) if height <= width else (long, short)


def crop_to_bucket(image, step):
    """The centre of ``image`` (H, W, 3) with its long side cropped to ``bucketed_size``: a view, no copy."""
    height, width = image.shape[:2]
    new_height, new_width = bucketed_size(height, width, step)
    top, left = (height - new_height) // 2, (width - new_width) // 2
    return image[top:top + new_height, left:left + new_width]
