"""evaluate, predict, compare, export, safe loading and the real TensorBoard server, on a finished tiny run."""

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import torch

from facemix.models.checkpoints import UnsafeCheckpointError, load_checkpoint
from tests.helpers import REPO, assert_drawn, count_tiles, read_picture, run_entry_in_process, write_image

pytestmark = pytest.mark.slow


def run_module(module: str, *args: str, cwd=REPO) -> subprocess.CompletedProcess:
    """``python -m <module> <args>``, in this process (``tests.helpers.run_entry_in_process``)."""
    return run_entry_in_process(module, list(args), cwd)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_training_evaluates_the_best_checkpoint(trained_run):
    for name in (
        "classification_report.txt",
        "confusion_matrix.png",
        "curves.png",
        "gallery.png",
        "predictions.csv",
        "per_source.json",
        "per_source.md",
        "reliability.png",
        "gradcam.png",
        "summary.json",
    ):
        assert (trained_run / name).stat().st_size > 0, name
    for name in ("confusion_matrix.png", "curves.png", "reliability.png"):
        assert_drawn(trained_run / name)
    test_rows = [r for r in _rows(trained_run / "manifest.csv") if r["split"] == "test"]
    shown = min(24, len(test_rows))  # report.gallery_size: the mistakes first, then the least sure
    assert count_tiles(trained_run / "gallery.png") == count_tiles(trained_run / "gradcam.png") == shown
    predictions = _rows(trained_run / "predictions.csv")
    assert sorted(p["path"] for p in predictions) == sorted(r["path"] for r in test_rows)  # whole split, once each
    for p in predictions:
        assert abs(sum(float(p[f"prob_{c}"]) for c in ("real", "fake", "masked")) - 1) < 1e-4
    per_source = json.loads((trained_run / "per_source.json").read_text())
    assert set(per_source) == {"mask", "realfake"}
    assert per_source["mask"]["images"] + per_source["realfake"]["images"] == len(test_rows)


def test_evaluate_command_writes_a_new_dir_each_time(trained_run):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    first = run_module("facemix.evaluate", f"ckpt={ckpt}", "split=val")
    assert first.returncode == 0, first.stderr[-3000:]
    out = trained_run / "evaluation" / "val-last"
    report = json.loads((out / "classification_report.json").read_text())
    val_rows = [r for r in _rows(trained_run / "manifest.csv") if r["split"] == "val"]
    assert report["macro avg"]["support"] == len(val_rows) == len(_rows(out / "predictions.csv"))
    macro = report["intervals"]["macro f1"]
    assert macro["low"] <= report["macro avg"]["f1-score"] == macro["value"] <= macro["high"]
    assert report["bootstrap"]["resamples"] == 2000 and 0 <= report["calibration"]["ece"] <= 1
    assert "95% bootstrap intervals" in (out / "classification_report.txt").read_text()
    before = (out / "classification_report.json").read_bytes()
    again = run_module("facemix.evaluate", f"ckpt={ckpt}", "split=val")
    assert again.returncode == 0 and (trained_run / "evaluation" / "val-last-2" / "gallery.png").exists()
    assert (out / "classification_report.json").read_bytes() == before


def test_evaluate_on_an_external_labelled_tree(trained_run, shared_data, tmp_path):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    scan_cache = f"data.scan_cache={tmp_path / 'scan'}"
    ran = run_module(
        "facemix.evaluate", f"ckpt={ckpt}", "data=folder", f"data.root={shared_data / 'realfake'}", scan_cache
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = trained_run / "evaluation" / "external-realfake-last"
    rows = _rows(out / "manifest.csv")
    images = [p for p in (shared_data / "realfake").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert len(rows) == len(_rows(out / "predictions.csv")) == len(images)
    assert {r["split"] for r in rows} == {"external"} and {r["label"] for r in rows} == {"real", "fake"}
    report = json.loads((out / "classification_report.json").read_text())
    assert report["masked"]["support"] == 0 and report["intervals"]["accuracy"]["high"] <= 1
    for name in ("reliability.png", "confusion_matrix.png"):
        assert_drawn(out / name)
    assert count_tiles(out / "gallery.png") == 24 and (out / "per_source.md").stat().st_size > 0

    mask = f"data.root={shared_data / 'mask'}"
    unmapped = run_module("facemix.evaluate", f"ckpt={ckpt}", "data=folder", mask, scan_cache)
    assert unmapped.returncode != 0
    message = unmapped.stdout + unmapped.stderr
    assert "with_mask" in message and "without_mask" in message and "label_map" in message
    assert "Traceback" not in message

    mapped = run_module(
        "facemix.evaluate",
        f"ckpt={ckpt}",
        "data=folder",
        mask,
        scan_cache,
        "data.sources.folder.label_map={with_mask: masked, without_mask: real}",
    )
    assert mapped.returncode == 0, mapped.stderr[-3000:]
    labels = {r["label"] for r in _rows(trained_run / "evaluation" / "external-mask-last" / "manifest.csv")}
    assert labels == {"masked", "real"}


def test_predict_reports_bad_files_and_predicts_the_rest(trained_run, data_dir, tmp_path):
    inputs = tmp_path / "mine"
    demo = next(data_dir.glob("demo_faces/*/face_mask/Test/WithMask"))
    for src in sorted(demo.glob("*.jpg"))[:3]:
        (inputs / "sub").mkdir(parents=True, exist_ok=True)
        (inputs / "sub" / src.name).write_bytes(src.read_bytes())
    write_image(inputs / "grey face é.png", size=(50, 40))
    (inputs / "notes.txt").write_text("not an image")
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out_dir = tmp_path / "pred"
    result = run_module(
        "facemix.predict",
        f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}",
        f"inputs={inputs}",
        "top_k=2",
        "cam=true",
        f"hydra.run.dir={out_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "notes.txt: not an image" in result.stdout and "broken.jpg: unreadable" in result.stdout
    data = json.loads((out_dir / "predictions.json").read_text())
    assert len(data["predictions"]) == 4 and all(len(p["top"]) == 2 for p in data["predictions"])
    assert len(_rows(out_dir / "predictions.csv")) == 4
    overlays = sorted((out_dir / "cam").glob("*.png"))
    assert len(overlays) == 4 and all(read_picture(p).shape[:2] == (32, 32) for p in overlays)

    only_bad = run_module(
        "facemix.predict",
        f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}",
        f"inputs={inputs / 'notes.txt'}",
        f"hydra.run.dir={tmp_path / 'pred2'}",
    )
    assert only_bad.returncode == 2 and "nothing could be predicted" in only_bad.stdout + only_bad.stderr


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_passes_parity_and_documents_preprocessing(trained_run, tmp_path, fmt):
    out = tmp_path / fmt
    summary = json.loads((trained_run / "summary.json").read_text())
    best = summary["best_checkpoint"]  # calibrate=true: the temperature lives in the best checkpoint
    result = run_module("facemix.export", f"ckpt={best}", f"format={fmt}", f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    sidecar = json.loads(next(out.glob("*.json")).read_text())
    temperature = float(load_checkpoint(best)["state_dict"]["temperature"])
    assert temperature != 1.0 and sidecar["output"]["temperature"] == pytest.approx(temperature)
    assert summary["calibration"]["temperature"] == pytest.approx(temperature)
    assert summary["calibration"]["nll_after"] <= summary["calibration"]["nll_before"] + 1e-9
    assert sidecar["parity"]["passed"] and sidecar["parity"]["images"] > 0
    assert sidecar["class_names"] == ["real", "fake", "masked"] and sidecar["input"]["shape"][2:] == [32, 32]
    assert sidecar["input"]["dtype"] == "uint8"  # normalisation is inside the exported graph
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        probs = session.run(None, {"image": np.zeros((5, 3, 32, 32), np.uint8)})[0]
        assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_compare_lists_finished_and_failed_runs(trained_run, tmp_path):
    failed = tmp_path / "sweep" / "1"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (failed / ".hydra" / "overrides.yaml").write_text("- model=vgg16\n")
    (failed / "train.log").write_text("[ERROR] - Error executing job\nTraceback ...\n")
    (tmp_path / "comparison.md").write_text("a user's own notes")
    result = run_module(
        "facemix.compare", str(trained_run), str(failed), f"output_dir={tmp_path / 'cmp'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _rows(tmp_path / "cmp" / "comparison.csv")
    assert [r["status"] for r in rows] == ["finished", "failed"]
    assert rows[0]["test macro F1"] and rows[0]["F1 fake"] and rows[0]["parameters"]
    assert_drawn(tmp_path / "cmp" / "comparison.png")
    assert "| run | status |" in result.stdout
    assert (tmp_path / "comparison.md").read_text() == "a user's own notes"  # nothing outside output_dir touched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp", "comparison.md", "sweep"]  # no Hydra dir or log


def test_a_malicious_checkpoint_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ckpt = tmp_path / "checkpoints" / "evil.ckpt"
    ckpt.parent.mkdir()
    torch.save({"state_dict": {}, "hyper_parameters": Evil()}, ckpt)
    with pytest.raises(UnsafeCheckpointError, match="refuses to execute"):
        load_checkpoint(ckpt)
    result = run_module("facemix.evaluate", f"ckpt={ckpt}")
    assert result.returncode == 2 and "refuses to execute" in result.stdout + result.stderr
    assert not marker.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_tensorboard_serves_the_run_scalars(trained_run):
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(trained_run / "tensorboard"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--load_fast",
            "false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path):
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            return json.loads(resp.read())

    try:
        deadline, scalars = time.monotonic() + 90, {}
        while time.monotonic() < deadline and len(scalars) < 4:
            try:
                get("/data/runs")  # the server is up
                for tag in ("train/loss", "val/loss", "train/acc", "val/acc"):
                    run, metric = tag.split("/")  # train and val are sub-runs sharing the tag: one chart
                    query = urllib.parse.urlencode({"run": run, "tag": metric})
                    scalars[tag] = get(f"/data/plugin/scalars/scalars?{query}")
            except (OSError, IndexError, ValueError):
                time.sleep(1)
        assert set(scalars) == {"train/loss", "val/loss", "train/acc", "val/acc"}
        for tag, points in scalars.items():
            assert len(points) == 2, (tag, points)  # one point per epoch
    finally:
        server.terminate()
        server.wait(timeout=20)
