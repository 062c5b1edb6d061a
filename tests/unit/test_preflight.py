"""The command line before Hydra: flags kept apart, a resume replays the run's own overrides and refuses changes to
what it trains, a new run never goes into a folder that holds anything, malformed overrides say how to quote."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from facemix.config.preflight import CommandLine, refuse_existing_run_dir, replay_for_resume
from facemix.errors import FacemixConfigError


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


def test_a_malformed_override_names_itself_and_how_to_quote():
    with pytest.raises(FacemixConfigError) as exc:
        CommandLine.parse(["train", "data.root=/data/Face Mask Dataset (1)"])
    assert "data.root=/data/Face Mask Dataset (1)" in str(exc.value) and "Quote a value" in str(exc.value)
