"""Multi-index hashing finds exactly the pairs an all-pairs search finds, and verification keeps only true copies."""

import cv2
import numpy as np
import pytest

from facemix.data.duplicates import (
    LEVELS,
    candidate_pairs,
    candidate_pairs_all_pairs,
    duplicate_groups,
    fingerprint,
    hamming,
    near_pairs,
    search_hashes,
    split_fingerprints,
)

RADIUS = 13


def _flip(hashes: np.ndarray, bits: int, rng) -> np.ndarray:
    """A copy of 128-bit rows (2 uint64) with ``bits`` random bits flipped per row."""
    out = hashes.copy()
    for row in out:
        for b in rng.choice(128, bits, replace=False):
            row[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def test_near_pairs_is_exact_at_the_radius_edge():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, size=(300, 2), dtype=np.int64).astype(np.uint64)
    table = np.concatenate([base] + [_flip(base[:20], d, rng) for d in range(RADIUS - 2, RADIUS + 3)])
    qi, tj = near_pairs(base, table, RADIUS)
    got = set(zip(qi.tolist(), tj.tolist(), strict=True))
    distance = hamming(base[:, None, :], table[None, :, :])
    want = set(zip(*np.nonzero(distance <= RADIUS), strict=True))
    assert got == {(int(a), int(b)) for a, b in want}
    assert len(qi) == len(got)  # each pair once, although it may sit close in several bands


@pytest.mark.slow  # seconds, not milliseconds: in `make test`, not `make test-fast`
def test_candidates_equal_all_pairs_on_20k_random_hashes_with_planted_near_pairs():
    rng = np.random.default_rng(1)
    n = 20_000
    hashes = rng.integers(0, 2**63, size=(n, LEVELS, 2), dtype=np.int64).astype(np.uint64)
    hashes ^= rng.integers(0, 2, size=hashes.shape, dtype=np.int64).astype(np.uint64) << np.uint64(63)
    planted = rng.choice(n, size=(400, 2), replace=False)
    for k, (a, b) in enumerate(planted):  # b becomes a near copy of a: distances 0..16, some crops only
        distance = k % 17
        level = k % LEVELS
        hashes[b, level] = _flip(hashes[a, :1].copy(), distance, rng)[0] if level else hashes[b, level]
        hashes[b, 0] = _flip(hashes[a, :1].copy(), distance, rng)[0]
    flat = np.zeros(n, bool)
    flat[rng.choice(n, 50, replace=False)] = True
    fast, slow = candidate_pairs(hashes, RADIUS, flat), candidate_pairs_all_pairs(hashes, RADIUS, flat)
    assert fast.shape == slow.shape and (fast == slow).all()
    found = {tuple(p) for p in fast.tolist()}
    for k, (a, b) in enumerate(planted):
        if k % 17 <= RADIUS and not flat[a] and not flat[b]:
            assert (min(a, b), max(a, b)) in found


def _picture(seed: int, h: int = 150, w: int = 130) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (0, 0), 1.0)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    cv2.circle(img, (w // 2, h // 2), int(rng.integers(20, 50)), rng.integers(0, 255, 3).tolist(), -1)
    return img


def test_planted_copies_are_candidates_and_verified_and_distinct_pictures_are_not():
    pictures, truth = [], []
    for i in range(30):
        img = _picture(i)
        h, w = img.shape[:2]
        jpeg = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 35])[1], 1)
        copies = [
            img,
            jpeg,
            cv2.resize(img, (int(w * 0.6), int(h * 0.6)), interpolation=cv2.INTER_AREA),
            img[int(h * 0.03) : h - int(h * 0.03), int(w * 0.03) : w - int(w * 0.03)],
        ]
        for copy in copies if i < 10 else copies[:1]:  # 10 pictures with 3 copies each, 20 without
            pictures.append(copy)
            truth.append(i)
    prints = np.stack([fingerprint(p) for p in pictures])
    flat = split_fingerprints(prints)[0]
    hashes = search_hashes(prints, flat=flat)
    fast, slow = candidate_pairs(hashes, RADIUS, flat), candidate_pairs_all_pairs(hashes, RADIUS, flat)
    assert fast.shape == slow.shape and (fast == slow).all()
    groups = duplicate_groups([str(k) for k in range(len(pictures))], prints)
    same_group = {(a, b) for a in range(len(truth)) for b in range(len(truth)) if groups[a] == groups[b]}
    same_truth = {(a, b) for a in range(len(truth)) for b in range(len(truth)) if truth[a] == truth[b]}
    assert same_group == same_truth


@pytest.mark.parametrize("sigma", [4.0, 8.0])
def test_a_blurred_low_detail_picture_does_not_match_everything(sigma):
    pictures = [_picture(i) for i in range(12)]
    pictures += [cv2.GaussianBlur(p, (0, 0), sigma) for p in pictures[:3]]
    prints = np.stack([fingerprint(p) for p in pictures])
    groups = duplicate_groups([str(k) for k in range(len(pictures))], prints)
    assert len(set(groups[:12])) == 12  # the originals stay distinct
    for k in range(12, len(pictures)):
        assert sum(g == groups[k] for g in groups[:12]) <= 1  # a blurred one joins at most its own original


def _bit_means(hashes: np.ndarray) -> np.ndarray:
    bits = np.unpackbits(np.ascontiguousarray(hashes[:, 0]).view(np.uint8), axis=1, bitorder="little")
    return bits.mean(axis=0)


def test_hashes_of_look_alike_pictures_are_balanced_and_copies_stay_close():
    """Pictures that share a layout (like aligned faces) push the raw projections one way; the hash is taken in the
    data's own frame, so its bits split the pictures more evenly, and a JPEG copy stays within the radius."""
    shared = _picture(99).astype(np.float32) * (1 - 160 / 255)
    pictures = [(shared + _picture(i).astype(np.float32) * (160 / 255)).astype(np.uint8) for i in range(600)]
    jpeg = [cv2.imdecode(cv2.imencode(".jpg", p, [cv2.IMWRITE_JPEG_QUALITY, 35])[1], 1) for p in pictures[:20]]
    prints = np.stack([fingerprint(p) for p in pictures + jpeg])
    raw = split_fingerprints(prints[:600])[1][:, 0].astype(np.float32) > 0  # the signs without the data's frame
    hashes = search_hashes(prints)
    raw_skew, skew = np.abs(raw.mean(axis=0) - 0.5), np.abs(_bit_means(hashes[:600]) - 0.5)
    assert raw_skew.max() > 0.3  # the shared layout all but fixes some raw bits
    assert skew.max() < raw_skew.max() / 2 and skew.mean() < raw_skew.mean() / 2
    assert hamming(hashes[:20, 0], hashes[600:, 0]).max() <= RADIUS
    assert len(candidate_pairs(hashes[:600], RADIUS)) == 0  # and distinct look-alikes are not candidates


def test_two_near_copies_alone_are_not_pushed_apart_by_the_statistics():
    """With two pictures the data's mean lies between them; centring on it would make their hashes opposite.
    The statistics of so few pictures count for almost nothing, so the pair is still a candidate."""
    picture = _picture(5)
    copy = cv2.imdecode(cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 35])[1], 1)
    prints = np.stack([fingerprint(picture), fingerprint(copy)])
    hashes = search_hashes(prints)
    assert hamming(hashes[0, 0], hashes[1, 0]) <= RADIUS
    assert len(candidate_pairs(hashes, RADIUS)) == 1


def test_a_set_made_mostly_of_copies_of_one_picture_still_joins_them_all():
    """The frame is estimated from distinct pictures: were the copies counted, their mean would be the picture
    itself and centring on it would push its copies apart."""
    rng = np.random.default_rng(4)
    pictures = [_picture(i) for i in range(100)]
    h, w = pictures[0].shape[:2]
    for k in range(300):
        c = 0.01 * (k % 4)  # uncropped or cropped by 1-3 % per side, each with its own noise
        crop = pictures[0][int(h * c) : h - int(h * c), int(w * c) : w - int(w * c)].astype(np.int16)
        pictures.append(np.clip(crop + rng.integers(-8, 9, crop.shape), 0, 255).astype(np.uint8))
    groups = duplicate_groups([str(k) for k in range(len(pictures))], np.stack([fingerprint(p) for p in pictures]))
    assert all(g == groups[0] for g in groups[100:])
    assert len(set(groups[:100])) == 100
