"""Stratified, group-aware, seeded train / val / test split, and k folds for cross-validation.

Group-aware because copies of one photo must never sit on both sides of the train / test line; stratified so a
minority class is present in every split (and every fold); seeded so the same config always sees the same split.
With ``folds: K`` (``data.split.folds``) the images are dealt into K folds first; fold ``fold`` is the test part and
the other K-1 folds are split into train and val in the ratio of ``train : val`` (val picks the checkpoint), so the
K runs of a cross-validation hold out every image exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from facemix.data.manifest import Sample, with_splits
from facemix.errors import FacemixConfigError

SPLITS = ("train", "val", "test")
FOLD_KEYS = ("folds", "fold")  # data.split's cross-validation keys (absent or folds: null: a plain split)


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    fr = {k: float(fractions.get(k, 0.0)) for k in SPLITS}
    extra = set(fractions) - set(SPLITS) - set(FOLD_KEYS)
    if extra or any(v < 0 for v in fr.values()) or abs(sum(fr.values()) - 1.0) > 1e-6 or fr["train"] <= 0:
        raise FacemixConfigError(
            f"data.split fractions {dict(fractions)} must be non-negative numbers for {list(SPLITS)} that add up "
            "to 1 with train > 0 (e.g. train: 0.6, val: 0.3, test: 0.1)."
        )
    return fr


def folds_of(fractions: Mapping) -> tuple[int, int] | None:
    """``(folds, fold)`` when the split is a cross-validation fold, else None; a fold outside 0..K-1 is refused."""
    folds = fractions.get("folds")
    if folds is None:
        return None
    fold = fractions.get("fold") or 0
    if not isinstance(folds, int) or folds < 2 or not isinstance(fold, int) or not 0 <= fold < folds:
        raise FacemixConfigError(
            f"data.split.folds={folds} data.split.fold={fold}: folds must be a whole number >= 2 and fold one of "
            f"0..folds-1 (the held-out fold of this run)."
        )
    return folds, fold


def _deal(labels: Sequence[str], groups: Sequence[str], shares: Mapping[str, float], seed: int) -> list[str]:
    """Each item's part; items of one group share it, and each label is dealt into ``shares`` (name -> fraction).

    Groups are dealt in a seeded order to whichever part is furthest below its target share, so small classes
    still reach every part with a positive share, and group sizes are respected."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_label: dict[str, list[str]] = defaultdict(list)
    for g, idx in members.items():
        by_label[labels[idx[0]]].append(g)  # a group follows its first member's label
    out = [""] * len(labels)
    active = [s for s, share in shares.items() if share > 0]
    for label_index, label in enumerate(sorted(by_label)):
        label_groups = sorted(by_label[label])
        rng = np.random.default_rng([seed, label_index])
        order = rng.permutation(len(label_groups))
        total = sum(len(members[g]) for g in label_groups)
        target = {s: shares[s] * total for s in active}
        filled = dict.fromkeys(active, 0)
        for k in order:
            g = label_groups[k]
            part = max(active, key=lambda s: ((target[s] - filled[s]) / target[s], -active.index(s)))
            filled[part] += len(members[g])
            for i in members[g]:
                out[i] = part
    return out


def stratified_group_split(
    labels: Sequence[str], groups: Sequence[str], fractions: Mapping[str, float], seed: int
) -> list[str]:
    """Assign each item a split; items of one group share it, and each label is split in ``fractions``."""
    fr = check_fractions(fractions)
    return _deal(labels, groups, {s: fr[s] for s in SPLITS}, seed)


def stratified_group_folds(labels: Sequence[str], groups: Sequence[str], folds: int, seed: int) -> list[int]:
    """Each item's fold 0..folds-1: groups kept whole, each label dealt evenly over the folds."""
    return [int(f) for f in _deal(labels, groups, {str(k): 1 / folds for k in range(folds)}, seed)]


def _fold_split(labels, groups, fractions: Mapping, folds: int, fold: int, seed: int) -> list[str]:
    """Fold ``fold`` as test; the other folds split into train / val in the ratio of their fractions."""
    fr = check_fractions(fractions)
    of = stratified_group_folds(labels, groups, folds, seed)
    rest = [i for i, f in enumerate(of) if f != fold]
    inner = {"train": fr["train"] / (fr["train"] + fr["val"]), "val": fr["val"] / (fr["train"] + fr["val"]), "test": 0}
    inner_seed = (seed + 7919 * (fold + 1)) % 2**32  # another deal per fold, the same every time
    assigned = stratified_group_split([labels[i] for i in rest], [groups[i] for i in rest], inner, inner_seed)
    out = ["test"] * len(labels)
    for i, split in zip(rest, assigned, strict=True):
        out[i] = split
    return out


def split_samples(
    samples: Sequence[Sample],
    fractions: Mapping[str, float],
    seed: int,
    keep_source_splits: bool | Mapping[str, bool] = False,
) -> list[Sample]:
    """Split a manifest. With ``keep_source_splits`` (for all sources, or per source name) a source's own split
    (e.g. Train/Validation/Test folders) is kept, and only samples without one are split by ``fractions``; with
    ``fractions["folds"]`` the split is one fold of a cross-validation (which re-splits every image, so a kept
    source split is refused)."""

    def keeps(source: str) -> bool:
        return keep_source_splits.get(source, False) if isinstance(keep_source_splits, Mapping) else keep_source_splits

    cv = folds_of(fractions)
    kept = sorted({s.source for s in samples if s.source_split and keeps(s.source)})
    if cv and kept:
        raise FacemixConfigError(
            f"data.split.folds={cv[0]} re-splits every image, but sources {kept} keep their own Train / Validation "
            "/ Test folders (keep_source_splits). Set data.keep_source_splits=false (and the sources' keep_splits) "
            "for a cross-validation, or drop data.split.folds to keep their split."
        )
    splits = [s.source_split if s.source_split and keeps(s.source) else "" for s in samples]
    todo = [i for i, s in enumerate(splits) if not s]
    labels, groups = [samples[i].label for i in todo], [samples[i].dup_group for i in todo]
    if cv:
        assigned = _fold_split(labels, groups, fractions, cv[0], cv[1], seed)
    else:
        assigned = stratified_group_split(labels, groups, fractions, seed)
    for i, split in zip(todo, assigned, strict=True):
        splits[i] = split
    return with_splits(samples, splits)
