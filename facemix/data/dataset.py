"""A torch Dataset over manifest rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch.utils.data import Dataset

from facemix.data.images import load_rgb
from facemix.data.manifest import Sample


class ManifestDataset(Dataset):
    """Yields ``(image tensor, class index, row index)``; the row index lets reports map predictions back to files."""

    def __init__(self, samples: Sequence[Sample], class_to_idx: Mapping[str, int], transform: Callable) -> None:
        self.samples = list(samples)
        self.targets = [class_to_idx[s.label] for s in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        image = load_rgb(self.samples[index].path)
        return self.transform(image=image)["image"], self.targets[index], index
