"""Bad input of every kind, duplicates and leakage, the scan cache and the shortcut probe."""

import os
from collections import defaultdict

import cv2
import numpy as np
import pytest
from PIL import Image

from facemix.data.demo import draw_face
from facemix.data.health import ScanCache, inspect_image, scan_images, shortcut_probe
from facemix.data.images import load_rgb
from facemix.data.manifest import build_manifest, specs_from_config
from facemix.data.split import split_samples
from facemix.errors import FacemixConfigError
from tests.helpers import make_imagefolder

RNG = np.random.default_rng(0)


def _rgb(h=40, w=60):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _jpeg_bytes(img, quality=90):
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def make_bad_tree(root):
    """One class folder of good images and one file of every bad kind; returns {file name: expected outcome}."""
    d = root / "a"
    d.mkdir(parents=True)
    (d / "zero.jpg").write_bytes(b"")
    good = _jpeg_bytes(_rgb())
    (d / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (d / "text.jpg").write_text("this is not an image")
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 255  # pure blue (BGRA), fully transparent on the left half
    rgba[:, 15:, 3] = 255
    cv2.imwrite(str(d / "alpha.png"), rgba)
    cv2.imwrite(str(d / "grey.png"), RNG.integers(0, 256, (20, 30), dtype=np.uint8))
    Image.fromarray(_rgb()).convert("CMYK").save(d / "cmyk.jpg")
    cv2.imwrite(str(d / "deep16.png"), (RNG.integers(0, 65535, (20, 30))).astype(np.uint16))
    Image.fromarray(_rgb()).convert("P").save(d / "palette.png")
    Image.fromarray(_rgb()).convert("P").save(d / "anim.gif")
    exif_img = np.zeros((20, 40, 3), np.uint8)
    exif_img[:, :20] = 255  # white left half
    im = Image.fromarray(exif_img)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(d / "exif_rotated.jpg", exif=exif)
    Image.fromarray(_rgb(100, 100)).save(d / "bomb.png")  # over the limit the test sets; the rest are under
    (d / ".DS_Store").write_bytes(b"\0")
    (d / "Thumbs.db").write_bytes(b"\0")
    (d / "._good.jpg").write_bytes(b"\0")
    (d / "readme.md").write_text("hi")
    (d / "unicode naïve face é.jpg").write_bytes(_jpeg_bytes(_rgb()))
    (d / "with space.jpg").write_bytes(_jpeg_bytes(_rgb()))
    os.symlink(d, d / "loop")  # a folder symlink pointing at its parent: a loop if followed
    make_imagefolder(root, {"b": 3}, seed=5)
    return root


def test_every_bad_input_is_reported_or_loaded_right(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # bomb.png (10,000 px) is over it, the rest under
    root = make_bad_tree(tmp_path / "src")
    built = build_manifest(specs_from_config({"s": {"root": str(root)}}), ["a", "b"])
    bad = {os.path.basename(p): why for p, why in built.bad_files}
    assert set(bad) == {"zero.jpg", "truncated.jpg", "text.jpg", "bomb.png"}, bad
    assert "0 bytes" in bad["zero.jpg"] and "truncated" in bad["truncated.jpg"]
    assert "decompression-bomb" in bad["bomb.png"]
    loaded = {os.path.basename(s.path) for s in built.samples}
    assert {
        "alpha.png",
        "grey.png",
        "cmyk.jpg",
        "deep16.png",
        "palette.png",
        "anim.gif",
        "exif_rotated.jpg",
        "unicode naïve face é.jpg",
        "with space.jpg",
    } <= loaded
    assert not loaded & {".DS_Store", "Thumbs.db", "._good.jpg", "readme.md"}
    assert [p.name for p, _ in built.scan.skipped] == ["readme.md"]  # unknown extension: listed, not an error
    by_name = {os.path.basename(s.path): s for s in built.samples}
    assert (by_name["exif_rotated.jpg"].width, by_name["exif_rotated.jpg"].height) == (20, 40)  # upright


def test_odd_modes_decode_to_upright_rgb(tmp_path):
    root = make_bad_tree(tmp_path / "src") / "a"
    for name in ("alpha.png", "grey.png", "cmyk.jpg", "deep16.png", "palette.png", "anim.gif"):
        img = load_rgb(root / name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, name
    alpha = load_rgb(root / "alpha.png")
    assert (alpha[:, :10] == 255).all()  # transparent -> white, not black
    assert (alpha[:, 20:, 2] > 200).all() and (alpha[:, 20:, :2] < 50).all()  # opaque blue stays blue
    upright = load_rgb(root / "exif_rotated.jpg")
    assert upright.shape[:2] == (40, 20) and upright[:5].mean() > 200 and upright[-5:].mean() < 50  # white on top
    assert load_rgb(root / "deep16.png").std() > 20  # scaled from 16 bit, not clipped to white


def test_strict_mode_fails_fast_with_the_full_list(tmp_path):
    from facemix.data.pipeline import DataSpec, build_run_data
    from facemix.run.rundir import RunDir

    root = make_bad_tree(tmp_path / "src")
    spec = DataSpec.from_config({"sources": {"s": {"root": str(root)}}, "strict": True})
    with pytest.raises(FacemixConfigError, match=r"data\.strict=true and 3 images cannot be read") as err:
        build_run_data(spec, RunDir(tmp_path / "run"), progress=False)
    for name in ("zero.jpg", "truncated.jpg", "text.jpg"):
        assert name in str(err.value)
    assert not (tmp_path / "run" / "manifest.csv").exists()


def test_skipping_mode_writes_the_card_and_loads_every_kept_image(tmp_path):
    from facemix.data.datamodule import FaceMixDataModule

    root = make_bad_tree(tmp_path / "src")
    dm = FaceMixDataModule(
        tmp_path / "run",
        sources={"s": {"root": str(root)}},
        image_size=32,
        split={"train": 0.6, "val": 0.2, "test": 0.2},
    )
    dm.prepare_data()
    dm.setup("fit")
    card = (tmp_path / "run" / "dataset_card.md").read_text()
    assert "truncated.jpg" in card and "zero.jpg" in card and "readme.md" in card
    for split in ("train", "val", "test"):
        for i in range(len(dm.datasets[split])):
            assert dm.datasets[split][i][0].shape == (3, 32, 32)


def test_empty_class_folder_fails_naming_it(tmp_path):
    make_imagefolder(tmp_path / "src", {"a": 3})
    (tmp_path / "src" / "b").mkdir()
    with pytest.raises(FacemixConfigError, match=r"class folder\(s\) \['b'\] .* hold no image files"):
        build_manifest(specs_from_config({"s": {"root": str(tmp_path / "src")}}), ["a", "b"])


def _face(seed, size=160):
    return draw_face(np.random.default_rng(seed), size, size, "real")


def test_planted_copies_never_cross_splits(tmp_path):
    """Exact, re-encoded, resized and slightly cropped copies planted across two sources share one split."""
    originals = {i: _face(1000 + i) for i in range(12)}
    for src in ("one", "two"):
        for cls in ("x", "y"):
            (tmp_path / src / cls).mkdir(parents=True)
    for i in range(40):  # plain images in both sources and classes
        src, cls = ("one", "two")[i % 2], ("x", "y")[(i // 2) % 2]
        cv2.imwrite(str(tmp_path / src / cls / f"plain{i}.jpg"), _face(i)[..., ::-1])
    planted = {}
    for i, img in originals.items():
        h, w = img.shape[:2]
        copies = {
            "orig": img,
            "exact": img,
            "reencoded": cv2.imdecode(np.frombuffer(_jpeg_bytes(img[..., ::-1], 35), np.uint8), 1)[..., ::-1],
            "resized": cv2.resize(img, (100, 100), interpolation=cv2.INTER_AREA),
            "cropped": img[int(h * 0.04) : int(h * 0.96), int(w * 0.04) : int(w * 0.96)],
        }
        for k, (name, copy) in enumerate(copies.items()):
            src = ("one", "two")[k % 2]
            path = tmp_path / src / "x" / f"dup{i}_{name}.png"
            cv2.imwrite(str(path), copy[..., ::-1])
            planted.setdefault(i, []).append(str(path.resolve()))
    spec = {"one": {"root": str(tmp_path / "one")}, "two": {"root": str(tmp_path / "two")}}
    built = build_manifest(specs_from_config(spec), ["x", "y"])
    for seed in range(5):
        samples = split_samples(built.samples, {"train": 0.6, "val": 0.3, "test": 0.1}, seed)
        split_of = {s.path: s.split for s in samples}
        for i, paths in planted.items():
            assert len({split_of[p] for p in paths}) == 1, (i, [split_of[p] for p in paths])
    groups = defaultdict(set)
    for s in built.samples:
        groups[s.dup_group].add(s.path)
    assert all(set(paths) in groups.values() for paths in planted.values())  # each planted set is exactly a group
    assert sum(len(g) > 1 for g in groups.values()) == len(planted)  # and no look-alike faces were merged


def test_copies_with_different_classes_are_dropped_as_conflicts(tmp_path):
    img = _face(7)
    for k, cls in enumerate(("x", "y")):
        (tmp_path / cls).mkdir()
        cv2.imwrite(str(tmp_path / cls / "same.png"), img[..., ::-1])
        for i in range(3):
            cv2.imwrite(str(tmp_path / cls / f"other{i}.png"), _face(100 + 10 * k + i)[..., ::-1])
    built = build_manifest(specs_from_config({"s": {"root": str(tmp_path)}}), ["x", "y"])
    assert len(built.label_conflicts) == 1 and len(built.label_conflicts[0]) == 2
    assert not any(s.path.endswith("same.png") for s in built.samples)


def test_rescan_reads_nothing_unchanged_and_rereads_a_changed_file(tmp_path, monkeypatch):
    make_imagefolder(tmp_path / "src", {"a": 5})
    paths = sorted((tmp_path / "src").rglob("*.png"))
    cache_file = tmp_path / "cache.json"
    first = scan_images(paths, ScanCache(cache_file), progress=False)
    calls = []
    monkeypatch.setattr("facemix.data.health.inspect_image", lambda p: calls.append(p) or inspect_image(p))
    again = scan_images(paths, ScanCache(cache_file), progress=False)
    assert calls == [] and {k: v.sha1 for k, v in again.items()} == {k: v.sha1 for k, v in first.items()}
    cv2.imwrite(str(paths[0]), _rgb())
    os.utime(paths[0], ns=(1, 1))
    changed = scan_images(paths, ScanCache(cache_file), progress=False)
    assert calls == [str(paths[0])] and changed[str(paths[0])].sha1 != first[str(paths[0])].sha1


def test_a_scan_cache_of_another_fingerprint_layout_is_rescanned_not_misread(tmp_path, monkeypatch):
    make_imagefolder(tmp_path / "src", {"a": 3})
    paths = sorted((tmp_path / "src").rglob("*.png"))
    cache_dir = tmp_path / "scan_cache"
    scan_images(paths, ScanCache(cache_dir), progress=False)
    generation = cache_dir / (cache_dir / "CURRENT").read_text().strip()
    rows = np.load(generation / "fingerprints.npy")
    np.save(generation / "fingerprints.npy", rows[:, :-8])  # what an older layout of the same version would hold
    calls = []
    monkeypatch.setattr("facemix.data.health.inspect_image", lambda p: calls.append(p) or inspect_image(p))
    cache = ScanCache(cache_dir)
    assert cache.entries == {}
    infos = scan_images(paths, cache, progress=False)
    assert len(calls) == len(paths)
    assert cache.fingerprints_of(list(infos.values())).shape == rows.shape


def test_shortcut_probe_sees_size_cues_and_not_random_ones():
    rng = np.random.default_rng(0)
    labels = ["fake"] * 100 + ["real"] * 100
    size_cue = np.c_[np.r_[np.full(100, 600), np.full(100, 150)], rng.normal(0, 1, (200, 5))]
    assert shortcut_probe(size_cue, labels)["balanced_accuracy"] > 0.95
    assert shortcut_probe(rng.normal(0, 1, (200, 6)), labels)["balanced_accuracy"] < 0.65


def test_a_class_with_no_training_images_fails_before_training(tmp_path):
    from facemix.data.datamodule import FaceMixDataModule

    make_imagefolder(tmp_path / "src" / "Train", {"a": 4, "b": 4}, seed=1)
    make_imagefolder(tmp_path / "src" / "Test", {"a": 2, "b": 2, "c": 2}, seed=2)  # c: test images only
    dm = FaceMixDataModule(
        tmp_path / "run",
        sources={"s": {"root": str(tmp_path / "src"), "layout": "split_folders"}},
        keep_source_splits=True,
    )
    dm.prepare_data()
    with pytest.raises(FacemixConfigError, match=r"classes \['c'\] have no training images"):
        dm.setup("fit")
