"""A torch Dataset over manifest rows."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from lightning_fabric.utilities.seed import pl_worker_init_function
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import Dataset, get_worker_info

from facemix.data.cache import DecodedImages
from facemix.data.images import load_rgb
from facemix.data.manifest import Sample
from facemix.errors import FacemixConfigError


class ManifestDataset(Dataset):
    """Yields ``(image tensor, class index, row index)``; the row index lets reports map predictions back to files.

    With ``images`` (the decoded cache) a row costs a memory-mapped read instead of a file decode.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        class_to_idx: Mapping[str, int],
        transform: Callable,
        images: DecodedImages | None = None,
    ) -> None:
        self.samples = list(samples)
        self.targets = [class_to_idx[s.label] for s in self.samples]
        self.transform = transform
        self.images = images

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path = self.samples[index].path
        try:
            image = np.array(self.images[path]) if self.images is not None else load_rgb(path)
        except (OSError, ValueError) as exc:  # the scan read it: it changed, moved or vanished since
            raise FacemixConfigError(
                f"{path} could not be read ({type(exc).__name__}: {exc}): it was moved, removed or replaced after "
                "the run's manifest was written. Restore it, or start a new run so the scan sees the current files."
            ) from None
        return self.transform(image=image)["image"], self.targets[index], index


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Lightning's seeding of the global generators, plus a distinct, reproducible
    seed for the worker's Albumentations pipeline (each worker would otherwise repeat one augmentation stream, or,
    unseeded, never repeat a run). torch derives ``info.seed`` from the seeded main process; the rank keeps DDP
    ranks apart.

    Workers also ignore SIGTERM and SIGINT: a terminal's Ctrl-C and SLURM's SIGTERM go to the whole process group,
    and a worker dying of it first made the main process fail with "DataLoader worker ... killed by signal" instead
    of stopping at the next batch with its interrupt record; the main process ends the workers itself."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pl_worker_init_function(worker_id)
    info = get_worker_info()
    transform = getattr(info.dataset, "transform", None)
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(rank_seed(info.seed))


def rank_seed(seed: int) -> int:
    """``seed`` made distinct per DDP rank (each rank would otherwise repeat rank 0's augmentation stream)."""
    return (seed + 7919 * rank_zero_only.rank) % 2**32
