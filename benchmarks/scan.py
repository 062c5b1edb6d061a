"""Data-health scan: first scan vs rescan of an unchanged tree (cache by path, size, mtime), in one run.

Usage: python benchmarks/scan.py [--scale 0.1] [--data-dir data]
Draws (or reuses) the demo set at --scale, scans it cold into a fresh cache, then again with the cache, and prints
both times and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from facemix.data.demo import write_demo
from facemix.data.health import ScanCache, scan_images
from facemix.data.sources import IMAGE_EXTENSIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--root", help="scan this folder instead of the demo set")
    args = parser.parse_args()
    root = (
        Path(args.root)
        if args.root
        else write_demo(
            Path(args.data_dir) / "demo_faces" / f"scale_{args.scale}_seed_0", args.scale, 0, progress=False
        )
    )
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "scan_cache.json"
        start = time.perf_counter()
        scan_images(paths, ScanCache(cache), progress=False)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        scan_images(paths, ScanCache(cache), progress=False)
        warm = time.perf_counter() - start
    print(f"{len(paths)} images under {root}")
    print(
        f"first scan (decode, hash, thumbnails; all cores): {cold:.2f} s; rescan (cache): {warm:.3f} s; "
        f"rescan is {cold / warm:.0f}x faster"
    )


if __name__ == "__main__":
    main()
