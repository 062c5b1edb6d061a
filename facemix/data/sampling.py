"""Online balancing: draw the train split so every class is seen equally often."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from torch.utils.data import WeightedRandomSampler


def inverse_frequency_weights(labels: Sequence[int]) -> torch.Tensor:
    """Per-sample weights 1 / count(class), so each class carries the same total weight."""
    counts = Counter(labels)
    return torch.tensor([1.0 / counts[y] for y in labels], dtype=torch.double)


def balanced_sampler(labels: Sequence[int], num_samples: int | None = None, seed: int = 0) -> WeightedRandomSampler:
    """A with-replacement sampler whose draws are uniform over classes; ``num_samples`` defaults to len(labels)."""
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        inverse_frequency_weights(labels), num_samples or len(labels), replacement=True, generator=generator
    )
