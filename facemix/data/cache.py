"""Decoded-image cache: every manifest image decoded and resized once, stored as uint8 in one memory-mapped array.

Decoding a 600 px JPEG costs more than augmenting the small image the model trains on, and a loader that redoes it
every epoch starves the model. The cache is an ``.npy`` file (``N x S x S x 3`` uint8, S = cache size >= training
size) keyed by the sorted set of image paths and S, so runs with other seeds, splits or balance modes over the same
files share it. A side index stores each slot's file fingerprint (size, mtime): a changed file re-decodes just its
slot (into a new array: published ones never change), and a crash mid-build leaves the last complete index, never
a half-trusted one. Jobs sharing a data root build it once (``facemix.data.shared``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facemix.augment.presets import resize
from facemix.data.images import load_rgb
from facemix.data.progress import progress_bar
from facemix.data.shared import build_once, private_name, remove_leftovers, write_text_atomic
from facemix.errors import FacemixConfigError

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # bump when decoding, resizing or the index changes (2: immutable arrays named by the index)
_CHUNK = 32


def _fingerprint(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def cache_key(paths: Sequence[str], size: int, interpolation: str = "area") -> str:
    digest = hashlib.sha1(f"v{CACHE_VERSION}:{size}:{interpolation}\n".encode())
    for p in sorted(paths):
        digest.update(p.encode() + b"\n")
    return digest.hexdigest()[:16]


def decode_resized(path: str, size: int, interpolation: str = "area") -> np.ndarray:
    """The cached form of one image: upright RGB, resized to ``size x size`` (the loaders' own resize)."""
    return resize(load_rgb(path), size, interpolation)


def _fill(args: tuple[str, int, str, list[tuple[int, str]]]) -> int:
    """Worker: decode a chunk of (slot, path) into the shared array file; returns how many it wrote."""
    array_path, size, interpolation, jobs = args
    array = np.load(array_path, mmap_mode="r+")
    for slot, path in jobs:
        try:
            array[slot] = decode_resized(path, size, interpolation)
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


def _read_index(index_path: Path) -> dict | None:
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return None
    return index if index.get("version") == CACHE_VERSION else None


def build_cache(
    paths: Sequence[str],
    size: int,
    cache_dir: str | Path,
    interpolation: str = "area",
    workers: int | None = None,
    progress: bool = True,
) -> DecodedImages:
    """Open the cache for ``paths`` at ``size``, decoding only missing or changed images (all cores, progress bar).

    Shared by every job under one data root: the index names an immutable array file; a (re)build happens once,
    under a lock, into a private file that is renamed into place before the index points at it.
    """
    paths = sorted(set(paths))
    cache_dir = Path(cache_dir) / f"{size}px"
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(paths, size, interpolation)
    index_path = cache_dir / f"{key}.json"
    slots = {p: i for i, p in enumerate(paths)}
    current = {p: _fingerprint(p) for p in paths}
    decoded = 0

    def is_built() -> bool:
        index = _read_index(index_path)
        return bool(index) and index["fingerprints"] == current and (cache_dir / index["array"]).exists()

    def build() -> None:
        nonlocal decoded
        remove_leftovers(cache_dir / f"{key}.npy")
        old = _read_index(index_path)
        old_array = cache_dir / old["array"] if old else None
        keep = old["fingerprints"] if old and old_array.exists() else {}
        tmp = private_name(cache_dir / f"{key}.npy")
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
        if keep:  # unchanged slots from the previous build: same key, same paths, same order
            array[:] = np.load(old_array, mmap_mode="r")
        array.flush()
        del array
        todo = [(slots[p], p) for p in paths if keep.get(p) != current[p]]
        decoded = len(todo)
        log.info("image cache %s: decoding %d of %d images at %d px", index_path, len(todo), len(paths), size)
        _decode_into(tmp, size, interpolation, todo, workers, progress)
        published = cache_dir / f"{key}-{tmp.name.rsplit('-', 1)[-1]}.npy"
        os.replace(tmp, published)
        index = {"version": CACHE_VERSION, "size": size, "array": published.name, "fingerprints": current}
        write_text_atomic(index_path, json.dumps(index))
        for stale in cache_dir.glob(f"{key}-*.npy"):  # keep the previous array: a reader may be opening it
            if stale.name not in (published.name, old["array"] if old else ""):
                stale.unlink(missing_ok=True)

    build_once(is_built, build, cache_dir / f"{key}.lock", f"the image cache {index_path}")
    index = _read_index(index_path)
    return DecodedImages(cache_dir / index["array"], slots, decoded=decoded)


def _decode_into(
    array_path: Path, size: int, interpolation: str, todo: list[tuple[int, str]], workers: int | None, progress: bool
) -> None:
    chunks = [(str(array_path), size, interpolation, todo[i : i + _CHUNK]) for i in range(0, len(todo), _CHUNK)]
    workers = workers or os.cpu_count() or 1
    with progress_bar(len(todo), f"Caching images at {size} px", progress) as advance:
        if workers > 1 and len(chunks) > 1:
            with mp.get_context("fork").Pool(min(workers, len(chunks))) as pool:
                for n in pool.imap_unordered(_fill, chunks):
                    advance(n)
        else:
            for chunk in chunks:
                advance(_fill(chunk))
