"""The decoded-image cache: same pixels as decoding, built once, a changed file re-decodes only its slot."""

import os
import pickle

import cv2
import numpy as np
import pytest
import torch

from facemix.data.cache import build_cache, decode_resized
from facemix.data.datamodule import FaceMixDataModule
from tests.helpers import make_imagefolder, write_image


def _paths(root):
    return sorted(str(p) for p in root.rglob("*.png"))


def test_cache_holds_the_decoded_resized_images_and_is_reused(tmp_path):
    root = make_imagefolder(tmp_path / "imgs", {"a": 5, "b": 4})
    write_image(root / "a" / "big.png", size=(300, 200), seed=7)  # non-square, larger than the cache size
    paths = _paths(root)

    images = build_cache(paths, 32, tmp_path / "cache", workers=2, progress=False)
    assert images.decoded == len(paths)
    for p in paths:
        assert np.array_equal(images[p], decode_resized(p, 32))
        assert images[p].shape == (32, 32, 3) and images[p].dtype == np.uint8

    again = build_cache(list(reversed(paths)), 32, tmp_path / "cache", progress=False)  # order does not matter
    assert again.decoded == 0
    assert len(pickle.dumps(again)) < 4096  # workers get the file's path, not a copy of the array
    assert np.array_equal(pickle.loads(pickle.dumps(again))[paths[0]], images[paths[0]])


def test_a_changed_file_invalidates_only_its_entry(tmp_path):
    root = make_imagefolder(tmp_path / "imgs", {"a": 3, "b": 3})
    paths = _paths(root)
    build_cache(paths, 16, tmp_path / "cache", progress=False)
    changed = paths[2]
    cv2.imwrite(changed, np.full((40, 40, 3), 200, np.uint8))
    st = os.stat(changed)
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a real edit always moves the mtime

    images = build_cache(paths, 16, tmp_path / "cache", progress=False)
    assert images.decoded == 1
    assert (images[changed] == 200).all()
    other = build_cache(paths, 24, tmp_path / "cache", progress=False)  # another size: its own array
    assert other.decoded == len(paths) and other.array_path != images.array_path


def test_datamodule_serves_the_same_tensors_with_and_without_cache(tmp_path):
    root = make_imagefolder(tmp_path / "imgs", {"cat": 12, "dog": 12})
    write_image(root / "cat" / "wide.png", size=(200, 90), seed=3)

    def loader_batch(cache: bool, name: str):
        dm = FaceMixDataModule(
            sources={"pets": {"root": str(root)}},
            run_dir=str(tmp_path / name),
            image_size=32,
            batch_size=64,
            num_workers=0,
            cache=cache,
            cache_dir=str(tmp_path / "cache"),
            scan_cache=None,
        )
        dm.prepare_data()
        dm.setup("fit")
        assert (dm.datasets["val"].images is not None) == cache
        return next(iter(dm.val_dataloader()))

    cached, plain = loader_batch(True, "a"), loader_batch(False, "b")
    assert torch.equal(cached[0], plain[0]) and cached[1].tolist() == plain[1].tolist()


def test_cache_smaller_than_the_training_size_is_refused(tmp_path):
    with pytest.raises(Exception, match="data.cache_size"):
        FaceMixDataModule(tmp_path / "run", sources={"x": {"root": str(tmp_path)}}, image_size=64, cache_size=32)
