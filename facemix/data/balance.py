"""Offline balancing: grow minority classes of the TRAIN split with augmented copies, subsample the rest.

This is the study's "balanced merge". It runs after the split and reads / writes train rows only, so no val or
test image (nor, through group-aware splitting, a copy of one) can be the parent of a generated image. Every
generated row records its ``parent``. Generated files are cached under a key of the train rows, recipe, target
and seed: a second run with the same inputs writes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np

from facemix.augment.presets import build_ops
from facemix.data.images import load_rgb
from facemix.data.manifest import Sample, class_counts, file_sha1
from facemix.data.progress import track
from facemix.data.shared import build_once, private_name, remove_leftovers
from facemix.errors import FacemixConfigError

CACHE_VERSION = 3  # 2: the index records each generated file's sha1; 3: the recipe is its config, not a name
UNUSED = "unused"  # split of train rows that subsampling left out (kept in the manifest for the record)


def recipe_transform(recipe: Mapping[str, Any], seed: int) -> A.Compose:
    """One of the recipe's ops per generated image (``data.offline.recipe``: named ops, each a ``_target_``; the
    study's: rotate clockwise or anticlockwise, flip horizontally, Gaussian noise, blur)."""
    ops = build_ops(recipe, key="data.offline.recipe")
    if not ops:
        raise FacemixConfigError(
            "data.offline.recipe has no ops, so offline balancing would only copy images; give it at least one "
            "(see conf/data/unbalanced.yaml), or use data.balance=sampler."
        )
    return A.Compose([A.OneOf(ops, p=1.0)], seed=seed)


def cache_key(train: Sequence[Sample], recipe: Mapping[str, Any], target: int, seed: int) -> str:
    payload = {
        "version": CACHE_VERSION,
        "recipe": recipe,
        "target": target,
        "seed": seed,
        "train": sorted((s.sha1, s.label, s.path) for s in train),
    }
    return hashlib.sha1(json.dumps(payload).encode()).hexdigest()[:16]


def _plan_parents(train: Sequence[Sample], classes: Sequence[str], target: int, seed: int) -> list[Sample]:
    """Parents of the images to generate: each minority class cycles through its own images in a seeded order."""
    rng = np.random.default_rng([seed, 17])
    parents: list[Sample] = []
    for cls in classes:
        rows = [s for s in train if s.label == cls]
        need = target - len(rows)
        if need > 0:
            order = np.concatenate([rng.permutation(len(rows)) for _ in range(need // len(rows) + 1)])[:need]
            parents += [rows[i] for i in order]
    return parents


def _generate(parents: Sequence[Sample], transform: A.Compose, out_dir: Path, progress: bool) -> None:
    remove_leftovers(out_dir)
    tmp = private_name(out_dir)
    rows = []
    items = track(enumerate(parents), len(parents), f"Generating {len(parents)} balanced train images", progress)
    for i, parent in items:
        image = transform(image=load_rgb(parent.path))["image"]
        name = f"{parent.label}/{i:06d}_{Path(parent.path).stem}.jpg"
        (tmp / parent.label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append({"file": name, "parent_index": i, "sha1": file_sha1(tmp / name)})
    with open(tmp / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "parent_index", "sha1"])
        writer.writeheader()
        writer.writerows(rows)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir, ignore_errors=True)  # no index.csv: an incomplete leftover (we hold the lock)
    os.replace(tmp, out_dir)


def offline_balance(
    samples: Sequence[Sample],
    classes: Sequence[str],
    cache_dir: str | Path,
    recipe: Mapping[str, Any],
    target_per_class: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[Sample]:
    """Return the manifest with the train split balanced to ``target_per_class`` (default: the majority's count)
    with ``recipe`` (``data.offline.recipe``; the study's is in conf/data/unbalanced.yaml)."""
    transform = recipe_transform(recipe, seed)  # built first: a bad op stops before any image is written
    train = [s for s in samples if s.split == "train" and not s.parent]
    counts = class_counts(train, classes)
    target = int(target_per_class or max(counts.values()))
    if target < 1:
        raise FacemixConfigError(f"data.offline.target_per_class must be a positive count, got {target_per_class}.")
    out_dir = Path(cache_dir) / cache_key(train, recipe, target, seed)
    parents = _plan_parents(train, classes, target, seed)
    build_once(
        lambda: (out_dir / "index.csv").exists(),
        lambda: _generate(parents, transform, out_dir, progress),
        out_dir.with_name(out_dir.name + ".lock"),
        f"the offline-balanced train images {out_dir}",
    )
    with open(out_dir / "index.csv", newline="") as fh:
        index = list(csv.DictReader(fh))
    generated = []
    for row in index:
        parent = parents[int(row["parent_index"])]
        path = out_dir / row["file"]
        # every recipe op keeps the size; the parent's dup_group keeps lineage together in any later regrouping
        # hashed once at generation: a cached run reads the index, not the images
        generated.append(replace(parent, path=str(path.resolve()), sha1=row["sha1"], parent=parent.path))
    rng = np.random.default_rng([seed, 29])
    dropped: set[str] = set()
    for cls in classes:
        rows = [s for s in train if s.label == cls]
        if len(rows) > target:
            keep = set(rng.choice(len(rows), target, replace=False).tolist())
            dropped.update(rows[i].path for i in range(len(rows)) if i not in keep)
    balanced = [replace(s, split=UNUSED) if s.path in dropped and s.split == "train" else s for s in samples]
    return balanced + generated
