"""Checks that must run before Hydra touches the disk: what a command line resumes, where it writes, and whether its
values are sane (the door ``facemix/train.py`` runs ``prepare_train_command`` first).

Hydra creates the run dir and writes ``.hydra/`` before any task code runs, so a check inside the job is too late to
protect an existing run. This module reads the command line first:

- a run dir is either new or the run being resumed: ``hydra.run.dir=<a folder that holds anything>`` is refused;
- ``ckpt_path=<run dir | checkpoint>`` must name a readable facemix checkpoint, and resuming replays the run's saved
  overrides (``.hydra/overrides.yaml``), so the README's bare ``facemix-train ckpt_path=<run dir>`` continues the
  same model, data and sizes; an override that would change what the run is gets refused with the list of what
  differs (only what a resumed run may change, such as ``trainer.max_epochs``, passes);
- the config is composed and validated (``facemix.config.schema``) so a wrong value or key stops here, before a run
  dir exists.
Multirun sweeps and DDP child processes pass through: sweeps write only new dirs, and every job validates again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from facemix.config.compose import compose_config
from facemix.config.schema import all_keys, validate_config
from facemix.errors import FacemixConfigError, nearest_key
from facemix.models.checkpoints import architecture_of, load_checkpoint
from facemix.run.distributed import is_rank_zero
from facemix.run.overrides import Override, by_key, parse_overrides
from facemix.run.resume import resume_checkpoint, resumes
from facemix.run.rundir import RunDir

# Hydra flags followed by a value (``--config-dir X``); every other flag stands alone
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c", "--package",
                "-p", "--info", "-i", "--experimental-rerun"}  # fmt: skip
_MULTIRUN = {"-m", "--multirun"}
# what a resumed run may change: how long and where it runs, how it reports; never what it trains
RESUME_MAY_CHANGE = (
    "trainer.max_epochs", "trainer.max_steps", "trainer.max_time", "trainer.enable_progress_bar",
    "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy", "trainer.log_every_n_steps",
    "data.num_workers", "paths.", "logger", "tags", "verbose", "calibrate", "ckpt_path",
)  # fmt: skip


@dataclass
class CommandLine:
    program: str
    flags: list[str]  # Hydra's own flags with their values, in order
    overrides: list[str]  # task overrides (key=value), as written, in order
    hydra_overrides: list[str]  # hydra.* overrides

    @classmethod
    def parse(cls, argv: Sequence[str]) -> CommandLine:
        flags, texts = [], []
        args = iter(argv[1:])
        for arg in args:
            if arg.startswith("-") and not arg.startswith(("+", "~")):
                flags.append(arg)
                if arg in _VALUE_FLAGS:
                    flags.append(next(args, ""))
            else:
                texts.append(arg)
        parsed = parse_overrides(texts)  # Hydra's parser: a malformed override stops here, with how to quote
        hydra = [o.text for o in parsed if o.key.startswith("hydra.")]
        return cls(argv[0], flags, [o.text for o in parsed if o.text not in hydra], hydra)

    def argv(self) -> list[str]:
        return [self.program, *self.flags, *self.overrides, *self.hydra_overrides]

    @property
    def parsed(self) -> list[Override]:
        """The task overrides as Hydra reads them."""
        return parse_overrides(self.overrides)

    @property
    def multirun(self) -> bool:
        return any(f in _MULTIRUN for f in self.flags)

    def value(self, key: str) -> str | None:
        """The value the last override of ``key`` gives, as Hydra reads it (quotes removed; null is None)."""
        found = by_key(parse_overrides(self.overrides + self.hydra_overrides)).get(key)
        return found.parsed_text if found else None


def _may_change(key: str) -> bool:
    return key.startswith(RESUME_MAY_CHANGE)


def _saved_overrides(run: RunDir) -> tuple[list[Override], Path] | None:
    """The overrides the run was last started with: its newest ``.hydra/resumed-*`` copy, else the first start's."""
    files = run.saved_overrides_files()
    if not files:
        return None
    newest = files[-1]
    try:
        saved = yaml.safe_load(newest.read_text()) or []
    except (OSError, yaml.YAMLError) as exc:
        raise FacemixConfigError(
            f"{newest} cannot be read ({exc}); it records how the run was started, so it cannot be resumed as the "
            "same run. Restore the file, or start a new run."
        ) from exc
    return [o for o in parse_overrides([str(o) for o in saved], strict=False) if o.key != "ckpt_path"], newest


def replay_for_resume(line: CommandLine) -> CommandLine:
    """The command line that continues the run ``ckpt_path`` names: its saved overrides, with the allowed changes
    given now. Refuses a damaged checkpoint and any change to what the run trains."""
    ckpt_path = line.value("ckpt_path")
    if not resumes(ckpt_path):
        return line
    checkpoint = Path(resume_checkpoint(ckpt_path, line.value("hydra.run.dir")))
    ckpt = load_checkpoint(checkpoint, mmap=True)
    run = RunDir.of_checkpoint(checkpoint)
    saved = _saved_overrides(run)
    if saved is None:  # a checkpoint outside a run dir: the job compares its architecture with the config
        return line
    saved_overrides, source = saved
    saved_values = by_key(saved_overrides)
    differs = []
    for override in line.parsed:
        if _may_change(override.key) or (
            override.key in saved_values and saved_values[override.key].text == override.text
        ):
            continue
        was = saved_values[override.key].value if override.key in saved_values else "its default"
        differs.append(f"{override.key} (the run: {was}; now: {override.value or override.text})")
    if differs:
        raise FacemixConfigError(
            f"ckpt_path={ckpt_path} resumes the run in {run.path} ({architecture_of(ckpt)}) as it was "
            f"started ({source}), but these overrides would change what it trains: {'; '.join(differs)}. On resume "
            f"only {', '.join(k.rstrip('.') for k in RESUME_MAY_CHANGE if k != 'ckpt_path')} may change. Drop those "
            "overrides, or start a new run without ckpt_path."
        )
    given = by_key(line.parsed)
    replayed = [given.pop(o.key, o) for o in saved_overrides]
    texts = [o.text for o in replayed + list(given.values())]
    return CommandLine(line.program, line.flags, texts, line.hydra_overrides)


def refuse_existing_run_dir(line: CommandLine) -> None:
    """A new run never writes into a folder that already holds something (an earlier run, or a user's files)."""
    run_dir = line.value("hydra.run.dir")
    if not run_dir or resumes(line.value("ckpt_path")):
        return
    path = Path(run_dir).expanduser()
    if path.is_file():
        raise FacemixConfigError(f"hydra.run.dir={run_dir} is a file; give a new folder for the run.")
    if path.is_dir() and any(path.iterdir()):
        held = RunDir(path).markers()
        what = f"an earlier run ({', '.join(held)})" if held else "files"
        raise FacemixConfigError(
            f"hydra.run.dir={run_dir} already holds {what}; a run dir is either new or the run being resumed, so "
            f"nothing there was touched. Give a new hydra.run.dir (the default is unique per start), or resume that "
            f"run with ckpt_path={run_dir}."
        )


def check_writable_place(path: Path, key: str) -> None:
    """The run dir can be made there: every name fits the file system, and the nearest existing folder is
    writable (checked here because Hydra creates the dir before any facemix code could explain a failure)."""
    path = Path(path).expanduser().absolute()
    limit = 255
    too_long = [part for part in path.parts if len(part.encode()) > limit]
    if too_long or len(str(path).encode()) > 4000:
        what = f"the name {too_long[0][:60]}... has {len(too_long[0].encode())} bytes" if too_long else "it is too long"
        raise FacemixConfigError(
            f"{key}={path}: {what} (file systems allow {limit} per name, about 4096 per path). Use a shorter "
            f"{key}, or fewer overrides in the run name (hydra.run.dir=<your own short dir>)."
        )
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise FacemixConfigError(f"{key}={path}: {existing} is a file, not a folder; give a folder for the run.")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise FacemixConfigError(
            f"{key}={path}: {existing} is not writable by this user, so the run dir cannot be created there. Give "
            "a folder you own (hydra.run.dir=..., or paths.root_dir / FACEMIX_ROOT for all outputs)."
        )


def _nearest_key_hint(message: str, overrides: Sequence[Override]) -> str:
    """``Did you mean data.batch_size?`` for a mistyped key, from the keys of the composed default config."""
    groups = [o.text for o in overrides if o.is_group and o.value is not None]
    try:
        keys = all_keys(compose_config(groups))
    except Exception:
        return ""
    nearest = [nearest_key(o.key, keys) for o in overrides if o.key in message and o.key not in keys]
    hints = [f"Did you mean {key}?" for key in nearest if key]
    return " " + " ".join(hints) if hints else ""


def compose_and_validate(line: CommandLine) -> None:
    """Compose the config these overrides make and check its values, before Hydra creates the run dir."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = compose_config(line.overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        message = " ".join(str(exc).split()).split(" Config search path:")[0]  # Hydra's search path: noise here
        raise FacemixConfigError(
            f"The overrides do not make a valid config: {message}.{_nearest_key_hint(message, line.parsed)} "
            "List the keys with `facemix-train --cfg job`; nothing was written."
        ) from exc
    try:
        validate_config(cfg)
    except FacemixConfigError as exc:
        raise FacemixConfigError(f"{exc} Nothing was written.") from None
    run_dir = line.value("hydra.run.dir")
    check_writable_place(
        Path(run_dir) if run_dir else Path(cfg.paths.log_dir), "hydra.run.dir" if run_dir else "paths.log_dir"
    )


def prepare_train_command(argv: Sequence[str]) -> list[str]:
    """``argv`` as Hydra should see it: checked, and for a resume the run's own overrides replayed."""
    if not is_rank_zero():
        return list(argv)
    line = CommandLine.parse(argv)
    if line.multirun or any(o.sweep for o in line.parsed):  # a sweep (cv=5fold makes one by config): each job checks
        return list(argv)
    refuse_existing_run_dir(line)
    line = replay_for_resume(line)
    if not line.flags:  # --help, --cfg, --config-dir ...: Hydra's business; the job validates itself
        compose_and_validate(line)
    return line.argv()
