"""Published weights by name, without the internet: a small torchvision-layout file (and a caffemodel) served
by a local HTTP server on 127.0.0.1, downloaded, checked, converted and cached, including downloads that are
cut off mid-file, a server that ignores Range requests, a corrupted file, and no server at all."""
import hashlib
import re
import socket

import numpy as np
import pytest

from minivgg.weights import published as hub
from minivgg import weights
from minivgg.cli.program import main
from minivgg.weights.download import ChecksumError, DownloadError
from minivgg.weights.published import PUBLISHED, PublishedWeights, cache_folder, pretrained
from minivgg.models import vgg
from minivgg.preprocessing import CAFFE_VGG, TORCHVISION
from local_server import server  # noqa: F401  (the local HTTP server fixture)
from weight_file_writers import state_dict_of, write_caffemodel, write_torch_zip

TINY = dict(width_multiplier=1 / 16, fc_width=8, num_classes=1000, input_size=32)


@pytest.fixture(scope="module")
def source():
    return vgg("D", seed=3, **TINY).eval()


@pytest.fixture(scope="module")
def published_file(source, tmp_path_factory):
    """The bytes of a torchvision-layout state dict of a tiny configuration D, as torch.save writes it."""
    path = tmp_path_factory.mktemp("published") / "tiny16-xxxxxxxx.pth"
    write_torch_zip(path, state_dict_of(source))
    return path.read_bytes()


def _serve(server, data, file_name, digest, source_format="torchvision", config="D"):
    server.files[f"/{file_name}"] = data
    return PublishedWeights("tiny16", f"{server.url}/{file_name}", source_format, config, sha256=digest)


def _same_outputs(model, source, rng):
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x), source.forward(x))


@pytest.mark.parametrize("digits", [64, 8], ids=["full-digest", "torchvision-prefix"])
def test_pretrained_downloads_checks_converts_and_caches(server, published_file, source, tmp_path, rng, digits):
    digest = hashlib.sha256(published_file).hexdigest()[:digits]
    entry = _serve(server, published_file, f"tiny16-{digest[:8]}.pth", digest)
    model = pretrained(entry, cache=tmp_path, progress=False)
    assert not model.training and model.config == "D" and model.preprocessing == TORCHVISION
    assert model.class_names[0] == "tench" and len(model.class_names) == 1000
    _same_outputs(model, source, rng)
    assert (tmp_path / "downloads" / entry.file_name).read_bytes() == published_file
    converted = tmp_path / f"tiny16-{digest[:8]}.safetensors"
    assert weights.read_metadata(converted)[1]["source_format"] == "torchvision"
    assert not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob(".minivgg-tmp-*"))
    requests = len(server.requests)
    _same_outputs(pretrained(entry, cache=tmp_path, progress=False), source, rng)
    assert len(server.requests) == requests, "the second call must load the cache, not download again"


def test_cache_folder_is_minivgg_home_then_xdg_then_home(monkeypatch, tmp_path, server, published_file):
    monkeypatch.setenv("MINIVGG_HOME", str(tmp_path / "home"))
    assert cache_folder() == str(tmp_path / "home")
    monkeypatch.delenv("MINIVGG_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == str(tmp_path / "xdg" / "minivgg")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert cache_folder() == str(tmp_path / "user" / ".cache" / "minivgg")
    monkeypatch.setenv("MINIVGG_HOME", str(tmp_path / "home"))
    entry = _serve(server, published_file, "tiny16.pth", hashlib.sha256(published_file).hexdigest())
    pretrained(entry, progress=False)
    assert (tmp_path / "home" / "tiny16.safetensors").exists()


def test_a_download_cut_off_midway_resumes_with_a_range_request(server, published_file, source, tmp_path, rng):
    entry = _serve(server, published_file, "tiny16.pth", hashlib.sha256(published_file).hexdigest())
    server.mode = "cut"
    with pytest.raises(DownloadError, match=r"closed the connection after .* bytes; they are kept .* resume"):
        pretrained(entry, cache=tmp_path, progress=False)
    partial = tmp_path / "downloads" / "tiny16.pth.partial"
    half = len(published_file) // 2
    assert partial.read_bytes() == published_file[:half]
    assert not (tmp_path / "downloads" / "tiny16.pth").exists() and not (tmp_path / "tiny16.safetensors").exists()
    server.mode, server.bytes_sent = "normal", 0
    _same_outputs(pretrained(entry, cache=tmp_path, progress=False), source, rng)
    assert server.requests[-1] == ("/tiny16.pth", f"bytes={half}-")
    assert server.bytes_sent == len(published_file) - half, "only the missing bytes are fetched again"


def test_a_chunked_body_cut_off_midway_is_a_download_error_and_resumes(server, published_file, source, tmp_path,
                                                                      rng):
    entry = _serve(server, published_file, "tiny16.pth", hashlib.sha256(published_file).hexdigest())
    server.mode = "cut-chunked"  # http.client raises IncompleteRead, not an OSError, for a chunk cut short
    with pytest.raises(DownloadError, match=r"the connection broke after 0 bytes .* run again to resume"):
        pretrained(entry, cache=tmp_path, progress=False)
    assert (tmp_path / "downloads" / "tiny16.pth.partial").exists()
    server.mode = "normal"
    _same_outputs(pretrained(entry, cache=tmp_path, progress=False), source, rng)


def test_a_full_disk_is_a_write_error_naming_the_file_not_a_broken_connection(server, published_file, tmp_path,
                                                                              monkeypatch):
    import builtins
    import errno

    from minivgg.weights import download as download_module
    from minivgg.errors import WriteError

    class Full:
        def __init__(self, path, mode):
            self.handle = builtins.open(path, mode)

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exception):
            self.handle.close()

    entry = _serve(server, published_file, "tiny16.pth", hashlib.sha256(published_file).hexdigest())
    monkeypatch.setattr(download_module, "open", Full, raising=False)
    with pytest.raises(WriteError, match=r"cannot write .*tiny16.pth.partial after 0 bytes \(.*No space left"):
        pretrained(entry, cache=tmp_path, progress=False)


def test_a_server_that_ignores_range_is_read_from_the_start(server, published_file, source, tmp_path, rng):
    entry = _serve(server, published_file, "tiny16.pth", hashlib.sha256(published_file).hexdigest())
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "tiny16.pth.partial").write_bytes(published_file[:1000])
    server.mode = "ignore-range"
    _same_outputs(pretrained(entry, cache=tmp_path, progress=False), source, rng)
    assert server.requests == [("/tiny16.pth", "bytes=1000-")]
    assert (tmp_path / "downloads" / "tiny16.pth").read_bytes() == published_file


def test_a_range_answer_that_does_not_continue_the_file_is_not_appended(server, published_file, source, tmp_path,
                                                                         rng):
    entry = _serve(server, published_file, "tiny16.pth", hashlib.sha256(published_file).hexdigest())
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "tiny16.pth.partial").write_bytes(published_file[:1000])
    server.mode = "wrong-range"
    with pytest.raises(DownloadError, match="asked for the bytes from 1,000 on, the server sent the range 'bytes 0-"):
        pretrained(entry, cache=tmp_path, progress=False)
    assert not (tmp_path / "downloads" / "tiny16.pth.partial").exists()
    _same_outputs(pretrained(entry, cache=tmp_path, progress=False), source, rng)


def test_a_corrupted_download_is_refused_never_used_then_fetched_again(server, published_file, source, tmp_path,
                                                                          rng):
    digest = hashlib.sha256(published_file).hexdigest()
    entry = _serve(server, published_file, "tiny16.pth", digest[:8])
    server.mode = "corrupt"
    with pytest.raises(ChecksumError, match=f"expected SHA-256 prefix \\(8 hex digits\\) is {digest[:8]}"):
        pretrained(entry, cache=tmp_path, progress=False)
    assert not (tmp_path / "downloads" / "tiny16.pth").exists(), "a bad file is never renamed into place"
    assert not (tmp_path / "tiny16.safetensors").exists(), "a bad file is never converted"
    assert (tmp_path / "downloads" / "tiny16.pth.partial").stat().st_size == len(published_file)
    # Fixed server: the complete-but-bad partial file gets "416 Range Not Satisfiable", is dropped, fetched anew.
    server.mode = "normal"
    _same_outputs(pretrained(entry, cache=tmp_path, progress=False), source, rng)
    assert [r for _, r in server.requests[-2:]] == [f"bytes={len(published_file)}-", None]


def test_a_partial_file_longer_than_the_published_one_is_fetched_again_even_without_a_digest(server, published_file,
                                                                                           tmp_path):
    entry = _serve(server, published_file, "tiny16.pth", None)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "tiny16.pth.partial").write_bytes(published_file + b"left over")
    pretrained(entry, cache=tmp_path, progress=False)
    assert [r for _, r in server.requests] == [f"bytes={len(published_file) + 9}-", None]
    assert (tmp_path / "downloads" / "tiny16.pth").read_bytes() == published_file


def test_offline_is_a_clear_error_and_keeps_what_arrived(tmp_path, published_file):
    with socket.socket() as closed:  # a port nobody listens on: connection refused, as when offline
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    entry = PublishedWeights("tiny16", f"http://127.0.0.1:{port}/tiny16.pth", "torchvision", "D", sha256="0" * 8)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "tiny16.pth.partial").write_bytes(published_file[:500])
    with pytest.raises(DownloadError, match=r"cannot reach .*are you offline\? The 500 bytes received so far"):
        pretrained(entry, cache=tmp_path, progress=False)
    assert (tmp_path / "downloads" / "tiny16.pth.partial").stat().st_size == 500


def test_caffe_release_has_no_published_digest_and_says_what_it_got(server, source, tmp_path, rng, capsys):
    caffemodel = tmp_path / "VGG_ILSVRC_16_layers.caffemodel"
    write_caffemodel(caffemodel, source, v1=True)
    data = caffemodel.read_bytes()
    entry = _serve(server, data, "VGG_ILSVRC_16_layers.caffemodel", None, source_format="caffe")
    model = pretrained(entry, cache=tmp_path / "cache", progress=False)
    assert model.preprocessing == CAFFE_VGG
    _same_outputs(model, source, rng)
    out = capsys.readouterr().out
    assert "no published SHA-256 to check" in out and hashlib.sha256(data).hexdigest() in out
    with pytest.raises(ChecksumError):  # a pinned digest is checked like a published one
        pretrained(entry, cache=tmp_path / "other", progress=False, sha256="f" * 64)


def test_the_published_names_and_their_digests():
    torchvision = [e for e in PUBLISHED.values() if e.source_format == "torchvision"]
    assert sorted(e.name for e in torchvision) == sorted(f"vgg{n}{bn}" for n in (11, 13, 16, 19) for bn in ("", "_bn"))
    for entry in torchvision:
        assert entry.url.startswith("https://download.pytorch.org/models/")
        assert re.fullmatch(rf"{entry.name}-([0-9a-f]{{8}})\.pth", entry.file_name).group(1) == entry.sha256
        assert entry.batch_norm == entry.name.endswith("_bn")
        if entry.batch_norm:  # same Table 1 column, better top-1 (torchvision's figures)
            plain = PUBLISHED[entry.name[:-3]]
            assert entry.config == plain.config and entry.accuracy["top1"] > plain.accuracy["top1"]
    assert PUBLISHED["vgg16_bn"].accuracy["top1"] == 73.36 and PUBLISHED["vgg16"].accuracy["top1"] == 71.592
    for name, config in (("vgg16_caffe", "D"), ("vgg19_caffe", "E")):
        entry = PUBLISHED[name]
        assert entry.source_format == "caffe" and entry.config == config and entry.sha256 is None
        assert entry.file_name == f"VGG_ILSVRC_{name[3:5]}_layers.caffemodel"
    with pytest.raises(ValueError, match="no published weights called 'vgg16_c'; choose one of vgg11, vgg13"):
        pretrained("vgg16_c")


def test_batch_norm_weights_download_and_convert_with_their_running_statistics(server, tmp_path, rng):
    source = vgg("D", batch_norm=True, seed=5, **TINY).eval()
    for _, layer, key in source.named_buffers():  # statistics unlike the fresh ones, so loading them shows
        if key != "num_batches_tracked":
            layer.buffers[key] = (rng.random(layer.buffers[key].shape) + 0.5).astype(np.float32)
    arrays = state_dict_of(source)
    arrays.update({name: np.array(layer.buffers[key]) for name, layer, key in source.named_buffers()})
    path = tmp_path / "tiny16_bn.pth"
    write_torch_zip(path, arrays)
    data = path.read_bytes()
    server.files["/tiny16_bn.pth"] = data
    entry = PublishedWeights("tiny16_bn", f"{server.url}/tiny16_bn.pth", "torchvision", "D", batch_norm=True,
                             sha256=hashlib.sha256(data).hexdigest())
    model = pretrained(entry, cache=tmp_path / "cache", progress=False)
    assert model.batch_norm
    _same_outputs(model, source, rng)
    plain = PublishedWeights("tiny16", entry.url, "torchvision", "D", sha256=entry.sha256)
    with pytest.raises(ValueError, match="holds configuration D with batch norm, but tiny16 is configuration D:"):
        pretrained(plain, cache=tmp_path / "other", progress=False)
    assert not (tmp_path / "other" / "tiny16_bn.safetensors").exists(), "a wrong conversion is not kept"


def test_cli_download_lists_fetches_and_reports_errors(server, published_file, tmp_path, monkeypatch, capsys):
    assert main(["download"]) == 0
    listing = capsys.readouterr().out
    assert "vgg16_bn" in listing and "SHA-256 prefix 397923af" in listing and "vgg19_caffe" in listing
    entry = _serve(server, published_file, "tiny16.pth", hashlib.sha256(published_file).hexdigest())
    monkeypatch.setitem(hub.PUBLISHED, "tiny16", entry)
    assert main(["download", "tiny16", "--cache", str(tmp_path)]) == 0
    assert f"tiny16: {tmp_path / 'tiny16.safetensors'}" in capsys.readouterr().out
    server.shutdown()
    monkeypatch.setitem(hub.PUBLISHED, "gone", PublishedWeights("gone", f"{server.url}/gone.pth", "torchvision", "D"))
    server.server_close()
    assert main(["download", "gone", "--cache", str(tmp_path)]) == 1
    assert "are you offline?" in capsys.readouterr().err
    assert main(["download", "nothing", "--cache", str(tmp_path)]) == 1
    assert "no published weights called 'nothing'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["download", "tiny16", "--sha256", "not-hex"])
    assert "argument --sha256: a SHA-256 is up to 64 hex digits" in capsys.readouterr().err
    with pytest.raises(ValueError, match="up to 64 hex digits"):
        pretrained(entry, cache=tmp_path / "elsewhere", sha256="g" * 64)


def test_download_listing_says_where_each_accuracy_is_quoted_from_and_under_which_protocol(capsys):
    """torchvision's centre-crop figures and the paper's dense multi-scale ones are never in one column."""
    assert main(["download"]) == 0
    sections = capsys.readouterr().out.split("\n\n")
    torchvision, caffe = sections[0], sections[1]
    assert "accuracy quoted from torchvision's weights.meta" in torchvision
    assert "protocol: single-crop: one 224x224 centre crop of the image rescaled to 256" in torchvision
    assert "accuracy quoted from the paper's Table 4" in caffe and "not measured on these files" in caffe
    assert "protocol: dense multi-scale" in caffe and "Q = 256, 384, 512" in caffe
    listed = {line.split()[0]: section for section in (torchvision, caffe) for line in section.splitlines()
              if line.startswith("  vgg")}
    assert {name for name, section in listed.items() if section is caffe} == {"vgg16_caffe", "vgg19_caffe"}
    assert {name for name, section in listed.items() if section is torchvision} == {
        name for name, entry in PUBLISHED.items() if entry.source_format == "torchvision"}
    for entry in PUBLISHED.values():
        assert entry.accuracy["quoted_from"] and entry.accuracy["protocol"]
