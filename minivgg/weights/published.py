"""Published VGG weights by name: ``minivgg.pretrained("vgg16")`` (and ``minivgg download vgg16``).

The first call downloads the published file (resumable, with a bar: ``minivgg.weights.download``), checks its
SHA-256, converts it with the importers of ``minivgg.weights.convert`` (the same path as ``minivgg convert``) and
keeps the converted safetensors file; later calls load that file. Both live in the cache folder:
``$MINIVGG_HOME`` if set, else ``$XDG_CACHE_HOME/minivgg``, else ``~/.cache/minivgg`` (torch hub's
``$TORCH_HOME`` and Keras's ``$KERAS_HOME`` work the same way)::

    ~/.cache/minivgg/downloads/vgg16-397923af.pth     the published file, as downloaded and checked
    ~/.cache/minivgg/vgg16-397923af.safetensors      its conversion: parameters, preprocessing, class names

The published files (``PUBLISHED``):

- torchvision's ``vgg11/13/16/19`` (configurations A, B, D, E of Table 1) and their batch-normalised
  ``_bn`` variants, trained by torchvision from scratch with its simplified recipe. The eight hex digits in
  each file name are the first eight of the file's SHA-256 (torch hub's convention, which its
  ``check_hash`` tests); torchvision publishes no full digest, so that prefix is what is checked here too.
  The accuracies are those torchvision's ``weights.meta["_metrics"]`` records (single 224 crop of the image
  rescaled to 256).
- The authors' Caffe release of the 16- and 19-layer nets (D and E, trained with scale jittering, Sect. 3.1):
  ``VGG_ILSVRC_16_layers.caffemodel`` and ``VGG_ILSVRC_19_layers.caffemodel``. Their release page gives no
  checksum, so nothing is checked but the conversion itself (which refuses a truncated or garbled file); the
  digest of what was downloaded is printed so it can be recorded, and ``pretrained(name, sha256=...)`` pins it.

The batch-normalised entries go through the same converter, which reads their running statistics and int64
counters into ``BatchNorm2d`` layers.
"""
import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

from .download import download, sha256_of

__all__ = ["PublishedWeights", "PUBLISHED", "CACHE_VARIABLE", "cache_folder",
           "published", "fetch", "weights_file", "pretrained"]

CACHE_VARIABLE = "MINIVGG_HOME"


@dataclass(frozen=True)
class PublishedWeights:
    """One published weight file and what is known about it.

    Attributes
    ----------
    name : the name to ask for (``"vgg16"``)
    url : where the file is published
    source_format : ``"torchvision"`` or ``"caffe"`` (``minivgg.weights.convert.FORMATS``)
    config : the Table 1 column the weights fill
    batch_norm : whether the net has a batch-normalisation layer after every convolution
    sha256 : the expected SHA-256: all 64 hex digits, a leading prefix, or None when none is published
    digest_source : where ``sha256`` comes from
    accuracy : published ImageNet validation accuracy in %, ``{"top1": ..., "top5": ..., "quoted_from": where the
        figures are quoted from, "protocol": how they were measured}``; figures quoted under different
        protocols (torchvision's centre crop, the paper's dense multi-scale evaluation) do not compare
    """

    name: str
    url: str
    source_format: str
    config: str
    batch_norm: bool = False
    sha256: str = None
    digest_source: str = "none published"
    accuracy: dict = field(default_factory=dict)

    @property
    def file_name(self):
        return os.path.basename(urlparse(self.url).path)

    @property
    def converted_name(self):
        """The converted file is named after the published one, so a new release never meets an old cache."""
        return os.path.splitext(self.file_name)[0] + ".safetensors"


_TORCHVISION = "https://download.pytorch.org/models/"
_TORCHVISION_DIGEST = "the file name's SHA-256 prefix (torch hub convention); torchvision publishes no full digest"
_TORCHVISION_QUOTED = "torchvision's weights.meta[\"_metrics\"] for these files (ImageNet-1K val)"
_TORCHVISION_PROTOCOL = "single-crop: one 224x224 centre crop of the image rescaled to 256, no flip"
_CAFFE = "https://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/"


def _torchvision(name, config, file_name, top1, top5):
    digest = file_name.rsplit("-", 1)[1].split(".")[0]
    return PublishedWeights(name, _TORCHVISION + file_name, "torchvision", config, name.endswith("_bn"), digest,
                            _TORCHVISION_DIGEST, {"top1": top1, "top5": top5, "quoted_from": _TORCHVISION_QUOTED,
                                                  "protocol": _TORCHVISION_PROTOCOL})


def _caffe(name, config, file_name):
    # Table 4: D and E trained with S in [256, 512], dense evaluation at Q = {256, 384, 512}: 24.8% / 7.5% error.
    return PublishedWeights(name, _CAFFE + file_name, "caffe", config, accuracy={
        "top1": 75.2, "top5": 92.5,
        "quoted_from": "the paper's Table 4, the authors' own nets D and E trained with S in [256, 512] "
                       "(ILSVRC-2012 val); not measured on these files",
        "protocol": "dense multi-scale: the fully convolutional net over the whole image at Q = 256, 384, 512, "
                    "with flips, score maps averaged"})


PUBLISHED = {entry.name: entry for entry in [
    _torchvision("vgg11", "A", "vgg11-8a719046.pth", 69.020, 88.628),
    _torchvision("vgg13", "B", "vgg13-19584684.pth", 69.928, 89.246),
    _torchvision("vgg16", "D", "vgg16-397923af.pth", 71.592, 90.382),
    _torchvision("vgg19", "E", "vgg19-dcbb9e9d.pth", 72.376, 90.876),
    _torchvision("vgg11_bn", "A", "vgg11_bn-6002323d.pth", 70.370, 89.810),
    _torchvision("vgg13_bn", "B", "vgg13_bn-abd245e5.pth", 71.586, 90.374),
    _torchvision("vgg16_bn", "D", "vgg16_bn-6c64b313.pth", 73.360, 91.516),
    _torchvision("vgg19_bn", "E", "vgg19_bn-c79401a0.pth", 74.218, 91.842),
    _caffe("vgg16_caffe", "D", "VGG_ILSVRC_16_layers.caffemodel"),
    _caffe("vgg19_caffe", "E", "VGG_ILSVRC_19_layers.caffemodel"),
]}


def cache_folder():
    """``$MINIVGG_HOME``, else ``$XDG_CACHE_HOME/minivgg``, else ``~/.cache/minivgg`` (not created here)."""
    if os.environ.get(CACHE_VARIABLE):
        return os.path.expanduser(os.environ[CACHE_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minivgg")


def published(name):
    """The ``PublishedWeights`` called ``name`` (a ``PublishedWeights`` is returned as it is)."""
    if isinstance(name, PublishedWeights):
        return name
    if not isinstance(name, str):
        raise TypeError(f"pretrained: expected the name of published weights (a str), got {type(name).__name__}")
    if name not in PUBLISHED:
        raise ValueError(f"no published weights called {name!r}; choose one of {', '.join(PUBLISHED)}")
    return PUBLISHED[name]


def fetch(name, cache=None, progress=True, sha256=None):
    """Download the published file of ``name`` into ``cache/downloads`` (if not there) and return its path.

    ``sha256`` overrides the recorded digest (for the Caffe files, which have none). Raises DownloadError
    (offline, interrupted: run again to resume) or ChecksumError (the file is not the published one).
    """
    entry = published(name)
    expected = sha256 or entry.sha256
    path = os.path.join(cache or cache_folder(), "downloads", entry.file_name)
    fresh = not os.path.exists(path)
    download(entry.url, path, sha256=expected, progress=progress)
    if fresh and expected is None:
        print(f"{entry.name}: no published SHA-256 to check {entry.file_name} against; its SHA-256 is "
              f"{sha256_of(path)} (pass sha256= to pin it)")
    return path


def weights_file(name, cache=None, progress=True, sha256=None):
    """The converted minivgg weight file of ``name``: downloaded, checked and converted on first use.

    Returns the path of ``cache/<published file's stem>.safetensors``, written atomically by
    ``minivgg.weights.convert.convert``, its header recording the SHA-256 of the published file it was converted
    from (``published_sha256``) and of its own tensors (``tensors_sha256``). A converted file already in the cache
    is checked against both every time it is served (``check_cached``), so a file put there by hand, or changed
    since, is never used.
    """
    from .convert import read_published
    from .weight_file import save, tensors_digest

    entry = published(name)
    cache = cache or cache_folder()
    destination = os.path.join(cache, entry.converted_name)
    if os.path.lexists(destination):
        return check_cached(destination, entry, sha256)
    source = fetch(entry, cache, progress, sha256)
    model = read_published(source, entry.source_format)
    if model.config != entry.config or model.batch_norm != entry.batch_norm:
        found, expected = (f"configuration {m.config}{' with batch norm' * m.batch_norm}" for m in (model, entry))
        raise ValueError(f"{source} holds {found}, but {entry.name} is {expected}: the published file has "
                         f"changed; delete it and download again")
    save(model, destination, metadata={"converted_from": entry.file_name, "source_format": entry.source_format,
                                       PUBLISHED_DIGEST: sha256_of(source), TENSORS_DIGEST: tensors_digest(model)})
    return destination


PUBLISHED_DIGEST, TENSORS_DIGEST = "published_sha256", "tensors_sha256"  # header keys of a converted file


def check_cached(path, entry, sha256=None):
    """``path``, the converted file of ``entry`` in the cache, once its header's digests are checked: the
    published file it was converted from must have the published SHA-256 (``sha256``, else the entry's; any when
    none is published), and its tensors must be those converted. ``ChecksumError`` saying what to do otherwise."""
    from .download import ChecksumError, checked_digest
    from .weight_file import file_tensors_digest, read_metadata

    advice = (f"it was not used. Delete it and run `minivgg download {entry.name}` again (the published file is "
              f"downloaded, checked and converted)")
    try:
        record, metadata = read_metadata(path)
    except (ValueError, OSError) as error:
        raise ChecksumError(f"{path} is in the cache but is not a readable weight file ({error}); {advice}") from None
    source_digest, tensors = metadata.get(PUBLISHED_DIGEST), metadata.get(TENSORS_DIGEST)
    if not isinstance(source_digest, str) or not isinstance(tensors, str):
        raise ChecksumError(f"{path} is in the cache but was not converted from the published {entry.file_name} by "
                            f"minivgg (its header records no {PUBLISHED_DIGEST}); {advice}")
    expected = sha256 or entry.sha256
    if expected is not None and not source_digest.startswith(checked_digest(expected)):
        raise ChecksumError(f"{path} is in the cache but was converted from a file whose SHA-256 is "
                            f"{source_digest[:16]}..., not the published {checked_digest(expected)}; {advice}")
    architecture = record["architecture"]
    if architecture["config"] != entry.config or bool(architecture.get("batch_norm")) != entry.batch_norm:
        raise ChecksumError(f"{path} is in the cache but holds configuration {architecture['config']}, not "
                            f"{entry.name}'s {entry.config}; {advice}")
    if file_tensors_digest(path) != tensors:
        raise ChecksumError(f"{path} is in the cache but its tensors are not those converted (the file was changed "
                            f"since); {advice}")
    return path


def pretrained(name, cache=None, progress=True, sha256=None):
    """A ``VGG`` holding the published weights ``name``, in evaluation mode: ``minivgg.pretrained("vgg16")``.

    Parameters
    ----------
    name : one of ``PUBLISHED`` (``"vgg11"`` ... ``"vgg19_bn"``, ``"vgg16_caffe"``, ``"vgg19_caffe"``), or a
        ``PublishedWeights``
    cache : the cache folder, default ``cache_folder()``
    progress : show download and conversion bars
    sha256 : expected digest of the published file, overriding the recorded one

    The model knows its preprocessing (torchvision's RGB mean/std, or the Caffe models' BGR mean) and the
    1000 ILSVRC class names: ``minivgg.predict(model, images)`` applies both.
    """
    from .weight_file import load

    return load(weights_file(name, cache, progress, sha256)).eval()
