"""Why a claim did not reproduce: the measurements of the run that bear on it, in one paragraph per claim.

A verdict other than *reproduced* has two kinds of cause, and the report names both where the run measured
them:

- the noise: how wide the interval of the gain is over the seeds, and whether the paper's own difference
  (``experiments.PAPER_GAINS``) is smaller than that width, so that this many seeds could not resolve it;
- the miniature: how well each net involved fits its training crops (a net that fits them worse than the net
  it should beat is under-trained at this budget), the error at each test scale (a fixed-scale net far from
  its S), how many test images a one-image change is worth, the localisation classifier's own errors, and
  the recall of every representation of the transfer.
"""
import numpy as np

from .experiments import NETS, PAPER_GAINS
from .statistics import mean_and_std

__all__ = ["explain", "nets_of"]

_NET_NAMES = {spec.name for spec in NETS}
CLASSES = 10  # Fashion-MNIST's and the digits'


def _mean(per_seed, key):
    values = [r[key] for r in per_seed if key in r]
    return float(np.mean(values)) if values else None


def _value(per_seed, key, digits=1, unit="%"):
    values = [r[key] for r in per_seed if key in r]
    if not values:
        return "not measured"
    mean, std = mean_and_std(values)
    spread = "" if np.isnan(std) else f" ± {std:.{digits}f}"
    return f"{mean:.{digits}f}{spread}{unit}"


def nets_of(key):
    """The classification nets a claim's side is measured on: ``"D/dense/96"`` -> ["D"],
    ``"best-of/D/dense/64|D/dense/128"`` -> ["D"], ``"table5/E-jittered/dense"`` -> ["E-jittered"]."""
    if not isinstance(key, str):
        return []
    parts = key[len("best-of/"):].split("|") if key.startswith("best-of/") else [key]
    names = []
    for part in parts:
        pieces = part.split("/")
        for candidate in (pieces[0], pieces[1] if len(pieces) > 1 else None):
            if candidate in _NET_NAMES and candidate not in names:
                names.append(candidate)
                break
        if pieces[0] == "fusion" and len(pieces) > 1:
            names += [name for name in pieces[1].split("+") if name in _NET_NAMES and name not in names]
    return names


def _signed(value):
    return f"{value + 0.0:+.2f}".replace("-0.00", "+0.00")  # no "minus zero"


def _noise(result):
    """The sentence on the interval against the paper's own difference."""
    interval, gains = result.interval, result.gains
    paper = PAPER_GAINS.get(result.claim.key)
    paper_text = f"; the paper's whole difference is {paper:g} points" if paper is not None else ""
    if not interval.defined:
        return f"One seed only: no interval (gain {_signed(interval.mean)} points{paper_text})."
    half = (interval.high - interval.low) / 2
    if not np.any(gains):
        return (f"The two sides are equal in every one of the {result.seeds} seeds: nothing to tell apart at this "
                f"size{paper_text}.")
    spread = f"the {result.seeds} seeds' gains run from {_signed(gains.min())} to {_signed(gains.max())} points"
    if result.verdict == "not reproduced":
        return (f"The other side is better beyond the noise: mean gain {_signed(interval.mean)} ± {half:.2f} points; "
                f"{spread}{paper_text}.")
    resolvable = ""
    if result.claim.kind == "not worse":
        if half > result.claim.margin:
            resolvable = (f"; the interval's half-width ({half:.2f}) exceeds the {result.claim.margin:g}-point margin "
                          f"a claim of no gain allows, so {result.seeds} seeds at this noise cannot show that the "
                          f"loss is under it")
    elif paper is not None and half > abs(paper):
        resolvable = (f", so {result.seeds} seeds at this noise cannot resolve a difference of the paper's size "
                      f"({half:.2f} > {abs(paper):g})")
    return f"Within the noise: mean gain {_signed(interval.mean)} ± {half:.2f} points; {spread}{paper_text}{resolvable}."


def _fit(per_seed, favoured_nets, other_nets, miniature, verdict=None):
    """How the nets of the two sides fit their training crops and their validation images."""
    names = list(dict.fromkeys(favoured_nets + other_nets))
    if not names:
        return ""
    described = ", ".join(f"{name} {_value(per_seed, f'{name}/train-error')} training / "
                          f"{_value(per_seed, f'{name}/val-error')} validation" for name in names)
    text = f"Top-1 error at the end of training ({_count(miniature.epochs, 'epoch')}): {described}."
    if len(favoured_nets) == 1 and len(other_nets) == 1 and favoured_nets != other_nets:
        favoured, other = favoured_nets[0], other_nets[0]
        train_f, train_o = _mean(per_seed, f"{favoured}/train-error"), _mean(per_seed, f"{other}/train-error")
        if train_f is not None and train_o is not None:
            if train_f > train_o + 1:
                text += (f" {favoured} fits its own training crops worse than {other} ({train_f:.1f}% against "
                         f"{train_o:.1f}%): it is under-trained at this budget, so its extra capacity cannot show.")
            elif train_f < train_o - 1:
                tested = ("yet tests worse: it overfits the " if verdict == "not reproduced" else
                          "but its gain on the test images is within the noise: the better fit does not carry over "
                          "from the ")
                text += (f" {favoured} fits its training crops better than {other} ({train_f:.1f}% against "
                         f"{train_o:.1f}%), {tested}{miniature.train_per_class} training images per class.")
            else:
                text += (f" Both fit their training crops alike ({train_f:.1f}% and {train_o:.1f}%): nothing "
                         f"separates them at this budget.")
    return text


def _crops(per_seed, nets, miniature):
    """Dense against centre-crop error at Sect. 4.1's Q for each net: the framed items make the dense map's
    windows see the item's corners and its black border, which one seed's net may read badly."""
    q = miniature.single_test_scale
    rows, unstable = [], []
    for name in nets:
        dense = [r[f"{name}/dense/{q}"] for r in per_seed if f"{name}/dense/{q}" in r]
        crop = [r[f"{name}/single-crop/{q}"] for r in per_seed if f"{name}/single-crop/{q}" in r]
        if not dense or not crop:
            continue
        rows.append(f"{name} dense {_value(per_seed, f'{name}/dense/{q}')}, centre crop "
                    f"{_value(per_seed, f'{name}/single-crop/{q}')}")
        if len(dense) > 1 and np.std(dense) > 2 * np.std(crop) + 1:
            unstable.append(f"{name} (dense worst seed {max(dense):.1f}% against its centre crop "
                            f"{crop[int(np.argmax(dense))]:.1f}%)")
    if not rows:
        return ""
    text = f"At Q = {q}: " + "; ".join(rows) + "."
    if unstable:
        text += (" The dense error varies across seeds far more than the centre crop's for " + ", ".join(unstable)
                 + ": its 2 x 2 windows each see a corner of the framed item and its black border.")
    return text


def _scales(per_seed, nets, miniature):
    scales = miniature.test_scales
    rows = []
    for name in nets:
        cells = ", ".join(f"Q = {q}: {_value(per_seed, f'{name}/dense/{q}')}" for q in scales)
        rows.append(f"{name} dense {cells}")
    return ("Error at each test scale: " + "; ".join(rows) + ". S = 96 is 33% away from 64 and 128 (the paper's "
            "S ± 32 is 12.5% of S = 256), and at Q = 128 most dense windows of the framed item see its black "
            "border.") if rows else ""


def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _granularity(images, noun="test images"):
    return f"On {images} {noun} one of them is {100 / images:.2f} points."


def random_layers_gain(miniature, width_multiplier, config="D", paper_std=0.01):
    """``(fan_ins, factor)``: the fan-ins of the conv layers of ``config`` that keep their N(0, ``paper_std``^2) weights when
    the first four conv layers (on net A's rows of Table 1) and the FC layers are copied from A (Sect. 3.1), and
    by what factor those layers together scale the standard deviation of the signal at initialisation: each
    multiplies its variance by fan-in x std^2 / 2 (the ReLU keeps half), fan-in = input channels x 3 x 3."""
    from ..layers import Conv2d
    from ..models import layer_specs

    def convs(name):
        return [spec for spec in layer_specs(name, num_classes=CLASSES, input_size=miniature.crop,
                                             width_multiplier=width_multiplier, fc_width=miniature.fc_width)
                if spec.layer_class is Conv2d]
    copied = {spec.table_row for spec in convs("A")[:4]}
    random = [spec for spec in convs(config) if spec.table_row not in copied]
    variance = float(np.prod([spec.arguments["in_channels"] * 9 * paper_std ** 2 / 2 for spec in random]))
    return [spec.arguments["in_channels"] * 9 for spec in random], variance ** 0.5


def explain(result, per_seed, miniature):
    """A paragraph saying why ``result`` (a ``report.ClaimResult``) is not reproduced or inconclusive, from the
    measurements in ``per_seed`` (one results dict per seed); None for a reproduced or unmeasured claim."""
    if not result.measured or result.verdict == "reproduced":
        return None
    claim = result.claim
    key = claim.key
    parts = [_noise(result)]
    favoured_nets, other_nets = nets_of(claim.favoured), nets_of(claim.other)
    if key.startswith(("lrn", "depth-", "jitter-", "shallow")):
        parts.append(_fit(per_seed, favoured_nets, other_nets, miniature, result.verdict))
        if not key.startswith("shallow"):  # the shallow-net claim is on the centre crop already
            parts.append(_crops(per_seed, list(dict.fromkeys(favoured_nets + other_nets)), miniature))
        parts.append(_granularity(CLASSES * miniature.test_per_class))
    elif key.startswith(("test-scale-", "multi-scale-")):
        parts.append(_scales(per_seed, favoured_nets, miniature))
        parts.append(_granularity(CLASSES * miniature.test_per_class))
    elif key.startswith(("multi-crop-", "combined-", "fusion-")):
        parts.append(_fit(per_seed, favoured_nets, [], miniature))
        parts.append(_granularity(CLASSES * (miniature.test_per_class if key == "fusion-dense"
                                             else miniature.multi_crop_per_class)))
        if key.startswith("fusion-"):
            parts.append("Fusion gains when the nets' errors differ; both nets here start from the same net A "
                         "and see the same images in the same order.")
    elif key in ("stall", "pre-initialisation", "glorot"):
        epochs = range(1, miniature.stall_epochs + 1)
        rows = [f"{name}: " + ", ".join(_value(per_seed, f"{name}/val@{e}") for e in epochs)
                + f" (training loss {_value(per_seed, f'{name}/train-loss', 3, '')})"
                for name in ("D-N(0,0.01)", "D-from-A", "D-Glorot")]
        if key in ("stall", "pre-initialisation"):
            fan_ins, factor = random_layers_gain(miniature, miniature.width_multiplier)
            _, paper_factor = random_layers_gain(miniature, 1.0)
            parts.append(f"Between and after A's copied layers, {len(fan_ins)} conv layers of D keep their N(0, "
                         f"0.01^2) weights; at initialisation they scale the signal's standard deviation by about "
                         f"{factor:.0e} in all at this width (fan-ins {min(fan_ins)} to {max(fan_ins)}), against "
                         f"{paper_factor:.0e} at the "
                         f"paper's width, so the copied FC layers receive almost nothing and the loss stays at "
                         f"ln 10 = 2.303, that of uniform guessing.")
        parts.append(f"Validation error after each of the first {_count(miniature.stall_epochs, 'epoch')}: "
                     + "; ".join(rows)
                     + ".")
    elif key.startswith(("pcr-scr", "fine-tune-all", "dense-localisation")):
        parts.append(f"The scenes' classifier: {_value(per_seed, 'localisation/classifier/top-1')} top-1 and "
                     f"{_value(per_seed, 'localisation/classifier/top-5')} top-5 error; boxes that look at "
                     f"nothing: whole image {_value(per_seed, 'localisation/baseline/whole-image box')}, mean-sized "
                     f"centre box {_value(per_seed, 'localisation/baseline/centre box')}. "
                     + _granularity(miniature.scenes[2], "test scenes"))
        if key == "pcr-scr":
            parts.append(f"Each class's box of PCR learns from about {miniature.scenes[0] // CLASSES} training "
                         f"scenes, SCR's one box from all {miniature.scenes[0]}: the paper's ILSVRC gives each of "
                         f"its classes' boxes hundreds of images.")
        if key == "dense-localisation":
            parts.append("Protocol 2 must also guess the class (here from the classifier's top 5), and a 64-pixel "
                         "net's dense windows at Q = 96 are 2 x 2, 32 pixels apart, where the paper's 224-pixel "
                         "windows step by 32 in much larger images.")
    elif key.startswith(("transfer-", "stacking")):
        names = sorted({k[len("transfer/"):] for r in per_seed for k in r
                        if k.startswith("transfer/") and not k.endswith("/dimensions")})
        parts.append("Mean class recall of every representation: " + ", ".join(
            f"{name} {_value(per_seed, f'transfer/{name}')}" for name in names) + ". "
            + f"The SVMs train on {miniature.transfer_train_per_class} digits per class.")
        if key in ("transfer-random", "transfer-pixels", "transfer-depth"):
            parts.append("The trained nets' fc7 units were trained to tell 10 kinds of clothing apart from "
                         f"{miniature.train_per_class * CLASSES * 9 // 10:,} images; the paper's came from 1000 "
                         "classes and 1.3 million images. A random net's units "
                         "and the pixels keep the digits' shapes, and a linear SVM on the pixels alone already "
                         "separates the digits.")
    return " ".join(part for part in parts if part)
