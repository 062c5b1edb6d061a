"""Decoding one image file to an upright RGB uint8 array: the one decoder the scan and the loaders share."""

from __future__ import annotations

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


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an upright (EXIF applied) H x W x 3 RGB uint8 array.

    OpenCV first (fast; applies EXIF orientation to JPEGs; PNGs read unchanged so alpha is composited on white and
    16-bit is scaled, not clipped); Pillow for what OpenCV cannot read (GIF, odd modes). Raises on a bad file.
    """
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
