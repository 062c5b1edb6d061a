"""Data health: which files load, what they look like, which are copies of each other, and source shortcuts.

Merged data sets come from different people: corrupt downloads, odd colour modes, the same photo in two sources,
and classes that come from one source only, so a model can learn "600 px JPEG -> fake" instead of faces. Every
image is decoded here with the loaders' own decoder, so what passes the scan never crashes a worker mid-epoch.
Results are cached by (path, size, mtime): a rescan of an unchanged tree only stats files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from facemix.data.images import load_rgb

CACHE_VERSION = 2
THUMB = 12  # near-duplicate confirmation thumbnails: 12 x 12 RGB (colour keeps look-alike faces apart)


@dataclass
class ImageInfo:
    """What the scan learnt about one file; ``reason`` is set (and the rest may be empty) when it is bad."""

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
    dhash: str = ""
    thumb: str = ""  # base64 of THUMB x THUMB x 3 uint8 RGB
    mean_rgb: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reason


def dhash(grey: np.ndarray) -> int:
    """64-bit difference hash: signs of horizontal gradients of a 9 x 8 thumbnail."""
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def _jpeg_truncated(data: bytes) -> bool:
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]


def inspect_image(path: str | Path) -> ImageInfo:
    """Decode one file fully and describe it; never raises for a bad file (the reason says what is wrong)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        return ImageInfo(str(path), 0, 0, reason=f"cannot stat: {exc}")
    info = ImageInfo(str(path), stat.st_size, stat.st_mtime_ns)
    if stat.st_size == 0:
        info.reason = "empty file (0 bytes)"
        return info
    try:
        data = path.read_bytes()
        with Image.open(path) as im:  # header: format, mode, and the decompression-bomb check
            info.format, info.mode = im.format or "", im.mode
            if im.size[0] * im.size[1] > Image.MAX_IMAGE_PIXELS:
                info.reason = (
                    f"{im.size[0]}x{im.size[1]} exceeds the decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels"
                )
                return info
        if _jpeg_truncated(data):
            info.reason = "truncated JPEG (no end-of-image marker)"
            return info
        rgb = load_rgb(path)
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        info.reason = f"not a readable image: {exc}"
        return info
    except (OSError, ValueError, cv2.error, SyntaxError) as exc:
        info.reason = f"cannot decode: {type(exc).__name__}: {exc}"
        return info
    info.height, info.width = rgb.shape[:2]
    info.sha1 = hashlib.sha1(data).hexdigest()
    info.pixel_sha1 = hashlib.sha1(np.ascontiguousarray(rgb).tobytes() + bytes(str(rgb.shape), "ascii")).hexdigest()
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    info.dhash = f"{dhash(grey):016x}"
    info.thumb = base64.b64encode(cv2.resize(rgb, (THUMB, THUMB), interpolation=cv2.INTER_AREA).tobytes()).decode()
    info.mean_rgb = [round(float(v), 2) for v in rgb.reshape(-1, 3).mean(axis=0)]
    return info


class ScanCache:
    """Scan results by path, valid while the file's size and mtime are unchanged; saved atomically as JSON."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, dict] = {}
        if self.path and self.path.exists():
            try:
                raw = json.loads(self.path.read_text())
                if raw.get("version") == CACHE_VERSION:
                    self.entries = raw["entries"]
            except (OSError, ValueError, KeyError):
                self.entries = {}  # a damaged cache is only a slower scan

    def get(self, path: Path) -> ImageInfo | None:
        entry = self.entries.get(str(path))
        if entry is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        if entry["size_bytes"] != stat.st_size or entry["mtime_ns"] != stat.st_mtime_ns:
            return None
        return ImageInfo(**entry)

    def put(self, info: ImageInfo) -> None:
        self.entries[info.path] = asdict(info)

    def save(self) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": self.entries}))
        os.replace(tmp, self.path)


def scan_images(
    paths: Sequence[Path], cache: ScanCache | None = None, workers: int | None = None, progress: bool = True
) -> dict[str, ImageInfo]:
    """Inspect every path (cached ones are not re-read), using all cores for the rest."""
    cache = cache or ScanCache(None)
    results: dict[str, ImageInfo] = {}
    todo = []
    for p in paths:
        hit = cache.get(p)
        if hit is not None:
            results[str(p)] = hit
        else:
            todo.append(str(p))
    workers = workers or os.cpu_count() or 1
    if todo:
        if len(todo) >= 64 and workers > 1:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                fresh = pool.imap(inspect_image, todo, chunksize=16)
                fresh = _track(fresh, len(todo), progress)
                infos = list(fresh)
        else:
            infos = [inspect_image(p) for p in _track(todo, len(todo), progress)]
        for info in infos:
            results[info.path] = info
            cache.put(info)
        cache.save()
    return results


def _track(items: Iterable, total: int, progress: bool) -> Iterable:
    if not progress:
        return items
    from rich.progress import track

    return track(items, total=total, description=f"Scanning {total} images")


def duplicate_groups(infos: Sequence[ImageInfo], max_hamming: int = 10, min_correlation: float = 0.9) -> list[int]:
    """A group id per image: identical decoded pixels, or near copies (re-encoded, resized, slightly cropped).

    Near copies need both a close dHash (<= ``max_hamming`` of 64 bits) and correlated 12 x 12 colour thumbnails
    (>= ``min_correlation``): the hash finds candidates fast, the colours keep look-alike faces apart (on the demo,
    different faces correlate at most 0.87; a 10 % crop of one at 0.96, a re-encode or resize at 0.9999).
    ``max_hamming < 0`` turns near-duplicate search off.
    """
    n = len(infos)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    first: dict[str, int] = {}
    for i, info in enumerate(infos):
        if info.pixel_sha1 in first:
            union(first[info.pixel_sha1], i)
        else:
            first[info.pixel_sha1] = i
    if max_hamming >= 0 and n > 1:
        hashes = np.array([int(info.dhash, 16) for info in infos], dtype=np.uint64)
        thumbs = np.stack([np.frombuffer(base64.b64decode(info.thumb), np.uint8) for info in infos]).astype(np.float32)
        thumbs -= thumbs.mean(axis=1, keepdims=True)
        thumbs /= np.linalg.norm(thumbs, axis=1, keepdims=True) + 1e-6
        for start in range(0, n, 1024):  # chunked all-pairs Hamming distance
            block = hashes[start : start + 1024]
            xor = block[:, None] ^ hashes[None, :]
            distance = np.unpackbits(xor.view(np.uint8).reshape(*xor.shape, 8), axis=-1).sum(axis=-1)
            for a, b in zip(*np.nonzero(distance <= max_hamming), strict=True):
                i = start + int(a)
                j = int(b)
                if i < j and float(thumbs[i] @ thumbs[j]) >= min_correlation:
                    union(i, j)
    return [find(i) for i in range(n)]


# ---- source shortcuts -------------------------------------------------------------------------------------------


def shortcut_features(infos: Sequence[ImageInfo]) -> np.ndarray:
    """Per image: width, height, bytes per pixel (a JPEG-quality proxy) and mean colour: cues that are not faces."""
    return np.array(
        [[i.width, i.height, i.size_bytes / max(1, i.width * i.height), *i.mean_rgb] for i in infos], dtype=np.float64
    )


def shortcut_probe(features: np.ndarray, labels: Sequence[str], folds: int = 5, k: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of a k-nearest-neighbour classifier on non-face cues, next to chance.

    If size / compression / colour alone predict the class well, a CNN can learn the shortcut instead of faces.
    """
    y = np.asarray(labels)
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
        for start in range(0, len(test), 512):
            chunk = test[start : start + 512]
            d = ((x[chunk, None, :] - x[None, train, :]) ** 2).sum(axis=-1)
            nearest = train[np.argsort(d, axis=1)[:, :k]]
            votes = np.apply_along_axis(np.bincount, 1, y_idx[nearest], minlength=len(classes))
            predicted[chunk] = votes.argmax(axis=1)
    recalls = [float((predicted[y_idx == c] == c).mean()) for c in range(len(classes))]
    return {
        "accuracy": float((predicted == y_idx).mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "chance": chance,
        "balanced_chance": 1.0 / len(classes),
        "folds": folds,
        "images": n,
    }


def group_by(values: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for key, value in values:
        out[key].add(value)
    return out
