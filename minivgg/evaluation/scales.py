"""Test scales: the smallest image side Q that images are rescaled to before the net sees them (Sect. 4.1, 4.2).

The one place the default test scale is decided: every command and ``predict`` call ``default_test_scales``.
"""
__all__ = ["paper_scales", "single_test_scale", "default_test_scales"]


def paper_scales(train_scale, crop_size=224):
    """The test scales Q of Sect. 4.2 for a training scale S.

    A fixed S (an int) gives {S - 32, S, S + 32}; a jittered range (S_min, S_max) gives
    {S_min, (S_min + S_max) / 2, S_max}. For a net trained on crops other than 224, the 32 scales with the
    crop (``round(32 * crop_size / 224)``), so a small trial net is tested as the paper's are.
    """
    if isinstance(train_scale, (tuple, list)):
        low, high = train_scale
        return (int(low), int((low + high) // 2), int(high))
    step = max(1, int(round(32 * crop_size / 224)))
    return (int(train_scale) - step, int(train_scale), int(train_scale) + step)


def single_test_scale(train_scale):
    """Sect. 4.1's one test scale for a training scale S: Q = S for a fixed S, Q = (S_min + S_max) / 2 for a
    jittered range."""
    if isinstance(train_scale, (tuple, list)):
        low, high = train_scale
        return int((low + high) // 2)
    return int(train_scale)


def default_test_scales(model):
    """The test scales used when none are given: Sect. 4.1's Q for the training scale the weights record
    (``model.training_record``); for weights that record none (published, converted), 8/7 of the crop side
    (256 for 224, as torchvision and the Caffe models' users test)."""
    record = getattr(model, "training_record", None)
    if record is not None and record.train_scale is not None:
        return (single_test_scale(record.train_scale),)
    return (int(round(model.input_size * 8 / 7)),)
