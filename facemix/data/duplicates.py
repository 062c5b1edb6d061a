"""Exact and near duplicates at any size: a compact fingerprint per image, multi-index hashing, then verification.

Why not the classic 9 x 8 difference hash: it encodes the global layout of the picture, and aligned face crops
share their layout. On the demo faces 0.1 % of all pairs of *different* pictures lie within 8 of its 64 bits, so
its candidate pairs grow with N squared (and at 14k images the old search merged a masked face with an unmasked
one). Each image gets instead, at centre crops of 0, 1.5, 3 and 4.5 % per side (so a copy cropped by up to 5 % per
side lines up with one of them):

- a band-pass (difference of Gaussians) 24 x 24 grey thumbnail, int8: structure at face-detail scale, where
  different faces differ;
- a 12 x 12 colour thumbnail: skin, hair and background colours, where look-alike faces differ;
- 128 fixed random projections of both thumbnails (unit vectors, equal weight), float16.

The 128-bit hash is taken at search time, in the searched pictures' own frame: the signs of the projections after
centring them on the data's mean and flattening its strongest directions (``hash_basis``). Hamming distance then
follows the angle between the pictures' differences from the typical picture: on the demo, copies (re-encoded at
JPEG quality 35, resized, blurred, cropped by up to 5 %) lie within 8 bits of 128 at 14k pictures and 12 at 140k,
and distinct pairs within 13 bits are 1 at 14k and 165 at 140k (verification rejects them all). Raw signs would
do for varied pictures, but aligned faces share a mean face: raw bits are unbalanced (means 0.32-0.71) and
correlated, and the band buckets below fill much faster (bucket candidates at 140k: 170 M raw, 74 M here).

Candidates: every pair whose hashes (level 0 against every crop level, both ways) are within ``max_hamming``
bits, found by multi-index hashing: 7 bands of 18-19 bits; by the pigeonhole principle a pair within r bits agrees
within r // 7 bits on at least one band, so probing each band's table with every key within r // 7 bits of the
query finds every such pair, and ``candidate_pairs_all_pairs`` (quadratic) checks that it equals the brute-force
set. A small numpy implementation: faiss' ``IndexBinaryMultiHash`` does the same in C++ but measured 6.6 s at 20k
and 353 s at 140k random 64-bit codes here (numpy: 1.8 s and 34 s at radius 10), and is a 65 MB dependency.
Verification, at the crop alignment where the pair agrees best: band-pass thumbnails correlate >=
``min_correlation`` AND colour thumbnails differ by <= ``MAX_COLOUR_DIFFERENCE`` on average. Flat pictures (no
band-pass structure) take no part in the near-copy search: they match only their exact copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import cv2
import numpy as np

from facemix.data.settings import duplicate_setting

CROPS = (0.0, 0.015, 0.03, 0.045)  # centre crop per side of each fingerprint level
LEVELS = len(CROPS)
DETAIL = 24  # band-pass thumbnail side
COLOUR = 12  # colour thumbnail side
HASH_BITS = 128
HASH_WORDS = HASH_BITS // 64
MAX_COLOUR_DIFFERENCE = 12.0  # mean absolute difference of the aligned colour thumbnails, of 255
MIN_DETAIL_RMS = 0.5  # grey levels: below it a picture is flat and sits out the near-copy search
# one fingerprint row (uint8): 8 flag bytes | LEVELS x HASH_BITS float16 projections | LEVELS x DETAIL^2 int8 |
# LEVELS x COLOUR^2 x 3 uint8
FLAG_BYTES = 8
PROJECTION_BYTES = LEVELS * HASH_BITS * 2
DETAIL_BYTES = LEVELS * DETAIL * DETAIL
FINGERPRINT_BYTES = FLAG_BYTES + PROJECTION_BYTES + DETAIL_BYTES + LEVELS * COLOUR * COLOUR * 3
VECTOR_SIZE = DETAIL * DETAIL + COLOUR * COLOUR * 3  # one level's two thumbnails, side by side
FLATTENED_DIRECTIONS = 8  # of the hash's 128 projections: the strongest are brought down to the next one's variance
PRIOR_IMAGES = 256  # statistics of n images count n / (n + 256): two pictures are no population
STATISTICS_SAMPLE = 4096  # images (evenly spaced) the mean and covariance are estimated from
SAMPLE_COPY_BITS = 13  # sampled pictures within this many raw-sign bits of an earlier one are left out of them


@cache
def _projections() -> np.ndarray:
    """Fixed random directions in thumbnail space (seeded: the same data gives the same hashes on every machine)."""
    rng = np.random.default_rng(20261123)
    return rng.standard_normal((HASH_BITS, VECTOR_SIZE)).astype(np.float32)


def _centre_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = int(round(h * fraction)), int(round(w * fraction))
    return image[y : h - y or h, x : w - x or w]


def _band_pass(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """Difference of Gaussians at face-detail scale on a small copy: a unit vector of DETAIL^2 values, and its RMS
    before normalising (grey levels: how much detail the picture has)."""
    small = cv2.resize(grey, (2 * DETAIL, 2 * DETAIL), interpolation=cv2.INTER_AREA)
    band = cv2.GaussianBlur(small, (0, 0), 0.7) - cv2.GaussianBlur(small, (0, 0), 3.0)
    vector = cv2.resize(band, (DETAIL, DETAIL), interpolation=cv2.INTER_AREA).ravel()
    vector -= vector.mean()
    norm = float(np.linalg.norm(vector))
    return vector / (norm + 1e-6), norm / np.sqrt(vector.size)


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-6)


def _centred_unit(colour: np.ndarray) -> np.ndarray:
    colour = colour.astype(np.float32)
    return _unit(colour - colour.mean(axis=-1, keepdims=True))


def fingerprint(rgb: np.ndarray) -> np.ndarray:
    """The FINGERPRINT_BYTES row describing one decoded RGB image."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    bands = [_band_pass(_centre_crop(grey, c)) for c in CROPS]
    details = np.stack([vector for vector, _ in bands])
    colours = np.stack(
        [cv2.resize(_centre_crop(rgb, c), (COLOUR, COLOUR), interpolation=cv2.INTER_AREA).ravel() for c in CROPS]
    )
    flags = np.zeros(FLAG_BYTES, np.uint8)
    flags[0] = bands[0][1] < MIN_DETAIL_RMS
    projections = np.concatenate([_unit(details), _centred_unit(colours)], axis=-1) @ _projections().T
    scale = np.abs(details).max(axis=1, keepdims=True) + 1e-12
    quantised = np.round(details / scale * 127).astype(np.int8)
    return np.concatenate(
        [
            flags,
            projections.astype(np.float16).view(np.uint8).ravel(),
            quantised.view(np.uint8).ravel(),
            colours.ravel(),
        ]
    )


def split_fingerprints(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Views of fingerprint rows: flat (N bool), the thumbnails' random projections (N x LEVELS x HASH_BITS
    float16), band-pass thumbnails (N x LEVELS x DETAIL^2 int8), colour thumbnails (N x LEVELS x COLOUR^2*3 uint8)."""
    rows = np.ascontiguousarray(rows)
    n = len(rows)
    flat = rows[:, 0].astype(bool)
    start = FLAG_BYTES + PROJECTION_BYTES
    projections = rows[:, FLAG_BYTES:start].view(np.float16).reshape(n, LEVELS, HASH_BITS)
    details = rows[:, start : start + DETAIL_BYTES].view(np.int8).reshape(n, LEVELS, -1)
    return flat, projections, details, rows[:, start + DETAIL_BYTES :].reshape(n, LEVELS, -1)


# ---- the hash: signs of the projections, in the data's own frame --------------------------------------------------


def hash_basis(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A linear map (HASH_BITS x HASH_BITS) and a threshold per bit for the projections of the pictures searched,
    from a sample of their level-0 projections (n x HASH_BITS).

    Why data-dependent: aligned faces share a mean face and a few strong directions of variation, so the signs of
    the raw projections are unbalanced (bit means 0.32-0.70 on the demo) and correlated, and the multi-index buckets
    fill far faster than for random codes. Centring on the data's mean and bringing the FLATTENED_DIRECTIONS
    strongest directions down to the variance of the next gives balanced, nearly uncorrelated bits, while copies
    stay close (weak directions, where re-encoding noise lives, are not amplified). With few pictures the
    statistics shrink toward none (PRIOR_IMAGES): a picture and its copies alone are never pushed apart."""
    sample = np.asarray(sample, np.float64)
    n, size = sample.shape
    weight = n / (n + PRIOR_IMAGES)
    mean = weight * sample.mean(axis=0) if n else np.zeros(size)
    centred = sample - mean
    covariance = centred.T @ centred / max(n, 1)
    isotropic = np.trace(covariance) / size if n else 1.0
    variances, directions = np.linalg.eigh(weight * covariance + (1 - weight) * isotropic * np.eye(size))
    cap = max(variances[-FLATTENED_DIRECTIONS - 1], 1e-12)  # ascending: the strongest come last
    flatten = (directions * np.sqrt(np.minimum(1.0, cap / np.maximum(variances, 1e-12)))) @ directions.T
    return flatten.astype(np.float32), (mean @ flatten).astype(np.float32)


def flat_of(fingerprints: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """N bool: which pictures are flat, reading one byte of each row (the fingerprints may be memory-mapped)."""
    return np.asarray(fingerprints[rows, 0]).astype(bool)


def projections_of(fingerprints: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """N x LEVELS x HASH_BITS float32, reading only those bytes of each row (the fingerprints may be memory-mapped)."""
    raw = np.ascontiguousarray(fingerprints[rows, FLAG_BYTES : FLAG_BYTES + PROJECTION_BYTES])
    return raw.view(np.float16).reshape(len(rows), LEVELS, HASH_BITS).astype(np.float32)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Hashes (... x HASH_WORDS uint64) from bits (... x HASH_BITS bool), bit k of the hash = bits[..., k]."""
    return np.packbits(bits, axis=-1, bitorder="little").view(np.uint64)


def _first_of_near_copies(projections: np.ndarray) -> np.ndarray:
    """Rows of ``projections`` (n x HASH_BITS) with no earlier row within SAMPLE_COPY_BITS bits of raw signs: the
    frame should describe distinct pictures, not weigh one by how many copies of it the set holds (where near copies
    of one picture made half the set, centring on their mean pushed a third of them apart)."""
    signs = pack_bits(projections > 0)
    later, earlier = near_pairs(signs, signs, SAMPLE_COPY_BITS)
    copies = np.zeros(len(signs), bool)
    copies[later[earlier < later]] = True
    return np.flatnonzero(~copies)


def search_hashes(
    fingerprints: np.ndarray, rows: np.ndarray | None = None, flat: np.ndarray | None = None, chunk: int = 16_384
) -> np.ndarray:
    """N x LEVELS x HASH_WORDS uint64: the 128-bit hash of every level of every picture (``rows`` map pictures to
    fingerprint rows), in the frame of the non-flat pictures' statistics (``flat``: read from the rows if not given).
    Linear in N, memory per chunk."""
    rows = np.arange(len(fingerprints)) if rows is None else np.asarray(rows)
    flat = flat_of(fingerprints, rows) if flat is None else np.asarray(flat, bool)
    keep = np.flatnonzero(~flat)
    sample = keep[np.linspace(0, len(keep) - 1, min(len(keep), STATISTICS_SAMPLE)).astype(np.int64)]
    sampled = projections_of(fingerprints, np.sort(rows[sample]))[:, 0]
    flatten, threshold = hash_basis(sampled[_first_of_near_copies(sampled)])
    hashes = np.zeros((len(rows), LEVELS, HASH_WORDS), np.uint64)
    for start in range(0, len(rows), chunk):
        bits = projections_of(fingerprints, rows[start : start + chunk]) @ flatten > threshold
        hashes[start : start + chunk] = pack_bits(bits)
    return hashes


def popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between hashes of HASH_WORDS uint64 (last axis)."""
    return popcount(a ^ b).sum(axis=-1, dtype=np.int64)


# ---- candidates: multi-index hashing ------------------------------------------------------------------------------


BANDS = (18, 18, 18, 18, 18, 19, 19)  # multi-index hashing bands of the 128 bits (bucket keys of 2^18-2^19)


@cache
def _masks(bits: int, max_bits: int) -> np.ndarray:
    """Every ``bits``-bit value with at most ``max_bits`` bits set."""
    values = np.arange(1 << bits, dtype=np.int64)
    return values[popcount(values.astype(np.uint64)) <= max_bits]


def _bands(hashes: np.ndarray) -> np.ndarray:
    """The BANDS keys of each 128-bit hash (rows of 2 uint64), as N x len(BANDS) int64."""
    lo, hi = hashes[:, 0], hashes[:, 1]
    keys, offset = [], 0
    for width in BANDS:
        mask = np.uint64((1 << width) - 1)
        if offset + width <= 64:
            key = (lo >> np.uint64(offset)) & mask
        elif offset >= 64:
            key = (hi >> np.uint64(offset - 64)) & mask
        else:  # straddles the two words
            key = ((lo >> np.uint64(offset)) | (hi << np.uint64(64 - offset))) & mask
        keys.append(key.astype(np.int64))
        offset += width
    return np.stack(keys, axis=1)


def near_pairs(query: np.ndarray, table: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with ``hamming(query[i], table[j]) <= radius`` (128-bit rows of 2 uint64), by multi-index hashing
    over BANDS; each pair is reported once, from the first band within ``radius // len(BANDS)`` bits.

    Most bucket candidates are not within ``radius``: the per-candidate check is kept to two 1-D gathers and a
    popcount per word, on 32-bit indices."""
    query, table = np.asarray(query, np.uint64), np.asarray(table, np.uint64)
    band_radius = radius // len(BANDS)
    query_keys, table_keys = _bands(query), _bands(table)
    found_q, found_t = [], []
    for band, width in enumerate(BANDS):
        # both sides sorted by this band's key: bucket entries lie side by side, and probes of neighbouring queries
        # land near each other, so the passes read memory mostly in order
        order = np.argsort(table_keys[:, band], kind="stable").astype(np.int32)
        table_lo, table_hi = table[order, 0], table[order, 1]
        starts = np.zeros((1 << width) + 1, np.int32)  # 32-bit: tables up to 2^31 rows
        np.cumsum(np.bincount(table_keys[:, band], minlength=1 << width), out=starts[1:])
        query_order = np.argsort(query_keys[:, band], kind="stable").astype(np.int32)
        query_lo, query_hi = query[query_order, 0], query[query_order, 1]
        sorted_keys = query_keys[query_order, band]
        for mask in _masks(width, band_radius):
            probe = sorted_keys ^ mask
            lo, counts = starts[probe], starts[probe + 1] - starts[probe]
            hit = np.flatnonzero(counts).astype(np.int32)
            if not len(hit):
                continue
            counts, lo = counts[hit], lo[hit]
            total = int(counts.sum())
            qs = np.repeat(hit, counts)
            k = np.repeat(lo - np.cumsum(counts, dtype=np.int32) + counts, counts) + np.arange(total, dtype=np.int32)
            low = popcount(query_lo[qs] ^ table_lo[k])  # most candidates already fail on one word
            part = np.flatnonzero(low <= radius)
            qs, k = qs[part], k[part]
            close = np.flatnonzero(low[part] + popcount(query_hi[qs] ^ table_hi[k]) <= radius)
            qi, tj = query_order[qs[close]].astype(np.int64), order[k[close]].astype(np.int64)
            earlier = popcount((query_keys[qi, :band] ^ table_keys[tj, :band]).astype(np.uint64))
            first = (earlier > band_radius).all(axis=1)  # not reported by an earlier band
            found_q.append(qi[first])
            found_t.append(tj[first])
    if not found_q:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(found_q), np.concatenate(found_t)


def _as_pairs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    pairs = np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1)[i != j]
    return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)


def candidate_pairs(hashes: np.ndarray, radius: int, flat: np.ndarray | None = None) -> np.ndarray:
    """Image pairs (i < j) whose level-0 hash is within ``radius`` bits of any level of the other's (K x 2), leaving
    out flat pictures. ``hashes``: N x LEVELS x HASH_WORDS uint64."""
    keep = np.flatnonzero(~flat) if flat is not None else np.arange(len(hashes))
    qi, tj = near_pairs(hashes[keep, 0], hashes[keep].reshape(-1, hashes.shape[-1]), radius)
    return _as_pairs(keep[qi], keep[tj // LEVELS])


def candidate_pairs_all_pairs(
    hashes: np.ndarray, radius: int, flat: np.ndarray | None = None, chunk: int = 512
) -> np.ndarray:
    """The same set by comparing every pair (quadratic: the reference the tests and the benchmark check against).

    Computed a different way on purpose: bits as +-1 vectors, so one matrix product gives every distance
    (``hamming = (128 - a.b) / 2``, exact in float32) and shares no code with the band search."""
    keep = np.flatnonzero(~flat) if flat is not None else np.arange(len(hashes))

    def signs(rows: np.ndarray) -> np.ndarray:
        bits = np.unpackbits(np.ascontiguousarray(rows).view(np.uint8).reshape(len(rows), -1), axis=1)
        return bits.astype(np.float32) * 2 - 1

    levels = signs(hashes[keep].reshape(-1, hashes.shape[-1]))
    width = levels.shape[1]
    found = []
    for start in range(0, len(keep), chunk):
        block = signs(hashes[keep[start : start + chunk], 0])
        i, t = np.nonzero(block @ levels.T >= width - 2 * radius - 0.5)
        found.append(np.stack([keep[i + start], keep[t // LEVELS]], axis=1))
    both = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
    return _as_pairs(both[:, 0], both[:, 1])


# ---- verification and groups ---------------------------------------------------------------------------------------


def pair_scores(
    fingerprints: np.ndarray, pairs: np.ndarray, rows: np.ndarray | None = None, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate pair (image indices; ``rows`` maps them to fingerprint rows), at the crop alignment where the
    two agree best (each uncropped against every crop of the other): band-pass thumbnail correlation and mean
    absolute colour difference (0-255)."""
    detail = np.zeros(len(pairs), np.float32)
    colour = np.zeros(len(pairs), np.float32)
    rows = np.arange(len(fingerprints)) if rows is None else np.asarray(rows)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        _, _, di, ci = split_fingerprints(fingerprints[rows[part[:, 0]]])
        _, _, dj, cj = split_fingerprints(fingerprints[rows[part[:, 1]]])
        di, dj = _unit(di), _unit(dj)
        ci, cj = ci.astype(np.float32), cj.astype(np.float32)
        corr = np.concatenate([np.einsum("pd,pkd->pk", di[:, 0], dj), np.einsum("pkd,pd->pk", di, dj[:, 0])], 1)
        diff = np.concatenate([np.abs(ci[:, :1] - cj).mean(-1), np.abs(ci - cj[:, :1]).mean(-1)], 1)
        best = np.argmax(corr - diff / 255.0, axis=1)  # the alignment where both cues agree best
        detail[start : start + chunk] = corr[np.arange(len(part)), best]
        colour[start : start + chunk] = diff[np.arange(len(part)), best]
    return detail, colour


def duplicate_groups(
    pixel_sha1: Sequence[str],
    fingerprints: np.ndarray,
    rows: np.ndarray | None = None,
    max_hamming: int | None = None,
    min_correlation: float | None = None,
) -> list[int]:
    """A group id per image: identical decoded pixels, or verified near copies. ``fingerprints`` may be the scan
    cache's memory-mapped array with ``rows`` giving each image's row. ``max_hamming < 0``: exact copies only.
    The hash is taken in the frame of the pictures searched, so which distinct pairs become candidates can differ
    between two sets of pictures; the verification that decides a merge looks at the pair alone."""
    max_hamming = duplicate_setting("max_hamming", max_hamming)
    min_correlation = duplicate_setting("min_correlation", min_correlation)
    n = len(pixel_sha1)
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
    for i, digest in enumerate(pixel_sha1):
        if digest in first:
            union(first[digest], i)
        else:
            first[digest] = i
    if max_hamming >= 0 and n > 1:
        rows = np.arange(n) if rows is None else np.asarray(rows)
        flat = flat_of(fingerprints, rows)
        pairs = candidate_pairs(search_hashes(fingerprints, rows, flat), max_hamming, flat)
        detail, colour = pair_scores(fingerprints, pairs, rows)
        for i, j in pairs[(detail >= min_correlation) & (colour <= MAX_COLOUR_DIFFERENCE)]:
            union(int(i), int(j))
    return [find(i) for i in range(n)]
