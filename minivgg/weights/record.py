"""How a weight file's weights were trained: the record ``minivgg train`` and ``minivgg localize train`` write
with the weights, parsed here and nowhere else.

Using trained weights as the paper does needs to know how they were trained: the test scale Q follows the
training scale S (Sect. 4.1: Q = S for a fixed S, Q = (S_min + S_max) / 2 for a jittered one, and the three
scales of Sect. 4.2 around it), and images are flipped at test time only when they were in training (digits
are not mirror-symmetric). The record is JSON in the weight file's header under ``"training"``; a file without
one (published weights, converted ones) has ``None``, and every user of the record says what it does then.

Everything in it is checked when it is read, against the types and ranges below, and a record that breaks them
is a ValueError naming the file and the field: a hand-edited header never reaches the code that uses it.
"""
import json
import math
from dataclasses import asdict, dataclass

__all__ = ["TrainingRecord", "MAX_SCALE", "METADATA_KEY", "json_object"]

METADATA_KEY = "training"  # the header key the record is stored under
# The largest training scale S a record may name: 16 times the paper's largest (512), far beyond any real run,
# and small enough that the test scales derived from it cannot ask for an image of absurd size.
MAX_SCALE = 8192


def json_object(text, source, what):
    """The JSON object ``text`` (a record in a file's header), or ValueError naming ``source`` and ``what`` it is
    when it is not valid JSON, nests without end, or is not an object."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{source}: {what} in its header is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source}: {what} must be a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class TrainingRecord:
    """How a weight file's weights were trained.

    train_scale : the training scale S, an int, or ``(S_min, S_max)`` for scale jittering (Sect. 3.1)
    flip : whether training flipped images horizontally (None: not recorded)
    epochs : how many epochs the run trained
    settings : the optimisation settings (``training.TrainSettings`` as a dict), or None
    annotations : the annotation folder a localisation net was fine-tuned on (Appendix A), or None
    learning_rate : the fine-tuning learning rate of a localisation net, or None
    """

    train_scale: object = None
    flip: bool = None
    epochs: int = None
    settings: dict = None
    annotations: str = None
    learning_rate: float = None

    def to_json(self):
        """The record as the header stores it (fields that are None are left out)."""
        fields = {key: value for key, value in asdict(self).items() if value is not None}
        if isinstance(self.train_scale, tuple):
            fields["train_scale"] = list(self.train_scale)
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text, source):
        """Parse and check the header's record; ValueError naming ``source`` and the field for anything else."""
        fields = json_object(text, source, "the training record")
        if "scale" in fields and "train_scale" not in fields:  # localisation nets of earlier versions
            fields["train_scale"] = fields.pop("scale")
        unknown = sorted(set(fields) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{source}: the training record has unknown fields {unknown}; known: "
                             f"{sorted(cls.__dataclass_fields__)}")
        return cls(train_scale=_scale(fields.get("train_scale"), source),
                   flip=_optional(fields, "flip", bool, source),
                   epochs=_count(fields.get("epochs"), "epochs", source),
                   settings=_optional(fields, "settings", dict, source),
                   annotations=_optional(fields, "annotations", str, source),
                   learning_rate=_learning_rate(fields.get("learning_rate"), source))


def _optional(fields, name, kind, source):
    value = fields.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{source}: the training record's {name} must be a {kind.__name__}, got {value!r}")
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value, name, source):
    if value is not None and (not _is_int(value) or value < 0):
        raise ValueError(f"{source}: the training record's {name} must be a whole number >= 0, got {value!r}")
    return value


def _learning_rate(value, source):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{source}: the training record's learning_rate must be a positive number, got {value!r}")
    return value


def _scale(value, source):
    """S as an int, or (S_min, S_max) with S_min <= S_max, each in 1 .. MAX_SCALE; None stays None."""
    if value is None:
        return None
    scales = value if isinstance(value, list) and len(value) == 2 else [value]
    if not all(_is_int(s) and 1 <= s <= MAX_SCALE for s in scales) or (len(scales) == 2 and scales[0] > scales[1]):
        raise ValueError(f"{source}: the training record's train_scale must be a whole number of pixels from 1 to "
                         f"{MAX_SCALE}, or [S_min, S_max] with S_min <= S_max; got {value!r}")
    return tuple(scales) if len(scales) == 2 else scales[0]
