"""Messy class folders: every bad file is skipped and listed, every good one loads right."""

import os

import numpy as np
import pytest
from PIL import Image

from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.data.locations import list_location

from tests_support import write_image_folder


@pytest.fixture
def messy(tmp_path):
    """A class folder holding one of every kind of trouble the issue lists, next to good images."""
    root = write_image_folder(tmp_path / "training", ["a", "b"], per_class=3, size=8)
    a, b = root / "a", root / "b"
    (a / "zero.png").write_bytes(b"")
    good_png = (a / "img_000.png").read_bytes()
    (a / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    jpeg = Image.fromarray(np.full((32, 32, 3), 120, np.uint8))
    jpeg.save(b / "whole.jpg", quality=90)
    (b / "truncated.jpg").write_bytes((b / "whole.jpg").read_bytes()[:200])
    (a / "text.jpg").write_text("this is a text file renamed .jpg")
    (a / "folder.png").mkdir()
    (a / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (a / "._img_000.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    os.symlink("loop.png", a / "loop.png")  # points at itself
    os.symlink(tmp_path / "gone.png", b / "dangling.png")
    return root


def test_every_bad_file_is_skipped_and_listed_with_its_reason(messy):
    images = load_images(messy, image_size=8, color_mode="grayscale")
    reasons = {os.path.basename(s.path): s.reason for s in images.skipped}
    assert reasons == {
        "zero.png": "empty file (0 bytes)",
        "truncated.png": reasons["truncated.png"],
        "truncated.jpg": reasons["truncated.jpg"],
        "text.jpg": "not an image Pillow can read",
        "folder.png": "a folder (sub-folders of a class are not read)",
        "loop.png": "symbolic link loop",
        "dangling.png": "broken symbolic link (its target is missing)",
    }
    assert reasons["truncated.png"].startswith(("truncated or corrupt image", "damaged or truncated image"))
    assert reasons["truncated.jpg"].startswith(("truncated or corrupt image", "damaged or truncated image"))
    assert len(images) == 7 and images.counts() == [3, 4]  # 3 + 3 good, plus whole.jpg
    assert ".DS_Store" not in reasons and "._img_000.png" not in reasons


def _one_image_set(tmp_path, image: Image.Image, name: str, **save):
    root = tmp_path / "t"
    (root / "x").mkdir(parents=True)
    image.save(root / "x" / name, **save)
    write_image_folder(root, ["y"], per_class=1, size=8)
    return root


def _the_image(images):
    return images.x[images.y == 0][0]


def test_exif_rotation_is_applied(tmp_path):
    pixels = np.zeros((16, 32), np.uint8)  # wide: 32 across, 16 down
    pixels[:8, :8] = 255  # a bright block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    root = _one_image_set(tmp_path, Image.fromarray(pixels), "rotated.jpg", exif=exif, quality=95)
    image = _the_image(load_images(root, image_size=16, color_mode="grayscale"))[..., 0]
    assert image[:4, 12:].mean() > 0.8  # displayed: the block sits top-right
    assert image[:4, :4].mean() < 0.2


def test_palette_rgba_cmyk_and_animated_gif_load_with_their_colours(tmp_path):
    root = tmp_path / "t"
    for name in ("palette", "rgba", "cmyk", "gif", "tiny"):
        (root / name).mkdir(parents=True)
    palette = Image.new("P", (6, 6))
    palette.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    palette.save(root / "palette" / "p.png")
    Image.new("RGBA", (6, 6), (0, 255, 0, 90)).save(root / "rgba" / "a.png")
    Image.new("CMYK", (6, 6), (0, 0, 255, 0)).save(root / "cmyk" / "c.jpg")
    frames = [Image.new("RGB", (6, 6), (0, 0, 255)), Image.new("RGB", (6, 6), (255, 255, 0))]
    frames[0].save(root / "gif" / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (1, 1), (200, 100, 50)).save(root / "tiny" / "one.png")
    images = load_images(root, image_size=4)
    assert images.channels == 3
    colour = {images.class_names[k]: images.x[images.y == k][0].mean(axis=(0, 1)) for k in range(5)}
    np.testing.assert_allclose(colour["palette"], [1, 0, 0], atol=0.02)
    np.testing.assert_allclose(colour["rgba"], [0, 1, 0], atol=0.02)
    assert colour["cmyk"][2] < 0.2 and colour["cmyk"][0] > 0.8 and colour["cmyk"][1] > 0.8  # yellow
    np.testing.assert_allclose(colour["gif"], [0, 0, 1], atol=0.02)  # the first frame
    np.testing.assert_allclose(colour["tiny"], [200 / 255, 100 / 255, 50 / 255], atol=0.02)


def test_sixteen_bit_grayscale_keeps_its_contrast(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    root = _one_image_set(tmp_path, Image.fromarray(ramp), "wide.png")
    image = _the_image(load_images(root, image_size=8))[..., 0]
    assert image.min() < 0.01 and 0.9 < image.max() <= 1.0  # scaled from 16 bits, not clipped at 255
    assert len(np.unique(image)) > 50


def test_a_huge_image_loads_and_one_past_pillows_limit_is_skipped(tmp_path, monkeypatch):
    root = _one_image_set(tmp_path, Image.new("L", (6000, 6000), 90), "big.png")
    images = load_images(root, image_size=8, cache=False)
    assert len(images) == 2 and _the_image(images).mean() == pytest.approx(90 / 255, abs=0.01)
    Image.new("L", (8, 8), 10).save(root / "x" / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000 * 6000 // 3)  # now 6000x6000 is a "bomb"
    images = load_images(root, image_size=8, cache=False)
    assert len(images) == 2
    assert [(os.path.basename(s.path), s.reason) for s in images.skipped] == [
        ("big.png", "too many pixels (Pillow's decompression-bomb limit); skipped")
    ]


def test_listing_never_follows_hidden_or_temp_files(tmp_path):
    root = write_image_folder(tmp_path / "t", 2, per_class=2)
    (root / "0" / ".img_000.png.abc123.partial.png").write_bytes((root / "0" / "img_000.png").read_bytes())
    assert len(list_location(root).files) == 4
