"""One image, one answer (issue 28): a file, the PIL image opened from it, its bytes, an open file object and an
array of its pixels go through one conversion, so predict gives each the same posteriors: alpha composited over
white, 16 bits scaled (never clipped), EXIF orientation applied, grey repeated over the channels."""
import io

import numpy as np
import pytest
from PIL import Image
from hostile_files import tiny_weights

import minivgg
from minivgg import weights
from minivgg.data import decode_image
from minivgg.data.images import as_rgb_array


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return weights.load(tiny_weights(tmp_path_factory.mktemp("w") / "w.safetensors")).eval()


def _probabilities(model, image):
    return np.array([p.probability for p in minivgg.predict(model, image, top=3)[0]])


def _same_answer(model, path):
    """Every form of one image gets the same posteriors."""
    expected = _probabilities(model, path)
    with Image.open(path) as image:
        assert np.array_equal(_probabilities(model, image), expected)
    with open(path, "rb") as handle:
        assert np.array_equal(_probabilities(model, handle), expected)
    assert np.array_equal(_probabilities(model, path.read_bytes()), expected)
    return expected


def test_rgba_files_and_their_pil_images_are_composited_alike(model, tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 48, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    expected = _same_answer(model, tmp_path / "rgba.png")
    assert np.array_equal(_probabilities(model, rgba), expected)  # the (H, W, 4) array too
    dropped = _probabilities(model, np.ascontiguousarray(rgba[:, :, :3]))  # alpha dropped: another answer
    assert np.abs(dropped - expected).max() > 1e-3
    alpha = rgba[:, :, 3:] / 255.0
    composited = np.rint(rgba[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    assert np.abs(decode_image(tmp_path / "rgba.png").astype(int) - composited).max() <= 1


def test_sixteen_bit_files_are_scaled_never_clipped(model, tmp_path):
    rng = np.random.default_rng(1)
    values = rng.integers(0, 65536, (40, 48), dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as image:
        assert image.mode.startswith("I;16")
    expected = _same_answer(model, tmp_path / "g16.png")
    assert np.array_equal(_probabilities(model, values), expected)  # the uint16 array too
    decoded = decode_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(decoded[:, :, 0], (values.astype(np.int64) + 128) // 257)
    clipped = np.repeat(np.minimum(values, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    assert np.abs(_probabilities(model, clipped) - expected).max() > 1e-3


def test_a_dark_sixteen_bit_image_stays_dark(tmp_path):
    """Values under 256 in a 16-bit file are 16-bit values (nearly black), not 8-bit ones."""
    Image.fromarray(np.full((8, 8), 200, np.uint16)).save(tmp_path / "dark16.png")
    assert decode_image(tmp_path / "dark16.png").max() == 1


def test_exif_orientation_is_applied_to_files_and_pil_images_alike(model, tmp_path):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees clockwise to show it
    Image.fromarray(pixels).save(tmp_path / "sideways.jpg", exif=exif.tobytes(), quality=95)
    decoded = decode_image(tmp_path / "sideways.jpg")
    assert decoded.shape == (64, 40, 3)
    with Image.open(tmp_path / "sideways.jpg") as image:
        assert np.array_equal(as_rgb_array(image), decoded)
    _same_answer(model, tmp_path / "sideways.jpg")
    from PIL import ImageOps  # an image the user turned already: not turned twice
    with Image.open(tmp_path / "sideways.jpg") as image:
        assert np.array_equal(as_rgb_array(ImageOps.exif_transpose(image)), decoded)


def test_palette_with_transparency_and_grey_images_get_one_answer(model, tmp_path):
    rng = np.random.default_rng(3)
    palette = Image.fromarray(rng.integers(0, 4, (40, 48), dtype=np.uint8), "P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30] + [0] * 756)
    palette.info["transparency"] = 1
    palette.save(tmp_path / "palette.png", transparency=1)
    _same_answer(model, tmp_path / "palette.png")
    grey = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    expected = _same_answer(model, tmp_path / "grey.png")
    assert np.array_equal(_probabilities(model, grey), expected)  # a 2-D array is one grey image


@pytest.mark.parametrize("image, error, message", [
    (7, TypeError, "image 0 is a int; give a file path, the bytes of an image file, an open file"),
    (np.zeros((40, 48, 1, 5), np.uint8), ValueError, r"image 0: expected an image array \(H, W\) grey"),
    (np.zeros(40, np.uint8), ValueError, r"image 0: expected an image array .* got uint8 of shape \(40,\)"),
    (np.zeros((40, 48, 3), np.float32), ValueError, r"pixels in \[0, 1\]\? multiply by 255"),
    (b"not an image", ValueError, r"image 0 \(bytes\): cannot decode image"),
])
def test_what_is_not_an_image_is_named(image, error, message, model):
    with pytest.raises(error, match=message):
        minivgg.predict(model, image, top=1)


def test_an_empty_batch_is_named(model):
    with pytest.raises(ValueError, match="the input is a batch of 0 .* give at least one sample"):
        model.forward(np.zeros((0, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="no images given"):
        minivgg.predict(model, np.zeros((0, 40, 40, 3), np.uint8), top=1)
    assert len(minivgg.predict(model, [io.BytesIO(_png_bytes())], top=1)) == 1


def _png_bytes():
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 50, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
