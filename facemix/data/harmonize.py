"""Harmonising: one size and one JPEG quality for every image, so size and compression stop being class cues."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2

from facemix.data.images import load_rgb
from facemix.data.manifest import Sample, file_sha1
from facemix.data.shared import build_once, private_name


def harmonize(samples: Sequence[Sample], cache_dir: str | Path, size: int = 256, quality: int = 90) -> list[Sample]:
    """Rows pointing at harmonised copies (``original`` keeps the source file). Copies are content-addressed by
    the original's sha1, so an unchanged file is converted once, whatever run asks (jobs sharing the data root
    convert under one lock)."""
    out_dir = Path(cache_dir) / f"{size}px_q{quality}"
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [out_dir / f"{s.sha1}.jpg" for s in samples]

    def convert() -> None:
        for s, target in zip(samples, targets, strict=True):
            if not target.exists():
                image = cv2.resize(load_rgb(s.path), (size, size), interpolation=cv2.INTER_AREA)
                tmp = private_name(target, ".tmp")
                _, data = cv2.imencode(
                    ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
                )
                tmp.write_bytes(data.tobytes())
                os.replace(tmp, target)

    build_once(
        lambda: all(t.exists() for t in targets),
        convert,
        out_dir.with_name(out_dir.name + ".lock"),
        f"{sum(not t.exists() for t in targets)} harmonised copies in {out_dir}",
    )
    return [
        replace(s, path=str(t.resolve()), sha1=file_sha1(t), width=size, height=size, original=s.path)
        for s, t in zip(samples, targets, strict=True)
    ]
