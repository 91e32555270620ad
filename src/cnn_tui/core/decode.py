"""Decode one image file into a fixed-size uint8 array.

This module runs inside worker processes, so it imports only numpy and Pillow:
a worker must start in a fraction of a second and must never pull in Keras.
"""

from __future__ import annotations

import errno
import os
import warnings

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


def decode(path: str, size: int, channels: int) -> tuple[np.ndarray, bool]:
    """Return (``size`` x ``size`` x ``channels`` uint8 array, whether the source had colour)."""
    mode = "L" if channels == 1 else "RGB"
    try:
        with warnings.catch_warnings():
            # Large-but-allowed images warn; bigger ones raise DecompressionBombError below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                colour = is_colour(image)
                if image.format == "JPEG":
                    # Decode at a reduced scale (1/2 .. 1/8) when shrinking: the biggest win on photos.
                    image.draft(mode, (size, size))
                image = ImageOps.exif_transpose(image)
                if image.mode in _WIDE_MODES:
                    image = _to_8bit(image)
                if image.mode != mode:
                    image = image.convert(mode)
                if image.size != (size, size):
                    image = image.resize((size, size), Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
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
    return array.reshape(size, size, channels), colour


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


def decode_into(
    out_path: str, indices: list[int], paths: list[str], size: int, channels: int
) -> tuple[list[tuple[int, str]], int]:
    """Worker entry point: decode ``paths`` into rows ``indices`` of the .npy at ``out_path``.

    Returns (failures as (index, reason), how many sources held colour).
    Pixels travel through the memory-mapped file, not through pickling.
    """
    target = np.load(out_path, mmap_mode="r+")
    try:
        return decode_into_array(target, indices, paths, size, channels)
    finally:
        target.flush()
        del target


def decode_into_array(
    target: np.ndarray, indices: list[int], paths: list[str], size: int, channels: int
) -> tuple[list[tuple[int, str]], int]:
    """Decode ``paths`` into rows ``indices`` of an array in this process."""
    failures: list[tuple[int, str]] = []
    colour = 0
    for index, path in zip(indices, paths):
        try:
            target[index], had_colour = decode(path, size, channels)
            colour += had_colour
        except DecodeError as exc:
            failures.append((index, str(exc)))
    return failures, colour
