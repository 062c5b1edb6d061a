"""Stratified, group-aware, seeded train / val / test split.

Group-aware because copies of one photo must never sit on both sides of the train / test line; stratified so a
minority class is present in every split; seeded so the same config always sees the same split.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from facemix.data.manifest import Sample, with_splits
from facemix.errors import FacemixConfigError

SPLITS = ("train", "val", "test")


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    fr = {k: float(fractions.get(k, 0.0)) for k in SPLITS}
    extra = set(fractions) - set(SPLITS)
    if extra or any(v < 0 for v in fr.values()) or abs(sum(fr.values()) - 1.0) > 1e-6 or fr["train"] <= 0:
        raise FacemixConfigError(
            f"data.split fractions {dict(fractions)} must be non-negative numbers for {list(SPLITS)} that add up "
            "to 1 with train > 0 (e.g. train: 0.6, val: 0.3, test: 0.1)."
        )
    return fr


def stratified_group_split(
    labels: Sequence[str], groups: Sequence[str], fractions: Mapping[str, float], seed: int
) -> list[str]:
    """Assign each item a split; items of one group share it, and each label is split in ``fractions``.

    Groups are dealt in a seeded order to whichever split is furthest below its target share, so small classes
    still reach every split with a positive fraction, and group sizes are respected.
    """
    fr = check_fractions(fractions)
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_label: dict[str, list[str]] = defaultdict(list)
    for g, idx in members.items():
        by_label[labels[idx[0]]].append(g)  # a group follows its first member's label
    out = [""] * len(labels)
    active = [s for s in SPLITS if fr[s] > 0]
    for label_index, label in enumerate(sorted(by_label)):
        label_groups = sorted(by_label[label])
        rng = np.random.default_rng([seed, label_index])
        order = rng.permutation(len(label_groups))
        total = sum(len(members[g]) for g in label_groups)
        target = {s: fr[s] * total for s in active}
        filled = dict.fromkeys(active, 0)
        for k in order:
            g = label_groups[k]
            split = max(active, key=lambda s: ((target[s] - filled[s]) / target[s], -active.index(s)))
            filled[split] += len(members[g])
            for i in members[g]:
                out[i] = split
    return out


def split_samples(
    samples: Sequence[Sample],
    fractions: Mapping[str, float],
    seed: int,
    keep_source_splits: bool | Mapping[str, bool] = False,
) -> list[Sample]:
    """Split a manifest. With ``keep_source_splits`` (for all sources, or per source name) a source's own split
    (e.g. Train/Validation/Test folders) is kept, and only samples without one are split by ``fractions``."""

    def keeps(source: str) -> bool:
        return keep_source_splits.get(source, False) if isinstance(keep_source_splits, Mapping) else keep_source_splits

    splits = [s.source_split if s.source_split and keeps(s.source) else "" for s in samples]
    todo = [i for i, s in enumerate(splits) if not s]
    assigned = stratified_group_split(
        [samples[i].label for i in todo], [samples[i].dup_group for i in todo], fractions, seed
    )
    for i, split in zip(todo, assigned, strict=True):
        splits[i] = split
    return with_splits(samples, splits)
