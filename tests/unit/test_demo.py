import json
from collections import Counter

import pytest
from PIL import Image

from facemix.data.demo import demo_plan, write_demo


def test_demo_is_deterministic_and_laid_out_like_the_kaggle_sets(tmp_path):
    a = write_demo(tmp_path / "a", scale=0.005, seed=1, progress=False)
    b = write_demo(tmp_path / "b", scale=0.005, seed=1, progress=False)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.jpg"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.jpg"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    folders = Counter(str(f.parent) for f in files_a)
    assert set(folders) == {
        f"face_mask/{s}/{c}" for s in ("Train", "Validation", "Test") for c in ("WithMask", "WithoutMask")
    } | {"real_and_fake_face/training_real", "real_and_fake_face/training_fake"}
    with Image.open(a / "real_and_fake_face/training_fake/00001.jpg") as im:
        assert im.size == (600, 600)
    with Image.open(a / "face_mask/Train/WithMask/00001.jpg") as im:
        assert 100 <= im.size[0] <= 190 and 120 <= im.size[1] <= 190
    assert json.loads((a / "DEMO.json").read_text())["seed"] == 1


def test_demo_keeps_real_proportions():
    plan = Counter(kind for _, kind, _ in demo_plan(0.1))
    assert plan["fake"] == 96 and plan["masked"] == 590 and plan["real"] == 590 + 108
    assert plan["fake"] / sum(plan.values()) < 0.1  # the merged minority


def test_demo_never_overwrites_other_data(tmp_path):
    write_demo(tmp_path / "d", scale=0.005, seed=0, progress=False)
    with pytest.raises(FileExistsError, match="scale"):
        write_demo(tmp_path / "d", scale=0.005, seed=1, progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a facemix demo folder"):
        write_demo(tmp_path / "mine", scale=0.005, progress=False)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious"
