"""Decode one image file into a fixed-size uint8 array.

This module runs inside worker processes, so it imports only numpy and Pillow:
a worker must start in a fraction of a second and must never pull in Keras.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import time
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Modes that hold no colour. "P" (palette) is decided by its palette.
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class DecodeError(Exception):
    """Why a file could not be used, in words a person understands."""


def image_extensions() -> frozenset[str]:
    """Every file extension Pillow can open (lower case, with the dot)."""
    Image.init()
    return frozenset(ext.lower() for ext in Image.registered_extensions())


def is_colour(image: Image.Image) -> bool:
    if image.mode in _GRAY_MODES:
        return False
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        triples = zip(palette[0::3], palette[1::3], palette[2::3])
        return any(r != g or g != b for r, g, b in triples)
    return True


def probe_colour(path: str) -> bool | None:
    """Whether a file holds colour, read from its header only; None if unreadable."""
    try:
        with Image.open(path) as image:
            return is_colour(image)
    except Exception:  # any unreadable file is reported later by the decoder  # noqa: BLE001
        return None


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float grayscale to 8-bit by scaling, not by clipping at 255."""
    values = np.asarray(image, dtype=np.float32)
    top = float(values.max()) if values.size else 0.0
    if image.mode == "F" and top <= 1.0:
        values = values * 255.0
    elif top > 255.0:
        values = values / 257.0  # 65535 -> 255
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")


def decode(path: str, size: int, channels: int, *, draft: bool = True) -> tuple[np.ndarray, bool]:
    """Return (``size`` x ``size`` x ``channels`` uint8 array, whether the source had colour).

    ``draft=False`` decodes JPEGs at full size before resizing (only to measure the gain).
    """
    with warnings.catch_warnings():
        # Large-but-allowed images warn; bigger ones raise DecompressionBombError (a DecodeError here).
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return _decode(path, size, channels, draft)


def _decode(path: str, size: int, channels: int, draft: bool) -> tuple[np.ndarray, bool]:
    mode = "L" if channels == 1 else "RGB"
    try:
        plain = _plain_png(path) if path[-4:].lower() == ".png" else None
        if plain is not None:
            return _finish(plain[0], mode, size, channels), plain[1]
        with Image.open(path) as image:
            colour = is_colour(image)
            if draft and image.format == "JPEG":
                # Decode at a reduced scale (1/2 .. 1/8) when shrinking: the biggest win on photos.
                image.draft(mode, (size, size))
            return _finish(_orient(image), mode, size, channels), colour
    except Image.DecompressionBombError:
        raise DecodeError("too many pixels (Pillow's decompression-bomb limit); skipped") from None
    except UnidentifiedImageError:
        raise DecodeError(_unidentified_reason(path)) from None
    except PermissionError:
        raise DecodeError("permission denied") from None
    except FileNotFoundError:
        raise DecodeError("file not found") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DecodeError("symbolic link loop") from None
        raise DecodeError(f"truncated or corrupt image ({exc})") from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
        # Pillow's plugins raise these on malformed headers and chunks.
        raise DecodeError(f"corrupt image ({type(exc).__name__}: {exc})") from None


def _finish(image: Image.Image, mode: str, size: int, channels: int) -> np.ndarray:
    if image.mode in _WIDE_MODES:
        image = _to_8bit(image)
    if image.mode != mode:
        image = image.convert(mode)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(size, size, channels)


# Where EXIF orientation can hide; without any of them there is nothing to rotate.
_EXIF_INFO = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")
_ROTATED = range(2, 9)


def _orient(image: Image.Image) -> Image.Image:
    """Apply an EXIF orientation, looking for one only where a file can hold it
    (``ImageOps.exif_transpose`` copies every image that has none)."""
    image.load()  # a PNG's eXIf chunk may follow its pixels
    if image.format != "TIFF" and not any(key in image.info for key in _EXIF_INFO):
        return image
    if image.getexif().get(0x0112, 1) in _ROTATED:
        return ImageOps.exif_transpose(image)
    return image


_PNG = b"\x89PNG\r\n\x1a\n"
# Chunks that do not change the pixels Pillow decodes; any other (palette, transparency,
# text that may carry EXIF, animation) sends the file through Image.open instead.
_PNG_PLAIN = frozenset((b"IHDR", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"pHYs", b"tIME", b"sBIT", b"bKGD"))
_PNG_KINDS = {0: ("L", False), 2: ("RGB", True), 6: ("RGBA", True)}  # colour type -> (mode, colour)


def _plain_png(path: str) -> tuple[Image.Image, bool] | None:
    """A plain 8-bit, non-interlaced PNG decoded by one call into Pillow's own zip decoder.

    Image.open parses chunks in Python, which costs more than decoding a small image, so
    this reads them here. The pixels are the ones Image.open would give. Anything else
    (other depths, palettes, transparency, text chunks, a bad checksum, truncation, a
    file that cannot be read) returns None and takes the full path, which also words the
    reason a broken file is skipped.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if not data.startswith(_PNG) or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height, depth, kind, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    limit = Image.MAX_IMAGE_PIXELS
    if depth != 8 or kind not in _PNG_KINDS or compression or filtering or interlace or not width or not height:
        return None
    if limit and width * height > limit:
        return None  # Image.open warns or refuses
    view = memoryview(data)
    parts = []
    pos, end = 8, len(data)
    while pos + 12 <= end:
        length, name = struct.unpack_from(">I4s", data, pos)
        stop = pos + 12 + length
        if stop > end or name not in _PNG_PLAIN:
            return None
        if zlib.crc32(view[pos + 4 : stop - 4]) != int.from_bytes(view[stop - 4 : stop], "big"):
            return None
        if name == b"IDAT":
            parts.append(view[pos + 8 : stop - 4])
        elif name == b"IEND":
            break
        pos = stop
    else:
        return None  # no IEND: truncated
    mode, colour = _PNG_KINDS[kind]
    try:
        return Image.frombytes(mode, (width, height), b"".join(parts), "zip", mode), colour
    except (ValueError, OSError, MemoryError):
        return None


_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


def _unidentified_reason(path: str) -> str:
    """Tell an empty file and a damaged image apart from something that is no image at all."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return "not an image Pillow can read"
    if not head:
        return "empty file (0 bytes)"
    if head.startswith(_SIGNATURES):
        return "damaged or truncated image (its header is incomplete)"
    return "not an image Pillow can read"


def warm_up() -> int:
    """Worker warm-up task: register Pillow's plugins and stay busy long enough that the
    other warm-up tasks land on the other workers."""
    Image.init()
    time.sleep(0.05)
    return os.getpid()


def decode_into(
    out_path: str, indices: list[int], paths: list[str], size: int, channels: int
) -> tuple[list[tuple[int, str]], int]:
    """Worker entry point: decode ``paths`` into rows ``indices`` of the .npy at ``out_path``.

    Returns (failures as (index, reason), how many sources held colour).
    Pixels travel through the memory-mapped file, not through pickling: the mapping is
    shared, so the caller sees them at once. Writing them to disk (``flush``, a synchronous
    msync) is left to the caller, once for the whole file, and only when it is kept.
    """
    target = np.load(out_path, mmap_mode="r+")
    try:
        return decode_into_array(target, indices, paths, size, channels)
    finally:
        del target


def decode_into_array(
    target: np.ndarray, indices: list[int], paths: list[str], size: int, channels: int, *, draft: bool = True
) -> tuple[list[tuple[int, str]], int]:
    """Decode ``paths`` into rows ``indices`` of an array in this process."""
    failures: list[tuple[int, str]] = []
    colour = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for index, path in zip(indices, paths):
            try:
                target[index], had_colour = _decode(path, size, channels, draft)
                colour += had_colour
            except DecodeError as exc:
                failures.append((index, str(exc)))
    return failures, colour


def why_not_a_file(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is no file to read (opening a FIFO would wait forever for a writer)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a pipe, socket or device)"
    return None
