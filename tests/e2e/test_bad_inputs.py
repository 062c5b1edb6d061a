"""Every bad input gets one clear paragraph (exit 2, the key or file named, no traceback), and nothing a user already
has is touched: each case runs the real entry point in-process against a finished run whose every file is hashed
before and after."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import TINY_DEMO_SCALE, run_entry_in_process


@dataclass(frozen=True)
class Case:
    name: str
    module: str
    args: tuple[str, ...]
    expect: tuple[str, ...]  # all must appear in the message (placeholders filled in)
    new_run_dir: bool = False  # found after Hydra made a NEW run dir (allowed); else nothing may be created


def _train(name, *args, expect, new_run_dir=False):
    demo = () if "data=folder" in args else (f"data.demo.scale={TINY_DEMO_SCALE}",)
    base = ("paths.data_dir={data}", *demo, "data.num_workers=0", "data.image_size=32")
    return Case(name, "facemix.train", (*base, *args), expect, new_run_dir)


CASES = [
    # values, refused before Hydra creates a run dir
    _train("batch size 0", "data.batch_size=0", expect=("data.batch_size=0",)),
    _train("batch size text", "data.batch_size=many", expect=("data.batch_size='many'",)),
    _train("image size 0", "data.image_size=0", expect=("data.image_size=0",)),
    _train("image size text", "data.image_size=big", expect=("data.image_size='big'",)),
    _train("negative workers", "data.num_workers=-1", expect=("data.num_workers=-1",)),
    _train("negative class weight", "loss.class_weights=[1,-5,1]", expect=("loss.class_weights", "above 0")),
    _train("all-zero class weights", "loss.class_weights=[0,0,0]", expect=("loss.class_weights", "NaN")),
    _train("class weights per class", "loss.class_weights=[1,2]", expect=("loss.class_weights has 2 values",)),
    _train("class weights word", "loss.class_weights=heavy", expect=("loss.class_weights='heavy'",)),
    _train("label smoothing 1", "loss.label_smoothing=1.0", expect=("loss.label_smoothing=1.0", "[0, 1)")),
    _train("label smoothing < 0", "loss.label_smoothing=-0.1", expect=("loss.label_smoothing=-0.1",)),
    _train("learning rate 0", "model.optimizer.lr=0", expect=("model.optimizer.lr=0",)),
    _train("dropout 1.5", "model.options.dropout=1.5", expect=("model.options.dropout=1.5",)),
    _train("zero epochs", "trainer.max_epochs=0", expect=("trainer.max_epochs=0",)),
    _train("unknown precision", "trainer.precision=fp8", expect=("trainer.precision='fp8'",)),
    _train("split over 1", "data.split.test=0.5", expect=("data.split=", "add up to 1")),
    _train("no val split", "data.split={{train:1.0,val:0.0,test:0.0}}", expect=("data.split=",)),
    _train("unknown balance", "data.balance=smote", expect=("data.balance='smote'",)),
    _train("typo in a key", "data.batchsize=8", expect=("data.batchsize", "Did you mean data.batch_size?")),
    _train("unknown model", "model=resnet999", expect=("model/resnet999", "vgg16")),
    _train("negative seed", "seed=-1", expect=("seed=-1",)),
    _train("hamming above 128", "data.duplicates.max_hamming=500", expect=("data.duplicates.max_hamming=500",)),
    _train("jpeg quality 0", "data.harmonize.quality=0", expect=("data.harmonize.quality=0",)),
    _train("pretrained file missing", "model.pretrained={bad}/missing.safetensors", expect=("model.pretrained=",)),
    _train("folder data without root", "data=folder", expect=("data.root=null",)),
    # where a run writes, and what it resumes
    _train("new run into a finished run", "hydra.run.dir={run}", expect=("already holds an earlier run", "{run}")),
    _train("new run into a user's folder", "hydra.run.dir={bad}", expect=("already holds files", "{bad}")),
    _train("resume path mistyped", "ckpt_path={run}-typo", expect=("ckpt_path={run}-typo does not exist",)),
    _train("resume from a text file", "ckpt_path={bad}/notes.txt", expect=("{bad}/notes.txt is not a checkpoint",)),
    _train("resume truncated", "ckpt_path={bad}/truncated.ckpt", expect=("{bad}/truncated.ckpt is truncated",)),
    _train("resume corrupt", "ckpt_path={bad}/corrupt.ckpt", expect=("{bad}/corrupt.ckpt is corrupt",)),
    _train("resume unsafe pickle", "ckpt_path={bad}/evil.ckpt", expect=("{bad}/evil.ckpt", "refuses to execute")),
    _train("resume a weights file", "ckpt_path={bad}/weights.pth", expect=("not a training checkpoint",)),
    _train("resume changes the model", "ckpt_path={run}", "model=vgg16", expect=("model (the run: simple_cnn",)),
    _train("resume changes the size", "ckpt_path={run}", "data.image_size=48", expect=("data.image_size (the run",)),
    _train("resume last without dir", "ckpt_path=last", expect=("ckpt_path=last", "hydra.run.dir")),
    _train("resume a dir without checkpoints", "ckpt_path={bad}", expect=("{bad}/checkpoints/last.ckpt",)),
    # found once the data is read: a NEW run dir holds failed.json, nothing else is touched
    _train("empty data root", "data=folder", "data.root={empty}", expect=("{empty}", "no class folders"), new_run_dir=True),
    _train("one-class data root", "data=folder", "data.root={one}", expect=("only the class 'cats'",), new_run_dir=True),
    _train("data root missing", "data=folder", "data.root={tmp}/nothere", expect=("{tmp}/nothere",), new_run_dir=True),
    # evaluate / predict / export share one checkpoint loader (predict's Hydra makes its NEW output dir first)
    Case("evaluate a text file", "facemix.evaluate", ("ckpt={bad}/notes.txt",), ("{bad}/notes.txt is not a checkpoint",)),
    Case("evaluate truncated", "facemix.evaluate", ("ckpt={bad}/truncated.ckpt",), ("is truncated",)),
    Case("evaluate corrupt", "facemix.evaluate", ("ckpt={bad}/corrupt.ckpt",), ("is corrupt",)),
    Case("evaluate unsafe", "facemix.evaluate", ("ckpt={bad}/evil.ckpt",), ("refuses to execute",)),
    Case("evaluate weights only", "facemix.evaluate", ("ckpt={bad}/weights.pth",), ("not a training checkpoint",)),
    Case("evaluate missing file", "facemix.evaluate", ("ckpt={bad}/nope.ckpt",), ("{bad}/nope.ckpt is not a file",)),
    Case("evaluate no ckpt", "facemix.evaluate", (), ("ckpt must be given",)),
    Case("evaluate split", "facemix.evaluate", ("ckpt={run}/checkpoints/last.ckpt", "split=holdout"), ("split='holdout'",)),
    Case("evaluate batch 0", "facemix.evaluate", ("ckpt={run}/checkpoints/last.ckpt", "batch_size=0"), ("batch_size=0",)),
    Case("predict a text file", "facemix.predict", ("ckpt={bad}/notes.txt", "inputs={one}"), ("is not a checkpoint",), True),
    Case("predict top_k 0", "facemix.predict", ("ckpt={run}/checkpoints/last.ckpt", "inputs={one}", "top_k=0"), ("top_k=0",), True),
    Case("predict no inputs", "facemix.predict", ("ckpt={run}/checkpoints/last.ckpt",), ("inputs must be given",), True),
    Case("export truncated", "facemix.export", ("ckpt={bad}/truncated.ckpt",), ("is truncated",)),
    Case("export format", "facemix.export", ("ckpt={run}/checkpoints/last.ckpt", "format=tflite"), ("format='tflite'",)),
    Case("compare nothing there", "facemix.compare", ("runs=[{tmp}/nothere]",), ("no facemix run dirs",), True),
    Case("scan batch 0", "facemix.scan", ("data=folder", "data.root={one}", "data.batch_size=0"), ("data.batch_size=0",), True),
    Case("preview per_class 0", "facemix.preview", ("per_class=0",), ("per_class=0",), True),
    Case("demo scale 0", "facemix.demo", ("scale=0",), ("scale=0",)),
    Case("demo scale text", "facemix.demo", ("scale=lots",), ("scale='lots'",)),
]  # fmt: skip


def _zip_member_offset(path: Path) -> int:
    """Where the largest member's bytes start (to damage the weights, not the archive's index)."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    with path.open("rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    return info.header_offset + 30 + name_len + extra_len


@pytest.fixture(scope="module")
def places(trained_run, data_dir, tmp_path_factory) -> dict[str, Path]:
    bad = tmp_path_factory.mktemp("bad_inputs")
    good = (trained_run / "checkpoints" / "last.ckpt").read_bytes()
    (bad / "notes.txt").write_text("my notes, not a checkpoint\n")
    (bad / "truncated.ckpt").write_bytes(good[: len(good) // 2])
    corrupt = bytearray(good)
    start = _zip_member_offset(trained_run / "checkpoints" / "last.ckpt") + 16
    corrupt[start : start + 64] = bytes(64)
    (bad / "corrupt.ckpt").write_bytes(bytes(corrupt))
    torch.save({"conv.weight": torch.ones(2)}, bad / "weights.pth")

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"state_dict": {}, "hyper_parameters": Evil()}, bad / "evil.ckpt")
    empty = tmp_path_factory.mktemp("empty_root")
    one = tmp_path_factory.mktemp("one_class")
    (one / "cats").mkdir()
    (one / "cats" / "a.jpg").write_bytes((data_dir.rglob("*.jpg").__next__()).read_bytes())
    return {"run": trained_run, "data": data_dir, "bad": bad, "empty": empty, "one": one}


def _snapshot(*roots: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def check_contract(case: Case, places: dict[str, Path], tmp_path: Path, monkeypatch) -> str:
    root = tmp_path / "root"  # FACEMIX_ROOT and working dir: where facemix's own outputs would go
    root.mkdir()
    monkeypatch.setenv("FACEMIX_ROOT", str(root))
    monkeypatch.chdir(root)
    fill = {**{k: str(v) for k, v in places.items()}, "tmp": str(tmp_path)}
    args = [a.format(**fill) for a in case.args]
    watched = [places["run"], places["bad"], places["data"]]
    before, root_before = _snapshot(*watched), set(root.rglob("*"))

    result = run_entry_in_process(case.module, args, cwd=root)
    code, output = result.returncode, result.stdout

    assert code == 2, f"{case.name}: exit {code!r}, expected 2\n{output[-3000:]}"
    assert "Traceback" not in output, f"{case.name}: traceback shown\n{output[-3000:]}"
    errors = [line for line in output.splitlines() if any(e.format(**fill) in line for e in case.expect)]
    assert errors, f"{case.name}: message lacks {case.expect}\n{output[-3000:]}"
    assert all(e.format(**fill) in errors[-1] for e in case.expect), f"{case.name}: not one paragraph\n{errors}"
    assert _snapshot(*watched) == before, f"{case.name}: touched an existing file"
    created = set(root.rglob("*")) - root_before
    if not case.new_run_dir:
        assert not created, f"{case.name}: wrote {sorted(map(str, created))[:5]}"
    return errors[-1]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_paragraph_and_touches_nothing(case, places, tmp_path, monkeypatch):
    message = check_contract(case, places, tmp_path, monkeypatch)
    if case.new_run_dir and case.module == "facemix.train":  # the NEW run says why it failed
        (failed,) = (tmp_path / "root").rglob("failed.json")
        assert "failed" in failed.read_text()
    assert len(message) < 1500


def test_the_case_table_covers_every_entry_point():
    modules = {c.module for c in CASES}
    assert len(CASES) >= 40
    assert modules == {f"facemix.{m}" for m in ("train", "evaluate", "predict", "export", "compare", "scan")} | {
        "facemix.preview",
        "facemix.demo",
    }


# Wrong values drawn at random for the numeric, list and path keys of the train config: each must be refused
# before a run dir exists, naming the key.
_WORD = st.text(alphabet="bcdghjkmpqrstvwxz", min_size=2, max_size=8)  # never null / true / nan / auto
_NOT_FINITE = st.sampled_from(["nan", "inf", "-inf"])
WRONG = {
    "data.batch_size": st.integers(-(10**6), 0).map(str) | _WORD,
    "data.image_size": (st.integers(-100, 15) | st.integers(4097, 10**6)).map(str) | _WORD,
    "data.num_workers": st.integers(-1000, -1).map(str) | _WORD,
    "loss.label_smoothing": (st.floats(1.0, 1e6) | st.floats(-1e6, -1e-6)).map(repr) | _NOT_FINITE,
    "model.optimizer.lr": st.floats(-10, 0).map(repr) | _NOT_FINITE | _WORD,
    "trainer.max_epochs": st.integers(-(10**6), 0).filter(lambda n: n != -1).map(str),
    "data.split.train": st.floats(0, 1).filter(lambda f: abs(f - 0.6) > 1e-3).map(repr),
    "data.duplicates.min_correlation": (st.floats(1.001, 1e3) | st.floats(-1e3, -1.001)).map(repr),
    "data.harmonize.quality": (st.integers(-1000, 0) | st.integers(101, 10**5)).map(str),
    "seed": st.integers(-(10**9), -1).map(str),
    "loss.class_weights": st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=5)
    .filter(lambda ws: len(ws) != 3 or min(ws) <= 0)
    .map(lambda ws: "[" + ",".join(repr(w) for w in ws) + "]"),
    "model.pretrained": _WORD.map(lambda w: f"/nonexistent/{w}.safetensors"),
}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_random_wrong_values_are_refused_before_anything_is_written(data, places, tmp_path_factory, monkeypatch):
    key = data.draw(st.sampled_from(sorted(WRONG)))
    value = data.draw(WRONG[key])
    shown = "data.split" if key == "data.split.train" else key
    case = _train(f"{key}={value}", f"{key}={value}", expect=(shown,))
    with monkeypatch.context() as patch:
        check_contract(case, places, tmp_path_factory.mktemp("prop"), patch)
