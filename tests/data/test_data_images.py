"""Decoding: every readable image becomes RGB uint8, every unreadable one a BadImageError naming the file,
and large JPEGs decode at reduced size (draft mode) without going below the requested smallest side."""
import numpy as np
import pytest
from PIL import Image

from minivgg.data import BadImageError, decode_image
from minivgg.data.images import ALPHA_BACKGROUND, draft_request, is_image_file
from minivgg.data.transforms import rescale_smallest_side


def photo(rng, height, width):
    """A smooth RGB image with some texture: JPEG compresses it the way it compresses photographs."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([200 * x + 30, 180 * y + 40, 120 * (1 - x) + 60 * y + 40], axis=-1)
    return np.clip(base + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)


def test_rgb_jpeg_decodes_to_rgb_uint8(tmp_path, rng):
    image = photo(rng, 30, 40)
    Image.fromarray(image).save(tmp_path / "a.jpg", quality=95)
    decoded = decode_image(tmp_path / "a.jpg")
    assert decoded.dtype == np.uint8 and decoded.shape == (30, 40, 3)
    assert np.abs(decoded.astype(int) - image).mean() < 6  # JPEG noise only


def test_grayscale_jpeg_is_repeated_over_three_channels(tmp_path, rng):
    gray = photo(rng, 20, 24)[:, :, 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "g.jpg")
    decoded = decode_image(tmp_path / "g.jpg")
    assert decoded.shape == (20, 24, 3)
    assert np.array_equal(decoded[:, :, 0], decoded[:, :, 1]) and np.array_equal(decoded[:, :, 0], decoded[:, :, 2])


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path, rng):
    image = photo(rng, 32, 32)
    Image.fromarray(image).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as stored:
        assert stored.mode == "CMYK"
    decoded = decode_image(tmp_path / "c.jpg")
    assert decoded.shape == (32, 32, 3)
    assert np.abs(decoded.astype(int) - image).mean() < 6  # the colours survive, inversion included


def test_rgba_png_is_composited_over_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (200, 10, 50)
    rgba[0, :, 3] = 255      # opaque row: its own colour
    rgba[1, 0, 3] = 0        # transparent: the background
    rgba[1, 1:, 3] = 128     # half: in between
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    decoded = decode_image(tmp_path / "a.png")
    assert decoded.shape == (2, 3, 3)
    assert (decoded[0] == (200, 10, 50)).all()
    assert (decoded[1, 0] == ALPHA_BACKGROUND).all()
    expected = np.rint(np.array([200, 10, 50]) * 128 / 255 + 255 * (1 - 128 / 255))
    assert np.array_equal(decoded[1, 1], expected)


def test_palette_png_with_and_without_transparency(tmp_path):
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette)
    image.save(tmp_path / "p.png")
    decoded = decode_image(tmp_path / "p.png")
    assert np.array_equal(decoded[0, 0], (255, 0, 0)) and np.array_equal(decoded[1, 0], (0, 0, 255))
    image.save(tmp_path / "t.png", transparency=1)  # green becomes transparent
    decoded = decode_image(tmp_path / "t.png")
    assert (decoded[0, 1] == ALPHA_BACKGROUND).all() and np.array_equal(decoded[0, 0], (255, 0, 0))


def test_sixteen_bit_grayscale_png_is_scaled_to_eight_bits(tmp_path):
    values = np.array([[0, 257 * 100], [65535, 257 * 7]], np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    decoded = decode_image(tmp_path / "16.png")
    assert np.array_equal(decoded[..., 0], [[0, 100], [255, 7]]) and decoded.dtype == np.uint8


def truncated_jpeg(path, rng):
    Image.fromarray(photo(rng, 64, 64)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "empty", "text", "png_named_jpeg_but_broken"])
def test_unreadable_files_raise_bad_image_error_naming_the_file(tmp_path, rng, kind):
    path = tmp_path / f"{kind}.JPEG"
    if kind == "truncated":
        truncated_jpeg(path, rng)
    elif kind == "corrupt":
        path.write_bytes(b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 2000).astype(np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not an image")
    else:
        Image.fromarray(photo(rng, 16, 16)).save(tmp_path / "x.png")
        path.write_bytes((tmp_path / "x.png").read_bytes()[:60])
    with pytest.raises(BadImageError, match=f"{kind}.JPEG: cannot decode image"):
        decode_image(path)
    assert issubclass(BadImageError, ValueError)


def test_png_saved_with_a_jpeg_name_is_read_by_its_content(tmp_path, rng):
    image = photo(rng, 10, 12)
    Image.fromarray(image).save(tmp_path / "x.png")
    (tmp_path / "actually_png.JPEG").write_bytes((tmp_path / "x.png").read_bytes())
    assert np.array_equal(decode_image(tmp_path / "actually_png.JPEG"), image)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        decode_image(tmp_path / "nowhere.jpg")


def test_draft_mode_decodes_a_large_jpeg_smaller_but_never_below_the_requested_side(tmp_path, rng):
    image = photo(rng, 900, 1200)
    Image.fromarray(image).save(tmp_path / "big.jpg", quality=90)
    drafted = decode_image(tmp_path / "big.jpg", draft_smallest_side=200)
    assert drafted.shape == (225, 300, 3)  # 1/4 scale: the largest reduction keeping the smallest side >= 200
    full = decode_image(tmp_path / "big.jpg")
    assert full.shape == (900, 1200, 3)
    # What training sees after rescaling to S = 200 hardly depends on the route.
    difference = rescale_smallest_side(drafted, 200).astype(int) - rescale_smallest_side(full, 200)
    assert np.abs(difference).mean() < 2.0


def test_draft_mode_leaves_an_image_under_twice_the_side_alone(tmp_path, rng):
    Image.fromarray(photo(rng, 375, 500)).save(tmp_path / "n.jpg")
    assert decode_image(tmp_path / "n.jpg", draft_smallest_side=256).shape == (375, 500, 3)
    assert draft_request(500, 375, 256) is None
    assert draft_request(1200, 900, 200) == (267, 200)


def test_image_file_names():
    assert is_image_file("a.JPEG") and is_image_file("b.Png") and is_image_file("c.jpg")
    assert not is_image_file("._a.jpg") and not is_image_file("notes.txt") and not is_image_file("jpg")
