"""The LightningDataModule: sources -> merged manifest -> split -> (balanced) loaders."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, RandomSampler

from facemix.augment.balance import offline_balance
from facemix.augment.presets import eval_transform, train_transform
from facemix.augment.sampling import balanced_sampler
from facemix.data.cache import DecodedImages, build_cache
from facemix.data.card import build_card, write_card
from facemix.data.dataset import ManifestDataset, rank_seed, seed_worker
from facemix.data.demo import write_demo
from facemix.data.harmonize import harmonize
from facemix.data.health import ScanCache, scan_images, shortcut_features, shortcut_probe
from facemix.data.manifest import (
    ManifestBuild,
    Sample,
    build_manifest,
    class_counts,
    infer_classes,
    read_manifest,
    specs_from_config,
    write_manifest,
)
from facemix.data.split import SPLITS, split_samples
from facemix.errors import FacemixConfigError

log = logging.getLogger(__name__)
BALANCE_MODES = ("none", "sampler", "offline")


class FaceMixDataModule(pl.LightningDataModule):
    """Merges folder sources into one label space and serves train / val / test loaders.

    ``prepare_data`` (one process) draws the demo set if needed and writes the run's manifest; ``setup`` (every
    process) only reads that manifest, so all ranks see the same split.
    """

    def __init__(
        self,
        sources: Mapping[str, Mapping[str, Any]],
        manifest_path: str,
        classes: Sequence[str] | None = None,
        demo: Mapping[str, Any] | None = None,
        split: Mapping[str, float] | None = None,
        keep_source_splits: bool = False,
        image_size: int | None = 64,
        batch_size: int = 32,
        num_workers: int = 2,
        balance: str = "none",
        samples_per_epoch: int | None = None,
        epoch_size_factor: float = 1.0,
        offline: Mapping[str, Any] | None = None,
        augment: Mapping[str, Any] | None = None,
        seed: int = 0,
        pin_memory: bool = False,
        strict: bool = False,
        scan_cache: str | None = None,
        duplicates: Mapping[str, Any] | None = None,
        harmonize: Mapping[str, Any] | bool | None = None,
        cache: bool = True,
        cache_size: int | None = None,
        cache_dir: str | None = None,
        interpolation: str = "area",
        root: str | None = None,  # informational: sources interpolate it
    ) -> None:
        super().__init__()
        # one process (global rank 0) writes the manifest and the image cache; a multi-node run shares them
        self.prepare_data_per_node = False
        if balance not in BALANCE_MODES:
            raise FacemixConfigError(f"data.balance is '{balance}'; choose one of {list(BALANCE_MODES)}.")
        self.specs = specs_from_config(sources)
        self.manifest_path = Path(manifest_path)
        self._classes = list(classes) if classes else None
        self.demo = dict(demo) if demo else None
        self.split = dict(split or {"train": 0.6, "val": 0.3, "test": 0.1})
        self.keep_source_splits = keep_source_splits
        if image_size is None:
            raise FacemixConfigError(
                "data.image_size is null here; facemix.train fills it from the model (its pretrained input size, "
                "or 64 from scratch). Set data.image_size=<pixels> when building the data module yourself."
            )
        self.image_size = int(image_size)
        self.interpolation = interpolation
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.balance = balance
        self.samples_per_epoch = samples_per_epoch
        self.epoch_size_factor = epoch_size_factor
        self.offline = dict(offline or {})
        if balance == "offline" and not self.offline.get("recipe"):
            raise FacemixConfigError(
                "data.balance=offline needs data.offline.recipe, the ops that make the new images (the study's is in "
                "conf/data/unbalanced.yaml); compose from data=balanced_offline or give the recipe."
            )
        self.augment = dict(augment or {})  # named Albumentations ops (conf/augment/*.yaml)
        self.seed = seed
        self.pin_memory = pin_memory
        self.strict = strict
        self.scan_cache = scan_cache
        self.harmonize = dict(harmonize) if isinstance(harmonize, Mapping) else {"enabled": bool(harmonize)}
        self.duplicates = {"max_hamming": 13, "min_correlation": 0.85, "label_conflicts": "drop", **(duplicates or {})}
        self.cache = cache
        self.cache_size = int(cache_size or self.image_size)
        self.cache_dir = Path(cache_dir) if cache_dir else self.manifest_path.parent / "image_cache"
        if self.cache and self.cache_size < image_size:
            raise FacemixConfigError(
                f"data.cache_size={cache_size} is below data.image_size={image_size}; the cache must hold at least "
                "the training size. Raise data.cache_size or leave it null (= image_size)."
            )
        self.samples: list[Sample] = []
        self.datasets: dict[str, ManifestDataset] = {}
        self._images: DecodedImages | None = None  # opened by prepare_data in this process, if it ran here

    def _draw_demo_if_needed(self) -> None:
        if not self.demo:
            return
        demo_root = Path(self.demo["root"]).resolve()
        wanted = [s for s in self.specs if s.root.resolve().is_relative_to(demo_root)]
        if wanted and not (demo_root / "DEMO.json").exists():
            write_demo(demo_root, scale=float(self.demo.get("scale", 0.1)), seed=int(self.demo.get("seed", 0)))

    @property
    def class_names(self) -> list[str]:
        """Merged class names: ``data.classes`` if given, else the label-map targets or folder names."""
        if self._classes is None:
            self._draw_demo_if_needed()
            self._classes = infer_classes(self.specs)
        return self._classes

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.class_names)}

    def prepare_data(self) -> None:
        if self.manifest_path.exists():  # a resumed run keeps the data it started with
            log.info("using the existing manifest %s", self.manifest_path)
            samples = read_manifest(self.manifest_path)
        else:
            samples = self._write_manifest()
        if self.cache:
            self._images = self._open_cache(samples, progress=True)

    def _open_cache(self, samples: Sequence[Sample], progress: bool = False) -> DecodedImages:
        paths = [s.path for s in samples if s.split in SPLITS]
        return build_cache(paths, self.cache_size, self.cache_dir, self.interpolation, progress=progress)

    def _write_manifest(self) -> list[Sample]:
        self._draw_demo_if_needed()
        built = build_manifest(
            self.specs,
            self.class_names,
            ScanCache(self.scan_cache),
            max_hamming=int(self.duplicates["max_hamming"]),
            min_correlation=float(self.duplicates["min_correlation"]),
            drop_label_conflicts=self.duplicates["label_conflicts"] == "drop",
            progress=True,
        )
        if built.bad_files and self.strict:
            listing = "\n".join(f"  {p}: {why}" for p, why in built.bad_files)
            raise FacemixConfigError(
                f"data.strict=true and {len(built.bad_files)} images cannot be read; fix or remove them, or set "
                f"data.strict=false to skip them:\n{listing}"
            )
        if built.bad_files:
            examples = "; ".join(f"{p} ({why})" for p, why in built.bad_files[:3])
            log.warning(
                "skipped %d unreadable images (listed in dataset_card.md), e.g. %s", len(built.bad_files), examples
            )
        if built.label_conflicts:
            log.warning("dropped %d groups of copies that carry different classes", len(built.label_conflicts))
        for source, labels in built.scan.unmapped_labels.items():
            log.info("source %s: folders %s are not in its label_map and were left out", source, labels)
        samples = built.samples
        if self.harmonize.get("enabled"):
            samples = harmonize(
                samples,
                self.harmonize.get("cache_dir") or self.manifest_path.parent / "harmonized",
                int(self.harmonize.get("size", 256)),
                int(self.harmonize.get("quality", 90)),
            )
        keep = {s.name: self.keep_source_splits if s.keep_splits is None else s.keep_splits for s in self.specs}
        samples = split_samples(samples, self.split, self.seed, keep)
        if self.balance == "offline":  # after the split, on train rows only
            samples = offline_balance(
                samples,
                self.class_names,
                cache_dir=self.offline.get("cache_dir") or self.manifest_path.parent / "offline_cache",
                target_per_class=self.offline.get("target_per_class"),
                recipe=self.offline["recipe"],
                seed=self.seed,
            )
        write_manifest(samples, self.manifest_path)
        self._log_counts(samples)
        card = self._card(samples, built)
        write_card(card, self.manifest_path.parent)
        for warning in card["warnings"]:
            log.warning("shortcut: %s", warning)
        return samples

    def _card(self, samples: Sequence[Sample], built: ManifestBuild) -> dict:
        originals = [s for s in samples if not s.parent]
        infos = [built.info_of(s) for s in originals]
        formats: dict[str, Counter] = {}
        for s, info in zip(originals, infos, strict=True):
            formats.setdefault(s.source, Counter())[f"{info.format} {info.mode}"] += 1
        labels = [s.label for s in originals]
        probe = shortcut_probe(shortcut_features(infos), labels, seed=self.seed)
        after = None
        if self.harmonize.get("enabled"):  # the same probe on what the model will actually see
            copies = scan_images([Path(s.path) for s in originals], ScanCache(self.scan_cache), progress=False)
            after = shortcut_probe(shortcut_features([copies[s.path] for s in originals]), labels, seed=self.seed)
        ignored = [(str(p), why) for p, why in built.scan.skipped]
        source_sizes = [replace(s, width=i.width, height=i.height) for s, i in zip(originals, infos, strict=True)]
        return build_card(
            samples,
            self.class_names,
            built.bad_files,
            ignored,
            built.label_conflicts,
            formats,
            probe,
            after,
            source_sizes,
        )

    def _log_counts(self, samples: Sequence[Sample]) -> None:
        for split in SPLITS:
            counts = class_counts(samples, self.class_names, split)
            log.info(
                "%-5s %5d images  %s", split, sum(counts.values()), "  ".join(f"{c}={n}" for c, n in counts.items())
            )

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.samples = read_manifest(self.manifest_path)
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

    def _eval_loader(self, split: str) -> DataLoader:
        """Under DDP each rank scores a disjoint part and nothing is repeated (Lightning's default sampler pads with
        repeats), so the synchronised val / test metrics equal a single-process pass over the split."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return self._loader(split, sampler=UnrepeatedDistributedSampler(self.datasets[split], shuffle=False))
        return self._loader(split, shuffle=False)

    @property
    def report_split(self) -> str:
        """The split the test stage and the report use: ``test``, or ``val`` when the split has no test part (the
        muffin/chihuahua study's 80/20)."""
        return "test" if len(self.datasets["test"]) else "val"

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        if self.report_split == "val":
            log.warning("the test split is empty (data.split.test=0): the test/ metrics and report use the val split")
        return self._eval_loader(self.report_split)
