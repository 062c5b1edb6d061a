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


def _fingerprint(path: str, verify: str = "mtime") -> list:
    """What the cache trusts a file by: its size and modification time (``verify=mtime``, free), or its size and
    SHA-1 (``verify=sha1``: reads every file, and catches a picture replaced with its old mtime, as ``cp -p`` or
    ``rsync -a`` do)."""
    st = os.stat(path)
    if verify == "sha1":
        digest = hashlib.sha1()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        return [st.st_size, digest.hexdigest()]
    return [st.st_size, st.st_mtime_ns]


def _fingerprints(paths: Sequence[str], verify: str) -> dict[str, list]:
    try:
        return {p: _fingerprint(p, verify) for p in paths}
    except FileNotFoundError as exc:
        raise FacemixConfigError(
            f"{exc.filename} is in the run's manifest but no longer on disk: it was moved or removed after the "
            "manifest was written. Restore it (a resumed run keeps the data it started with), or start a new run so "
            "the scan sees the current files."
        ) from None


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


def _array_problem(array_path: Path, shape: tuple[int, ...]) -> str | None:
    """Why a published array cannot be used (missing, truncated, another shape), or None: checked before trusting
    it, so a damaged file is rebuilt instead of failing every run on the data root."""
    try:
        array = np.load(array_path, mmap_mode="r")
    except (OSError, ValueError) as exc:  # "mmap length is greater than file size", a bad header
        return f"{type(exc).__name__}: {exc}"
    return None if array.shape == shape and array.dtype == np.uint8 else f"shape {array.shape}, not {shape}"


def _start_array(path: Path, shape: tuple[int, ...], previous: Path | None) -> None:
    """Create the array a build fills, holding the previous build's pixels where there is one (same key, same
    paths, same order), so only missing or changed slots are decoded again."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    if previous is not None:
        array[:] = np.load(previous, mmap_mode="r")
    array.flush()
    del array


def build_cache(
    paths: Sequence[str],
    size: int,
    cache_dir: str | Path,
    interpolation: str = "area",
    workers: int | None = None,
    progress: bool = True,
    verify: str = "mtime",
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
    current = _fingerprints(paths, verify)
    decoded = 0

    shape = (len(paths), size, size, 3)

    def is_built() -> bool:
        index = _read_index(index_path)
        if not index or index["fingerprints"] != current:
            return False
        problem = _array_problem(cache_dir / index["array"], shape)
        if problem:
            log.warning("image cache %s is damaged (%s): rebuilding it", cache_dir / index["array"], problem)
        return problem is None

    def build() -> None:
        nonlocal decoded
        remove_leftovers(cache_dir / f"{key}.npy")
        old = _read_index(index_path)
        old_array = cache_dir / old["array"] if old else None
        usable = old is not None and _array_problem(old_array, shape) is None
        keep = old["fingerprints"] if usable else {}
        tmp = private_name(cache_dir / f"{key}.npy")
        _start_array(tmp, shape, old_array if keep else None)
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
