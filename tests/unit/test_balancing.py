"""Offline balancing (counts, cache reuse, lineage, determinism), class weights, augment presets."""

import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from facemix.augment.presets import train_transform
from facemix.config.compose import augment_ops, compose_config
from facemix.data.balance import UNUSED, offline_balance
from facemix.data.images import load_rgb
from facemix.data.manifest import build_manifest, specs_from_config
from facemix.data.split import split_samples
from tests.helpers import REPO, make_imagefolder

CLASSES = ["real", "fake", "masked"]
PRESETS = sorted(p.stem for p in (REPO / "conf" / "augment").glob("*.yaml"))
STUDY_RECIPE = OmegaConf.to_container(compose_config(["data=balanced_offline"]).data.offline.recipe)


@pytest.fixture()
def split_manifest(tmp_path):
    make_imagefolder(tmp_path / "src", {"real": 30, "fake": 6, "masked": 20})
    samples = build_manifest(specs_from_config({"s": {"root": str(tmp_path / "src")}}), CLASSES).samples
    return split_samples(samples, {"train": 0.6, "val": 0.3, "test": 0.1}, seed=0)


def _train_counts(samples):
    return Counter(s.label for s in samples if s.split == "train")


def test_offline_balance_hits_the_target_exactly_and_subsamples_the_majority(split_manifest, tmp_path):
    balanced = offline_balance(
        split_manifest, CLASSES, tmp_path / "cache", STUDY_RECIPE, target_per_class=12, progress=False
    )
    assert _train_counts(balanced) == {"real": 12, "fake": 12, "masked": 12}
    assert Counter(s.split for s in balanced)[UNUSED] == _train_counts(split_manifest)["real"] - 12
    generated = [s for s in balanced if s.parent]
    assert len(generated) == (12 - _train_counts(split_manifest)["fake"]) + 0  # masked has exactly 12 train rows
    assert all(cv2.imread(s.path) is not None for s in generated)


def test_default_target_is_the_majority_count(split_manifest, tmp_path):
    balanced = offline_balance(split_manifest, CLASSES, tmp_path / "cache", STUDY_RECIPE, progress=False)
    majority = max(_train_counts(split_manifest).values())
    assert _train_counts(balanced) == dict.fromkeys(CLASSES, majority)


def test_val_and_test_are_untouched_and_never_parents(split_manifest, tmp_path):
    balanced = offline_balance(
        split_manifest, CLASSES, tmp_path / "cache", STUDY_RECIPE, target_per_class=15, progress=False
    )
    held_out = [s for s in split_manifest if s.split in ("val", "test")]
    assert [s for s in balanced if s.split in ("val", "test")] == held_out
    held_paths = {s.path for s in held_out}
    held_groups = {s.dup_group for s in held_out}
    for s in balanced:
        if s.parent:
            assert s.split == "train" and s.parent not in held_paths and s.dup_group not in held_groups
            assert s.parent in {t.path for t in split_manifest if t.split == "train"}


def test_cache_is_reused_and_generation_is_deterministic(split_manifest, tmp_path):
    cache = tmp_path / "cache"
    first = offline_balance(split_manifest, CLASSES, cache, STUDY_RECIPE, target_per_class=12, progress=False)
    files = sorted(cache.rglob("*.jpg"))
    mtimes = [p.stat().st_mtime_ns for p in files]
    second = offline_balance(split_manifest, CLASSES, cache, STUDY_RECIPE, target_per_class=12, progress=False)
    assert first == second
    assert sorted(cache.rglob("*.jpg")) == files and [p.stat().st_mtime_ns for p in files] == mtimes  # wrote nothing
    other = offline_balance(
        split_manifest, CLASSES, tmp_path / "again", STUDY_RECIPE, target_per_class=12, progress=False
    )
    assert [s.sha1 for s in other if s.parent] == [s.sha1 for s in first if s.parent]  # same seed, same pixels
    reseeded = offline_balance(
        split_manifest, CLASSES, cache, STUDY_RECIPE, target_per_class=12, seed=1, progress=False
    )
    assert [s.sha1 for s in reseeded if s.parent] != [s.sha1 for s in first if s.parent]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("size", [(17, 23), (64, 64), (600, 480)])
@pytest.mark.parametrize("mode", ["rgb", "grey"])
def test_every_preset_runs_on_rgb_and_greyscale_files(tmp_path, preset, size, mode):
    rng = np.random.default_rng(0)
    path = tmp_path / f"img_{mode}.png"
    shape = (size[1], size[0]) if mode == "grey" else (size[1], size[0], 3)
    cv2.imwrite(str(path), rng.integers(0, 256, shape, dtype=np.uint8))
    out = train_transform(augment_ops(preset), 32)(image=load_rgb(path))["image"]
    assert out.shape == (3, 32, 32) and out.dtype == torch.uint8  # the model normalises the batch


def test_augment_ops_follow_command_line_overrides():
    cfg = compose_config(["augment=strong", "augment.affine.rotate=[-33,33]", "augment.horizontal_flip=null"])
    transform = train_transform(OmegaConf.to_container(cfg.augment), 32)
    names = [type(t).__name__ for t in transform.transforms]
    assert names == [
        "Resize",
        "Affine",
        "RandomBrightnessContrast",
        "ColorJitter",
        "OneOf",
        "CoarseDropout",
        "ToTensorV2",
    ]
    assert transform.transforms[1].rotate == (-33.0, 33.0)
    added = compose_config(["augment=none", "+augment.blur={_target_: albumentations.Blur, p: 0.25}"]).augment
    assert [type(t).__name__ for t in train_transform(OmegaConf.to_container(added), 32).transforms] == [
        "Resize",
        "Blur",
        "ToTensorV2",
    ]


@pytest.mark.parametrize(
    ("ops", "expect"),
    [
        ({"flip": 0.5}, "augment.flip is 0.5; each op is a mapping with a _target_"),
        ({"affine": {"_target_": "albumentations.Affine", "rotat": 3}}, "augment.affine (albumentations.Affine)"),
        ({"clock": {"_target_": "time.time"}}, "augment.clock: time.time is not an Albumentations transform"),
    ],
)
def test_a_broken_augment_op_is_named(ops, expect):
    from facemix.errors import FacemixConfigError

    with pytest.raises(FacemixConfigError, match=re.escape(expect)):
        train_transform(ops, 32)


def test_the_offline_recipe_is_config_and_part_of_the_cache_key(split_manifest, tmp_path):
    milder = {**STUDY_RECIPE, "blur": {**STUDY_RECIPE["blur"], "blur_limit": [3, 3]}}
    first = offline_balance(split_manifest, CLASSES, tmp_path / "cache", STUDY_RECIPE, progress=False)
    second = offline_balance(split_manifest, CLASSES, tmp_path / "cache", milder, progress=False)
    folders = {Path(s.path).parents[1] for s in first + second if s.parent}
    assert len(folders) == 2  # another recipe: other images, never the cached ones of the first
    only_flips = {"flip": {"_target_": "albumentations.HorizontalFlip", "p": 1.0}}
    flipped = offline_balance(split_manifest, CLASSES, tmp_path / "c2", only_flips, progress=False)
    child = next(s for s in flipped if s.parent)
    made, parent = load_rgb(child.path).astype(float).ravel(), load_rgb(child.parent).astype(float)
    mirrored = parent[:, ::-1].ravel()
    # a mirror image of its parent, up to JPEG loss on pure noise (unmirrored: no correlation)
    assert np.corrcoef(made, mirrored)[0, 1] > 0.5 > abs(np.corrcoef(made, parent.ravel())[0, 1]) + 0.3
