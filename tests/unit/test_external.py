"""An external test set is mapped into the checkpoint's classes, or refused with every unknown folder named."""

import pytest

from facemix.errors import FacemixConfigError
from facemix.evaluation.external import external_samples
from tests.helpers import make_imagefolder

CLASSES = ["real", "fake", "masked"]


def test_folders_named_like_the_classes_need_no_map_and_missing_classes_are_allowed(tmp_path):
    root = make_imagefolder(tmp_path / "tree", {"real": 3, "fake": 2})
    (root / "fake" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    samples = external_samples({"tree": {"root": str(root)}}, CLASSES, tmp_path / "scan")
    assert sorted(s.label for s in samples) == ["fake", "fake", "real", "real", "real"]  # the bad file skipped
    assert {s.split for s in samples} == {"external"}


def test_unknown_folders_are_listed_with_the_fix(tmp_path):
    root = make_imagefolder(tmp_path / "tree", {"real": 2, "cat": 2, "dog": 1})
    with pytest.raises(FacemixConfigError) as error:
        external_samples({"tree": {"root": str(root)}}, CLASSES, None)
    message = str(error.value)
    assert "['cat', 'dog']" in message and "data.sources.tree.label_map=" in message and str(CLASSES) in message


def test_a_label_map_maps_and_leaves_out_the_rest(tmp_path):
    root = make_imagefolder(tmp_path / "tree", {"with_mask": 2, "without_mask": 3, "cat": 4})
    source = {"root": str(root), "label_map": {"with_mask": "masked", "without_mask": "real"}}
    samples = external_samples({"tree": source}, CLASSES, None)
    assert sorted(s.label for s in samples) == ["masked"] * 2 + ["real"] * 3
    with pytest.raises(FacemixConfigError, match="not in data.classes"):
        external_samples({"tree": {**source, "label_map": {"with_mask": "dog"}}}, CLASSES, None)
