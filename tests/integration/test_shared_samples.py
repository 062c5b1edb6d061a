"""Merge the real photo samples in ../shared/data into the three classes and train one short epoch."""

import csv
import json
from collections import Counter

import pytest

from tests.helpers import run_entry_in_process, run_train

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_real_samples_merge_and_train(shared_data, tmp_path):
    run_dir = tmp_path / "run"
    run_train(
        "model=mobilenetv2",
        "data=balanced",
        "data/sources=shared_samples",
        f"data.root={shared_data}",
        f"hydra.run.dir={run_dir}",
        "data.image_size=64",
        "data.batch_size=16",
        "data.num_workers=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=2",
        "trainer.enable_progress_bar=false",
    )
    with open(run_dir / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    card = json.loads((run_dir / "dataset_card.json").read_text())
    conflicts = card["label_conflicts_dropped"]
    # the Yonsei fakes are edits of real photos: each conflict is a fake next to its real source, both dropped
    assert conflicts and all(sorted(p.split("/")[-2] for p in g) == ["fake", "real"] for g in conflicts)
    n = len(conflicts)
    assert Counter(r["label"] for r in rows) == {"real": 300 - n, "masked": 150, "fake": 150 - n}
    assert Counter((r["source"], r["source_label"], r["label"]) for r in rows)[("mask", "without_mask", "real")] == 150
    splits = Counter(r["split"] for r in rows)
    assert abs(splits["train"] - 0.6 * len(rows)) <= 3 and abs(splits["test"] - 0.1 * len(rows)) <= 3
    assert len({r["sha1"] for r in rows}) == len(rows)
    assert card["shortcut_probe"]["balanced_accuracy"] > card["shortcut_probe"]["balanced_chance"]
    report = json.loads((run_dir / "classification_report.json").read_text())
    assert report["macro avg"]["support"] == splits["test"]


def test_predict_and_export_work_on_a_real_sample_run(shared_data, tmp_path):

    run_dir = tmp_path / "run"
    run_train(
        "model=simple_cnn",
        "data=unbalanced",
        "data/sources=shared_samples",
        f"data.root={shared_data}",
        f"hydra.run.dir={run_dir}",
        "data.image_size=32",
        "data.num_workers=0",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.enable_progress_bar=false",
    )
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    for args in (
        [
            "facemix.predict",
            f"ckpt={ckpt}",
            f"inputs={shared_data / 'muffin_chihuahua'}",
            f"hydra.run.dir={tmp_path / 'p'}",
        ],
        ["facemix.export", f"ckpt={ckpt}", "format=onnx", f"output_dir={tmp_path / 'onnx'}"],
    ):
        result = run_entry_in_process(args[0], args[1:])
        assert result.returncode == 0, result.stderr[-3000:]
    predictions = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert len(predictions["predictions"]) == 300 and not predictions["skipped"]
    assert json.loads((tmp_path / "onnx" / "model.onnx.json").read_text())["parity"]["passed"]
