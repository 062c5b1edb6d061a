"""Off the command line: data trees as downloads look, caches that break, files that vanish, interrupts as a
terminal or SLURM deliver them, two writers, full disks, odd inputs to predict, Hydra's grammar in paths, kills at
any moment. One test per class of case: exit 2 and one paragraph (no traceback), or the behaviour a user means;
every pre-existing file of a finished run is hashed before and after where a case could touch it."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO, make_imagefolder, run_entry_in_process, run_train, tiny_overrides, write_image


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_paragraph(result, *words: str) -> str:
    text = result.stdout + result.stderr
    assert result.returncode == 2, text[-3000:]
    assert "Traceback" not in text and "a bug in facemix" not in text, text[-3000:]
    for word in words:
        assert word in text, (word, text[-3000:])
    return text


def _folder_run(root: Path, run_dir: Path, data_dir: Path, *extra: str):
    overrides = [o for o in tiny_overrides(data_dir, run_dir) if not o.startswith("data.demo")]
    return run_train("data=folder", f"data.root={root}", *overrides, "trainer.max_epochs=1", *extra, check=False)


def test_a_failed_continuation_leaves_the_finished_run_as_it_was(data_dir, tmp_path):
    """Resuming a finished run whose data lost an image fails before anything moves: reports, summary and
    status stay (facemix-compare still lists it finished)."""
    root = make_imagefolder(tmp_path / "imgs", {"cat": 12, "dog": 12})
    run_dir = tmp_path / "run"
    assert _folder_run(root, run_dir, data_dir).returncode == 0
    kept = [k for k in _hashes(run_dir) if "/.hydra/" not in k and not k.endswith((".writer", ".lock", "train.log"))]
    before, log_before = {k: _hashes(run_dir)[k] for k in kept}, (run_dir / "train.log").read_text()
    (root / "cat" / "000.png").unlink()
    resumed = run_train(f"ckpt_path={run_dir}", "trainer.max_epochs=3", check=False)
    _one_paragraph(resumed, "000.png", "no longer on disk")
    after = _hashes(run_dir)
    assert all(after.get(k) == v for k, v in before.items()), "a file of the finished run changed"
    assert (run_dir / "train.log").read_text().startswith(log_before)  # the attempt's lines are appended
    assert not (run_dir / "earlier").exists() and not (run_dir / "failed.json").exists()

    # A kill during the end-of-run report (training done, summary and part of the report missing): a resume with the
    # run's own epochs trains nothing and redoes the report.
    write_image(root / "cat" / "000.png", seed=1)  # the image back (the scan sees a changed file, not a new one)
    (run_dir / "summary.json").unlink()
    (run_dir / "confusion_matrix.png").unlink(missing_ok=True)
    redone = run_train(f"ckpt_path={run_dir}", check=False)
    assert redone.returncode == 0, (redone.stdout + redone.stderr)[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_epoch"] == 0 and summary["test_report"]["macro avg"]["support"] > 0
    assert (run_dir / "confusion_matrix.png").is_file() and (run_dir / "report.html").is_file()


def test_download_trees_are_read_as_meant_or_refused_in_one_paragraph(data_dir, tmp_path):
    mac = make_imagefolder(tmp_path / "mac", {"cat": 10, "dog": 10})
    make_imagefolder(mac / "__MACOSX", {"cat": 3})  # what a zip unpacked on a Mac holds: resource forks, ignored
    write_image(mac / "loose.jpg")  # an image at the top: left out, with a line
    Image.new("RGB", (40, 30), (200, 30, 30)).save(mac / "cat" / "extra.avif")  # Pillow decodes AVIF: kept
    ran = _folder_run(mac, tmp_path / "mac_run", data_dir)
    assert ran.returncode == 0, ran.stdout[-3000:]
    with open(tmp_path / "mac_run" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["label"] for r in rows} == {"cat", "dog"} and any(r["path"].endswith("extra.avif") for r in rows)
    assert (
        "an image at the top of the source root" in ran.stdout
        and "loose.jpg" in (tmp_path / "mac_run" / "dataset_card.md").read_text()
    )

    cases = {
        "case": ({"Muffin": 5, "muffin": 5, "dog": 5}, (), "differ only by case"),
        "mixed": ({"cat": 5, "dog": 5, "train/cat": 5, "train/dog": 5}, (), "mixes split folders"),
        "empty class name": ({"cat": 5, "dog": 5}, ("data.sources.folder.label_map={cat: '', dog: dog}",), "is not a class name"),
        "null class": ({"cat": 5, "dog": 5}, ("data.sources.folder.label_map={cat: null, dog: dog}",), "is not a class name"),
        "list": ({"cat": 5, "dog": 5}, ("data.sources.folder.label_map=[cat,dog]",), "maps folder names to class names"),
    }  # fmt: skip
    for name, (counts, extra, words) in cases.items():
        root = make_imagefolder(tmp_path / name.replace(" ", "_"), counts)
        _one_paragraph(_folder_run(root, tmp_path / f"{name}_run".replace(" ", "_"), data_dir, *extra), words)
    digits = make_imagefolder(tmp_path / "digits", {"0": 8, "1": 8})  # digit folders mapped from the command line
    mapped = _folder_run(digits, tmp_path / "digits_run", data_dir, "data.sources.folder.label_map={0: cat, 1: dog}")
    assert mapped.returncode == 0, mapped.stdout[-3000:]


def test_damaged_caches_heal_by_themselves_and_say_so(data_dir, tmp_path):
    root = make_imagefolder(tmp_path / "imgs", {"cat": 12, "dog": 12})
    caches = [f"data.scan_cache={tmp_path / 'scan'}", f"data.cache_dir={tmp_path / 'cache'}"]
    assert _folder_run(root, tmp_path / "r1", data_dir, *caches).returncode == 0
    (array,) = (tmp_path / "cache").rglob("*.npy")
    array.write_bytes(array.read_bytes()[: array.stat().st_size // 2])  # "mmap length is greater than file size"
    generation = tmp_path / "scan" / (tmp_path / "scan" / "CURRENT").read_text().strip()
    np.save(generation / "fingerprints.npy", np.load(generation / "fingerprints.npy")[:3])  # too few rows
    healed = _folder_run(root, tmp_path / "r2", data_dir, *caches)
    assert healed.returncode == 0, healed.stdout[-3000:]
    assert "image cache" in healed.stdout and "is damaged" in healed.stdout and "rebuilding" in healed.stdout
    assert "scan cache" in healed.stdout and "rescanning" in healed.stdout
    again = _folder_run(root, tmp_path / "r3", data_dir, *caches)
    assert again.returncode == 0 and "is damaged" not in again.stdout  # healed for good

    assert _folder_run(root, tmp_path / "r4", data_dir, *caches, "data.verify=sha1").returncode == 0
    replaced = root / "dog" / "000.png"  # another picture, old size and mtime kept (cp -p): sha1 notices
    stat = replaced.stat()
    img = np.asarray(Image.open(replaced)).copy()
    Image.fromarray(255 - img).save(replaced)
    os.utime(replaced, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert replaced.stat().st_size == stat.st_size  # the same size too: only the bytes tell
    verified = _folder_run(root, tmp_path / "r5", data_dir, *caches, "data.verify=sha1")
    assert verified.returncode == 0 and "decoding 1 of 24 images" in verified.stdout


def test_an_image_that_vanished_gets_one_paragraph_not_a_loader_traceback(trained_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    with open(copy / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    gone = Path(next(r["path"] for r in rows if r["split"] == "val"))
    moved = gone.with_name(gone.name + ".away")
    gone.rename(moved)
    try:
        ckpt = f"ckpt={copy / 'checkpoints' / 'last.ckpt'}"
        result = run_entry_in_process("facemix.evaluate", [ckpt, "split=val", "num_workers=2"])  # in a worker
        _one_paragraph(result, str(gone), "moved, removed or replaced")
    finally:
        moved.rename(gone)


def test_one_run_dir_has_one_writer(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    slow = [*tiny_overrides(data_dir, run_dir), "model=simple_cnn", "trainer.max_epochs=30"]
    first = subprocess.Popen([sys.executable, "-m", "facemix.train", *slow], cwd=REPO, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / ".writer").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        from facemix.run.rundir import RunDir, one_writer

        with pytest.raises(Exception, match="one run dir has one writer"), one_writer(RunDir(run_dir)):
            pass
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True)
    if ok.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here to fill ({ok.stderr.decode().strip()[:200]})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_named_with_the_key_that_moves_it(data_dir, tiny_disk):
    result = run_train(*tiny_overrides(data_dir, tiny_disk / "run"), "model=simple_cnn", check=False)
    text = result.stdout + result.stderr
    assert result.returncode == 2 and "a bug in facemix" not in text, text[-3000:]
    assert f"the file system at {tiny_disk}" in text and "paths.log_dir" in text  # where, and what moves it


def _png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_predict_skips_what_it_cannot_read_and_never_hangs(trained_run, tmp_path):
    inputs = tmp_path / "in"
    with open(trained_run / "manifest.csv", newline="") as fh:
        pictures = [Path(r["path"]) for r in csv.DictReader(fh)][:3]
    (inputs / "a").mkdir(parents=True)
    for src in pictures:
        shutil.copy(src, inputs / "a" / src.name)
    os.symlink(inputs, inputs / "a" / "loop")  # a link back up: glob('**') followed it forever
    bomb = inputs / "bomb.png"  # a valid PNG whose header claims 40000 x 40000 (a few bytes on disk)
    bomb.write_bytes(_png_claiming(40000, 40000))
    started = time.monotonic()
    result = run_entry_in_process(
        "facemix.predict",
        [
            f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}",
            f"inputs={inputs}/**/*",
            f"hydra.run.dir={tmp_path / 'p'}",
        ],
    )
    assert result.returncode == 0 and time.monotonic() - started < 120, result.stdout[-3000:]
    written = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert len(written["predictions"]) == 3  # the good ones beside it are predicted
    (why,) = [why for path, why in written["skipped"] if path.endswith("bomb.png")]
    assert why.startswith("unreadable") and "1600000000 pixels exceeds the decompression-bomb limit" in why


def test_hydras_grammar_in_paths_gets_how_to_quote(data_dir, tmp_path):
    odd = tmp_path / "Face Mask Dataset (1)"
    make_imagefolder(odd, {"cat": 6, "dog": 6})
    unquoted = run_train("data=folder", f"data.root={odd}", f"paths.data_dir={data_dir}", check=False)
    _one_paragraph(unquoted, "cannot be read", "Quote a value")
    overrides = [o for o in tiny_overrides(data_dir, tmp_path / "run") if not o.startswith("data.demo")]
    quoted = run_train("data=folder", f"data.root='{odd}'", *overrides, "trainer.max_epochs=1", check=False)
    assert quoted.returncode == 0, quoted.stdout[-3000:]  # quoted as the message says: it runs
    dollar = tmp_path / "x${oops}"
    make_imagefolder(dollar, {"cat": 6, "dog": 6})
    _one_paragraph(_folder_run(dollar, tmp_path / "run2", data_dir), "interpolation", "rename or symlink")


def test_sigkill_at_ten_moments_then_resume_always_finishes(data_dir, tmp_path):
    """kill -9 anywhere (checkpoint writes included): each resume continues, the last one finishes, no partial
    checkpoint is left and last.ckpt always loads."""
    import torch

    run_dir = tmp_path / "run"
    overrides = [*tiny_overrides(data_dir, run_dir), "model=simple_cnn", "trainer.max_epochs=6"]
    overrides = [o for o in overrides if not o.startswith("trainer.limit_train_batches")]
    rng = random.Random(0)
    last = run_dir / "checkpoints" / "last.ckpt"
    kills = 0
    while kills < 10 and not (run_dir / "summary.json").exists():
        if not last.exists():  # killed before the first checkpoint: nothing to resume, a new start
            shutil.rmtree(run_dir, ignore_errors=True)
        command = [f"ckpt_path={run_dir}"] if last.exists() else overrides
        proc = subprocess.Popen([sys.executable, "-m", "facemix.train", *command], cwd=REPO, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(5.0, 12.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        if last.exists():
            torch.load(last, map_location="cpu", weights_only=True)  # never partial
    if not (run_dir / "summary.json").exists():
        run_train(f"ckpt_path={run_dir}") if last.exists() else run_train(*overrides)
    assert json.loads((run_dir / "summary.json").read_text())["test_report"]["macro avg"]["support"] > 0
    assert not list((run_dir / "checkpoints").glob(".*partial*")) and kills >= 3
