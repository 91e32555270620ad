"""The decoder's shortcuts give exactly the pixels the plain Pillow path gives."""

import numpy as np
import pytest
from PIL import Image, ImageOps

from cnn_tui.core.data import decode


def _pillow(path, size, channels):
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("L" if channels == 1 else "RGB")
        return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)).reshape(size, size, channels)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize(("size", "channels"), [(9, 1), (6, 3), (9, 3)])
def test_plain_pngs_take_the_shortcut_and_match_pillow(tmp_path, mode, size, channels):
    rng = np.random.default_rng(1)
    shape = (9, 9) if mode == "L" else (9, 9, len(mode))
    path = tmp_path / "a.png"
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)
    assert decode._plain_png(str(path)) is not None  # noqa: SLF001
    pixels, colour = decode.decode(str(path), size, channels)
    np.testing.assert_array_equal(pixels, _pillow(path, size, channels))
    assert colour == (mode != "L")


def _palette(path):
    Image.new("P", (5, 5)).save(path)


def _sixteen_bit(path):
    Image.fromarray(np.full((5, 5), 4000, dtype=np.uint16)).save(path)


def _interlaced(path):
    import zlib

    Image.new("L", (5, 5), 7).save(path)  # Pillow writes no interlaced PNGs: flag the header
    data = bytearray(path.read_bytes())
    data[28] = 1
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))


def _text_chunk(path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    Image.new("L", (5, 5), 7).save(path, pnginfo=info)


def _bad_checksum(path):
    Image.new("L", (5, 5), 7).save(path)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the IDAT chunk
    path.write_bytes(bytes(data))


def _truncated(path):
    Image.new("L", (5, 5), 7).save(path)
    path.write_bytes(path.read_bytes()[:-20])


@pytest.mark.parametrize("make", [_palette, _sixteen_bit, _interlaced, _text_chunk, _bad_checksum, _truncated])
def test_other_pngs_go_through_image_open(tmp_path, make):
    path = tmp_path / "a.png"
    make(path)
    assert decode._plain_png(str(path)) is None  # noqa: SLF001


def test_a_jpeg_shrinks_in_draft_mode_close_to_the_full_decode(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "a.jpg"
    small = rng.integers(0, 255, (20, 25, 3), dtype=np.uint8)
    Image.fromarray(small).resize((200, 160), Image.Resampling.BILINEAR).save(path, quality=95)
    fast, _ = decode.decode(str(path), 16, 3)
    full, _ = decode.decode(str(path), 16, 3, draft=False)
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 8
