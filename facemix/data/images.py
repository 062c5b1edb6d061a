"""Decoding one image file to an upright RGB uint8 array: the one decoder the scan and the loaders share."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _to_rgb8(img: np.ndarray) -> np.ndarray:
    """OpenCV's IMREAD_UNCHANGED result (grey, BGR, BGRA; 8 or 16 bit) to RGB uint8, alpha composited on white."""
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class TooManyPixels(ValueError):
    """An image whose header claims more pixels than Pillow's decompression-bomb limit (decoding it would take
    gigabytes); refused before decoding, the same limit for the scan, the loaders and predict."""


def check_pixel_count(path: str | Path) -> None:
    """Read the header's size (Pillow opens lazily: no pixels decoded) and refuse what is over the limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
    except Image.DecompressionBombError as exc:  # Pillow refuses twice the limit at the header already
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = f"{pixels.group(1)} pixels" if pixels else "its size"
        raise TooManyPixels(
            f"{claimed} exceeds the decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels"
        ) from None
    except Exception:  # not for Pillow to judge (OpenCV may still read it): the decoders say what is wrong
        return
    if width * height > Image.MAX_IMAGE_PIXELS:
        raise TooManyPixels(f"{width}x{height} exceeds the decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels")


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an upright (EXIF applied) H x W x 3 RGB uint8 array.

    OpenCV first (fast; applies EXIF orientation to JPEGs; PNGs read unchanged so alpha is composited on white and
    16-bit is scaled, not clipped); Pillow for what OpenCV cannot read (GIF, AVIF, odd modes). Raises on a bad file,
    and on one whose header claims more pixels than the limit (``TooManyPixels``), before decoding it.
    """
    check_pixel_count(path)
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode: safe for unicode names
    if data.size:
        is_png = data[:8].tobytes() == PNG_SIGNATURE
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED if is_png else cv2.IMREAD_COLOR)
        if img is not None:
            return _to_rgb8(img) if is_png else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
        return np.asarray(im.convert("RGB"))
