"""Image folders for tests: readable images of every awkward kind beside unreadable ones."""
import numpy as np
from PIL import Image

from minivgg.data import ImageFolder


def bad_image_folder(root, rng):
    """Readable images of every awkward kind and two unreadable ones, in two classes."""
    def save(name, array, mode=None, **kwargs):
        image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
        image.save(root / name, **kwargs)

    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
    photo = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    save("a/rgb.jpg", photo)
    save("a/gray.jpg", photo[:, :, 0])
    save("a/cmyk.jpg", photo, "CMYK")
    save("a/rgba.png", np.dstack([photo, np.full((30, 40), 128, np.uint8)]))
    save("b/palette.png", photo, "P")
    save("b/tiny.png", photo[:5, :7])  # smaller than the crop: upscaled
    save("b/rgb.png", photo)
    (root / "b" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    save("b/truncated.jpg", photo, quality=95)
    data = (root / "b" / "truncated.jpg").read_bytes()
    (root / "b" / "truncated.jpg").write_bytes(data[:len(data) // 3])
    return ImageFolder(root)
