from collections import Counter

import numpy as np

from facemix.data.sampling import balanced_sampler


def test_balanced_sampler_draws_classes_uniformly():
    labels = [0] * 700 + [1] * 60 + [2] * 590  # the demo's imbalance: class 1 is ~4%
    draws = [labels[i] for i in balanced_sampler(labels, num_samples=30000, seed=0)]
    counts = np.array([Counter(draws)[k] for k in range(3)])
    expected = len(draws) / 3
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 13.8, counts  # chi-square, 2 dof, p = 0.001
    assert np.all(np.abs(counts / len(draws) - 1 / 3) < 0.02)


def test_balanced_sampler_is_seeded_and_sized():
    labels = [0] * 10 + [1] * 2
    assert list(balanced_sampler(labels, seed=3)) == list(balanced_sampler(labels, seed=3))
    assert len(list(balanced_sampler(labels))) == len(labels)
    assert len(list(balanced_sampler(labels, num_samples=50))) == 50
