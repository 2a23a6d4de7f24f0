"""A tiny ILSVRC-2012 as unpacked from its archives, for end-to-end runs of the command line on a CPU:
``train/<wnid>/*.JPEG``, a flat ``val/`` of ``ILSVRC2012_val_*.JPEG`` and the devkit's ground truth with its
``meta.mat``, whose numbering is not the sorted wnids' (as in the real devkit)."""
import numpy as np
from PIL import Image

WNIDS = ["n01440764", "n01443537", "n01484850"]  # tench, goldfish, great white shark: real ILSVRC classes
DEVKIT_ORDER = [WNIDS[2], WNIDS[0], WNIDS[1]]  # ILSVRC2012_ID 1, 2, 3
SMALL_NET = ["--width", "0.125", "--fc-width", "16", "--crop", "32", "--batch-size", "8", "--epochs", "1"]


def _write_meta_mat(path, wnids_by_id):
    from scipy.io import savemat

    fields = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    synsets = np.zeros((len(wnids_by_id) + 1, 1), dtype=fields)
    for k, wnid in enumerate(wnids_by_id):
        synsets[k, 0] = (k + 1, wnid, "leaf", 0)
    synsets[-1, 0] = (len(wnids_by_id) + 1, "n00001740", "entity", 3)  # an inner synset, as the devkit has
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"synsets": synsets})


def _image(rng, label):
    """A 40x48 photo-like image whose colour says its class (so a net can learn something)."""
    base = np.zeros((40, 48, 3), np.float64)
    base[..., label] = 160
    return Image.fromarray(np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8))


def make_tiny_imagenet(root, train_per_class=8, val_per_class=3, seed=0):
    """Write the tiny ImageNet under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for label, wnid in enumerate(WNIDS):
        folder = root / "train" / wnid
        folder.mkdir(parents=True)
        for i in range(train_per_class):
            _image(rng, label).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    (root / "val").mkdir()
    labels = [label for label in range(len(WNIDS)) for _ in range(val_per_class)]
    ids = []
    for number, label in enumerate(rng.permutation(labels), 1):
        _image(rng, label).save(root / "val" / f"ILSVRC2012_val_{number:08d}.JPEG", quality=90)
        ids.append(DEVKIT_ORDER.index(WNIDS[label]) + 1)
    data = root / "ILSVRC2012_devkit_t12" / "data"
    _write_meta_mat(data / "meta.mat", DEVKIT_ORDER)
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{i}\n" for i in ids))
    return root
