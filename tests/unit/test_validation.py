"""The rule table, the command-line preflight (resume replay, run-dir guard) and the checkpoint loader's four
messages, without training anything."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
import yaml

from facemix.checkpoints import BadCheckpointError, UnsafeCheckpointError, load_checkpoint
from facemix.config import compose_config, register_resolvers
from facemix.errors import FacemixConfigError, find_user_error, interrupt_signal
from facemix.preflight import CommandLine, refuse_existing_run_dir, replay_for_resume
from facemix.validation import config_problems, validate_config

CONF = Path(__file__).resolve().parents[2] / "conf"
register_resolvers()


def _compose(*overrides: str, name: str = "train"):
    return compose_config(overrides, name)


@pytest.mark.parametrize(
    "overrides",
    [[f"experiment={p.stem}"] for p in sorted((CONF / "experiment").glob("*.yaml"))]
    + [[f"model={p.stem}"] for p in sorted((CONF / "model").glob("[!_]*.yaml"))]
    + [[f"optimizer={p.stem}"] for p in sorted((CONF / "optimizer").glob("*.yaml"))]
    + [[f"scheduler={p.stem}"] for p in sorted((CONF / "scheduler").glob("*.yaml"))]
    + [[f"augment={p.stem}"] for p in sorted((CONF / "augment").glob("*.yaml"))]
    + [[f"logger={p.stem}"] for p in sorted((CONF / "logger").glob("*.yaml"))]
    + [[f"debug={p.stem}"] for p in sorted((CONF / "debug").glob("*.yaml"))]
    + [[f"data={p.stem}", "data.root=/somewhere"] for p in sorted((CONF / "data").glob("*.yaml"))]
    + [[f"regularization={p.stem}"] for p in sorted((CONF / "regularization").glob("*.yaml"))]
    + [["trainer=ddp"], ["trainer=cpu"], ["hparams_search=optuna"], ["debug=overfit"]],
    ids=lambda o: " ".join(o),
)
def test_every_shipped_config_passes_its_own_rules(overrides):
    assert config_problems(_compose(*overrides)) == []


@pytest.mark.parametrize("name", ["evaluate", "predict", "export", "compare", "demo", "scan", "preview"])
def test_every_entry_config_passes_apart_from_its_required_keys(name):
    problems = config_problems(_compose(name=name))
    assert all("must be given" in p for p in problems), problems


def test_all_problems_in_one_paragraph_naming_each_key():
    cfg = _compose("data.batch_size=0", "loss.label_smoothing=2", "loss.class_weights=[1,1]")
    with pytest.raises(FacemixConfigError) as exc:
        validate_config(cfg)
    message = str(exc.value)
    assert message.startswith("3 config values are wrong") and "\n" not in message
    for key in ("data.batch_size=0", "loss.label_smoothing=2", "loss.class_weights has 2 values for 3 classes"):
        assert key in message


def test_booleans_are_not_numbers_and_infinities_are_not_learning_rates():
    assert config_problems(_compose("data.batch_size=true"))
    assert config_problems(_compose("model.optimizer.lr=inf"))
    assert config_problems(_compose("loss.class_weights=[1,nan,1]"))
    assert config_problems(_compose("trainer.max_epochs=-1")) == []  # Lightning's "no limit"


def test_os_refusals_become_one_paragraph_naming_the_path():
    for code, words in [(errno.EACCES, "folder you own"), (errno.EROFS, "read-only"), (errno.ENOSPC, "disk is full")]:
        error = find_user_error(OSError(code, os.strerror(code), "/data/x/scan_cache"))
        assert isinstance(error, FacemixConfigError) and "/data/x/scan_cache" in str(error) and words in str(error)
    assert find_user_error(OSError(errno.EIO, "I/O error", "/x")) is None  # not the user's to fix: traceback


def test_interrupts_are_told_apart_from_failures():
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    assert interrupt_signal(SIGTERMException()) == "SIGTERM"
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemExit(1)  # noqa: B904 - exactly what Lightning does on Ctrl-C
    except SystemExit as exc:
        assert interrupt_signal(exc) == "SIGINT"
    assert interrupt_signal(RuntimeError("x")) is None


# --- checkpoints: four different messages ---------------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(
        {"state_dict": {"w": torch.randn(256, 64)}, "hyper_parameters": {"name": "simple_cnn"}, "epoch": 1}, path
    )
    return path


def test_a_good_checkpoint_loads(checkpoint):
    assert load_checkpoint(checkpoint)["epoch"] == 1


def test_not_a_checkpoint_truncated_corrupt_unsafe_each_say_so(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[len(data) // 2 : len(data) // 2 + 32] = bytes(32)  # inside the 64 KB of weights
    (tmp_path / "corrupt.ckpt").write_bytes(bytes(corrupt))

    class Evil:
        def __reduce__(self):
            return (print, ("never",))

    torch.save({"state_dict": {}, "x": Evil()}, tmp_path / "evil.ckpt")
    torch.save({"w": torch.ones(1)}, tmp_path / "weights.pth")
    expected = {
        "notes.txt": (BadCheckpointError, "is not a checkpoint"),
        "truncated.ckpt": (BadCheckpointError, "is truncated"),
        "corrupt.ckpt": (BadCheckpointError, "is corrupt"),
        "evil.ckpt": (UnsafeCheckpointError, "refuses to execute"),
        "weights.pth": (BadCheckpointError, "is not a training checkpoint"),
    }
    for name, (kind, words) in expected.items():
        with pytest.raises(kind) as exc:
            load_checkpoint(tmp_path / name)
        assert type(exc.value) is kind and words in str(exc.value) and str(tmp_path / name) in str(exc.value)


# --- the command line before Hydra ---------------------------------------------------------------------------


def test_command_line_keeps_hydra_flags_and_their_values_apart():
    line = CommandLine.parse(["train", "-m", "--config-dir", "/my/conf", "model=vgg16", "hydra.run.dir=/r", "+x=1"])
    assert line.flags == ["-m", "--config-dir", "/my/conf"] and line.multirun
    assert line.overrides == ["model=vgg16", "+x=1"] and line.hydra_overrides == ["hydra.run.dir=/r"]
    assert line.value("model") == "vgg16" and line.value("hydra.run.dir") == "/r"


def _finished_run(tmp_path: Path, checkpoint: Path, overrides: list[str]) -> Path:
    run = checkpoint.parent.parent
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return run


def test_resume_replays_the_saved_overrides_and_takes_allowed_changes(tmp_path, checkpoint):
    run = _finished_run(tmp_path, checkpoint, ["model=simple_cnn", "data.image_size=48", "trainer.max_epochs=2"])
    line = replay_for_resume(CommandLine.parse(["train", f"ckpt_path={run}", "trainer.max_epochs=5"]))
    assert line.overrides == ["model=simple_cnn", "data.image_size=48", "trainer.max_epochs=5", f"ckpt_path={run}"]


def test_resume_takes_the_newest_resumed_overrides(tmp_path, checkpoint):
    run = _finished_run(tmp_path, checkpoint, ["model=simple_cnn", "trainer.max_epochs=2"])
    later = run / ".hydra" / "resumed-2026-11-24_07-00-00"
    later.mkdir()
    (later / "overrides.yaml").write_text(yaml.safe_dump(["model=simple_cnn", "trainer.max_epochs=9", "ckpt_path=x"]))
    line = replay_for_resume(CommandLine.parse(["train", f"ckpt_path={checkpoint}"]))
    assert line.overrides == ["model=simple_cnn", "trainer.max_epochs=9", f"ckpt_path={checkpoint}"]


def test_resume_refuses_changes_to_what_the_run_trains_listing_each(tmp_path, checkpoint):
    run = _finished_run(tmp_path, checkpoint, ["model=simple_cnn"])
    with pytest.raises(FacemixConfigError) as exc:
        replay_for_resume(CommandLine.parse(["train", f"ckpt_path={run}", "model=vgg16", "data.image_size=64"]))
    message = str(exc.value)
    assert "model (the run: simple_cnn; now: vgg16)" in message
    assert "data.image_size (the run: its default; now: 64)" in message


def test_a_new_run_never_goes_into_a_folder_that_holds_anything(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(FacemixConfigError, match="already holds files"):
        refuse_existing_run_dir(CommandLine.parse(["train", f"hydra.run.dir={tmp_path / 'mine'}"]))
    refuse_existing_run_dir(CommandLine.parse(["train", f"hydra.run.dir={tmp_path / 'new'}"]))  # new: fine
    (tmp_path / "empty").mkdir()
    refuse_existing_run_dir(CommandLine.parse(["train", f"hydra.run.dir={tmp_path / 'empty'}"]))  # empty: fine


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("augment.affine.rotat=[-5,5]", "augment.affine (albumentations.Affine) cannot be built: Argument(s) 'rotat'"),
        ("augment.horizontal_flip=0.5", "augment.horizontal_flip is 0.5; each op is a mapping with a _target_"),
        ("data.offline.recipe.blur.blur_limit=[9,3]", "recipe.blur (albumentations.Blur) cannot be built: blur_limit"),
        ("augment.affine.rotate=wide", "augment.affine (albumentations.Affine) cannot be built: 2 validation errors"),
    ],
)
def test_a_broken_augmentation_op_is_found_before_the_run(override, expect):
    problems = config_problems(_compose("data=balanced_offline", f"+{override}" if "rotat=" in override else override))
    assert any(expect in p for p in problems), problems


@pytest.mark.parametrize(
    ("overrides", "expect"),
    [
        (["+model.optimizer.betaz=[0.9,0.99]"], "model.optimizer (torch.optim.Adam) cannot be built: "),
        (["optimizer=sgd", "model.optimizer.nesterov=true", "model.optimizer.momentum=0"], "Nesterov momentum"),
        (["+model.scheduler.cooldwn=3"], "model.scheduler (facemix.models.schedules.plateau) cannot be built"),
    ],
)
def test_an_optimizer_or_schedule_argument_torch_refuses_is_found_before_the_run(overrides, expect):
    problems = config_problems(_compose(*overrides))
    assert any(expect in p for p in problems), problems
