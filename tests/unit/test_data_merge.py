"""Sources, label map, manifest and split."""

from collections import Counter

import pytest

from facemix.data.manifest import build_manifest, read_manifest, specs_from_config, write_manifest
from facemix.data.split import split_samples, stratified_group_split
from facemix.errors import FacemixConfigError
from tests.helpers import make_imagefolder, write_image


@pytest.fixture()
def two_sources(tmp_path):
    make_imagefolder(tmp_path / "mask" / "Train", {"WithMask": 6, "WithoutMask": 5}, seed=1)
    make_imagefolder(tmp_path / "mask" / "Test", {"WithMask": 2, "WithoutMask": 2}, seed=2)
    make_imagefolder(tmp_path / "rf", {"training_real": 4, "training_fake": 3}, seed=3)
    return {
        "mask": {
            "root": str(tmp_path / "mask"),
            "layout": "split_folders",
            "label_map": {"WithMask": "masked", "WithoutMask": "real"},
        },
        "realfake": {
            "root": str(tmp_path / "rf"),
            "layout": "kaggle_realfake",
            "label_map": {"training_real": "real", "training_fake": "fake"},
        },
    }


def test_label_map_merges_sources_into_classes(two_sources):
    built = build_manifest(specs_from_config(two_sources), ["real", "fake", "masked"])
    counts = Counter((s.source, s.source_label, s.label) for s in built.samples)
    assert counts == {
        ("mask", "WithMask", "masked"): 8,
        ("mask", "WithoutMask", "real"): 7,
        ("realfake", "training_real", "real"): 4,
        ("realfake", "training_fake", "fake"): 3,
    }
    sample = built.samples[0]
    assert len(sample.sha1) == 40 and (sample.width, sample.height) == (40, 48)
    assert {s.source_split for s in built.samples if s.source == "mask"} == {"train", "test"}


def test_manifest_round_trip(two_sources, tmp_path):
    samples = build_manifest(specs_from_config(two_sources), ["real", "fake", "masked"]).samples
    path = write_manifest(split_samples(samples, {"train": 0.6, "val": 0.3, "test": 0.1}, 0), tmp_path / "m.csv")
    back = read_manifest(path)
    assert [s.path for s in back] == [s.path for s in samples] and all(s.split for s in back)


def test_unmatched_label_map_key_fails_naming_key_and_folders(two_sources):
    two_sources["mask"]["label_map"]["with_mask"] = "masked"
    with pytest.raises(FacemixConfigError, match=r"data\.sources\.mask\.label_map names \['with_mask'\]"):
        build_manifest(specs_from_config(two_sources), ["real", "fake", "masked"])


def test_missing_root_fails_naming_key(two_sources, tmp_path):
    two_sources["realfake"]["root"] = str(tmp_path / "nowhere")
    with pytest.raises(FacemixConfigError, match=r"data\.sources\.realfake\.root .*nowhere"):
        build_manifest(specs_from_config(two_sources), ["real", "fake", "masked"])


def test_class_without_images_fails(two_sources):
    with pytest.raises(FacemixConfigError, match=r"\['other'\] received no images"):
        build_manifest(specs_from_config(two_sources), ["real", "fake", "masked", "other"])


def test_unknown_layout_fails(two_sources):
    two_sources["mask"]["layout"] = "flat"
    with pytest.raises(FacemixConfigError, match="not a known layout"):
        build_manifest(specs_from_config(two_sources), ["real", "fake", "masked"])


def test_hidden_os_and_unknown_files_are_not_samples(tmp_path):
    make_imagefolder(tmp_path / "src", {"a": 3, "b": 3})
    (tmp_path / "src" / "a" / ".DS_Store").write_bytes(b"x")
    (tmp_path / "src" / "a" / "Thumbs.db").write_bytes(b"x")
    (tmp_path / "src" / "a" / "notes.txt").write_text("x")
    write_image(tmp_path / "src" / "a" / "._000.png")
    built = build_manifest(specs_from_config({"s": {"root": str(tmp_path / "src")}}), ["a", "b"])
    assert len(built.samples) == 6
    assert [p.name for p, _ in built.scan.skipped] == ["notes.txt"]


def _labels(n_per_class):
    return [c for c, n in n_per_class.items() for _ in range(n)]


def test_split_is_stratified_disjoint_and_deterministic():
    labels = _labels({"real": 700, "fake": 96, "masked": 590})
    groups = [str(i) for i in range(len(labels))]
    fractions = {"train": 0.6, "val": 0.3, "test": 0.1}
    splits = stratified_group_split(labels, groups, fractions, seed=7)
    assert splits == stratified_group_split(labels, groups, fractions, seed=7)
    assert splits != stratified_group_split(labels, groups, fractions, seed=8)
    for cls, n in {"real": 700, "fake": 96, "masked": 590}.items():
        got = Counter(s for s, c in zip(splits, labels) if c == cls)
        for split, frac in fractions.items():
            assert abs(got[split] - frac * n) <= 1, (cls, split, got)


def test_split_keeps_groups_together_and_reaches_every_split():
    labels = _labels({"a": 30, "b": 5})
    groups = [f"g{i // 3}" if lab == "a" else f"b{i}" for i, lab in enumerate(labels)]  # groups of 3 copies
    splits = stratified_group_split(labels, groups, {"train": 0.6, "val": 0.3, "test": 0.1}, seed=0)
    by_group = {}
    for g, s in zip(groups, splits):
        by_group.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in by_group.values())
    assert Counter(s for s, lab in zip(splits, labels) if lab == "b").keys() == {"train", "val", "test"}


def test_keep_source_splits(two_sources):
    samples = build_manifest(specs_from_config(two_sources), ["real", "fake", "masked"]).samples
    kept = split_samples(samples, {"train": 0.6, "val": 0.3, "test": 0.1}, 0, keep_source_splits=True)
    for s in kept:
        if s.source == "mask":
            assert s.split == s.source_split


@pytest.mark.parametrize("fractions", [{"train": 0.6, "val": 0.6}, {"train": 0.0, "val": 1.0}, {"tr": 1.0}])
def test_bad_fractions_fail(fractions):
    with pytest.raises(FacemixConfigError, match="data.split"):
        stratified_group_split(["a"], ["g"], fractions, 0)


def test_the_140k_faces_layout_keeps_its_own_split_and_merges_with_the_other_sources(tmp_path):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from facemix.config.compose import register_resolvers

    root = tmp_path / "kaggle"
    for split, n in (("train", 6), ("valid", 2), ("test", 2)):
        make_imagefolder(root / "real_vs_fake" / "real-vs-fake" / split, {"real": n, "fake": n}, seed=len(split))
    for split in ("Train", "Validation", "Test"):
        make_imagefolder(root / "face_mask" / split, {"WithMask": 4, "WithoutMask": 4}, seed=7 + len(split))
    make_imagefolder(root / "real_and_fake_face", {"training_real": 6, "training_fake": 6}, seed=3)

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="facemix.conf"):
        cfg = compose("train", overrides=["data/sources=[kaggle_faces,faces_140k]", f"data.root={root}"])
    assert set(cfg.data.sources) == {"mask", "realfake", "faces140k"}
    specs = specs_from_config(cfg.data.sources)
    built = build_manifest(specs, list(cfg.data.classes))
    keep = {s.name: bool(s.keep_splits) for s in specs}
    samples = split_samples(built.samples, {"train": 0.6, "val": 0.3, "test": 0.1}, 0, keep)
    faces = [s for s in samples if s.source == "faces140k"]
    assert len(faces) == 20 and all(s.split == s.source_split for s in faces)  # valid -> val, kept as is
    assert {s.split for s in faces} == {"train", "val", "test"}
    assert {s.label for s in faces} == {"real", "fake"}
