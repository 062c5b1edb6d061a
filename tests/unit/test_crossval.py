"""Cross-validation without training: folds partition the images (groups whole, classes stratified), the label-issue
finder finds planted swaps, a fold ensemble's probabilities are the mean of its members'."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from facemix.data.manifest import Sample
from facemix.data.split import split_samples, stratified_group_folds
from facemix.errors import FacemixConfigError
from facemix.evaluation.ensemble import FoldEnsemble
from facemix.evaluation.inference import predict
from facemix.evaluation.label_issues import confident_joint, find_label_issues
from facemix.models.module import ClassifierModule

FRACTIONS = {"train": 0.6, "val": 0.3, "test": 0.1}


def _samples(counts: dict[str, int], group_every: int = 0, source_split: str = "") -> list[Sample]:
    """Rows per label; every ``group_every``-th row shares a duplicate group with the next one."""
    rows = []
    for label, n in counts.items():
        for i in range(n):
            group = f"{label}{i - 1 if group_every and i % group_every == 1 else i}"
            rows.append(Sample(f"/{label}/{i}.jpg", "s", label, label, "", "x", 8, 8, group, source_split=source_split))
    return rows


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_the_folds_hold_out_every_image_exactly_once_groups_whole_classes_stratified(folds):
    samples = _samples({"real": 47, "fake": 11, "masked": 30}, group_every=4)
    held_out = Counter()
    for fold in range(folds):
        split = split_samples(samples, {**FRACTIONS, "folds": folds, "fold": fold}, seed=3)
        held_out.update(s.path for s in split if s.split == "test")
        assert {s.split for s in split} == {"train", "val", "test"}
        by_group: dict[str, set[str]] = {}
        for s in split:
            by_group.setdefault(s.dup_group, set()).add(s.split)
        assert all(len(parts) == 1 for parts in by_group.values())  # a duplicate group never straddles
    assert held_out == Counter(s.path for s in samples)  # a partition: every image once
    for rows, spread in ((samples, 2), (_samples({"real": 47, "fake": 11, "masked": 30}), 1)):
        of = stratified_group_folds([s.label for s in rows], [s.dup_group for s in rows], folds, seed=3)
        for label in ("real", "fake", "masked"):
            per_fold = Counter(f for f, s in zip(of, rows, strict=True) if s.label == label)
            # within one image per class; with pairs of copies, within one pair
            assert max(per_fold.values()) - min(per_fold.values()) <= spread, (label, per_fold)
            assert len(per_fold) == folds  # every class in every fold


def test_the_train_val_ratio_inside_a_fold_follows_the_fractions():
    samples = _samples({"a": 300, "b": 300})
    split = split_samples(samples, {**FRACTIONS, "folds": 4, "fold": 1}, seed=0)
    counts = Counter(s.split for s in split)
    assert (
        counts["test"] == 150
        and counts["train"] == pytest.approx(300, abs=2)
        and counts["val"] == pytest.approx(150, abs=2)
    )


def test_a_cross_validation_refuses_sources_that_keep_their_own_split():
    samples = _samples({"a": 5, "b": 5}, source_split="train")
    with pytest.raises(FacemixConfigError, match="re-splits every image"):
        split_samples(samples, {**FRACTIONS, "folds": 3, "fold": 0}, seed=0, keep_source_splits=True)
    with pytest.raises(FacemixConfigError, match="fold one of 0..folds-1"):
        split_samples(_samples({"a": 5, "b": 5}), {**FRACTIONS, "folds": 3, "fold": 3}, seed=0)


def _noisy_problem(n: int = 600, k: int = 3, noise: float = 0.05, seed: int = 0):
    """A good model's out-of-fold probabilities and labels of which a seeded ``noise`` share was swapped."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    swapped = rng.choice(n, int(noise * n), replace=False)
    given = truth.copy()
    given[swapped] = (truth[swapped] + rng.integers(1, k, len(swapped))) % k
    return given, probs, set(swapped.tolist())


def test_the_finder_finds_planted_label_swaps():
    given, probs, swapped = _noisy_problem()
    found = find_label_issues(given, probs)
    hits = len(set(found.tolist()) & swapped)
    assert hits / len(swapped) >= 0.8 and hits / len(found) >= 0.8, (hits, len(found), len(swapped))
    top = found[: len(swapped)]  # ranked: the least self-confident first
    assert all(probs[i, given[i]] <= probs[j, given[j]] for i, j in zip(top, top[1:], strict=False))


def test_the_confident_joint_counts_each_label_and_nothing_is_flagged_when_labels_agree():
    given, probs, _ = _noisy_problem(noise=0.0)
    joint = confident_joint(given, probs)
    assert (joint.sum(axis=1) == np.bincount(given, minlength=3)).all()  # rows keep the label counts
    found = find_label_issues(given, probs)
    assert all(probs[i].argmax() != given[i] for i in found)  # a top-1 agreement is never flagged


def _module(seed: int, temperature: float) -> ClassifierModule:
    torch.manual_seed(seed)
    module = ClassifierModule("simple_cnn", 3, ["a", "b", "c"], 16, options={"channels": [4], "hidden": [8]})
    module.temperature.fill_(temperature)
    return module.eval()


class _Pixels(torch.utils.data.Dataset):
    def __init__(self, n: int = 10) -> None:
        self.images = torch.randint(
            0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
        )
        self.targets = [0] * n

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], 0, i


def test_a_fold_ensemble_predicts_the_mean_of_its_members_probabilities():
    members = [_module(0, 1.0), _module(1, 2.5), _module(2, 0.7)]
    data = _Pixels()
    each = [predict(m, data).probabilities for m in members]  # each member with its own temperature
    ensemble = FoldEnsemble(members)
    got = predict(ensemble, data).probabilities
    assert np.allclose(got, np.mean(each, axis=0), atol=1e-6) and np.allclose(got.sum(axis=1), 1)


def test_a_fold_ensemble_refuses_members_of_different_inputs():
    other = ClassifierModule("simple_cnn", 3, ["a", "b", "c"], 32, options={"channels": [4], "hidden": [8]})
    with pytest.raises(FacemixConfigError, match="image_size"):
        FoldEnsemble([_module(0, 1.0), other])
