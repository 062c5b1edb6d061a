"""Decoding one image file to an upright RGB uint8 array."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an upright (EXIF applied) H x W x 3 RGB uint8 array.

    OpenCV first (fast, applies EXIF orientation); Pillow for what OpenCV cannot read (GIF, palette and 16-bit
    PNG edge cases), converting any colour mode to RGB.
    """
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode: safe for unicode names
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is not None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        return np.asarray(im.convert("RGB"))
