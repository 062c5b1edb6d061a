"""Images whose given label the models disagree with: confident learning (Northcutt, Jiang & Chuang, 2021) on
out-of-fold probabilities.

Merging sets labelled by different people brings label conflicts a model cannot fix; the out-of-fold predictions of a
cross-validation are the honest witness (each image judged by a model that never saw it). This is cleanlab's
``find_label_issues(filter_by="prune_by_noise_rate")`` ranked by self-confidence, written out (about 60 lines of
numpy) instead of depending on cleanlab: cleanlab is Apache-2.0 only from 2.8.0 and brings scikit-learn and pandas,
which facemix does not otherwise need. The steps follow cleanlab 2.9.0 (``count.py``, ``filter.py``, ``rank.py``):

1. per-class thresholds t_j = the mean probability of class j over the images labelled j;
2. the confident joint C[given][true]: each image counted under its given label and the class it is confidently in
   (above that class's threshold; the most probable of several);
3. C calibrated to the label counts and rounded (rows keep their totals); its off-diagonal of row k is how many
   images labelled k are estimated to be mislabelled as which class;
4. for each (given k, true j), that many images labelled k with the largest margin p_j - p_k are flagged;
5. an image whose given label is still the top prediction is never flagged; the flagged images are ranked by
   self-confidence p[given] (lowest first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLD_FLOOR = 2e-6  # cleanlab's lower bound on a class's threshold


def _round_preserving_sum(row: np.ndarray) -> np.ndarray:
    """Round to integers keeping the row's (rounded) total: the largest remainders get the spare units."""
    ints, target = np.round(row), np.round(row.sum())
    while abs(ints.sum() - target) > 1e-6:
        diff = target - ints.sum()
        step = 1 if diff > 0 else -1
        order = np.argsort(row - ints)[::-step][: min(int(abs(np.round(diff))), len(row))]
        ints[order] += step
    return ints


def confident_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """t_j: the mean probability of class j over the images labelled j (2 for a class nobody has: never reached)."""
    k = probs.shape[1]
    means = [probs[labels == j, j].mean() if np.any(labels == j) else 2.0 for j in range(k)]
    return np.clip(np.asarray(means), THRESHOLD_FLOOR, None)


def confident_joint(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The calibrated confident joint ``[given, true]`` in image counts (rows sum to the label counts)."""
    n, k = probs.shape
    above = probs >= confident_thresholds(labels, probs) - 1e-6
    count_above = above.sum(axis=1)
    guess = np.where(count_above > 1, probs.argmax(axis=1), above.argmax(axis=1))
    kept = count_above > 0
    joint = np.zeros((k, k), dtype=np.float64)
    np.add.at(joint, (labels[kept], guess[kept]), 1)
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))
    label_counts = np.bincount(labels, minlength=k)
    joint = joint / np.clip(joint.sum(axis=1, keepdims=True), 1e-100, None) * label_counts[:, None]
    joint = joint / np.clip(joint.sum(), 1e-100, None) * label_counts.sum()
    return np.apply_along_axis(_round_preserving_sum, 1, joint).astype(np.int64)


def _prune_counts(joint: np.ndarray, min_per_class: int = 1) -> np.ndarray:
    """How many to flag per (true, given): the joint transposed, each diagonal kept at ``min_per_class`` or more
    (the extra taken evenly from that column's off-diagonals), rounded per row."""
    prune = joint.T.astype(np.float64)
    diag = prune.diagonal().copy()
    new_diag = np.maximum(diag, min_per_class)
    nonzero = np.maximum(np.count_nonzero(prune, axis=0) - 1.0, 1.0)
    prune = prune - (new_diag - diag) / nonzero
    prune[prune < 0] = 0
    np.fill_diagonal(prune, new_diag)
    return np.apply_along_axis(_round_preserving_sum, 1, prune.astype(np.int64)).astype(np.int64)


def find_label_issues(labels, probs, min_per_class: int = 1) -> np.ndarray:
    """Indices of the images whose given label is probably wrong, most suspicious (lowest self-confidence) first."""
    labels, probs = np.asarray(labels, dtype=np.int64), np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    prune = _prune_counts(confident_joint(labels, probs), min_per_class)
    flagged = np.zeros(n, dtype=bool)
    for given in range(k):
        members = np.flatnonzero(labels == given)
        if len(members) <= min_per_class:
            continue
        for true in range(k):
            if true != given and prune[true, given] > 0:
                margin = probs[members, true] - probs[members, given]
                flagged[members[np.argsort(-margin, kind="stable")[: prune[true, given]]]] = True
    boosted = probs.copy()
    boosted[np.arange(n), labels] += 1e-6
    flagged[boosted.argmax(axis=1) == labels] = False
    self_confidence = probs[np.arange(n), labels]
    issues = np.flatnonzero(flagged)
    return issues[np.argsort(self_confidence[issues], kind="stable")]


@dataclass(frozen=True)
class LabelIssue:
    index: int  # row of the out-of-fold predictions
    given: int
    suggested: int  # the most probable class
    score: float  # self-confidence: the probability of the given label (lower = more suspicious)


def label_issues(labels, probs, min_per_class: int = 1) -> list[LabelIssue]:
    """``find_label_issues`` with what a user reads: the given and the suggested class and the score."""
    labels, probs = np.asarray(labels, dtype=np.int64), np.asarray(probs, dtype=np.float64)
    return [
        LabelIssue(int(i), int(labels[i]), int(probs[i].argmax()), float(probs[i, labels[i]]))
        for i in find_label_issues(labels, probs, min_per_class)
    ]
