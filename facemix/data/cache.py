"""Decoded-image cache: every manifest image decoded and resized once, stored as uint8 in one memory-mapped array.

Decoding a 600 px JPEG costs more than augmenting the small image the model trains on, and a loader that redoes it
every epoch starves the model. The cache is an ``.npy`` file (``N x S x S x 3`` uint8, S = cache size >= training
size) keyed by the sorted set of image paths and S, so runs with other seeds, splits or balance modes over the same
files share it. A side index stores each slot's file fingerprint (size, mtime): a changed file re-decodes just its
slot, and a crash mid-build leaves the last complete index, never a half-trusted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from facemix.data.images import load_rgb
from facemix.errors import FacemixConfigError

log = logging.getLogger(__name__)
CACHE_VERSION = 1  # bump when decoding or resizing changes what a slot holds
_CHUNK = 32


def _fingerprint(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def cache_key(paths: Sequence[str], size: int) -> str:
    digest = hashlib.sha1(f"v{CACHE_VERSION}:{size}\n".encode())
    for p in sorted(paths):
        digest.update(p.encode() + b"\n")
    return digest.hexdigest()[:16]


def decode_resized(path: str, size: int) -> np.ndarray:
    """The cached form of one image: upright RGB, area-resized to ``size x size`` (the loaders' own resize)."""
    image = load_rgb(path)
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image


def _fill(args: tuple[str, int, list[tuple[int, str]]]) -> int:
    """Worker: decode a chunk of (slot, path) into the shared array file; returns how many it wrote."""
    array_path, size, jobs = args
    array = np.load(array_path, mmap_mode="r+")
    for slot, path in jobs:
        try:
            array[slot] = decode_resized(path, size)
        except Exception as exc:  # the manifest's scan passed it, so the file changed or vanished since
            raise FacemixConfigError(
                f"{path} could not be decoded for the image cache ({exc}); it changed or was removed after the "
                "manifest was written. Restore it, or start a new run so the scan sees the current files "
                "(data.cache=false skips the cache)."
            ) from exc
    array.flush()
    return len(jobs)


class DecodedImages:
    """Read side: ``images[path]`` -> ``S x S x 3`` uint8 view of the memory-mapped cache.

    Pickles as paths only, so DataLoader workers (fork or spawn) open the file themselves instead of receiving a
    copy of the whole array.
    """

    def __init__(self, array_path: Path, slots: dict[str, int], decoded: int = 0) -> None:
        self.array_path = Path(array_path)
        self.slots = slots
        self.decoded = decoded  # how many images this open had to (re)decode
        self._array: np.ndarray | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}

    def __contains__(self, path: str) -> bool:
        return path in self.slots

    def __getitem__(self, path: str) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.array_path, mmap_mode="r")
        return self._array[self.slots[path]]


def build_cache(
    paths: Sequence[str], size: int, cache_dir: str | Path, workers: int | None = None, progress: bool = True
) -> DecodedImages:
    """Open the cache for ``paths`` at ``size``, decoding only missing or changed images (all cores, progress bar)."""
    paths = sorted(set(paths))
    cache_dir = Path(cache_dir) / f"{size}px"
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(paths, size)
    array_path, index_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    slots = {p: i for i, p in enumerate(paths)}

    stored: dict[str, list[int]] = {}
    if index_path.exists() and array_path.exists():
        stored = json.loads(index_path.read_text()).get("fingerprints", {})
    else:
        np.lib.format.open_memmap(array_path, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3)).flush()
    current = {p: _fingerprint(p) for p in paths}
    todo = [(slots[p], p) for p in paths if stored.get(p) != current[p]]
    if todo:
        log.info("image cache %s: decoding %d of %d images at %d px", array_path, len(todo), len(paths), size)
        chunks = [(str(array_path), size, todo[i : i + _CHUNK]) for i in range(0, len(todo), _CHUNK)]
        workers = workers or os.cpu_count() or 1
        bar = tqdm(total=len(todo), desc=f"caching images at {size} px", unit="img", disable=not progress)
        if workers > 1 and len(chunks) > 1:
            with mp.get_context("fork").Pool(min(workers, len(chunks))) as pool:
                for n in pool.imap_unordered(_fill, chunks):
                    bar.update(n)
        else:
            for chunk in chunks:
                bar.update(_fill(chunk))
        bar.close()
        tmp = index_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "size": size, "fingerprints": current}))
        os.replace(tmp, index_path)  # only a complete build is ever trusted
    return DecodedImages(array_path, slots, decoded=len(todo))
