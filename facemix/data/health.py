"""Data health: which files load, what they look like, which are copies of each other, and source shortcuts.

Merged data sets come from different people: corrupt downloads, odd colour modes, the same photo in two sources,
and classes that come from one source only, so a model can learn "600 px JPEG -> fake" instead of faces. Every
image is decoded here with the loaders' own decoder, so what passes the scan never crashes a worker mid-epoch.
Results are cached by (path, size, mtime): a rescan of an unchanged tree only stats files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from facemix.data.duplicates import FINGERPRINT_BYTES, fingerprint
from facemix.data.images import TooManyPixels, check_pixel_count, load_rgb
from facemix.data.progress import track
from facemix.data.shared import exclusive, private_name, write_text_atomic

log = logging.getLogger(__name__)
CACHE_VERSION = 4  # 3: fingerprints (facemix.data.duplicates) in a binary side file; 4: projections, not hashes


@dataclass
class ImageInfo:
    """What the scan learnt about one file; ``reason`` is set (and the rest may be empty) when it is bad.
    Its fingerprint (duplicate search) lives in the scan cache's array at ``row``."""

    path: str
    size_bytes: int
    mtime_ns: int
    reason: str = ""
    format: str = ""
    mode: str = ""
    width: int = 0
    height: int = 0
    sha1: str = ""
    pixel_sha1: str = ""
    mean_rgb: list[float] = field(default_factory=list)
    row: int = -1

    @property
    def ok(self) -> bool:
        return not self.reason


def _jpeg_truncated(data: bytes) -> bool:
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]


def inspect_image(path: str | Path) -> tuple[ImageInfo, np.ndarray | None]:
    """Decode one file fully and describe it, with its fingerprint; never raises for a bad file (the reason says
    what is wrong, and the fingerprint is None)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        return ImageInfo(str(path), 0, 0, reason=f"cannot stat: {exc}"), None
    info = ImageInfo(str(path), stat.st_size, stat.st_mtime_ns)
    if stat.st_size == 0:
        info.reason = "empty file (0 bytes)"
        return info, None
    try:
        data = path.read_bytes()
        with Image.open(path) as im:  # header: format and mode
            info.format, info.mode = im.format or "", im.mode
        check_pixel_count(path)  # the decompression-bomb limit, as every decode applies it
        if _jpeg_truncated(data):
            info.reason = "truncated JPEG (no end-of-image marker)"
            return info, None
        rgb = load_rgb(path)
    except TooManyPixels as exc:
        info.reason = str(exc)
        return info, None
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        info.reason = f"not a readable image: {exc}"
        return info, None
    except (OSError, ValueError, cv2.error, SyntaxError) as exc:
        info.reason = f"cannot decode: {type(exc).__name__}: {exc}"
        return info, None
    info.height, info.width = rgb.shape[:2]
    info.sha1 = hashlib.sha1(data).hexdigest()
    info.pixel_sha1 = hashlib.sha1(np.ascontiguousarray(rgb).tobytes() + bytes(str(rgb.shape), "ascii")).hexdigest()
    info.mean_rgb = [round(float(v), 2) for v in rgb.reshape(-1, 3).mean(axis=0)]
    return info, fingerprint(rgb)


class ScanCache:
    """Scan results by path, valid while the file's size and mtime are unchanged.

    Kept as generations in a folder shared by every job under one data root: ``CURRENT`` names the live generation
    (``meta.json`` with one entry per file, ``fingerprints.npy`` with one row per entry). A save writes a new
    generation under the lock and switches ``CURRENT`` with a rename, so readers never see a half-written cache;
    it merges what other jobs saved meanwhile. ``path=None`` keeps everything in memory.
    """

    def __init__(self, path: str | Path | None, verify: str = "mtime") -> None:
        self.path = Path(path) if path else None
        self.verify = verify  # sha1: an entry is trusted only while the file's bytes hash the same
        self.entries: dict[str, dict] = {}
        self.fingerprints = np.zeros((0, FINGERPRINT_BYTES), np.uint8)
        self._new: list[tuple[ImageInfo, np.ndarray | None]] = []
        self._load()

    def _load(self) -> None:
        if self.path is None or not (self.path / "CURRENT").exists():
            return
        try:
            generation = self.path / (self.path / "CURRENT").read_text().strip()
            meta = json.loads((generation / "meta.json").read_text())
            if meta.get("version") == CACHE_VERSION:
                fingerprints = np.load(generation / "fingerprints.npy", mmap_mode="r")
                rows = [e["row"] for e in meta["entries"].values() if e.get("row") is not None]
                if fingerprints.shape[1:] != (FINGERPRINT_BYTES,):  # another layout: rescan
                    return
                if rows and max(rows) >= len(fingerprints):
                    raise ValueError(f"{len(fingerprints)} fingerprint rows for entries up to row {max(rows)}")
                self.entries, self.fingerprints = meta["entries"], fingerprints
        except (OSError, ValueError, KeyError) as exc:  # a damaged cache is only a slower scan: rebuilt by this one
            log.warning("scan cache %s is damaged (%s): rescanning, and saving a new one", self.path, exc)
            self.entries, self.fingerprints = {}, np.zeros((0, FINGERPRINT_BYTES), np.uint8)

    def get(self, path: Path) -> ImageInfo | None:
        entry = self.entries.get(str(path))
        if entry is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        if entry["size_bytes"] != stat.st_size or (self.verify != "sha1" and entry["mtime_ns"] != stat.st_mtime_ns):
            return None
        if self.verify == "sha1" and hashlib.sha1(path.read_bytes()).hexdigest() != entry.get("sha1"):
            return None
        return ImageInfo(**entry)

    def put(self, info: ImageInfo, fingerprint_row: np.ndarray | None) -> None:
        self._new.append((info, fingerprint_row))

    @property
    def lock_path(self) -> Path | None:
        return self.path.with_name(self.path.name + ".lock") if self.path else None

    def save(self) -> None:
        """Merge the new results into the cache (on disk: a new generation, under the lock)."""
        if self.path is None:
            self._merge()
        elif self._new:
            with exclusive(self.lock_path, f"the scan cache {self.path}"):
                self.publish()

    def publish(self) -> None:
        """Write a generation with the new results merged into the latest one; the caller holds the lock."""
        if not self._new:
            return
        self._load()  # what other jobs saved since we opened it
        self._merge()
        generation = private_name(self.path / "gen", "")
        generation.mkdir(parents=True)
        np.save(generation / "fingerprints.npy", np.asarray(self.fingerprints))
        (generation / "meta.json").write_text(json.dumps({"version": CACHE_VERSION, "entries": self.entries}))
        previous = (self.path / "CURRENT").read_text().strip() if (self.path / "CURRENT").exists() else None
        write_text_atomic(self.path / "CURRENT", generation.name)
        for old in self.path.glob("gen*"):  # keep the previous one: a reader may be opening it right now
            if old.name not in (generation.name, previous):
                shutil.rmtree(old, ignore_errors=True)
        self._load()

    def _merge(self) -> None:
        rows = [r for _, r in self._new if r is not None]
        base = len(self.fingerprints)
        if rows:
            self.fingerprints = np.concatenate([np.asarray(self.fingerprints), np.stack(rows)])
        added = 0
        for info, row in self._new:
            if row is not None:
                info.row, added = base + added, added + 1
            self.entries[info.path] = asdict(info)
        self._new = []

    def fingerprints_of(self, infos: Sequence[ImageInfo]) -> np.ndarray:
        return np.asarray(self.fingerprints[[i.row for i in infos]]) if infos else self.fingerprints[:0]


def scan_images(
    paths: Sequence[Path], cache: ScanCache | None = None, workers: int | None = None, progress: bool = True
) -> dict[str, ImageInfo]:
    """Inspect every path (cached ones are not re-read), using all cores for the rest. Their fingerprints are in
    ``cache`` afterwards (``cache.fingerprints_of(infos)``). A job that finds another scanning the same cache
    waits for it and reuses what it saved."""
    cache = cache if cache is not None else ScanCache(None)
    if all(cache.get(Path(p)) is not None for p in paths):
        return {str(p): ImageInfo(**cache.entries[str(p)]) for p in paths}
    if cache.path is None:
        _scan_missing(paths, cache, workers, progress)
        cache.save()
    else:
        with exclusive(cache.lock_path, f"the scan cache {cache.path}"):
            cache._load()
            _scan_missing(paths, cache, workers, progress)
            cache.publish()
    return {str(p): ImageInfo(**cache.entries[str(p)]) for p in paths}


def _scan_missing(paths: Sequence[Path], cache: ScanCache, workers: int | None, progress: bool) -> None:
    todo = [str(p) for p in paths if cache.get(Path(p)) is None]
    if not todo:
        return
    log.info("building the scan of %d images", len(todo))
    workers = workers or os.cpu_count() or 1
    description = f"Scanning {len(todo)} images"
    if len(todo) >= 64 and workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            fresh = list(track(pool.imap(inspect_image, todo, chunksize=16), len(todo), description, progress))
    else:
        fresh = [inspect_image(p) for p in track(todo, len(todo), description, progress)]
    for info, row in fresh:
        cache.put(info, row)


# ---- source shortcuts -------------------------------------------------------------------------------------------


def shortcut_features(infos: Sequence[ImageInfo]) -> np.ndarray:
    """Per image: width, height, bytes per pixel (a JPEG-quality proxy) and mean colour: cues that are not faces."""
    return np.array(
        [[i.width, i.height, i.size_bytes / max(1, i.width * i.height), *i.mean_rgb] for i in infos], dtype=np.float64
    )


PROBE_SAMPLE = 20_000  # a class-balance estimate needs no more; keeps the probe's time flat beyond it


def shortcut_probe(features: np.ndarray, labels: Sequence[str], folds: int = 5, k: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of a k-nearest-neighbour classifier on non-face cues, next to chance.

    If size / compression / colour alone predict the class well, a CNN can learn the shortcut instead of faces.
    A k-d tree finds the neighbours, on a seeded sample of at most PROBE_SAMPLE images (the 140k-image sets).
    """
    from scipy.spatial import cKDTree

    y, features = np.asarray(labels), np.asarray(features)
    total = len(y)
    if total > PROBE_SAMPLE:
        keep = np.sort(np.random.default_rng([seed, 1]).choice(total, PROBE_SAMPLE, replace=False))
        y, features = y[keep], features[keep]
    classes, y_idx = np.unique(y, return_inverse=True)
    n = len(y)
    chance = float(np.bincount(y_idx).max() / n) if n else 0.0
    if n < folds * 2 or len(classes) < 2:
        return {"accuracy": None, "chance": chance, "balanced_accuracy": None, "folds": folds, "images": n}
    x = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-9)
    order = np.random.default_rng(seed).permutation(n)
    predicted = np.empty(n, dtype=np.int64)
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        _, nearest = cKDTree(x[train]).query(x[test], k=k, workers=-1)
        votes = np.zeros((len(test), len(classes)), np.int64)
        np.add.at(votes, (np.repeat(np.arange(len(test)), k), y_idx[train[nearest.reshape(-1)]]), 1)
        predicted[test] = votes.argmax(axis=1)
    recalls = [float((predicted[y_idx == c] == c).mean()) for c in range(len(classes))]
    return {
        "accuracy": float((predicted == y_idx).mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "chance": chance,
        "balanced_chance": 1.0 / len(classes),
        "folds": folds,
        "images": n,
        "of_images": total,
    }
