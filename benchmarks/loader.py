"""Train-loader throughput: facemix (decoded cache + Albumentations) vs the loader users write by hand.

Usage: python benchmarks/loader.py [--size 128] [--batch 32] [--workers 2] [--images 3000] [--scale 0.1]

Baseline (named "torchvision"): ``torchvision.datasets.ImageFolder`` + PIL + torchvision transforms of the same
output size and augmentation strength as facemix's ``light`` preset (resize, flip, affine +-10 deg / 6 % / 10 %,
brightness / contrast 0.15, normalise), same batch size, workers and shuffling. facemix is measured with the
decoded-image cache (default) and without it (``data.cache=false``). Each loader is iterated for whole epochs until
``--images`` images have passed, after one warm-up epoch (worker start-up, page cache); the one-off first-use cost
(scan + cache build) is printed separately. Sources: the demo's 600 px real/fake folder and ~150 px mask folder,
and the real samples in ../shared/data when present.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

from facemix.config.compose import augment_ops
from facemix.data.datamodule import FaceMixDataModule
from facemix.data.demo import write_demo
from facemix.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def baseline_loader(root: Path, size: int, batch: int, workers: int) -> DataLoader:
    transform = T.Compose(
        [
            T.Resize((size, size)),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.RandomAffine(degrees=10, translate=(0.06, 0.06), scale=(0.9, 1.1))], p=0.7),
            T.RandomApply([T.ColorJitter(brightness=0.15, contrast=0.15)], p=0.5),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    dataset = datasets.ImageFolder(str(root), transform=transform)
    return DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0)


def facemix_loader(
    root: Path, size: int, batch: int, workers: int, cache: bool, work: Path
) -> tuple[DataLoader, float]:
    """facemix's own train loader over the same folder, all of it in the train split; returns it and set-up time."""
    dm = FaceMixDataModule(
        sources={"bench": {"root": str(root)}},
        run_dir=str(work / f"cache_{cache}"),
        split={"train": 1.0, "val": 0.0, "test": 0.0},
        image_size=size,
        batch_size=batch,
        num_workers=workers,
        augment=augment_ops("light"),
        cache=cache,
        cache_dir=str(work / "image_cache"),
        scan_cache=str(work / "scan_cache.json"),
        duplicates={"max_hamming": -1, "label_conflicts": "keep"},  # keep every file: same images as the baseline
    )
    start = time.perf_counter()
    dm.prepare_data()
    dm.setup("fit")
    return dm.train_dataloader(), time.perf_counter() - start


def images_per_second(loader: DataLoader, min_images: int) -> tuple[float, int]:
    for _ in loader:  # warm-up epoch: worker start-up, OS page cache
        pass
    seen, start = 0, time.perf_counter()
    while seen < min_images:
        for batch in loader:
            seen += len(batch[1])
    return seen / (time.perf_counter() - start), seen


def bench_source(name: str, root: Path, args: argparse.Namespace) -> None:
    files = sum(1 for p in root.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        base, _ = images_per_second(baseline_loader(root, args.size, args.batch, args.workers), args.images)
        loader, first_use = facemix_loader(root, args.size, args.batch, args.workers, True, Path(tmp))
        cached, n = images_per_second(loader, args.images)
        loader, _ = facemix_loader(root, args.size, args.batch, args.workers, False, Path(tmp))
        uncached, _ = images_per_second(loader, args.images)
    print(
        f"| {name} | {files} | {base:.0f} | {uncached:.0f} ({uncached / base:.1f}x) | {cached:.0f} "
        f"(**{cached / base:.1f}x**) | {first_use:.1f} s |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=3000, help="images timed per loader (after a warm-up epoch)")
    parser.add_argument("--scale", type=float, default=0.1, help="demo size (0.1: 1384 images)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = parser.parse_args()
    logging.getLogger("facemix").setLevel(logging.ERROR)  # data-card warnings about the benchmark folders
    torch.set_num_threads(1)  # the loader is what is measured; the main process only collects batches

    demo = write_demo(Path(args.data_dir) / "demo_faces" / f"scale_{args.scale}_seed_0", args.scale, 0, progress=False)
    sources = [
        ("demo real/fake, 600 px JPEG", demo / "real_and_fake_face"),
        ("demo mask, ~150 px PNG/JPEG", demo / "face_mask" / "Train"),
    ]
    shared = Path(args.shared)
    for folder in ("realfake", "mask", "muffin_chihuahua"):
        if (shared / folder).is_dir():
            sources.append((f"../shared/data/{folder}", shared / folder))
    print(
        f"train loader images/s at {args.size} px, batch {args.batch}, {args.workers} workers, light augmentation; "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}"
    )
    print(
        "| source | files | torchvision ImageFolder+PIL (baseline) | facemix, no cache | facemix, cache | first use |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, root in sources:
        bench_source(name, root, args)


if __name__ == "__main__":
    main()
