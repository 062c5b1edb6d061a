"""Harmonising: one size and one JPEG quality for every image, so size and compression stop being class cues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2

from facemix.data.images import load_rgb
from facemix.data.manifest import Sample, file_sha1


def harmonize(samples: Sequence[Sample], cache_dir: str | Path, size: int = 256, quality: int = 90) -> list[Sample]:
    """Rows pointing at harmonised copies (``original`` keeps the source file). Copies are content-addressed by
    the original's sha1, so an unchanged file is converted once, whatever run asks."""
    out_dir = Path(cache_dir) / f"{size}px_q{quality}"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for s in samples:
        target = out_dir / f"{s.sha1}.jpg"
        if not target.exists():
            image = cv2.resize(load_rgb(s.path), (size, size), interpolation=cv2.INTER_AREA)
            tmp = target.with_suffix(".tmp.jpg")
            cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
            tmp.replace(target)
        result.append(
            replace(s, path=str(target.resolve()), sha1=file_sha1(target), width=size, height=size, original=s.path)
        )
    return result
