"""The scan command, and training on a tree with bad files (skipped and listed; strict mode fails fast)."""

import json

import pytest

from tests.helpers import assert_drawn, count_tiles, make_imagefolder, run_entry_in_process, run_train, tiny_overrides
from tests.unit.test_health import make_bad_tree

pytestmark = pytest.mark.slow


def _bad_source_overrides(root, run_dir):
    return [
        "data/sources=folder",
        f"data.root={root}",
        f"hydra.run.dir={run_dir}",
        "data.image_size=32",
        "data.batch_size=4",
        "data.num_workers=0",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "model=simple_cnn",
        "data.split={train: 0.5, val: 0.25, test: 0.25}",
        f"paths.data_dir={root.parent / 'data'}",
    ]


def test_training_on_a_tree_with_bad_files_completes_and_lists_them(tmp_path):
    root = make_bad_tree(tmp_path / "src")
    make_imagefolder(root, {"a": 6, "b": 8}, seed=9)
    result = run_train(*_bad_source_overrides(root, tmp_path / "run"))
    assert "skipped 3 unreadable images" in result.stdout + result.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["class_names"] == ["a", "b"]
    card = json.loads((tmp_path / "run" / "dataset_card.json").read_text())
    assert sorted(b["path"].rsplit("/", 1)[1] for b in card["bad_files"]) == ["text.jpg", "truncated.jpg", "zero.jpg"]
    assert (tmp_path / "run" / "classification_report.json").exists()


def test_strict_training_fails_before_any_step(tmp_path):
    root = make_bad_tree(tmp_path / "src")
    result = run_train(*_bad_source_overrides(root, tmp_path / "run"), "data.strict=true", check=False)
    assert result.returncode == 2
    assert "data.strict=true and 3 images cannot be read" in result.stdout + result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_scan_command_prints_a_summary_and_writes_the_card(data_dir, tmp_path):
    run_dir = tmp_path / "scan"
    overrides = ["data.harmonize.enabled=true", f"data.harmonize.cache_dir={tmp_path / 'h'}"]
    result = run_entry_in_process("facemix.scan", [*tiny_overrides(data_dir, run_dir), *overrides])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "unreadable (skipped): 0" in result.stdout and "shortcut_probe_harmonized" in result.stdout
    assert "class 'fake' comes from a single source" in result.stdout
    for name in ("dataset_card.md", "dataset_card.json", "manifest.csv"):
        assert (run_dir / name).stat().st_size > 0
    assert_drawn(run_dir / "dataset_card.png")
    card = json.loads((run_dir / "dataset_card.json").read_text())
    assert card["counts"]["by_source_label"]["realfake/training_fake -> fake"] > 0
    assert set(card["sizes_by_source"]) == {"mask", "realfake"}
    assert card["sizes_by_source"]["realfake"]["width"]["median"] == 600


def test_preview_command_draws_the_configured_ops(data_dir, tmp_path):
    run_dir = tmp_path / "preview"
    overrides = ["augment=keras", "augment.horizontal_flip=null", "per_class=3"]
    result = run_entry_in_process("facemix.preview", [*tiny_overrides(data_dir, run_dir), *overrides])
    assert result.returncode == 0, result.stdout[-3000:]
    assert "augmentation preview (affine, brightness; 32 px)" in result.stdout
    assert count_tiles(run_dir / "augment_preview.png") == 3 * 3  # per_class=3 for each of the 3 classes
    assert (run_dir / "manifest.csv").exists()  # the same data pipeline as training
