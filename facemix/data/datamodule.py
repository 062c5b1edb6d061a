"""The LightningDataModule: a run's manifest -> datasets and loaders.

The manifest itself is built by ``facemix.data.pipeline.build_run_data`` (called from ``prepare_data``); this module
only serves it: datasets per split (from the decoded-image cache), the train sampler (balanced or not), loaders.
Training has no test stage: after ``fit`` the best checkpoint makes one pass over the report split
(``facemix.evaluation``), on one process, from the same served dataset.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, RandomSampler

from facemix.augment.presets import eval_transform, train_transform
from facemix.data.cache import DecodedImages, build_cache
from facemix.data.dataset import ManifestDataset, rank_seed, seed_worker
from facemix.data.manifest import Sample, class_counts, read_manifest
from facemix.data.pipeline import DataSpec, build_run_data, class_names
from facemix.data.sampling import balanced_sampler
from facemix.data.split import SPLITS
from facemix.errors import FacemixConfigError
from facemix.run.rundir import RunDir

log = logging.getLogger(__name__)


class FaceMixDataModule(pl.LightningDataModule):
    """Serves train / val / test loaders from the run's manifest.

    ``prepare_data`` (one process) builds the manifest with the data pipeline (unless the run already has one: a
    resumed run keeps its data) and the image cache; ``setup`` (every process) only reads them, so all ranks see
    the same split. ``run_dir``: the run whose manifest and dataset card these are; ``pipeline``: the pipeline keys
    of the data config (``facemix.data.pipeline.DataSpec``).
    """

    def __init__(
        self,
        run_dir: str | Path,
        image_size: int | None = 64,
        batch_size: int = 32,
        num_workers: int = 2,
        pin_memory: bool = False,
        samples_per_epoch: int | None = None,
        epoch_size_factor: float = 1.0,
        augment: Mapping[str, Any] | None = None,
        cache: bool = True,
        cache_size: int | None = None,
        cache_dir: str | None = None,
        interpolation: str = "area",
        root: str | None = None,  # informational: sources interpolate it
        **pipeline: Any,
    ) -> None:
        super().__init__()
        # one process (global rank 0) writes the manifest and the image cache; a multi-node run shares them
        self.prepare_data_per_node = False
        self.spec = DataSpec.from_config(pipeline, other_keys=_loader_keys())
        self.run = RunDir(run_dir)
        self.manifest_path = self.run.manifest
        if image_size is None:
            raise FacemixConfigError(
                "data.image_size is null here; facemix.train fills it from the model (its pretrained input size, "
                "or 64 from scratch). Set data.image_size=<pixels> when building the data module yourself."
            )
        self.image_size = int(image_size)
        self.interpolation = interpolation
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.samples_per_epoch = samples_per_epoch
        self.epoch_size_factor = epoch_size_factor
        self.augment = dict(augment or {})  # named Albumentations ops (conf/augment/*.yaml)
        self.cache = cache
        self.cache_size = int(cache_size or self.image_size)
        self.cache_dir = Path(cache_dir) if cache_dir else self.run.image_cache
        if self.cache and self.cache_size < self.image_size:
            raise FacemixConfigError(
                f"data.cache_size={cache_size} is below data.image_size={image_size}; the cache must hold at least "
                "the training size. Raise data.cache_size or leave it null (= image_size)."
            )
        self._classes: list[str] | None = list(self.spec.classes) if self.spec.classes else None
        self.samples: list[Sample] = []
        self.datasets: dict[str, ManifestDataset] = {}
        self._images: DecodedImages | None = None  # opened by prepare_data in this process, if it ran here

    @property
    def balance(self) -> str:
        return self.spec.balance

    @property
    def seed(self) -> int:
        return self.spec.seed

    def resolve_classes(self) -> list[str]:
        """The merged class names: ``data.classes``, or found in the sources (which may draw the demo set)."""
        if self._classes is None:
            self._classes = class_names(self.spec)
        return self._classes

    @property
    def class_names(self) -> list[str]:
        if self._classes is None:
            raise RuntimeError("class names are not known yet: call resolve_classes() or prepare_data() first")
        return self._classes

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.class_names)}

    def prepare_data(self) -> None:
        if self.manifest_path.exists():  # a resumed run keeps the data it started with
            log.info("using the existing manifest %s", self.manifest_path)
            samples = read_manifest(self.manifest_path)
            self.resolve_classes()
        else:
            built = build_run_data(self.spec, self.run)
            self._classes, samples = built.classes, built.samples
        if self.cache:
            self._images = self._open_cache(samples, progress=True)

    def _open_cache(self, samples, progress: bool = False) -> DecodedImages:
        paths = [s.path for s in samples if s.split in SPLITS]
        return build_cache(
            paths, self.cache_size, self.cache_dir, self.interpolation, progress=progress, verify=self.spec.verify
        )

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.samples = read_manifest(self.manifest_path)
        self.resolve_classes()
        mapping = self.class_to_idx
        images = None
        if self.cache:  # other ranks open what global rank 0's prepare_data built
            images = self._images or self._open_cache(self.samples)
        for split in SPLITS:
            rows = [s for s in self.samples if s.split == split]
            transform = (
                train_transform(self.augment, self.image_size, rank_seed(self.seed), self.interpolation)
                if split == "train"
                else eval_transform(self.image_size, self.interpolation)
            )
            self.datasets[split] = ManifestDataset(rows, mapping, transform, images)
        train_counts = class_counts(self.datasets["train"].samples, self.class_names)
        empty = [c for c, n in train_counts.items() if n == 0]
        if empty:
            raise FacemixConfigError(
                f"classes {empty} have no training images after the split of {self.manifest_path}. Give them more "
                "images, raise data.split.train, or drop them from data.classes."
            )

    def _loader(self, split: str, **kwargs) -> DataLoader:
        dataset = self.datasets[split]
        if len(dataset) == 0:
            raise FacemixConfigError(
                f"the {split} split is empty; raise data.split.{split} or add images (manifest: {self.manifest_path})."
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=seed_worker if self.num_workers > 0 else None,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        drop_last = len(dataset) > self.batch_size  # no size-1 batch for batch norm
        draws = self.samples_per_epoch or round(len(dataset) * self.epoch_size_factor)
        if self.balance == "sampler":
            sampler = balanced_sampler(dataset.targets, draws, self.seed)
        elif draws != len(dataset):  # more (or fewer) draws per epoch, uniformly over the train rows
            generator = torch.Generator().manual_seed(self.seed)
            sampler = RandomSampler(dataset, num_samples=draws, generator=generator)
        else:
            return self._loader("train", shuffle=True, drop_last=drop_last)
        return self._loader("train", sampler=sampler, drop_last=drop_last)

    def calibration_loader(self, images: int = 1024) -> DataLoader:
        """Up to ``images`` train rows as evaluation sees them (no augmentation, from the cache), in a seeded order
        that mixes the classes: what averaged weights recompute their batch-norm statistics on. In this process, so
        no worker starts and no training random state is touched."""
        dataset = self.datasets["train"]
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed))[:images].tolist()
        transform = eval_transform(self.image_size, self.interpolation)
        rows = ManifestDataset([dataset.samples[i] for i in order], self.class_to_idx, transform, dataset.images)
        return DataLoader(rows, batch_size=self.batch_size, shuffle=False, drop_last=len(rows) > self.batch_size)

    def _eval_loader(self, split: str) -> DataLoader:
        """Under DDP each rank scores a disjoint part and nothing is repeated (Lightning's default sampler pads with
        repeats), so the synchronised val metrics equal a single-process pass over the split."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return self._loader(split, sampler=UnrepeatedDistributedSampler(self.datasets[split], shuffle=False))
        return self._loader(split, shuffle=False)

    @property
    def report_split(self) -> str:
        """The split the report uses: ``test``, or ``val`` when the split has no test part (the muffin/chihuahua
        study's 80/20)."""
        return "test" if len(self.datasets["test"]) else "val"

    def train_class_counts(self) -> list[int]:
        """Images per class (in class order) in the train split: what ``loss.class_weights=auto`` weighs by."""
        counts = class_counts(self.datasets["train"].samples, self.class_names)
        return [counts[c] for c in self.class_names]

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")


@functools.cache
def _loader_keys() -> tuple[str, ...]:
    """The data config keys the module itself takes (the rest go to the pipeline): for "did you mean" hints."""
    skip = ("self", "pipeline")
    return tuple(k for k in inspect.signature(FaceMixDataModule.__init__).parameters if k not in skip)
