"""The near-duplicate hash on real photos: planted copies against the raw projection signs and the data-frame hash.

Usage: python benchmarks/duplicates_real.py [--data ../shared/data] [--copies 140] [--radius 13]
                                            [--one-picture 900,3000]

The demo of ``benchmarks/scale.py`` is procedural; this takes the real photos of ``../shared/data`` (masks,
real-vs-fake faces, muffins and chihuahuas; 128 px), plants copies of ``--copies`` of them (JPEG quality 35,
resized to 60 %, centre crops of 2-5 % per side, Gaussian blur sigma 1, in turn) and prints, for the raw signs of
the stored projections (the hash before 2026-11-24) and for the hash facemix searches with
(``duplicates.search_hashes``): the farthest copy from its original per kind of copy, pairs of originals within
the radius, the bits' means and how many bit pairs correlate beyond 0.3; then what ``duplicate_groups`` does with
them (copies found, originals merged: the real-vs-fake set holds edits of one photo, so a merge there may be right).
``--one-picture`` adds, in turn, that many noisy near copies of one photo to the originals: the hash's frame is
estimated from distinct pictures, and this checks that a set made mostly of one picture's copies still joins them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from facemix.data.duplicates import (
    HASH_BITS,
    candidate_pairs,
    duplicate_groups,
    fingerprint,
    hamming,
    pack_bits,
    search_hashes,
    split_fingerprints,
)
from facemix.data.images import load_rgb

KINDS = ("jpeg35", "resized", "crop2", "crop3", "crop4", "crop5", "blur")


def planted_copy(image: np.ndarray, kind: str) -> np.ndarray:
    h, w = image.shape[:2]
    if kind.startswith("crop"):
        c = int(kind[4:]) / 100
        y, x = int(round(h * c)), int(round(w * c))
        return image[y : h - y, x : w - x]
    if kind == "resized":
        return cv2.resize(image, (int(w * 0.6), int(h * 0.6)), interpolation=cv2.INTER_AREA)
    if kind == "blur":
        return cv2.GaussianBlur(image, (0, 0), 1.0)
    encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 35])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]


def distance(hashes: np.ndarray, a: int, b: int) -> int:
    """The candidate distance: level 0 of either against every level of the other."""
    return int(min(hamming(hashes[a, 0][None], hashes[b]).min(), hamming(hashes[b, 0][None], hashes[a]).min()))


def bit_stats(hashes: np.ndarray) -> str:
    bits = np.unpackbits(np.ascontiguousarray(hashes[:, 0]).view(np.uint8), axis=1, bitorder="little")
    bits = bits.astype(np.float32)
    corr = np.corrcoef(bits.T)
    np.fill_diagonal(corr, 0)
    means, correlated = bits.mean(axis=0), (np.abs(corr) > 0.3).sum() // 2
    return f"bit means {means.min():.2f}-{means.max():.2f}, bit pairs with |corr| > 0.3: {correlated}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--copies", type=int, default=140)
    parser.add_argument("--radius", type=int, default=13)
    parser.add_argument("--one-picture", default="900,3000", help="counts of near copies of one photo to add")
    args = parser.parse_args()
    files = sorted(p for p in args.data.glob("*/*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        raise SystemExit(f"no images under {args.data}: pass --data with <set>/<class>/<image> folders")
    originals = [load_rgb(p) for p in files]
    chosen = np.random.default_rng(0).choice(len(originals), min(args.copies, len(originals)), replace=False)
    planted = [(int(i), len(originals) + k, KINDS[k % len(KINDS)]) for k, i in enumerate(chosen)]
    copies = [planted_copy(originals[i], kind) for i, _, kind in planted]
    prints = np.stack([fingerprint(image) for image in originals + copies])
    flat, projections, _, _ = split_fingerprints(prints)
    n = len(originals)
    print(f"{n} real photos from {args.data}, {len(planted)} planted copies, radius {args.radius} of {HASH_BITS} bits")
    raw = pack_bits(projections > 0)
    framed = search_hashes(prints, flat=flat)
    for name, hashes in (("raw projection signs", raw), ("data-frame hash (facemix)", framed)):
        farthest: dict[str, int] = {}
        for original, copy, kind in planted:
            farthest[kind] = max(farthest.get(kind, 0), distance(hashes, original, copy))
        originals_close = len(candidate_pairs(hashes[:n], args.radius, flat[:n]))
        print(f"  {name}:")
        print(f"    farthest copy, bits: {farthest} (all: {max(farthest.values())})")
        print(f"    pairs of originals within {args.radius} bits: {originals_close}; {bit_stats(hashes[:n])}")
    groups = duplicate_groups([str(k) for k in range(len(prints))], prints, max_hamming=args.radius)
    found = sum(groups[original] == groups[copy] for original, copy, _ in planted)
    merged = n - len(set(groups[:n]))
    print(f"  duplicate_groups: copies found {found}/{len(planted)}; originals merged into another: {merged}")
    rng = np.random.default_rng(1)
    for count in [int(c) for c in args.one_picture.split(",") if c]:
        copies = []
        for k in range(count):  # each with its own pixels (+-3 grey levels), so only the near-copy search joins them
            image = planted_copy(originals[0], KINDS[k % len(KINDS)]).astype(np.int16)
            copies.append(fingerprint(np.clip(image + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)))
        more = np.concatenate([prints[:n], np.stack(copies)])
        groups = duplicate_groups([str(k) for k in range(len(more))], more, max_hamming=args.radius)
        joined = sum(groups[n + k] == groups[0] for k in range(count))
        print(f"  {n} photos + {count} near copies of one: {joined}/{count} copies joined its group")


if __name__ == "__main__":
    main()
